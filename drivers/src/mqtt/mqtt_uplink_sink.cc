#include "edgeferry/drivers/mqtt/mqtt_uplink_sink.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <deque>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/envelope.h"
#include "paho_tls.h"

namespace edgeferry::drivers {

class MqttUplinkSink::Impl {
 public:
  explicit Impl(MqttUplinkSinkConfig c) : cfg_(std::move(c)) {}
  ~Impl() {
    try {
      if (client_ && client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception&) {
    }
  }

  Status Connect() {
    try {
      const int version = cfg_.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
      if (!client_) {
        client_ = std::make_unique<mqtt::async_client>(cfg_.uri, cfg_.client_id,
                                                       mqtt::create_options(version, cfg_.max_inflight * 2));
        opts_ = CleanConnectOptions(cfg_).max_inflight(cfg_.max_inflight).finalize();
      }
      client_->connect(opts_)->wait();
      spdlog::info("sink {}: connected to {}", cfg_.name, cfg_.uri);
      return Status::Ok();
    } catch (const mqtt::exception& e) {
      return Status::Unavailable(fmt::format("{}: {}", cfg_.uri, e.what()));
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
    auto settle_front = [&]() {
      auto& [seq, tok] = inflight.front();
      bool ok = false;
      try {
        ok = tok->wait_for(std::chrono::milliseconds(cfg_.publish_timeout_ns / 1'000'000)) && tok->get_return_code() == 0;
        if (!ok) d.error = Status::Unavailable(fmt::format("no acknowledgement for seq {} within the timeout", seq));
      } catch (const mqtt::exception& e) {
        d.error = Status::Unavailable(fmt::format("publish seq {}: {}", seq, e.what()));
      }
      if (ok && !broken) d.acked_through = seq;
      broken = broken || !ok;
      inflight.pop_front();
    };
    for (const auto& r : batch) {
      if (broken) break;
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
        inflight.emplace_back(r.seq, client_->publish(topic, payload.data(), payload.size(), cfg_.qos, false));
      } catch (const mqtt::exception& e) {
        d.error = Status::Unavailable(fmt::format("publish seq {}: {}", r.seq, e.what()));
        broken = true;
        break;
      }
      while (static_cast<int>(inflight.size()) >= cfg_.max_inflight) settle_front();
    }
    while (!inflight.empty()) settle_front();
    return d;
  }

  MqttUplinkSinkConfig cfg_;
  std::unique_ptr<mqtt::async_client> client_;
  mqtt::connect_options opts_;
};

MqttUplinkSink::MqttUplinkSink(MqttUplinkSinkConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
MqttUplinkSink::~MqttUplinkSink() = default;
const std::string& MqttUplinkSink::name() const { return impl_->cfg_.name; }
BatchPolicy MqttUplinkSink::policy() const { return impl_->cfg_.batch; }
Status MqttUplinkSink::Start() { return impl_->Connect(); }
Delivery MqttUplinkSink::Deliver(std::span<const StoredRecord> batch) { return impl_->Deliver(batch); }

}  // namespace edgeferry::drivers
