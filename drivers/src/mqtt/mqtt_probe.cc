#include "mqtt_probe.h"

#include <fmt/format.h>
#include <mqtt/async_client.h>

#include <algorithm>
#include <chrono>

#include "edgeferry/redact.h"

namespace edgeferry::drivers {

namespace {
// A broker's refusal in words. MQTT 3.1.1 CONNACK return codes (OASIS 2014, 3.2.2.3) are
// 1..5; MQTT 5 CONNACK reason codes (OASIS 2019, 3.2.2.2) are >= 0x80.
std::string RefusalReason(int code, int version) {
  if (version != MQTTVERSION_5) {
    switch (code) {
      case 1: return "refused: unacceptable protocol version";
      case 2: return "refused: client identifier rejected";
      case 3: return "refused: server unavailable";
      case 4: return "refused: bad user name or password";
      // mosquitto answers this to a wrong password too
      case 5: return "refused: not authorized (wrong user name or password, or the account may not connect)";
      default: return "";
    }
  }
  switch (code) {
    case 0x84: return "refused: unsupported protocol version";
    case 0x85: return "refused: client identifier not valid";
    case 0x86: return "refused: bad user name or password";
    case 0x87: return "refused: not authorized (wrong user name or password, or the account may not connect)";
    case 0x88: return "refused: server unavailable";
    case 0x89: return "refused: server busy";
    case 0x8A: return "refused: banned";
    case 0x8C: return "refused: bad authentication method";
    default: return code >= 0x80 ? fmt::format("refused: reason code 0x{:02x}", code) : "";
  }
}
}  // namespace

ProbeResult ProbeMqttBroker(const MqttProbeTarget& target, int64_t timeout_ns) {
  const std::string where = RedactUrl(target.uri);
  const int version = target.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  const auto timeout = std::chrono::nanoseconds(std::max<int64_t>(timeout_ns, 1'000'000));
  try {
    mqtt::async_client client(target.uri, target.client_id + "-check", mqtt::create_options(version));
    auto b = mqtt::connect_options_builder();
    // Paho counts the connect timeout in whole seconds; our wait below is the bound.
    b.mqtt_version(version)
        .keep_alive_interval(std::chrono::seconds(30))
        .connect_timeout(std::chrono::seconds(std::max<int64_t>(1, (timeout_ns + 999'999'999) / 1'000'000'000)))
        .automatic_reconnect(false);
    if (version == MQTTVERSION_5) {
      b.clean_start(true);  // and no session expiry property: nothing outlives the probe
    } else {
      b.clean_session(true);
    }
    if (!target.username.empty()) b.user_name(target.username);
    if (!target.password.empty()) b.password(target.password);
    if (target.ssl) b.ssl(*target.ssl);
    const mqtt::connect_options opts = b.finalize();
    try {
      auto tok = client.connect(opts);
      // wait_for throws when the connect failed (refused, no route, TLS).
      if (!tok->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(timeout))) {
        return ProbeResult::Failed(fmt::format("{}: no CONNACK within {} ms", where,
                                               std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
      }
      tok->get_return_code();
    } catch (const mqtt::exception& e) {
      // Paho C++ 1.2 puts the CONNACK's code in the return code (3.1.1: 1..5, 5: >= 0x80).
      const int code = e.get_reason_code() != 0 ? e.get_reason_code() : e.get_return_code();
      const std::string reason = RefusalReason(code, version);
      const std::string what = e.get_message().empty() ? e.what() : e.get_message();  // "TCP/TLS connect failure"
      if (!reason.empty()) return ProbeResult::Failed(fmt::format("{}: {}", where, reason));
      // Paho says only "TCP connect completion failure" when a TLS handshake fails.
      const bool tls = target.ssl.has_value() || target.uri.starts_with("ssl://") || target.uri.starts_with("wss://") ||
                       target.uri.starts_with("mqtts://");
      return ProbeResult::Failed(fmt::format("{}: {}{}", where, RedactUrlsIn(what),
                                             tls ? " (nothing listening, or the TLS handshake failed: check ca_file, "
                                                   "cert_file/key_file and the broker's certificate name)"
                                                 : ""));
    }
    try {
      client.disconnect()->wait_for(std::chrono::seconds(1));
    } catch (const mqtt::exception&) {
    }
    return ProbeResult::Ok(fmt::format("connected to {}", where));
  } catch (const std::exception& e) {
    return ProbeResult::Failed(fmt::format("{}: {}", where, RedactUrlsIn(e.what())));
  }
}

}  // namespace edgeferry::drivers
