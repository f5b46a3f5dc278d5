// MQTT source: subscribes to the gateway's local broker (or any broker) and turns
// every PUBLISH into a Record (channel = topic, ts = receive time).
//
// Protocol: MQTT 3.1.1 (OASIS 2014) or MQTT 5.0 (OASIS 2019), via Eclipse Paho
// MQTT C++ (async client). QoS 0, 1 and 2 subscriptions; a persistent session
// (clean_session = false) with QoS >= 1 lets the broker keep messages while the
// agent is down.
//
// Threads: Paho calls back on its one internal thread. The message callback only
// copies the message and appends it to the Ingest (in the buffer's normal
// durability mode that is a memory operation; it waits only while the buffer
// applies backpressure, which pauses reading from the socket: the broker then
// queues). Connecting, subscribing and backoff run on the source's own thread.
//
// Ack timing: Paho sends PUBACK (QoS 1) when the callback returns, i.e. after the
// record is in the buffer's memory (normal mode) or committed (sync mode).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeferry/drivers/source.h"

namespace edgeferry::drivers {

struct MqttSubscription {
  std::string filter;  // topic filter, wildcards + and # allowed
  int qos = 1;         // 0, 1 or 2
};

struct MqttTls {
  std::string ca_file;    // PEM bundle to verify the broker; empty = system store
  std::string cert_file;  // client certificate (PEM) for mutual TLS; optional
  std::string key_file;   // its private key (PEM)
  bool verify = true;     // verify the broker's certificate and host name
};

struct MqttSourceConfig {
  std::string name;                 // source name, goes into Record::source
  std::string uri;                  // tcp://host:port, ssl://host:port (TLS), ws:// wss://
  std::string client_id;            // must be unique on the broker
  std::vector<MqttSubscription> subscriptions;
  bool clean_session = true;        // false: persistent session (broker queues while away)
  int mqtt_version = 4;             // 4 = MQTT 3.1.1, 5 = MQTT 5.0
  std::string username;             // empty = none
  std::string password;             // read from a file by the config loader
  std::optional<MqttTls> tls;       // required for ssl:// URIs
  int keepalive_s = 30;
  int64_t connect_timeout_ns = 10'000'000'000;
  int64_t reconnect_min_ns = 500'000'000;    // first retry delay, doubled per failure
  int64_t reconnect_max_ns = 30'000'000'000; // cap of the retry delay
  uint64_t max_record_bytes = 256 * 1024;    // larger payloads are dead-lettered
  std::optional<ContentType> content_type;   // nullopt = detect: json, text or binary
};

class MqttSource final : public Source {
 public:
  // `ingest` is not owned and must outlive the source.
  MqttSource(MqttSourceConfig config, Ingest& ingest);
  ~MqttSource() override;
  const std::string& name() const override;
  Status Start() override;
  void Stop() override;
  SourceStats Stats() const override;
  // Connects as client_id + "-check" (clean session), waits for the CONNACK, disconnects.
  ProbeResult Probe(int64_t timeout_ns) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The content type a payload looks like: json when ValidateJson accepts every byte
// (depth <= kMaxJsonDepth) and it fits one line, else text (UTF-8: JSON with a NUL,
// trailing bytes or too deep lands here), else binary. Pure, thread-safe.
ContentType DetectContentType(std::string_view payload);

}  // namespace edgeferry::drivers
