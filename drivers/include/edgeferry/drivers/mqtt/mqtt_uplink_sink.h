// MQTT uplink sink: publishes each record to a cloud broker (AWS IoT Core, Azure IoT
// Hub, HiveMQ, EMQX, mosquitto) over MQTT 3.1.1 or 5 (Eclipse Paho C++), TLS and
// mutual TLS (with ALPN, e.g. "x-amzn-mqtt-ca" for AWS IoT on port 443).
//
// Topic from a template ({gateway_id}, {source}, {channel}); payload the envelope
// (envelope.h, one JSON object) or the record's raw payload. Ack = PUBACK (QoS 1) or
// PUBCOMP (QoS 2); QoS 0 counts as delivered once written to the socket. Up to
// max_inflight publishes are outstanding at once; the cursor advances to the last
// record of the unbroken run of acknowledged ones. A lost connection is re-established
// on the next delivery, with the forwarder's backoff in between.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/sink.h"

namespace edgeferry::drivers {

struct MqttUplinkTls : MqttTls {
  std::vector<std::string> alpn;  // ALPN protocols to offer, e.g. {"x-amzn-mqtt-ca"}
};

struct MqttUplinkSinkConfig {
  std::string name;
  std::string gateway_id;
  std::string uri;
  std::string client_id;
  int mqtt_version = 4;                 // 4 = 3.1.1, 5 = 5.0
  int qos = 1;
  std::string topic = "edgeferry/{gateway_id}/{source}";
  bool raw_payload = false;
  std::string username, password;
  std::optional<MqttUplinkTls> tls;
  int keepalive_s = 30;
  int64_t connect_timeout_ns = 10'000'000'000;
  int64_t publish_timeout_ns = 30'000'000'000;  // longest wait for one acknowledgement
  int max_inflight = 100;
  BatchPolicy batch;
  // AWS IoT Core accepts messages up to 128 KiB; a broker that drops the connection on a
  // larger PUBLISH is caught by bisection (sink.h).
  DestinationLimits limits{128 * 1024, 0, ""};
};

class MqttUplinkSink final : public Sink {
 public:
  explicit MqttUplinkSink(MqttUplinkSinkConfig config);
  ~MqttUplinkSink() override;
  const std::string& name() const override;
  BatchPolicy policy() const override;
  // Connects. Errors: Unavailable when the broker cannot be reached or refuses.
  Status Start() override;
  // A connection lost right after a PUBLISH of the batch is reported as `refused`.
  Delivery Deliver(std::span<const StoredRecord> batch) override;
  DestinationLimits limits() const override;
  void Cancel() override;
  // Connects as client_id + "-check" (clean session), waits for the CONNACK, disconnects.
  ProbeResult Probe(int64_t timeout_ns) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::drivers
