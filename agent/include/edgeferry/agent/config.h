// The agent's configuration: one TOML file (gateway, log, buffer, sources, sinks),
// validated whole before anything starts. docs/configuration.md lists every key.
//
// Errors name the key path and the reason, e.g.
//   sources.plant.qos: must be 0, 1 or 2 (got 3)
// and unknown keys are errors, so a typo never silently falls back to a default.
#pragma once

#include <string>
#include <vector>

#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/aws/kinesis_sink.h"
#include "edgeferry/drivers/aws/s3_sink.h"
#include "edgeferry/drivers/http/http_sink.h"
#include "edgeferry/drivers/mqtt/mqtt_source.h"
#include "edgeferry/drivers/mqtt/mqtt_uplink_sink.h"
#include "edgeferry/drivers/outbox/outbox_sink.h"
#include "edgeferry/drivers/serial/serial_source.h"
#include "edgeferry/status.h"

namespace edgeferry::agent {

struct SourceConfig {
  std::string name;
  std::string fingerprint;  // its settings as read; equal fingerprints = unchanged source
  std::string type;  // "mqtt" or "serial"
  drivers::MqttSourceConfig mqtt;
  drivers::serial::SerialSourceConfig serial;
};

struct RetryPolicy {
  int64_t base_ns = 500'000'000;     // first backoff, doubled per consecutive failure
  int64_t max_ns = 60'000'000'000;   // backoff cap; each wait is uniform in [0, min(cap, base*2^n)]
};

// How a sink works off a backlog when its destination comes back.
struct DrainPolicy {
  double records_per_s = 0;      // token-bucket limits; 0 = unlimited
  double bytes_per_s = 0;        // payload bytes per second
  int64_t start_jitter_ns = 0;   // first delivery after start waits uniform [0, this]
  bool live_first = false;       // newest records first, the backlog behind them
};

struct SinkConfig {
  std::string name;
  std::string fingerprint;  // its settings as read; equal fingerprints = unchanged sink
  std::string type;  // "outbox", "mqtt", "http", "kinesis" or "s3": the matching member is set
  drivers::OutboxSinkConfig outbox;
  drivers::MqttUplinkSinkConfig mqtt;
  drivers::http::HttpSinkConfig http;
  drivers::aws::KinesisSinkConfig kinesis;
  drivers::aws::S3SinkConfig s3;
  RetryPolicy retry;
  DrainPolicy drain;
};

// Fleet-managed configuration ([fleet], fleet.h): where pushes come from and what they
// may change.
struct FleetConfig {
  bool enabled = false;
  // The management connection (uri, client_id, credentials, TLS; batch unused). By
  // default the first MQTT sink's broker and credentials.
  drivers::MqttUplinkSinkConfig link;
  std::string topic_prefix = "edgeferry";        // {prefix}/{gateway_id}/config/desired|reported
  int64_t health_window_ns = 60'000'000'000;     // every source and sink must be up by then
  std::string public_key_pem;                    // Ed25519 (PEM) from public_key_file; set = pushes must be signed
  std::string public_key_file;
  // Key paths ("buffer", "sinks.cloud.url") a push may not change, in addition to those
  // always pinned (fleet.h: DefaultPins(), and every key LocalPathKeys() names).
  std::vector<std::string> pinned;
  bool use_applied = true;                       // after a restart, run the last applied push
  // Without public_key_file, pushes are refused unless this is true (`check` warns).
  bool allow_unsigned = false;
  // Bounds checked on the raw bytes before any parsing: payload size in bytes
  // (1 KiB..64 MiB) and nesting depth in levels (8..256, toml++'s own limit).
  uint64_t max_push_bytes = 1ull << 20;
  int max_push_depth = 64;
};

// Names of the keys whose value is a local file or directory (password_file, dir,
// buffer path, TLS files, ...), wherever they appear. A fleet push may not set or change
// any of them (fleet.cc); keep this list in step with the readers in config.cc.
const std::vector<std::string>& LocalPathKeys();

struct AgentConfig {
  int64_t version = 0;           // a pushed configuration's version; 0 for a local file without one
  std::string gateway_id;        // [A-Za-z0-9._-], 1..64; part of the dedup key (gateway_id, seq)
  std::string data_dir;          // holds buffer.db and, by default, the outbox
  std::string log_level = "info";
  int64_t stats_interval_ns = 60'000'000'000;  // a stats line in the log this often; 0 = off
  std::string metrics_address = "127.0.0.1";   // /metrics and /healthz; empty = off
  int metrics_port = 9464;
  buffer::StoreOptions buffer;
  std::vector<SourceConfig> sources;
  std::vector<SinkConfig> sinks;
  std::string buffer_fingerprint;  // [buffer] and gateway settings as read: changed = reopen the buffer
  // A sink removed from the configuration keeps its cursor (and so its backlog) this
  // long, so a rollback finds it intact; then the cursor is dropped. 0 = at once.
  int64_t removed_sink_grace_ns = 0;
  FleetConfig fleet;
};

// All problems found in a config, each "key.path: reason".
struct ConfigErrors {
  std::vector<std::string> errors;
  std::string Join() const;
};

// Parses and validates TOML text. `origin` names the file in messages. Files a key
// names (password_file) are read now. Returns the config, or every error found.
Result<AgentConfig> ParseConfig(std::string_view toml_text, std::string_view origin,
                                ConfigErrors* errors);

// Reads `path` and calls ParseConfig.
Result<AgentConfig> LoadConfigFile(const std::string& path, ConfigErrors* errors);

// The process exit code for an invalid configuration (sysexits.h EX_CONFIG).
inline constexpr int kExitConfig = 78;

}  // namespace edgeferry::agent
