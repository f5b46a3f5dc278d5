#include "edgeferry/drivers/mqtt/mqtt_source.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "edgeferry/clock.h"
#include "edgeferry/redact.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/drivers/json_check.h"
#include "mqtt_probe.h"
#include "paho_tls.h"

namespace edgeferry::drivers {

ContentType DetectContentType(std::string_view payload) {
  switch (ChoosePayloadEncoding(payload)) {
    case PayloadEncoding::kInlineJson: return ContentType::kJson;
    case PayloadEncoding::kText: return ContentType::kText;
    case PayloadEncoding::kBase64: return ContentType::kBinary;
  }
  return ContentType::kBinary;
}

class MqttSource::Impl {
 public:
  Impl(MqttSourceConfig config, Ingest& ingest) : cfg_(std::move(config)), ingest_(ingest) {}
  ~Impl() { Stop(); }

  Status Start();
  void Stop();
  SourceStats Stats() const;
  const std::string& name() const { return cfg_.name; }
  ProbeResult Probe(int64_t timeout_ns) const {
    MqttProbeTarget t{cfg_.uri, cfg_.client_id, cfg_.mqtt_version, cfg_.username, cfg_.password, std::nullopt};
    try {
      if (cfg_.tls) t.ssl = MakeSslOptions(*cfg_.tls);
    } catch (const std::exception& e) {
      return ProbeResult::Failed(fmt::format("TLS settings: {}", e.what()));
    }
    return ProbeMqttBroker(t, timeout_ns);
  }

 private:
  void Run();
  bool ConnectAndSubscribe();
  void OnMessage(const mqtt::const_message_ptr& msg);
  const MqttSourceConfig cfg_;
  Ingest& ingest_;
  std::unique_ptr<mqtt::async_client> client_;
  mqtt::connect_options connect_opts_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool lost_ = false;  // the connection dropped; Run() reconnects
  SourceCounters counters_;
};

Status MqttSource::Impl::Start() {
  try {
    const int version = cfg_.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    client_ = std::make_unique<mqtt::async_client>(cfg_.uri, cfg_.client_id,
                                                   mqtt::create_options(version));
    auto b = mqtt::connect_options_builder();
    b.mqtt_version(version)
        .keep_alive_interval(std::chrono::seconds(cfg_.keepalive_s))
        .connect_timeout(std::chrono::nanoseconds(cfg_.connect_timeout_ns))
        .automatic_reconnect(false);  // our own loop: it also covers the first connect
    if (version == MQTTVERSION_5) {
      b.clean_start(cfg_.clean_session);
    } else {
      b.clean_session(cfg_.clean_session);
    }
    if (!cfg_.username.empty()) b.user_name(cfg_.username);
    if (!cfg_.password.empty()) b.password(cfg_.password);
    if (cfg_.tls) b.ssl(MakeSslOptions(*cfg_.tls));
    connect_opts_ = b.finalize();
    if (version == MQTTVERSION_5 && !cfg_.clean_session) {
      // MQTT 5: without a session expiry the broker drops the session at disconnect.
      // Set on the member itself: Paho C++ 1.2 copies of connect_options point at the
      // properties of the object they were copied from (a builder's would dangle).
      connect_opts_.set_properties(mqtt::properties{{mqtt::property::SESSION_EXPIRY_INTERVAL, INT32_MAX}});
    }
    client_->set_message_callback([this](mqtt::const_message_ptr msg) { OnMessage(msg); });
    client_->set_connection_lost_handler([this](const std::string& cause) {
      counters_.connected = false;
      counters_.SetError("connection lost" + (cause.empty() ? "" : ": " + cause));
      std::lock_guard<std::mutex> l(mu_);
      lost_ = true;
      cv_.notify_all();
    });
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("source {}: {}", cfg_.name, e.what()));
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void MqttSource::Impl::OnMessage(const mqtt::const_message_ptr& msg) {
  counters_.CountReceived();
  Record r;
  StampReceipt(SystemClock(), &r);
  r.source = cfg_.name;
  r.channel = msg->get_topic();
  r.payload = msg->get_payload_str();
  r.content_type = cfg_.content_type.value_or(ContentType::kBinary);
  if (r.payload.size() > cfg_.max_record_bytes) {
    ingest_.DeadLetter(r, fmt::format("payload {} bytes > max_record_bytes {}", r.payload.size(),
                                      cfg_.max_record_bytes));
    counters_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!cfg_.content_type) {
    r.content_type = DetectContentType(r.payload);
  } else if (r.content_type == ContentType::kJson) {
    // Declared JSON must be JSON, every byte of it and within the depth bound: a payload
    // that is not is dead-lettered with the validator's reason (docs/envelope.md).
    if (const JsonCheck check = ValidateJson(r.payload); !check.ok()) {
      ingest_.DeadLetter(r, "not valid JSON (the source declares content_type = \"json\"): " + check.reason);
      counters_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  counters_.CountAppend(ingest_.Append(std::move(r)));
}

bool MqttSource::Impl::ConnectAndSubscribe() {
  // A broker that accepts the connection but never answers must not hold the source
  // forever: a CONNACK later than the connect timeout, or a SUBACK with nothing else
  // arriving for that long, fails the attempt, which is retried with backoff. (Paho times
  // out the CONNACK itself; the margin lets it.) A persistent session's queued messages
  // arrive before the SUBACK, each stored before the next (one fsync each in sync
  // durability): while they keep coming the broker is answering, however long it takes.
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(cfg_.connect_timeout_ns));
  const auto give_up = [&](const std::string& why) {
    counters_.SetError(why);
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
    return false;
  };
  try {
    if (!client_->connect(connect_opts_)->wait_for(timeout + std::chrono::seconds(1))) return give_up("no CONNACK in time");
    auto filters = std::make_shared<mqtt::string_collection>();
    std::vector<int> qos;
    for (const auto& s : cfg_.subscriptions) {
      filters->push_back(s.filter);
      qos.push_back(s.qos);
    }
    auto tok = client_->subscribe(filters, qos);
    for (uint64_t seen = counters_.received.load(); !tok->wait_for(timeout);) {
      const uint64_t now = counters_.received.load();
      if (now == seen) return give_up("no SUBACK and no message within the connect timeout");
      seen = now;
    }
    // A broker refuses a filter by answering 0x80 (3.1.1) or a reason code >= 0x80 (5).
    std::vector<int> granted;
    const mqtt::subscribe_response response = tok->get_subscribe_response();
    for (auto rc : response.get_reason_codes()) granted.push_back(static_cast<int>(rc));
    for (size_t i = 0; i < granted.size() && i < cfg_.subscriptions.size(); ++i) {
      if (granted[i] >= 0x80) {
        spdlog::error("source {}: broker refused subscription '{}' (code 0x{:02x})", cfg_.name,
                      cfg_.subscriptions[i].filter, granted[i]);
      }
    }
    return true;
  } catch (const mqtt::exception& e) {
    return give_up(e.what());
  }
}

void MqttSource::Impl::Run() {
  std::mt19937_64 rng(std::random_device{}());
  int64_t delay = cfg_.reconnect_min_ns;
  bool ever_connected = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lost_ = false;
    lock.unlock();
    const bool ok = ConnectAndSubscribe();
    lock.lock();
    if (stop_) break;
    if (ok) {
      counters_.connected = true;
      if (ever_connected) counters_.reconnects.fetch_add(1);
      spdlog::info("source {}: {} {} ({} subscription{})", cfg_.name,
                   ever_connected ? "reconnected to" : "connected to", cfg_.uri,
                   cfg_.subscriptions.size(), cfg_.subscriptions.size() == 1 ? "" : "s");
      ever_connected = true;
      delay = cfg_.reconnect_min_ns;
      cv_.wait(lock, [&] { return stop_ || lost_; });
      if (stop_) break;
      spdlog::warn("source {}: {}; reconnecting", cfg_.name, counters_.last_error());
    } else {
      spdlog::warn("source {}: cannot connect to {}: {}; retrying in {} ms", cfg_.name, RedactUrl(cfg_.uri),
                   counters_.last_error(), delay / 1'000'000);
    }
    // Full jitter around the current delay: a fleet does not reconnect in lockstep.
    const int64_t wait = delay / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(delay / 2 + 1));
    cv_.wait_for(lock, std::chrono::nanoseconds(wait), [&] { return stop_; });
    delay = std::min(delay * 2, cfg_.reconnect_max_ns);
  }
}

void MqttSource::Impl::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (client_) {
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception& e) {
      spdlog::debug("source {}: disconnect: {}", cfg_.name, e.what());
    }
  }
  counters_.connected = false;
}

SourceStats MqttSource::Impl::Stats() const { return counters_.Snapshot(); }

MqttSource::MqttSource(MqttSourceConfig config, Ingest& ingest)
    : impl_(std::make_unique<Impl>(std::move(config), ingest)) {}
MqttSource::~MqttSource() = default;
const std::string& MqttSource::name() const { return impl_->name(); }
Status MqttSource::Start() { return impl_->Start(); }
void MqttSource::Stop() { impl_->Stop(); }
SourceStats MqttSource::Stats() const { return impl_->Stats(); }
ProbeResult MqttSource::Probe(int64_t timeout_ns) { return impl_->Probe(timeout_ns); }

}  // namespace edgeferry::drivers
