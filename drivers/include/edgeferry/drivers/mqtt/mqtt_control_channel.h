// MqttControlChannel: a small MQTT client for control traffic (fleet configuration):
// one subscription, whose messages (retained ones included) go to a callback, and
// retained QoS 1 publishes for reports. MQTT 3.1.1 or 5 over Eclipse Paho C++, TLS
// as the uplink sink. Connects in the background and reconnects with backoff (1 s
// doubling to 30 s), subscribing again each time, so the broker redelivers the
// retained message after every reconnect: receivers must be idempotent.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "edgeferry/drivers/mqtt/mqtt_uplink_sink.h"
#include "edgeferry/status.h"

namespace edgeferry::drivers {

class MqttControlChannel {
 public:
  // Called on Paho's thread for each message: (topic, payload). Must return quickly.
  using OnMessage = std::function<void(const std::string& topic, const std::string& payload)>;

  // `connection`: uri, client_id, mqtt_version, username/password, tls, keepalive,
  // connect_timeout (the sink-only fields are ignored). `subscribe` is a topic filter.
  MqttControlChannel(MqttUplinkSinkConfig connection, std::string subscribe, OnMessage on_message);
  // Messages larger than `max_bytes` are not copied nor passed to OnMessage;
  // `on_oversize(topic, size in bytes)` is called instead (Paho's thread). Call before Start().
  using OnOversize = std::function<void(const std::string& topic, size_t bytes)>;
  void LimitPayload(size_t max_bytes, OnOversize on_oversize);
  ~MqttControlChannel();  // Stop()
  void Start();           // returns at once; connecting happens in the background
  void Stop();            // disconnects; idempotent
  bool connected() const;
  // Publishes QoS 1, waits up to `timeout_ms` for the PUBACK. Errors: Unavailable when
  // not connected or no acknowledgement came. Thread-safe.
  Status Publish(const std::string& topic, const std::string& payload, bool retained, int timeout_ms = 5000);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::drivers
