#include "edgeferry/agent/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/outbox/outbox_sink.h"
#include "edgeferry/drivers/serial/serial_source.h"
#include "edgeferry/clock.h"
#include "edgeferry/files.h"
#include "edgeferry/timebase.h"
#include "edgeferry/redact.h"
#include "edgeferry/repeat_limiter.h"

namespace edgeferry::agent {

// The Ingest a source writes into: the buffer, with the source's name as the
// dead-letter stage.
class Agent::StoreIngest final : public drivers::Ingest {
 public:
  StoreIngest(buffer::Store& store, const RouteTable& routes, TapHub& tap, const std::string& source,
              int64_t health_window_ns, const std::vector<pipeline::ProcessorConfig>& processors)
      : store_(store),
        routes_(routes),
        tap_(tap),
        pipeline_(processors),
        has_processors_(!processors.empty()),
        name_(source),
        stage_("source:" + source),
        repeat_key_("source " + source + ": dead-lettered records"),
        window_(health_window_ns) {}
  ~StoreIngest() override {
    if (!held_emitted_.empty()) {
      spdlog::error("source {}: {} aggregate windows the buffer had no room for are lost (stopped or reloaded)",
                    name_, held_emitted_.size());
    }
  }
  Result<uint64_t> Append(Record record) override {
    if (tap_.Active()) tap_.Offer(TapPoint::kSource, name_, record);
    if (has_processors_) {
      Result<bool> keep = false;
      {
        MutexLock l(pipeline_mu_);
        keep = pipeline_.Run(record, SystemClock().MonoNs());
      }
      if (!keep.ok()) {
        DeadLetter(record, keep.status().message());
        return kDeadLettered;
      }
      if (!*keep) {
        window_.Add(SystemClock().MonoNs(), /*dead_lettered=*/false);
        return kDropped;
      }
    }
    return Store(std::move(record));
  }
  // What the processors emitted on their own (an aggregate's closed windows), stored
  // like the source's records. The agent's main loop calls it about once a second, so
  // it never waits on the buffer: what the buffer cannot take now (at its cap under
  // backpressure) is kept, up to kMaxHeldEmitted, for the next call.
  void Expire() EXCLUDES(pipeline_mu_) {
    if (!has_processors_) return;
    pipeline::Pipeline::Emitted emitted;
    {
      MutexLock l(pipeline_mu_);
      emitted = pipeline_.Expire(SystemClock().MonoNs());
    }
    for (const auto& [record, why] : emitted.failed) DeadLetter(record, why);
    for (auto& record : emitted.store) held_emitted_.push_back(std::move(record));
    while (!held_emitted_.empty()) {
      auto seq = Store(held_emitted_.front(), /*wait=*/false);
      if (!seq.ok() && seq.status().IsUnavailable()) break;  // the buffer is full: next time
      if (!seq.ok()) {
        spdlog::error("source {}: an aggregate window was not stored: {}", name_, seq.status().ToString());
      }
      held_emitted_.pop_front();
    }
    if (held_emitted_.size() > kMaxHeldEmitted) {
      const size_t n = held_emitted_.size() - kMaxHeldEmitted;
      held_emitted_.erase(held_emitted_.begin(), held_emitted_.begin() + static_cast<std::ptrdiff_t>(n));
      spdlog::error("source {}: {} aggregate windows dropped: the buffer has had no room for them", name_, n);
    }
  }
  void DeadLetter(const Record& record, std::string_view reason) override {
    const std::string printable = EscapeControlChars(reason);  // may quote the payload
    reason = printable;
    window_.Add(SystemClock().MonoNs(), /*dead_lettered=*/true);
    {
      MutexLock l(mu_);
      last_dead_ns_ = SystemClock().NowNs();
      last_dead_reason_ = std::string(reason);
    }
    if (LogRepeats().Allow(repeat_key_)) {
      spdlog::warn("source {}: dead-lettered a record on {}: {}", name_, record.channel, reason);
    }
    if (Status st = store_.AddDeadLetter(record, stage_, reason); !st.ok()) {
      spdlog::error("source {}: dead letter queue write failed: {}", name_, st.ToString());
    }
  }

  uint64_t unrouted() const { return unrouted_.load(std::memory_order_relaxed); }
  std::vector<pipeline::ProcessorStats> ProcessorStats() const EXCLUDES(pipeline_mu_) {
    MutexLock l(pipeline_mu_);
    return pipeline_.Stats();
  }
  // Processor state (deadband's last values) across a restart: a small JSON file,
  // written whole and renamed into place. Call with the source stopped.
  void SaveState(const std::string& path) const EXCLUDES(pipeline_mu_) {
    nlohmann::json state;
    {
      MutexLock l(pipeline_mu_);
      state = pipeline_.SaveState(SystemClock().MonoNs());
    }
    if (state.is_null()) return;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    // Channel names are bytes: what is not UTF-8 is kept as U+FFFD, never an exception.
    const std::string text = state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (Status st = WriteFileAtomically(path, text); !st.ok()) {
      spdlog::warn("source {}: processor state not saved: {}", name_, st.ToString());
    }
  }
  void LoadState(const std::string& path) EXCLUDES(pipeline_mu_) {
    std::ifstream in(path);
    if (!in) return;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > (64u << 20)) return;  // ours, but bounded like any file read
    const auto state = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    std::vector<std::string> untaken;
    {
      MutexLock l(pipeline_mu_);
      untaken = pipeline_.LoadState(state, SystemClock().MonoNs());
    }
    if (!untaken.empty()) {
      // An aggregate's open windows among them held records already absorbed: say so.
      spdlog::warn("source {}: saved processor state for {} dropped: the processors changed since it was saved",
                   name_, fmt::join(untaken, ", "));
    }
    // Taken: a crash before the next stop must not load (and emit) the same windows again.
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  // Inputs and dead letters in the [health] window, for the dead-letter rule.
  SourceWindowCounts Window() const { return window_.Sum(SystemClock().MonoNs()); }
  // The source's stats with its newest dead letter as last_error when that is newer than
  // the source's own last error.
  drivers::SourceStats WithLastDeadLetter(drivers::SourceStats s) const EXCLUDES(mu_) {
    MutexLock l(mu_);
    if (last_dead_ns_ > s.last_error_ns) {
      s.last_error = "dead-lettered: " + last_dead_reason_;
      s.last_error_ns = last_dead_ns_;
    }
    return s;
  }

 private:
  Result<uint64_t> Store(Record record, bool wait = true) {
    const bool unrouted = !routes_.AnySelects(record);
    std::string channel = unrouted ? record.channel : std::string();
    std::optional<TapEntry> tapped;  // shown once stored, with its seq
    if (tap_.Active()) tapped = TapHub::Entry(TapPoint::kStored, name_, record);
    auto seq = wait ? store_.Append(std::move(record)) : store_.AppendNoWait(std::move(record));
    if (!wait && !seq.ok() && seq.status().IsUnavailable()) return seq;  // not taken: counted when it is
    // Stored all the same (a route added later, a replay), but an operator must see it.
    if (unrouted) {
      unrouted_.fetch_add(1, std::memory_order_relaxed);
      if (LogRepeats().Allow(unrouted_key_)) {
        spdlog::warn("source {}: no sink's route selects records on channel \"{}\"", name_, channel);
      }
    }
    window_.Add(SystemClock().MonoNs(), /*dead_lettered=*/false);
    if (tapped && seq.ok()) {
      tapped->seq = *seq;
      tap_.Offer(std::move(*tapped));
    }
    return seq;
  }

  buffer::Store& store_;
  const RouteTable& routes_;
  TapHub& tap_;
  mutable Mutex pipeline_mu_;  // a source may call Append from more than one thread
  pipeline::Pipeline pipeline_ GUARDED_BY(pipeline_mu_);
  const bool has_processors_;  // fixed at construction: no lock to skip an empty pipeline
  std::atomic<uint64_t> unrouted_{0};
  static constexpr size_t kMaxHeldEmitted = 100'000;
  std::deque<Record> held_emitted_;  // by Expire, on the main loop only
  const std::string name_;
  const std::string stage_;       // "source:<name>", as the dead letter queue records it
  const std::string repeat_key_;  // the log lines it limits
  const std::string unrouted_key_ = "source " + name_ + ": records no sink selects";
  SlidingWindowCounter window_;
  mutable Mutex mu_;
  int64_t last_dead_ns_ GUARDED_BY(mu_) = 0;  // wall clock of the newest dead letter
  std::string last_dead_reason_ GUARDED_BY(mu_);
};

namespace {
// "... and 8,142 more like this in the last 10 s", for what LogRepeats() held back.
void LogHeldBack(const std::vector<RepeatLimiter::Summary>& held) {
  for (const auto& h : held) {
    // Buffer drops are not dead letters: their totals are in status and /metrics.
    const std::string_view where = h.key.starts_with("buffer:") ? "edgeferry status shows the totals"
                                                                : "edgeferry dlq list shows them";
    spdlog::warn("{}: {} more like this in the last {} s not logged ({})", h.key, h.held_back,
                 h.window_ns / 1'000'000'000, where);
  }
}
}  // namespace

namespace {
// The source or sink configured under `name`, or null.
template <typename T>
const T* FindByName(const std::vector<T>& configs, const std::string& name) {
  for (const auto& c : configs) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::vector<Route> RoutesOf(const std::vector<SinkConfig>& sinks) {
  std::vector<Route> routes;
  for (const auto& s : sinks) routes.push_back(s.route);
  return routes;
}
}  // namespace

Agent::Agent(AgentConfig config) : config_(std::move(config)) {}

Agent::~Agent() { (void)Stop(); }

Status Agent::Start() {
  TrustSystemClock(config_.clock_trusted);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(config_.buffer.path).parent_path(), ec);
  if (ec) return Status::IOError(fmt::format("create {}: {}", config_.buffer.path, ec.message()));
  auto store = buffer::Store::Open(config_.buffer);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  started_ = true;
  const auto stats = store_->Stats();
  spdlog::info("buffer: {} opened: {} records stored, next seq {}{}", config_.buffer.path, stats.records,
               stats.next_seq, stats.quarantined ? fmt::format(", {} quarantined earlier", stats.quarantined) : "");

  if (!SystemClock().Synchronized()) {
    spdlog::warn("the wall clock is not synchronized (adjtimex): records are stamped ts_source \"unsynced\" with "
                 "the boot id, and re-based when it is ([gateway] clock = \"trusted\" if the host keeps time)");
  }
  // A sink removed from the config must not hold back deletion forever.
  for (const auto& name : store_->CursorNames()) {
    if (!FindByName(config_.sinks, name)) ScheduleCursorDrop(name);
  }
  for (const auto& sc : config_.sinks) {
    if (Status st = StartSink(sc); !st.ok()) return st;
  }
  routes_.Set(RoutesOf(config_.sinks));
  for (const auto& sc : config_.sources) {
    if (Status st = StartSource(sc); !st.ok()) return st;
  }
  if (config_.sinks.empty()) spdlog::warn("no sinks configured: records are only buffered");
  return Status::Ok();
}

std::string Agent::StatePath(const std::string& source) const {
  return config_.data_dir + "/state/processors-" + source + ".json";
}

void Agent::ScheduleCursorDrop(const std::string& sink) {
  if (config_.removed_sink_grace_ns <= 0) {
    spdlog::warn("buffer: dropping the cursor of sink '{}', which is no longer configured", sink);
    (void)store_->DropCursor(sink);
    return;
  }
  spdlog::warn("buffer: sink '{}' is no longer configured; its cursor is kept {} s in case it returns", sink,
               config_.removed_sink_grace_ns / 1'000'000'000);
  cursor_drops_[sink] = SystemClock().MonoNs() + config_.removed_sink_grace_ns;
}

Status Agent::StartSink(const SinkConfig& sc) {
  cursor_drops_.erase(sc.name);  // back within its grace period: the cursor is still there
  SinkSlot slot;
  slot.fingerprint = sc.fingerprint;
  slot.sink = MakeSink(sc.settings);
  slot.forwarder = std::make_unique<Forwarder>(*store_, *slot.sink, sc.retry, sc.drain, sc.route, sc.processors, &tap_);
  Status st = slot.forwarder->Start();
  std::lock_guard<std::mutex> l(mu_);
  sinks_[sc.name] = std::move(slot);
  return st;
}

Status Agent::StartSource(const SourceConfig& sc) {
  SourceSlot slot;
  slot.fingerprint = sc.fingerprint;
  slot.ingest = std::make_unique<StoreIngest>(*store_, routes_, tap_, sc.name, config_.health.window_ns, sc.processors);
  slot.ingest->LoadState(StatePath(sc.name));
  slot.source = MakeSource(sc.settings, *slot.ingest);
  Status st = slot.source->Start();
  std::lock_guard<std::mutex> l(mu_);
  sources_[sc.name] = std::move(slot);
  return st;
}

bool Agent::CanApplyInPlace(const AgentConfig& next) const {
  return started_ && next.buffer_fingerprint == config_.buffer_fingerprint && next.gateway_id == config_.gateway_id &&
         next.data_dir == config_.data_dir;
}

Status Agent::Apply(const AgentConfig& next) {
  if (!CanApplyInPlace(next)) return Status::InvalidArgument("buffer or gateway settings changed: restart needed");
  // Sources first, so nothing is appended for a sink that is about to change.
  std::vector<std::string> gone;
  for (auto& [name, slot] : sources_) {
    const SourceConfig* n = FindByName(next.sources, name);
    if (!n || n->fingerprint != slot.fingerprint) {
      spdlog::info("apply: source {} {}", name, n ? "changed: restarting it" : "removed");
      slot.source->Stop();
      slot.ingest->SaveState(StatePath(name));
      gone.push_back(name);
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& name : gone) sources_.erase(name);
  }
  gone.clear();
  for (auto& [name, slot] : sinks_) {
    const SinkConfig* n = FindByName(next.sinks, name);
    if (!n || n->fingerprint != slot.fingerprint) {
      spdlog::info("apply: sink {} {}", name, n ? "changed: restarting it at its cursor" : "removed");
      slot.forwarder->Stop();
      gone.push_back(name);
      if (!n) ScheduleCursorDrop(name);
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& name : gone) sinks_.erase(name);
  }
  config_.removed_sink_grace_ns = next.removed_sink_grace_ns;
  config_.health = next.health;  // sources started below count over the new window
  Status result = Status::Ok();
  for (const auto& sc : next.sinks) {
    if (sinks_.count(sc.name)) continue;
    spdlog::info("apply: starting sink {}", sc.name);
    if (Status st = StartSink(sc); !st.ok() && result.ok()) result = st;
  }
  routes_.Set(RoutesOf(next.sinks));
  for (const auto& sc : next.sources) {
    if (sources_.count(sc.name)) continue;
    spdlog::info("apply: starting source {}", sc.name);
    if (Status st = StartSource(sc); !st.ok() && result.ok()) result = st;
  }
  config_ = next;
  return result;
}

Status Agent::Stop() {
  if (!started_) return Status::Ok();
  started_ = false;
  for (auto& [name, slot] : sources_) {
    slot.source->Stop();
    slot.ingest->SaveState(StatePath(name));
  }
  Status flushed = store_->Flush();
  if (!flushed.ok()) spdlog::error("buffer: final commit failed: {}", flushed.ToString());
  for (auto& [name, slot] : sinks_) slot.forwarder->Stop();
  LogHeldBack(LogRepeats().TakeAll());
  Status closed = store_->Close();
  return flushed.ok() ? closed : flushed;
}

void Agent::Tick() {
  LogHeldBack(LogRepeats().TakeEnded());
  if (!store_) return;
  for (auto& [name, slot] : sources_) slot.ingest->Expire();
  tap_.Expire(SystemClock().MonoNs());
  if (auto n = store_->AppendReplayedToAll(1000); n.ok() && *n > 0) {
    spdlog::info("buffer: {} replayed dead letters appended again for every sink", *n);
  }
  const int64_t now = SystemClock().MonoNs();
  for (auto it = cursor_drops_.begin(); it != cursor_drops_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    spdlog::warn("buffer: dropping the cursor of sink '{}': removed and its grace period is over", it->first);
    (void)store_->DropCursor(it->first);
    it = cursor_drops_.erase(it);
  }
}

AgentStats Agent::Stats() {
  AgentStats s;
  if (!store_) return s;
  s.config_version = config_.version;
  s.buffer = store_->Stats();
  std::lock_guard<std::mutex> l(mu_);
  const int64_t mono = SystemClock().MonoNs();
  cover_.Sample(mono, s.buffer.appended_payload_bytes);
  drop_samples_.emplace_back(mono, s.buffer.dropped);
  while (drop_samples_.size() > 2 && drop_samples_[1].first <= mono - config_.health.window_ns) drop_samples_.pop_front();
  for (const auto& [reason, n] : s.buffer.dropped) {
    const auto it = drop_samples_.front().second.find(reason);
    const uint64_t before = it == drop_samples_.front().second.end() ? 0 : it->second;
    if (n > before) s.dropped_in_window[reason] = n - before;
  }
  s.ingest_payload_bytes_per_second = cover_.PayloadBytesPerSecond();
  s.offline_cover_seconds = cover_.CoverSeconds(
      s.buffer.room_bytes, OfflineCover::DiskBytesPerPayloadByte(s.buffer.compression_ratio, s.buffer.used_bytes,
                                                                 s.buffer.compressed_bytes));
  for (const auto& [name, slot] : sources_) {
    s.sources[name] = slot.ingest->WithLastDeadLetter(slot.source->Stats());
    s.sources[name].unrouted = slot.ingest->unrouted();
    s.processors[name] = slot.ingest->ProcessorStats();
    s.source_windows[name] = slot.ingest->Window();
  }
  for (const auto& [name, slot] : sinks_) s.sinks[name] = slot.forwarder->Stats();
  return s;
}

}  // namespace edgeferry::agent
