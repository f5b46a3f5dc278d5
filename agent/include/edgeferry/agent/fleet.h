// Fleet-managed configuration: pushes arrive on {prefix}/{gateway_id}/config/desired
// (retained), are validated whole with the file's validator, applied in place, watched
// for a health window, and rolled back to the last-known-good configuration when a
// source or sink does not come up. Outcomes go to {prefix}/{gateway_id}/config/reported.
// docs/fleet.md describes the protocol; this header the pieces.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "edgeferry/agent/agent.h"
#include "edgeferry/agent/config.h"
#include "edgeferry/status.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry::drivers {
class MqttControlChannel;
}

namespace edgeferry::agent {

// A pushed document, decoded.
struct FleetDocument {
  int64_t version = 0;    // its top-level `version`, >= 1
  std::string format;     // "toml" or "json"
  std::string text;       // the document's exact bytes (what a signature covers)
  bool is_signed = false;
};

// Bounds a push must meet before anything parses it (FleetConfig::max_push_*).
struct PushLimits {
  uint64_t max_bytes = 1ull << 20;  // payload size, bytes
  int max_depth = 64;               // nesting levels: arrays, tables, dotted keys
};

// Checks `text` against `limits` on the raw bytes, without parsing or recursion:
// its size, and its nesting depth counted as brackets/braces outside strings (JSON) or,
// for TOML, inline tables/arrays plus the components of [table] headers and dotted keys.
// `json` picks the grammar. Errors: InvalidArgument naming the bound. Pure, thread-safe.
Status CheckPushBounds(std::string_view text, bool json, const PushLimits& limits);

// Decodes a desired-topic payload: either the document itself (TOML, or JSON when it
// is a JSON object without a "document" key), or a signed envelope
//   {"document": "<the document text>", "signature": "<base64 Ed25519 signature>"}
// The payload, then the enveloped document, is checked with CheckPushBounds first.
// When `public_key_pem` (an Ed25519 public key, PEM) is non-empty the envelope is
// required and its signature is verified (OpenSSL EVP_DigestVerify) over the exact
// document bytes before the document is parsed. With an empty key an unsigned document
// is decoded (whether it may be applied is the caller's policy: ValidatePush).
// Errors: InvalidArgument saying what is wrong. Pure, thread-safe, never throws.
Result<FleetDocument> DecodePush(std::string_view payload, const std::string& public_key_pem,
                                 const PushLimits& limits = {});

// The key paths always pinned, whatever the local file says: the management settings,
// the gateway identity, the metrics endpoint and the buffer's location.
const std::vector<std::string>& DefaultPins();

// The configuration a push asks for, as TOML text ParseConfig accepts: the pushed
// document with every pinned key path taken from the local file (absent locally =
// absent). Pinned are DefaultPins(), `pinned`, every key named in LocalPathKeys() at any
// depth (a new sink may not name a file either), and the destination (uri, url,
// endpoint, tls.verify) of any table that uses a local secret file. A push that sets a
// pinned path to anything else is rejected, naming the path. `doc` must come from
// DecodePush (so its bounds were checked). Errors go to *errors. Pure, thread-safe.
Result<std::string> EffectiveConfig(const FleetDocument& doc, std::string_view local_toml,
                                    const std::vector<std::string>& pinned, ConfigErrors* errors);

// A push that passed every check and may be applied.
struct ValidatedPush {
  FleetDocument doc;
  std::string toml;     // the effective configuration (EffectiveConfig)
  AgentConfig config;   // it, parsed and validated (ParseConfig)
};

// Everything a push goes through before it may be applied, in order: bounds, the
// signature policy (unsigned refused unless local.fleet.allow_unsigned; with a key,
// a valid signature), decoding, pins, the config validator. `local`/`local_toml`: the
// gateway's own file. Errors go to *errors (key paths). Pure; reads the files a config
// names (password_file) only for pushes that kept them from the local file.
// `*version` (optional) receives the pushed version once decoded (for the report).
Result<ValidatedPush> ValidatePush(std::string_view payload, const AgentConfig& local, std::string_view local_toml,
                                   ConfigErrors* errors, int64_t* version = nullptr);

// SHA-256 of `payload`, lower-case hex: how a quarantined push is recognised.
std::string PushHash(std::string_view payload);

// What the agent has done with pushes, kept in <data_dir>/fleet/state.json beside
// applied.toml (the configuration in force) and last-good.toml (the last one that
// passed its health window). Every file is replaced atomically (temp, fsync, rename).
struct FleetRecord {
  int64_t applied_version = 0;    // in force and healthy (0 = the local file)
  int64_t highest_version = 0;    // newest version seen; older pushes are replays
  int64_t pending_version = 0;    // applied, health window not yet passed
  std::string status;             // applied, applying, rejected, rolled_back ("" = none yet)
  int64_t status_version = 0;     // the version `status` is about
  std::vector<std::string> errors;
  int64_t time_ns = 0;            // of the status, ns since the epoch
  // PushHash of payloads that were being decoded or applied when the process died;
  // ignored when they arrive again (the newest 32 are kept).
  std::vector<std::string> quarantined;
};

// The push being decoded or applied, written before and removed after: still present
// at start = that push killed the process.
struct InProgressMarker {
  std::string hash;       // PushHash of the payload
  int64_t version = 0;    // once decoded; 0 before
};

class FleetFiles {
 public:
  explicit FleetFiles(std::string dir);  // <data_dir>/fleet
  const std::string& dir() const { return dir_; }
  FleetRecord Load() const;               // a missing or unreadable state = empty record
  Status Save(const FleetRecord& r) const;
  Status WriteApplied(std::string_view toml) const;
  Status WriteLastGood(std::string_view toml) const;
  std::string ReadApplied() const;        // "" when none
  std::string ReadLastGood() const;
  Status WriteMarker(const InProgressMarker& m) const;   // in-progress.json, atomically
  std::optional<InProgressMarker> ReadMarker() const;
  void ClearMarker() const;

 private:
  Status WriteAtomically(const std::string& name, std::string_view content) const;
  std::string dir_;
};

// The configuration to start with: the local file, or (fleet enabled, use_applied, and
// not `ignore_applied`) the last applied push with the local pins laid over it. A push
// whose health window never ended (the process died during it) is not trusted: the
// last-good configuration is used and the push recorded as rolled back. A push whose
// in-progress marker survived (the process died decoding or applying it) is quarantined
// (state.json), recorded as `quarantined`, and last-good is used.
struct StartupConfig {
  AgentConfig config;
  std::string toml;         // its text
  std::string origin;       // for the log: the file, or "fleet version N"
  AgentConfig local;        // the file itself: its [fleet] section and pins rule pushes
  std::string local_toml;
};
// `at_process_start`: false for a reload (SIGHUP), when an in-progress marker belongs to
// the running process and is not a sign of a crash.
Result<StartupConfig> SelectStartupConfig(const std::string& local_path, bool ignore_applied, ConfigErrors* errors,
                                          bool at_process_start = true);

// Receives pushes over MQTT and drives validate -> apply -> health window -> report or
// roll back. Payloads over the size bound are dropped in the MQTT callback; the rest are
// validated on a worker thread (ValidatePush), newest first; the main loop's Poll()
// only applies a validated configuration, so it never parses a push.
class FleetManager {
 public:
  struct Host {
    // Applies a configuration in place (Agent::Apply or a restart). Errors: it did not start.
    std::function<Status(const AgentConfig&)> apply;
    std::function<AgentStats()> stats;
    std::function<void()> wake;  // wakes the main loop (a push arrived); thread-safe
  };
  // `local`: the file's configuration (its [fleet] section and pins rule); `running`:
  // what runs now (the file or a previous push) and its TOML text.
  FleetManager(AgentConfig local, std::string local_toml, std::string running_toml, Host host);
  ~FleetManager();
  void Start();   // connects in the background; reports the current state once connected
  void Stop();
  // Main loop: handles the newest queued push, ends a health window. `now_ns`: monotonic.
  void Poll(int64_t now_ns);
  FleetRecord record() const;

 private:
  // What the worker made of one payload (or the callback of an oversize one).
  struct Outcome {
    std::string hash;
    int64_t version = 0;                // 0 when it could not be decoded
    std::vector<std::string> errors;    // empty = valid
    std::shared_ptr<ValidatedPush> push;
  };
  // Shared with the worker thread, which may outlive the manager while it finishes a
  // parse that cannot be interrupted (a stop never waits for it).
  struct Shared {
    Mutex mu;
    CondVar cv;
    std::optional<std::string> inbox GUARDED_BY(mu);   // the newest payload not yet taken
    std::optional<Outcome> done GUARDED_BY(mu);        // for Poll
    bool busy GUARDED_BY(mu) = false;  // a push taken and not yet handled by Poll
    std::vector<std::string> quarantined GUARDED_BY(mu);
    bool stop GUARDED_BY(mu) = false;
    bool finished GUARDED_BY(mu) = false;
  };
  static void Work(std::shared_ptr<Shared> shared, AgentConfig local, std::string local_toml, FleetFiles files,
                   std::function<void()> wake);
  void Handle(Outcome outcome, int64_t now_ns);
  void EndHealthWindow();
  void Report(int64_t version, const std::string& status, const std::vector<std::string>& errors);
  // Sets the outcome in record_ and state.json ("applying" opens a health window,
  // "applied" moves applied_version).
  void Record(const std::string& status, int64_t version, std::vector<std::string> errors);
  // Why the running configuration is not healthy: each source not connected, each sink
  // not online or with a failed delivery since the apply. Empty = healthy.
  static std::vector<std::string> Unhealthy(const AgentStats& stats);

  AgentConfig local_;
  std::string local_toml_, running_toml_, candidate_toml_;
  Host host_;
  FleetFiles files_;
  FleetRecord record_;
  std::unique_ptr<drivers::MqttControlChannel> channel_;
  std::string desired_topic_, reported_topic_;
  mutable std::mutex mu_;
  std::shared_ptr<Shared> shared_;
  std::thread worker_;
  int64_t window_end_ns_ = 0;      // 0 = no health window running
  bool reported_once_ = false;
};

}  // namespace edgeferry::agent
