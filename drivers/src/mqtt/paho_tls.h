// Paho ssl_options from our TLS settings, shared by the MQTT source and uplink sink,
// and the clean-session connect options of the uplink sink and the control channel.
#pragma once

#include <mqtt/connect_options.h>
#include <mqtt/ssl_options.h>

#include <string>
#include <vector>

#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/mqtt/mqtt_uplink_sink.h"

namespace edgeferry::drivers {

inline mqtt::ssl_options MakeSslOptions(const MqttTls& tls, const std::vector<std::string>& alpn = {}) {
  auto ssl = mqtt::ssl_options_builder();
  if (!tls.ca_file.empty()) ssl.trust_store(tls.ca_file);
  if (!tls.cert_file.empty()) ssl.key_store(tls.cert_file);
  if (!tls.key_file.empty()) ssl.private_key(tls.key_file);
  ssl.enable_server_cert_auth(tls.verify).verify(tls.verify);
  if (!alpn.empty()) ssl.alpn_protos(alpn);
  return ssl.finalize();
}

// Clean session (3.1.1) or clean start (5), keep-alive, connect timeout, credentials
// and TLS from an uplink-style connection; no automatic reconnect (callers own that).
inline mqtt::connect_options_builder CleanConnectOptions(const MqttUplinkSinkConfig& c) {
  const int version = c.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  auto b = mqtt::connect_options_builder();
  b.mqtt_version(version)
      .keep_alive_interval(std::chrono::seconds(c.keepalive_s))
      .connect_timeout(std::chrono::nanoseconds(c.connect_timeout_ns))
      .automatic_reconnect(false);
  if (version == MQTTVERSION_5) {
    b.clean_start(true);
  } else {
    b.clean_session(true);
  }
  if (!c.username.empty()) b.user_name(c.username);
  if (!c.password.empty()) b.password(c.password);
  if (c.tls) b.ssl(MakeSslOptions(*c.tls, c.tls->alpn));
  return b;
}

}  // namespace edgeferry::drivers
