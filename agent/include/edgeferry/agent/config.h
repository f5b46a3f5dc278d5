// The agent's configuration: one TOML file (gateway, log, buffer, sources, sinks), and
// the files it includes, validated whole before anything starts. docs/configuration.md lists every key.
//
// Errors name the key path and the reason, e.g.
//   sources.plant.qos: must be 0, 1 or 2 (got 3)
// and unknown keys are errors, so a typo never silently falls back to a default.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/agent/health.h"
#include "edgeferry/agent/registry.h"
#include "edgeferry/buffer/store.h"
#include "edgeferry/pipeline/processor.h"
#include "edgeferry/pipeline/route.h"
#include "edgeferry/settings/context.h"
#include "edgeferry/status.h"

namespace edgeferry::agent {

using pipeline::Route;
using pipeline::RouteTable;

struct SourceConfig {
  std::string name;
  std::string fingerprint;  // its settings as read; equal fingerprints = unchanged source
  SourceSettings settings;  // the driver's configuration; its type is the source's `type`
  std::vector<pipeline::ProcessorConfig> processors;  // applied in order before the buffer

  std::string_view type() const { return TypeName(settings); }
  // The driver configuration when it is a C (e.g. drivers::MqttSourceConfig), else null.
  template <typename C>
  const C* As() const { return std::get_if<C>(&settings); }
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
  SinkSettings settings;    // the driver's configuration, batching included; its type is `type`
  RetryPolicy retry;
  DrainPolicy drain;
  Route route;  // `sources` and `channels`: what this sink receives (default: everything)
  // [[sinks.<name>.processors]]: stateless ones only (Pipeline::Stateless), applied in
  // order to what the route selects, before each delivery.
  std::vector<pipeline::ProcessorConfig> processors;

  std::string_view type() const { return TypeName(settings); }
  // The driver configuration when it is a C (e.g. drivers::OutboxSinkConfig), else null.
  template <typename C>
  const C* As() const { return std::get_if<C>(&settings); }
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
  // [gateway] clock: "kernel" (default) trusts the wall clock once the kernel says it is
  // synchronized (adjtimex); "trusted" always (TrustSystemClock). docs/envelope.md "Time".
  bool clock_trusted = false;
  std::string log_level = "info";
  std::string log_format = "text";  // "text" or "json" (one object per line); read at start, not on reload
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
  HealthRules health;  // [health], with each sink's max_lag override
};

// All problems found in a config, each "key.path: reason".
using ConfigErrors = settings::Errors;

// Parses and validates TOML text. `origin` names the file in messages. Files a key
// names (password_file) are read now. Returns the config, or every error found.
Result<AgentConfig> ParseConfig(std::string_view toml_text, std::string_view origin,
                                ConfigErrors* errors);

// How reading a configuration file sees the machine; tests replace the parts.
struct ConfigHost {
  // The environment variable `name`, or nullopt when it is unset.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  std::function<std::string()> hostname;  // gethostname(2)
  std::string machine_id_path = "/etc/machine-id";
};
// The process environment, the host name, /etc/machine-id.
ConfigHost SystemConfigHost();

// Bounds on `include` (docs/configuration.md): files in all, and bytes per file (the
// main file too). Included files may not include others.
inline constexpr size_t kMaxIncludedFiles = 256;
inline constexpr size_t kMaxConfigFileBytes = 4u << 20;

// The example id the documentation shows: refused, since every gateway imaged with it
// would share one dedup key (gateway_id, seq).
inline constexpr std::string_view kExampleGatewayId = "gw-example-01";

// gateway.id when the file sets none: the host name; when that is empty, "localhost"
// or not a valid id, "gw-" + the first 12 hex digits of SHA-256(machine id); "" when
// neither is available (then gateway.id is reported as required).
std::string DefaultGatewayId(const ConfigHost& host);

// Reads the configuration file at `path` as its operator wrote it and returns the TOML
// text ParseConfig validates: the files its top-level `include` globs name are merged
// in (a key set in two files is an error naming both), every string value has
// ${VAR}, ${VAR:-default} and $$ expanded (an unset variable without a default is an
// error naming the key), and a missing gateway.id gets DefaultGatewayId. The text holds
// the expanded values. Only local files come here: a fleet push is never expanded, since
// that would hand the gateway's environment to whoever can push.
Result<std::string> ReadConfigFile(const std::string& path, ConfigErrors* errors,
                                   const ConfigHost& host = SystemConfigHost());

// ReadConfigFile, then ParseConfig.
Result<AgentConfig> LoadConfigFile(const std::string& path, ConfigErrors* errors,
                                   const ConfigHost& host = SystemConfigHost());

// The process exit code for an invalid configuration (sysexits.h EX_CONFIG).
inline constexpr int kExitConfig = 78;

}  // namespace edgeferry::agent
