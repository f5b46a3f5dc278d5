// The MQTT probe shared by the source and the uplink sink (Source::Probe, Sink::Probe):
// connect, wait for the CONNACK, disconnect.
#pragma once

#include <mqtt/ssl_options.h>

#include <cstdint>
#include <optional>
#include <string>

#include "edgeferry/drivers/probe.h"

namespace edgeferry::drivers {

struct MqttProbeTarget {
  std::string uri;        // as configured (printed redacted)
  std::string client_id;  // the component's configured id; the probe adds "-check"
  int mqtt_version = 4;   // 4 = 3.1.1, 5 = 5.0
  std::string username, password;
  std::optional<mqtt::ssl_options> ssl;  // for ssl:// and wss://
};

// Connects to the broker as client_id + "-check" with a clean session (3.1.1) or a clean
// start without session expiry (5), so the broker keeps nothing and a running agent's
// connection (its own client id) is neither taken over nor changed; waits up to
// `timeout_ns` for the CONNACK; disconnects. A refusal is reported by name ("bad user
// name or password", "not authorized"). Never throws.
ProbeResult ProbeMqttBroker(const MqttProbeTarget& target, int64_t timeout_ns);

}  // namespace edgeferry::drivers
