#include "edgeferry/drivers/mqtt/mqtt_uplink_sink.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/redact.h"
#include "mqtt_probe.h"
#include "paho_tls.h"

namespace edgeferry::drivers {

namespace {
constexpr auto kSlice = std::chrono::milliseconds(100);  // how often a wait checks Cancel()

// Waits for `tok` up to `timeout_ns`, in slices, giving up early on `cancelled` or
// when `lost` says the connection is gone. True when the token completed.
bool WaitToken(const mqtt::token_ptr& tok, int64_t timeout_ns, const std::atomic<bool>& cancelled,
               const std::function<bool()>& lost) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns);
  while (!tok->wait_for(kSlice)) {
    if (cancelled || lost() || std::chrono::steady_clock::now() >= deadline) return false;
  }
  return true;
}

// Size of one PUBLISH packet (MQTT 3.1.1 section 3.3): fixed header with its
// variable-length Remaining Length, topic with its length prefix, the packet id at
// QoS 1 and 2, the payload. TLS and TCP framing are not counted.
uint64_t PublishPacketBytes(size_t topic_bytes, size_t payload_bytes, int qos) {
  const uint64_t remaining = 2 + topic_bytes + (qos > 0 ? 2 : 0) + payload_bytes;
  uint64_t length_bytes = 1;
  for (uint64_t v = remaining; v >= 128; v /= 128) ++length_bytes;
  return 1 + length_bytes + remaining;
}
}  // namespace

class MqttUplinkSink::Impl {
 public:
  explicit Impl(MqttUplinkSinkConfig c) : cfg_(std::move(c)) {}
  ~Impl() {
    try {
      if (client_ && client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }

  Status Connect() {
    if (cancelled_) return Status::Unavailable("sink stopped");
    try {
      const int version = cfg_.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
      if (!client_) {
        client_ = std::make_unique<mqtt::async_client>(cfg_.uri, cfg_.client_id,
                                                       mqtt::create_options(version, cfg_.max_inflight * 2));
        opts_ = CleanConnectOptions(cfg_).max_inflight(cfg_.max_inflight).finalize();
      }
      auto tok = client_->connect(opts_);
      // Paho bounds the handshake by connect_timeout; this bounds our wait too.
      if (!WaitToken(tok, cfg_.connect_timeout_ns + 1'000'000'000, cancelled_, [] { return false; })) {
        return Status::Unavailable(fmt::format("{}: no CONNACK within the connect timeout", RedactUrl(cfg_.uri)));
      }
      tok->get_return_code();  // throws if the connect failed
      spdlog::info("sink {}: connected to {}", cfg_.name, RedactUrl(cfg_.uri));
      return Status::Ok();
    } catch (const mqtt::exception& e) {
      return Status::Unavailable(fmt::format("{}: {}", RedactUrl(cfg_.uri), e.what()));
    }
  }

  Delivery Deliver(std::span<const StoredRecord> batch) {
    Delivery d;
    if (!client_ || !client_->is_connected()) {
      if (Status st = Connect(); !st.ok()) {
        d.error = st;
        return d;
      }
    }
    // Publish with at most max_inflight outstanding; tokens complete in order of acks.
    std::deque<std::pair<uint64_t, mqtt::delivery_token_ptr>> inflight;
    bool broken = false;
    auto lost = [&] { return !client_->is_connected(); };
    auto settle_front = [&]() {
      auto [seq, tok] = inflight.front();
      inflight.pop_front();
      if (broken) return;  // the run of acknowledgements is already broken: do not wait
      bool ok = false;
      try {
        ok = WaitToken(tok, cfg_.publish_timeout_ns, cancelled_, lost) && tok->get_return_code() == 0;
        if (!ok && cancelled_) {
          d.error = Status::Unavailable("sink stopped");
        } else if (!ok && lost()) {
          // The broker closed the connection after this batch's PUBLISH: it may be the
          // content (a packet over its size limit); the forwarder bisects (sink.h).
          d.error = Status::Unavailable(fmt::format("connection lost after publishing seq {}", seq));
          d.refused = true;
        } else if (!ok) {
          d.error = Status::Unavailable(fmt::format("no acknowledgement for seq {} within the timeout", seq));
        }
      } catch (const mqtt::exception& e) {
        d.refused = lost();
        d.error = Status::Unavailable(d.refused ? fmt::format("connection lost after publishing seq {} ({})", seq, e.what())
                                                : fmt::format("publish seq {}: {}", seq, e.what()));
      }
      if (ok) d.acked_through = seq;
      broken = !ok;
    };
    for (const auto& r : batch) {
      if (broken || cancelled_) break;
      std::string payload;
      if (cfg_.raw_payload) {
        payload = r.record.payload;
      } else {
        AppendEnvelope(cfg_.gateway_id, r, &payload);
        payload.pop_back();
      }
      const std::string topic = ExpandTemplate(cfg_.topic, {cfg_.gateway_id, r.record.source, r.record.channel, "",
                                                            r.seq, r.seq, r.seq, r.record.ts_ns});
      try {
        d.wire_bytes += PublishPacketBytes(topic.size(), payload.size(), cfg_.qos);
        inflight.emplace_back(r.seq, client_->publish(topic, payload.data(), payload.size(), cfg_.qos, false));
      } catch (const mqtt::exception& e) {
        d.error = Status::Unavailable(fmt::format("publish seq {}: {}", r.seq, e.what()));
        // Refused only when the broker dropped us after an earlier PUBLISH of this batch.
        d.refused = lost() && (!inflight.empty() || d.acked_through > 0);
        broken = true;
        break;
      }
      while (static_cast<int>(inflight.size()) >= cfg_.max_inflight) settle_front();
    }
    while (!inflight.empty()) settle_front();
    if (d.error.ok() && cancelled_ && d.acked_through < batch.back().seq) d.error = Status::Unavailable("sink stopped");
    return d;
  }

  MqttUplinkSinkConfig cfg_;
  std::unique_ptr<mqtt::async_client> client_;
  mqtt::connect_options opts_;
  std::atomic<bool> cancelled_{false};
};

MqttUplinkSink::MqttUplinkSink(MqttUplinkSinkConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
MqttUplinkSink::~MqttUplinkSink() = default;
const std::string& MqttUplinkSink::name() const { return impl_->cfg_.name; }
BatchPolicy MqttUplinkSink::policy() const { return impl_->cfg_.batch; }
Status MqttUplinkSink::Start() { return impl_->Connect(); }
Delivery MqttUplinkSink::Deliver(std::span<const StoredRecord> batch) { return impl_->Deliver(batch); }
DestinationLimits MqttUplinkSink::limits() const {
  DestinationLimits l = impl_->cfg_.limits;
  l.gateway_id = impl_->cfg_.gateway_id;
  l.payload_only = impl_->cfg_.raw_payload;
  return l;
}
void MqttUplinkSink::Cancel() { impl_->cancelled_ = true; }
ProbeResult MqttUplinkSink::Probe(int64_t timeout_ns) {
  const MqttUplinkSinkConfig& c = impl_->cfg_;
  MqttProbeTarget t{c.uri, c.client_id, c.mqtt_version, c.username, c.password, std::nullopt};
  try {
    if (c.tls) t.ssl = MakeSslOptions(*c.tls, c.tls->alpn);
  } catch (const std::exception& e) {
    return ProbeResult::Failed(fmt::format("TLS settings: {}", e.what()));
  }
  return ProbeMqttBroker(t, timeout_ns);
}

}  // namespace edgeferry::drivers
