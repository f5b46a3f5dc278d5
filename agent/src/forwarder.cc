#include "edgeferry/agent/forwarder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "edgeferry/clock.h"

namespace edgeferry::agent {

namespace {
constexpr int64_t kPollNs = 200'000'000;  // how often a waiting loop checks for Stop()
}

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

Forwarder::Forwarder(buffer::Store& store, drivers::Sink& sink, RetryPolicy retry)
    : store_(store), sink_(sink), retry_(retry), stage_("sink:" + sink.name()) {}

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
    Status st = sink_.Start();
    if (st.ok()) break;
    SetState(SinkState::kBackingOff, st.ToString());
    spdlog::warn("sink {}: cannot start: {}", sink_.name(), st.ToString());
    if (!Sleep(backoff())) return;
  }
  attempt_ = 0;
  if (const uint64_t held = sink_.RecoverDeliveredSeq(); held > pos_) {
    spdlog::info("sink {}: destination already holds records up to seq {}; resuming after it",
                 sink_.name(), held);
    pos_ = held;
    (void)store_.Ack(sink_.name(), pos_);
  }
  SetState(SinkState::kOnline);
  const drivers::BatchPolicy policy = sink_.policy();
  const buffer::ReadLimits limits{policy.max_records, policy.max_bytes};
  std::vector<StoredRecord> batch;
  while (Sleep(0)) {
    if (!store_.WaitForRecords(pos_, kPollNs)) continue;
    // Linger: let a batch fill up to max_records, at most `linger` after its first record.
    const int64_t deadline = SystemClock().MonoNs() + policy.linger_ns;
    while (true) {
      const int64_t left = deadline - SystemClock().MonoNs();
      if (store_.LastSeq() - pos_ >= policy.max_records || left <= 0) break;
      // Wakes when the batch is full by count, or at the deadline (checking Stop() meanwhile).
      store_.WaitForRecords(pos_ + policy.max_records - 1, std::min(left, kPollNs));
      if (!Sleep(0)) return;
    }
    const uint64_t last_before_read = store_.LastSeq();
    if (Status st = store_.ReadAfter(pos_, limits, &batch); !st.ok()) {
      spdlog::error("sink {}: reading the buffer: {}", sink_.name(), st.ToString());
      if (!Sleep(backoff())) return;
      continue;
    }
    if (batch.empty()) {
      // Everything after pos_ was dropped (cap, TTL) before we read it.
      pos_ = std::max(pos_, last_before_read);
      (void)store_.Ack(sink_.name(), pos_);
      continue;
    }
    if (auto retry_after = Deliver(batch)) {
      if (!Sleep(*retry_after > 0 ? *retry_after : backoff())) return;
    } else {
      attempt_ = 0;
    }
  }
}

std::optional<int64_t> Forwarder::Deliver(std::vector<StoredRecord>& batch) {
  drivers::Delivery d = sink_.Deliver(batch);
  uint64_t through = std::min(d.acked_through, batch.back().seq);
  if (d.error.IsPermanent()) {
    // The destination refuses the whole batch for good: dead-letter it and move on.
    for (const auto& r : batch) {
      if (r.seq > through) d.rejected.push_back({r.seq, d.error.message()});
    }
    through = batch.back().seq;
  }
  uint64_t dead = 0;
  for (const auto& rej : d.rejected) {
    auto it = std::lower_bound(batch.begin(), batch.end(), rej.seq,
                               [](const StoredRecord& r, uint64_t s) { return r.seq < s; });
    if (it == batch.end() || it->seq != rej.seq) continue;
    if (Status st = store_.AddDeadLetter(it->record, stage_, rej.reason, it->seq); !st.ok()) {
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
  if (through > pos_) {
    pos_ = through;
    if (Status st = store_.Ack(sink_.name(), pos_); !st.ok()) {
      spdlog::error("sink {}: ack {}: {}", sink_.name(), pos_, st.ToString());
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  stats_.acked_seq = pos_;
  stats_.delivered_records += records - std::min(records, dead);
  stats_.payload_bytes += bytes;
  stats_.dead_lettered += dead;
  if (records > 0) ++stats_.delivered_batches;
  if (!d.error.ok() && !d.error.IsPermanent()) {
    ++stats_.retries;
    ++stats_.consecutive_failures;
    if (stats_.state == SinkState::kOnline) {
      spdlog::warn("sink {}: delivery failed, backing off: {}", sink_.name(), d.error.ToString());
    }
    if (stats_.consecutive_failures == kFailingAfter) {
      spdlog::error("sink {}: {} deliveries in a row failed; still retrying: {}", sink_.name(), kFailingAfter,
                    d.error.ToString());
    }
    stats_.state = stats_.consecutive_failures >= kFailingAfter ? SinkState::kFailing : SinkState::kBackingOff;
    stats_.last_error = d.error.ToString();
    return d.retry_after_ns;
  }
  if (stats_.state != SinkState::kOnline) spdlog::info("sink {}: delivering again", sink_.name());
  stats_.state = SinkState::kOnline;
  stats_.consecutive_failures = 0;
  return std::nullopt;
}

}  // namespace edgeferry::agent
