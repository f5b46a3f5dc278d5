// Paho ssl_options from our TLS settings, shared by the MQTT source and uplink sink.
#pragma once

#include <mqtt/ssl_options.h>

#include <string>
#include <vector>

#include "edgeferry/drivers/mqtt/mqtt_source.h"

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

}  // namespace edgeferry::drivers
