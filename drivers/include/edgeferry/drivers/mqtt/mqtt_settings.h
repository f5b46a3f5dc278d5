// The MQTT source and MQTT sink as configuration types (sink_settings.h explains the
// shape), and the MQTT connection keys the fleet link reads too. Keys and defaults:
// docs/configuration.md, [sources.<name>] type = "mqtt" and [sinks.<name>] type = "mqtt".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/mqtt/mqtt_uplink_sink.h"
#include "edgeferry/drivers/sink_settings.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::drivers {

struct MqttSourceType {
  static constexpr std::string_view kName = "mqtt";
  using Config = MqttSourceConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx);
  static SourcePtr Make(const Config& config, Ingest& ingest);
  static std::vector<std::string> Secrets(const Config& config) { return {config.password}; }
};

struct MqttUplinkSinkType {
  static constexpr std::string_view kName = "mqtt";
  // Streaming: each record is one PUBLISH, sent at once.
  static constexpr BatchPolicy kDefaultBatch{1000, 1ull << 20, 0};
  using Config = MqttUplinkSinkConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx, const BatchPolicy& batch);
  static SinkPtr Make(const Config& config);
  static std::vector<std::string> Secrets(const Config& config) { return {config.password}; }
};

// An error naming `uri` unless it is tcp://, ssl://, mqtt://, mqtts://, ws:// or wss://
// with a valid authority and no user:pass@.
void CheckMqttUri(settings::TableReader& r, const std::string& uri);

// [<path>.tls] of an MQTT client: set when the table is present or the URI asks for TLS
// (ssl://, mqtts://, wss://), else nullopt; a table with a plain URI is an error.
// `alpn` is read only with allow_alpn (the uplink; AWS IoT on port 443).
std::optional<MqttUplinkTls> ReadMqttTls(settings::TableReader& r, const std::string& uri, bool allow_alpn);

}  // namespace edgeferry::drivers
