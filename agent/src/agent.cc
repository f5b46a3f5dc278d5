#include "edgeferry/agent/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/outbox/outbox_sink.h"
#include "edgeferry/drivers/serial/serial_source.h"

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
    const bool configured = std::any_of(config_.sinks.begin(), config_.sinks.end(),
                                        [&](const SinkConfig& s) { return s.name == name; });
    if (!configured) {
      spdlog::warn("buffer: dropping the cursor of sink '{}', which is no longer configured", name);
      (void)store_->DropCursor(name);
    }
  }
  for (const auto& sc : config_.sinks) {
    if (sc.type == "outbox") sinks_.push_back(std::make_unique<drivers::OutboxSink>(sc.outbox));
    if (sc.type == "mqtt") sinks_.push_back(std::make_unique<drivers::MqttUplinkSink>(sc.mqtt));
    if (sc.type == "http") sinks_.push_back(std::make_unique<drivers::http::HttpSink>(sc.http));
    if (sc.type == "kinesis") sinks_.push_back(std::make_unique<drivers::aws::KinesisSink>(sc.kinesis));
    if (sc.type == "s3") sinks_.push_back(std::make_unique<drivers::aws::S3Sink>(sc.s3));
    forwarders_.push_back(std::make_unique<Forwarder>(*store_, *sinks_.back(), sc.retry, sc.drain));
    if (Status st = forwarders_.back()->Start(); !st.ok()) return st;
  }
  for (const auto& sc : config_.sources) {
    ingests_.push_back(std::make_unique<StoreIngest>(*store_, sc.name));
    if (sc.type == "mqtt") sources_.push_back(std::make_unique<drivers::MqttSource>(sc.mqtt, *ingests_.back()));
    if (sc.type == "serial") {
      sources_.push_back(std::make_unique<drivers::serial::SerialSource>(sc.serial, *ingests_.back()));
    }
    if (Status st = sources_.back()->Start(); !st.ok()) return st;
  }
  if (config_.sinks.empty()) spdlog::warn("no sinks configured: records are only buffered");
  return Status::Ok();
}

Status Agent::Stop() {
  if (!started_) return Status::Ok();
  started_ = false;
  for (auto& s : sources_) s->Stop();
  Status flushed = store_->Flush();
  if (!flushed.ok()) spdlog::error("buffer: final commit failed: {}", flushed.ToString());
  for (auto& f : forwarders_) f->Stop();
  Status closed = store_->Close();
  return flushed.ok() ? closed : flushed;
}

void Agent::Tick() {
  if (!store_) return;
  if (auto n = store_->AppendReplayedToAll(1000); n.ok() && *n > 0) {
    spdlog::info("buffer: {} replayed dead letters appended again for every sink", *n);
  }
}

AgentStats Agent::Stats() {
  AgentStats s;
  if (!store_) return s;
  s.buffer = store_->Stats();
  for (const auto& src : sources_) s.sources[src->name()] = src->Stats();
  for (size_t i = 0; i < forwarders_.size(); ++i) s.sinks[sinks_[i]->name()] = forwarders_[i]->Stats();
  return s;
}

}  // namespace edgeferry::agent
