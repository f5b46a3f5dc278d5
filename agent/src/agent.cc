#include "edgeferry/agent/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/outbox/outbox_sink.h"
#include "edgeferry/drivers/serial/serial_source.h"
#include "edgeferry/clock.h"

namespace edgeferry::agent {

// The Ingest a source writes into: the buffer, with the source's name as the
// dead-letter stage.
class Agent::StoreIngest final : public drivers::Ingest {
 public:
  StoreIngest(buffer::Store& store, const std::string& source) : store_(store), stage_("source:" + source) {}
  Result<uint64_t> Append(Record record) override { return store_.Append(std::move(record)); }
  void DeadLetter(const Record& record, std::string_view reason) override {
    spdlog::warn("{}: dead-lettered a record on {}: {}", stage_, record.channel, reason);
    if (Status st = store_.AddDeadLetter(record, stage_, reason); !st.ok()) {
      spdlog::error("{}: dead letter queue write failed: {}", stage_, st.ToString());
    }
  }

 private:
  buffer::Store& store_;
  const std::string stage_;
};

namespace {
// The source or sink configured under `name`, or null.
template <typename T>
const T* FindByName(const std::vector<T>& configs, const std::string& name) {
  for (const auto& c : configs) {
    if (c.name == name) return &c;
  }
  return nullptr;
}
}  // namespace

Agent::Agent(AgentConfig config) : config_(std::move(config)) {}

Agent::~Agent() { (void)Stop(); }

Status Agent::Start() {
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

  // A sink removed from the config must not hold back deletion forever.
  for (const auto& name : store_->CursorNames()) {
    if (!FindByName(config_.sinks, name)) ScheduleCursorDrop(name);
  }
  for (const auto& sc : config_.sinks) {
    if (Status st = StartSink(sc); !st.ok()) return st;
  }
  for (const auto& sc : config_.sources) {
    if (Status st = StartSource(sc); !st.ok()) return st;
  }
  if (config_.sinks.empty()) spdlog::warn("no sinks configured: records are only buffered");
  return Status::Ok();
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
  if (sc.type == "outbox") slot.sink = std::make_unique<drivers::OutboxSink>(sc.outbox);
  if (sc.type == "mqtt") slot.sink = std::make_unique<drivers::MqttUplinkSink>(sc.mqtt);
  if (sc.type == "http") slot.sink = std::make_unique<drivers::http::HttpSink>(sc.http);
  if (sc.type == "kinesis") slot.sink = std::make_unique<drivers::aws::KinesisSink>(sc.kinesis);
  if (sc.type == "s3") slot.sink = std::make_unique<drivers::aws::S3Sink>(sc.s3);
  slot.forwarder = std::make_unique<Forwarder>(*store_, *slot.sink, sc.retry, sc.drain);
  Status st = slot.forwarder->Start();
  std::lock_guard<std::mutex> l(mu_);
  sinks_[sc.name] = std::move(slot);
  return st;
}

Status Agent::StartSource(const SourceConfig& sc) {
  SourceSlot slot;
  slot.fingerprint = sc.fingerprint;
  slot.ingest = std::make_unique<StoreIngest>(*store_, sc.name);
  if (sc.type == "mqtt") slot.source = std::make_unique<drivers::MqttSource>(sc.mqtt, *slot.ingest);
  if (sc.type == "serial") slot.source = std::make_unique<drivers::serial::SerialSource>(sc.serial, *slot.ingest);
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
  Status result = Status::Ok();
  for (const auto& sc : next.sinks) {
    if (sinks_.count(sc.name)) continue;
    spdlog::info("apply: starting sink {}", sc.name);
    if (Status st = StartSink(sc); !st.ok() && result.ok()) result = st;
  }
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
  for (auto& [name, slot] : sources_) slot.source->Stop();
  Status flushed = store_->Flush();
  if (!flushed.ok()) spdlog::error("buffer: final commit failed: {}", flushed.ToString());
  for (auto& [name, slot] : sinks_) slot.forwarder->Stop();
  Status closed = store_->Close();
  return flushed.ok() ? closed : flushed;
}

void Agent::Tick() {
  if (!store_) return;
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
  for (const auto& [name, slot] : sources_) s.sources[name] = slot.source->Stats();
  for (const auto& [name, slot] : sinks_) s.sinks[name] = slot.forwarder->Stats();
  return s;
}

}  // namespace edgeferry::agent
