#include "edgeferry/agent/forwarder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

#include "edgeferry/buffer/dead_letter_admin.h"
#include "edgeferry/clock.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/redact.h"
#include "edgeferry/repeat_limiter.h"

namespace edgeferry::agent {

namespace {
constexpr int64_t kPollNs = 200'000'000;  // how often a waiting loop checks for Stop()
constexpr int64_t kReplayCheckNs = 1'000'000'000;

// Tokens refill at `rate` per second up to one second's worth; Take() may go into
// debt and returns how long to wait for it. rate 0 = unlimited.
class TokenBucket {
 public:
  explicit TokenBucket(double rate) : rate_(rate), tokens_(rate), last_ns_(SystemClock().MonoNs()) {}
  int64_t Take(double n) {
    if (rate_ <= 0) return 0;
    const int64_t now = SystemClock().MonoNs();
    tokens_ = std::min(rate_, tokens_ + rate_ * static_cast<double>(now - last_ns_) / 1e9);
    last_ns_ = now;
    tokens_ -= n;
    return tokens_ >= 0 ? 0 : static_cast<int64_t>(-tokens_ / rate_ * 1e9);
  }

 private:
  double rate_, tokens_;
  int64_t last_ns_;
};
}  // namespace

std::string_view SinkStateName(SinkState s) {
  switch (s) {
    case SinkState::kStarting: return "starting";
    case SinkState::kOnline: return "online";
    case SinkState::kBackingOff: return "backing_off";
    case SinkState::kFailing: return "failing";
    case SinkState::kStopped: return "stopped";
  }
  return "unknown";
}

Forwarder::Forwarder(buffer::Store& store, drivers::Sink& sink, RetryPolicy retry, DrainPolicy drain, Route route,
                     const std::vector<pipeline::ProcessorConfig>& processors, TapHub* tap, Rebaser* rebaser)
    : store_(store),
      sink_(sink),
      retry_(retry),
      drain_(drain),
      route_(std::move(route)),
      processors_(processors),
      tap_(tap),
      rebaser_(rebaser ? *rebaser : SystemRebaser()),
      stage_("sink:" + sink.name()),
      repeat_key_("sink " + sink.name() + ": dead-lettered records") {}

Forwarder::~Forwarder() { Stop(); }

Status Forwarder::Start() {
  auto cursor = store_.OpenCursor(sink_.name());
  if (!cursor.ok()) return cursor.status();
  pos_ = *cursor;
  {
    std::lock_guard<std::mutex> l(mu_);
    stats_.acked_seq = pos_;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Forwarder::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  sink_.Cancel();
  if (thread_.joinable()) thread_.join();
  SetState(SinkState::kStopped);
}

SinkStats Forwarder::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

bool Forwarder::Sleep(int64_t ns) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, std::chrono::nanoseconds(ns), [&] { return stop_; });
  return !stop_;
}

void Forwarder::SetState(SinkState s, const std::string& error) {
  std::lock_guard<std::mutex> l(mu_);
  stats_.state = s;
  if (!error.empty()) stats_.last_error = error;
}

void Forwarder::Run() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = [&] {
    // Full jitter: uniform in [0, min(cap, base * 2^attempt)].
    const int64_t ceiling = std::min<int64_t>(retry_.max_ns, retry_.base_ns << std::min(attempt_, 30));
    ++attempt_;
    return static_cast<int64_t>(rng() % static_cast<uint64_t>(ceiling + 1));
  };
  // Start the sink, retrying with backoff (a directory on a missing mount, a dead link).
  while (true) {
    Status st;
    try {
      st = sink_.Start();
    } catch (const std::exception& e) {
      st = Status::Unavailable(std::string("sink threw: ") + e.what());
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.sink_exceptions;
    }
    if (st.ok()) break;
    const std::string err = RedactUrlsIn(st.ToString());
    SetState(SinkState::kBackingOff, err);
    spdlog::warn("sink {}: cannot start: {}", sink_.name(), err);
    if (!Sleep(backoff())) return;
  }
  attempt_ = 0;
  uint64_t held = 0;
  try {
    held = sink_.RecoverDeliveredSeq();
  } catch (const std::exception& e) {
    spdlog::error("sink {}: recovering what the destination holds threw: {}", sink_.name(), e.what());
  }
  if (held > pos_) {
    spdlog::info("sink {}: destination already holds records up to seq {}; resuming after it",
                 sink_.name(), held);
    pos_ = held;
    (void)store_.Ack(sink_.name(), pos_);
  }
  if (drain_.start_jitter_ns > 0 &&
      !Sleep(static_cast<int64_t>(rng() % static_cast<uint64_t>(drain_.start_jitter_ns + 1)))) {
    return;
  }
  SetState(SinkState::kOnline);
  const drivers::BatchPolicy policy = sink_.policy();
  buffer::ReadLimits limits{policy.max_records, policy.max_bytes};
  // A batch never needs more than one second of the rate budget.
  if (drain_.records_per_s > 0) limits.max_records = std::max<size_t>(1, std::min<size_t>(limits.max_records, static_cast<size_t>(drain_.records_per_s)));
  if (drain_.bytes_per_s > 0) limits.max_bytes = std::max<uint64_t>(1, std::min<uint64_t>(limits.max_bytes, static_cast<uint64_t>(drain_.bytes_per_s)));
  TokenBucket records_budget(drain_.records_per_s), bytes_budget(drain_.bytes_per_s);
  uint64_t live_start = 0;  // live-first: records after this go ahead of the backlog
  uint64_t live_pos = 0;    // ... and were delivered up to here
  int64_t next_replay_check = 0;
  std::vector<StoredRecord> batch;
  while (Sleep(0)) {
    if (SystemClock().MonoNs() >= next_replay_check) {
      next_replay_check = SystemClock().MonoNs() + kReplayCheckNs;
      LoadMoves();
      if (DeliverReplay(backoff)) continue;
    }
    if (!store_.WaitForRecords(pos_, kPollNs)) continue;
    if (drain_.live_first && live_start == 0 && store_.LastSeq() - pos_ > limits.max_records) {
      live_start = live_pos = store_.LastSeq();
      spdlog::info("sink {}: backlog of {} records; sending newer records first", sink_.name(), live_start - pos_);
    }
    const bool live = live_start != 0 && store_.LastSeq() > live_pos;
    const uint64_t from = live ? live_pos : pos_;
    const uint64_t upto = live_start != 0 && !live ? live_start : UINT64_MAX;
    // Linger: let a batch fill up to max_records, at most `linger` after its first record.
    const int64_t deadline = SystemClock().MonoNs() + policy.linger_ns;
    while (true) {
      const int64_t left = deadline - SystemClock().MonoNs();
      if (store_.LastSeq() - from >= limits.max_records || left <= 0) break;
      // Wakes when the batch is full by count, or at the deadline (checking Stop() meanwhile).
      store_.WaitForRecords(from + limits.max_records - 1, std::min(left, kPollNs));
      if (!Sleep(0)) return;
    }
    const uint64_t last_before_read = std::min(store_.LastSeq(), upto);
    if (Status st = store_.ReadAfter(from, limits, &batch); !st.ok()) {
      spdlog::error("sink {}: reading the buffer: {}", sink_.name(), st.ToString());
      if (!Sleep(backoff())) return;
      continue;
    }
    while (!batch.empty() && batch.back().seq > upto) batch.pop_back();
    for (auto& r : batch) rebaser_.Rebase(&r.record);
    uint64_t through = last_before_read;  // when empty: all up to here was dropped (cap, TTL)
    // Records the route does not select (or the sink's processors drop) are passed
    // over: the cursor moves past them with the sent ones around them.
    uint64_t read_through = batch.empty() ? 0 : batch.back().seq;
    bool dead_letter_failed = false;
    if (!batch.empty()) {
      read_through = Select(batch, read_through, live ? live_counted_through_ : counted_through_, &dead_letter_failed);
      if (batch.empty()) through = read_through;
    }
    if (tap_ != nullptr && tap_->Active()) {
      for (const auto& r : batch) tap_->Offer(TapPoint::kSink, sink_.name(), r.record, r.seq);
    }
    std::optional<int64_t> retry_after;
    if (!batch.empty()) {
      const uint64_t last_selected = batch.back().seq;
      uint64_t bytes = 0;
      for (const auto& r : batch) bytes += r.record.payload.size();
      const int64_t wait = std::max(records_budget.Take(static_cast<double>(batch.size())),
                                    bytes_budget.Take(static_cast<double>(bytes)));
      if (wait > 0 && !Sleep(wait)) return;
      const Outcome outcome = Deliver(batch);
      through = outcome.through >= last_selected ? std::max(outcome.through, read_through) : outcome.through;
      retry_after = outcome.retry_after;
    }
    if (dead_letter_failed && !retry_after) retry_after = 0;  // the store refuses writes: back off, do not spin
    if (live) {
      live_pos = std::max(live_pos, through);
    } else if (through > pos_) {
      pos_ = through;
      if (live_start != 0 && pos_ >= live_start) {
        spdlog::info("sink {}: backlog drained", sink_.name());
        pos_ = std::max(pos_, live_pos);
        live_start = live_pos = 0;
        counted_through_ = std::max(counted_through_, live_counted_through_);
        live_counted_through_ = 0;
      }
      if (Status st = store_.Ack(sink_.name(), pos_); !st.ok()) {
        spdlog::error("sink {}: ack {}: {}", sink_.name(), pos_, st.ToString());
      }
      std::lock_guard<std::mutex> l(mu_);
      stats_.acked_seq = pos_;
    }
    if (retry_after) {
      if (!Sleep(*retry_after > 0 ? *retry_after : backoff())) return;
    } else if (!batch.empty()) {
      attempt_ = 0;
    }
  }
}

uint64_t Forwarder::Select(std::vector<StoredRecord>& batch, uint64_t read_through, uint64_t& counted_through,
                           bool* dead_letter_failed) {
  originals_.clear();
  if (route_.SelectsAll() && processors_.empty()) return read_through;
  uint64_t skipped = 0, dropped = 0;
  size_t kept = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    StoredRecord& r = batch[i];
    // Counted once per record, however often a failing destination makes it be read.
    const bool first = r.seq > counted_through;
    counted_through = std::max(counted_through, r.seq);
    if (!route_.Selects(r.record)) {
      skipped += first;
      continue;
    }
    if (!processors_.empty()) {
      originals_.insert_or_assign(r.seq, r.record);  // what a dead letter keeps (DeadLetter)
      auto keep = first ? processors_.Run(r.record, SystemClock().MonoNs())
                        : processors_.Rerun(r.record, SystemClock().MonoNs());
      if (!keep.ok()) {
        // Dead-lettered the first time; a batch read again after a failed delivery
        // passes over it.
        if (first && !DeadLetter(r, keep.status().message())) {
          // Not accounted for: the batch ends before it and the cursor stops short of it.
          counted_through = r.seq - 1;
          batch.resize(kept);
          read_through = r.seq - 1;
          *dead_letter_failed = true;
          break;
        }
        continue;
      }
      if (!*keep) {
        dropped += first;
        continue;
      }
    }
    if (kept != i) batch[kept] = std::move(r);
    ++kept;
  }
  if (batch.size() > kept) batch.resize(kept);
  std::lock_guard<std::mutex> l(mu_);
  stats_.skipped_records += skipped;
  stats_.dropped_records += dropped;
  if (!processors_.empty()) stats_.processors = processors_.Stats();
  return read_through;
}

bool Forwarder::WouldSend(StoredRecord& r) {
  if (!route_.Selects(r.record)) return false;
  if (processors_.empty()) return true;
  auto keep = processors_.Rerun(r.record, SystemClock().MonoNs());
  return keep.ok() && *keep;
}

bool Forwarder::DeliverReplay(const std::function<int64_t()>& backoff) {
  auto items = store_.PeekReplay(sink_.name(), sink_.policy().max_records);
  if (!items.ok() || items->empty()) return false;
  std::sort(items->begin(), items->end(),
            [](const buffer::ReplayItem& a, const buffer::ReplayItem& b) { return a.record.seq < b.record.seq; });
  std::vector<StoredRecord> batch;
  std::vector<uint64_t> done;
  originals_.clear();
  for (const auto& it : *items) {
    StoredRecord r = it.record;
    rebaser_.Rebase(&r.record);
    if (!processors_.empty()) originals_.insert_or_assign(r.seq, r.record);
    // An operator's replay goes to this sink whatever its route, but in the sink's shape.
    auto keep = processors_.empty() ? Result<bool>(true) : processors_.Rerun(r.record, SystemClock().MonoNs());
    if (!keep.ok() && DeadLetter(r, keep.status().message())) {
      done.push_back(it.id);
    } else if (keep.ok() && !*keep) {
      done.push_back(it.id);
    } else if (keep.ok()) {
      batch.push_back(std::move(r));
    }
  }
  std::set<uint64_t> sent;
  for (const auto& r : batch) sent.insert(r.seq);
  const Outcome outcome = batch.empty() ? Outcome{} : Deliver(batch);
  for (const auto& it : *items) {
    if (it.record.seq <= outcome.through && sent.count(it.record.seq)) done.push_back(it.id);
  }
  if (Status st = store_.FinishReplay(done); !st.ok()) {
    spdlog::error("sink {}: replay bookkeeping: {}", sink_.name(), st.ToString());
  }
  spdlog::info("sink {}: replayed {} of {} dead letters", sink_.name(), done.size(), items->size());
  if (outcome.retry_after) Sleep(*outcome.retry_after > 0 ? *outcome.retry_after : backoff());
  return true;
}

void Forwarder::LoadMoves() {
  auto items = store_.PeekReplay(std::string(buffer::kMoveRequestPrefix) + sink_.name(), 1000);
  if (!items.ok()) return;
  std::vector<uint64_t> stale;
  for (const auto& it : *items) {
    // A move of a record this sink already delivered (or a malformed request) has nothing to do.
    if (it.record.seq <= pos_) {
      stale.push_back(it.id);
    } else {
      moves_.emplace(it.record.seq, it.id);
    }
  }
  // Records passed meanwhile (dropped by the cap or TTL) no longer need moving.
  for (auto it = moves_.begin(); it != moves_.end() && it->first <= pos_;) {
    stale.push_back(it->second);
    it = moves_.erase(it);
  }
  if (!stale.empty()) (void)store_.FinishReplay(stale);
}

const Record& Forwarder::AsStored(const StoredRecord& r) const {
  const auto original = originals_.find(r.seq);
  return original != originals_.end() ? original->second : r.record;
}

bool Forwarder::DeadLetter(const StoredRecord& r, const std::string& reason) {
  if (Status st = store_.AddDeadLetter(AsStored(r), stage_, reason, r.seq); !st.ok()) {
    spdlog::error("sink {}: cannot dead-letter seq {}: {}", sink_.name(), r.seq, st.ToString());
    return false;
  }
  std::lock_guard<std::mutex> l(mu_);
  ++stats_.dead_lettered;
  return true;
}

drivers::Delivery Forwarder::CallSink(std::span<const StoredRecord> batch) {
  std::string what;
  const int64_t t0 = SystemClock().MonoNs();
  auto timed = [&](drivers::Delivery d) {
    std::lock_guard<std::mutex> l(mu_);
    stats_.request_duration.ObserveNs(SystemClock().MonoNs() - t0);
    stats_.wire_bytes += d.wire_bytes;  // every call, probes and bisection steps included
    return d;
  };
  try {
    return timed(sink_.Deliver(batch));
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  // A bug in a sink or a parser it uses: keep the agent alive, count it, retry later.
  spdlog::error("sink {}: delivery threw: {}; retrying with backoff", sink_.name(), what);
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.sink_exceptions;
  }
  drivers::Delivery d;
  d.error = Status::Unavailable("sink threw: " + what);
  return timed(std::move(d));
}

Forwarder::Outcome Forwarder::Deliver(std::vector<StoredRecord>& batch) {
  const drivers::DestinationLimits lim = sink_.limits();
  // Leading records that must not be sent (moved by hand, too large) are dead-lettered
  // here; the batch sent stops before the next such record, so the cursor never passes
  // a record that was neither delivered nor dead-lettered.
  uint64_t skipped_through = 0;
  size_t begin = 0, end = 0;
  uint64_t batch_bytes = 0;
  bool store_failed = false;
  std::string line;
  auto size_of = [&](const StoredRecord& r) -> uint64_t {
    if (lim.max_record_bytes == 0 && lim.max_batch_bytes == 0) return 0;
    if (lim.payload_only) return r.record.payload.size();
    // Most records are far below every limit: their bound decides without encoding them
    // (a batch may then be cut a little early, never too late).
    const uint64_t bound = drivers::EnvelopeSizeBound(lim.gateway_id, r);
    const bool record_fits = lim.max_record_bytes == 0 || bound <= lim.max_record_bytes;
    const bool batch_fits = lim.max_batch_bytes == 0 || batch_bytes + bound <= lim.max_batch_bytes;
    if (record_fits && batch_fits) return bound;
    line.clear();
    drivers::AppendEnvelope(lim.gateway_id, r, &line);
    return line.size() - 1;
  };
  for (; end < batch.size(); ++end) {
    const StoredRecord& r = batch[end];
    enum class Why { kNone, kMoved, kOversize } why = Why::kNone;
    std::string reason;
    uint64_t size = 0;
    const auto move = moves_.find(r.seq);
    if (move != moves_.end()) {
      why = Why::kMoved;
      reason = "moved to the dead letter queue by hand (edgeferry dlq move)";
    } else if (size = size_of(r); lim.max_record_bytes > 0 && size > lim.max_record_bytes) {
      why = Why::kOversize;
      reason = fmt::format("record of {} bytes ({}) exceeds the sink's max_record_bytes of {}", size,
                           lim.payload_only ? "payload" : "envelope", lim.max_record_bytes);
    }
    if (why != Why::kNone) {
      if (end > begin) break;  // send what comes before it first
      if (LogRepeats().Allow(repeat_key_)) spdlog::warn("sink {}: seq {} dead-lettered: {}", sink_.name(), r.seq, reason);
      if (!DeadLetter(r, reason)) {
        store_failed = true;
        break;
      }
      if (why == Why::kMoved) {
        (void)store_.FinishReplay({move->second});
        moves_.erase(move);
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        ++(why == Why::kMoved ? stats_.moved_records : stats_.oversize_records);
      }
      skipped_through = r.seq;
      begin = end + 1;
      continue;
    }
    if (lim.max_batch_bytes > 0 && end > begin && batch_bytes + size > lim.max_batch_bytes) break;
    batch_bytes += size;
  }
  if (end == begin) {
    // Nothing to send; if the store could not take a dead letter, back off before trying again.
    return Outcome{skipped_through, store_failed ? std::optional<int64_t>(0) : std::nullopt};
  }
  Outcome out = DeliverBisecting(std::span<const StoredRecord>(batch).subspan(begin, end - begin));
  out.through = std::max(out.through, skipped_through);
  return out;
}

bool Forwarder::LinkWorksAfter(uint64_t seq) {
  // The probe is the next record this sink would send (its route and processors
  // applied): never one the route keeps from this destination. It is delivered again in
  // its turn (at-least-once; consumers deduplicate by seq). A sparse route may need a
  // long look: up to kProbeScanRecords past `seq`.
  constexpr uint64_t kProbeScanRecords = 100'000;
  std::vector<StoredRecord> next;
  for (uint64_t from = seq; from - seq < kProbeScanRecords;) {
    next.clear();
    if (!store_.ReadAfter(from, buffer::ReadLimits{1000, 16u << 20}, &next).ok() || next.empty()) return false;
    for (auto& r : next) {
      if (!WouldSend(r)) continue;
      const drivers::Delivery d = CallSink(std::span<const StoredRecord>(&r, 1));
      return d.error.ok() && d.acked_through >= r.seq;
    }
    from = next.back().seq;
    if (!Sleep(0)) return false;
  }
  return false;  // none yet: retried as a dead link until one arrives
}

Forwarder::Outcome Forwarder::DeliverBisecting(std::span<const StoredRecord> batch) {
  drivers::Delivery d = CallSink(batch);
  if (!d.refused || d.error.ok() || !Sleep(0)) return Account(batch, d);
  // Count what the destination took before it refused; bisect the rest.
  const uint64_t acked = std::min(d.acked_through, batch.back().seq);
  size_t k = 0;
  while (k < batch.size() && batch[k].seq <= acked) ++k;
  Outcome head{0, std::nullopt};
  if (k > 0) {
    drivers::Delivery ok;
    ok.acked_through = acked;
    for (auto& rej : d.rejected) {
      if (rej.seq <= acked) ok.rejected.push_back(std::move(rej));
    }
    head = Account(batch.first(k), ok);
  }
  const auto rest = batch.subspan(k);
  if (rest.size() > 1) {
    spdlog::warn("sink {}: destination refused seq {}-{} ({}); splitting the batch", sink_.name(),
                 rest.front().seq, rest.back().seq, d.error.ToString());
    const size_t half = rest.size() / 2;
    Outcome a = DeliverBisecting(rest.first(half));
    if (a.retry_after || a.through < rest[half - 1].seq) {
      a.through = std::max(a.through, head.through);
      return a;
    }
    Outcome b = DeliverBisecting(rest.subspan(half));
    b.through = std::max(b.through, a.through);
    return b;
  }
  const StoredRecord& r = rest.front();
  if (d.error.IsPermanent() || LinkWorksAfter(r.seq)) {
    const std::string reason = "refused by the destination: " + RedactUrlsIn(d.error.message());
    if (LogRepeats().Allow(repeat_key_)) spdlog::warn("sink {}: seq {} dead-lettered: {}", sink_.name(), r.seq, reason);
    if (DeadLetter(r, reason)) {
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.poison_records;
      stats_.consecutive_failures = 0;
      return Outcome{r.seq, std::nullopt};
    }
  }
  // Not proven to be this record: a dead link. Retry with backoff, never dead-letter.
  d.refused = false;
  Outcome tail = Account(rest, d);
  tail.through = std::max(tail.through, head.through);
  return tail;
}

Forwarder::Outcome Forwarder::Account(std::span<const StoredRecord> batch, drivers::Delivery& d) {
  // Errors quote endpoints: printed (log, /status, dead letter reasons) only redacted.
  // A destination's answer is quoted in these: printable and redacted before any use.
  const std::string error = EscapeControlChars(RedactUrlsIn(d.error.ToString()));
  for (auto& rej : d.rejected) rej.reason = EscapeControlChars(RedactUrlsIn(rej.reason));
  uint64_t through = std::min(d.acked_through, batch.back().seq);
  if (d.error.IsPermanent()) {
    // The destination refuses the whole batch for good: dead-letter it and move on.
    for (const auto& r : batch) {
      if (r.seq > through) d.rejected.push_back({r.seq, EscapeControlChars(RedactUrlsIn(d.error.message()))});
    }
    through = batch.back().seq;
  }
  uint64_t dead = 0;
  for (const auto& rej : d.rejected) {
    auto it = std::lower_bound(batch.begin(), batch.end(), rej.seq,
                               [](const StoredRecord& r, uint64_t s) { return r.seq < s; });
    if (it == batch.end() || it->seq != rej.seq) continue;
    if (Status st = store_.AddDeadLetter(AsStored(*it), stage_, rej.reason, it->seq); !st.ok()) {
      spdlog::error("sink {}: cannot dead-letter seq {}: {}", sink_.name(), rej.seq, st.ToString());
      continue;
    }
    ++dead;
  }
  uint64_t records = 0, bytes = 0;
  for (const auto& r : batch) {
    if (r.seq > through) break;
    ++records;
    bytes += r.record.payload.size();
  }
  const int64_t now = SystemClock().NowNs();
  std::lock_guard<std::mutex> l(mu_);
  if (!d.error.IsPermanent() && records > dead) {
    stats_.last_success_ns = now;
    // Dead-lettered ones among them are not delivered; the rejections are few.
    for (const auto& r : batch) {
      if (r.seq > through) break;
      const bool rejected = std::any_of(d.rejected.begin(), d.rejected.end(),
                                        [&](const drivers::Rejection& rej) { return rej.seq == r.seq; });
      // A receive time from an earlier boot's unsynchronized clock is on another time line than now.
      if (!rejected && rebaser_.OnThisBootsTimeLine(r.record)) stats_.latency.ObserveNs(now - r.record.ts_ns);
    }
  }
  stats_.delivered_records += records - std::min(records, dead);
  stats_.payload_bytes += bytes;
  stats_.dead_lettered += dead;
  if (records > 0) ++stats_.delivered_batches;
  if (!d.error.ok() && !d.error.IsPermanent()) {
    ++stats_.retries;
    ++stats_.consecutive_failures;
    if (stats_.state == SinkState::kOnline) {
      spdlog::warn("sink {}: delivery failed, backing off: {}", sink_.name(), error);
    }
    if (stats_.consecutive_failures == kFailingAfter) {
      spdlog::error("sink {}: {} deliveries in a row failed; still retrying: {}", sink_.name(), kFailingAfter,
                    error);
    }
    stats_.state = stats_.consecutive_failures >= kFailingAfter ? SinkState::kFailing : SinkState::kBackingOff;
    stats_.last_error = error;
    return Outcome{through, d.retry_after_ns};
  }
  if (stats_.state != SinkState::kOnline) spdlog::info("sink {}: delivering again", sink_.name());
  stats_.state = SinkState::kOnline;
  stats_.consecutive_failures = 0;
  return Outcome{through, std::nullopt};
}

}  // namespace edgeferry::agent
