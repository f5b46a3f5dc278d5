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
#include <string>
#include <vector>

#include "edgeferry/agent/agent.h"
#include "edgeferry/agent/config.h"
#include "edgeferry/status.h"

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

// Decodes a desired-topic payload: either the document itself (TOML, or JSON when it
// is a JSON object without a "document" key), or a signed envelope
//   {"document": "<the document text>", "signature": "<base64 Ed25519 signature>"}
// When `public_key_pem` (an Ed25519 public key, PEM) is non-empty the envelope is
// required and its signature is verified (OpenSSL EVP_DigestVerify) over the exact
// document bytes. Errors: InvalidArgument saying what is wrong.
Result<FleetDocument> DecodePush(std::string_view payload, const std::string& public_key_pem);

// The configuration a push asks for, as TOML text ParseConfig accepts: the pushed
// document (without `version`... kept, so the result records it) with every pinned key
// path taken from the local file (absent locally = absent). A push that sets a pinned
// path to anything else is rejected, naming the path. `pinned` adds to the paths
// always pinned: "fleet", "gateway.id", "gateway.data_dir". Errors go to *errors.
Result<std::string> EffectiveConfig(const FleetDocument& doc, std::string_view local_toml,
                                    const std::vector<std::string>& pinned, ConfigErrors* errors);

// Pins from the local file laid over a stored configuration (TOML), without checks:
// at startup, so a local edit of the management settings wins over an applied push.
Result<std::string> OverlayPins(std::string_view applied_toml, std::string_view local_toml,
                                const std::vector<std::string>& pinned);

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

 private:
  Status WriteAtomically(const std::string& name, std::string_view content) const;
  std::string dir_;
};

// The configuration to start with: the local file, or (fleet enabled, use_applied, and
// not `ignore_applied`) the last applied push with the local pins laid over it. A push
// whose health window never ended (the process died during it) is not trusted: the
// last-good configuration is used and the push recorded as rolled back.
struct StartupConfig {
  AgentConfig config;
  std::string toml;         // its text
  std::string origin;       // for the log: the file, or "fleet version N"
  AgentConfig local;        // the file itself: its [fleet] section and pins rule pushes
  std::string local_toml;
};
Result<StartupConfig> SelectStartupConfig(const std::string& local_path, bool ignore_applied, ConfigErrors* errors);

// Receives pushes over MQTT and drives validate -> apply -> health window -> report or
// roll back. The main loop calls Poll(); nothing is applied on other threads.
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
  void Handle(const std::string& payload, int64_t now_ns);
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
  std::deque<std::string> queue_;  // payloads from the channel's thread
  int64_t window_end_ns_ = 0;      // 0 = no health window running
  bool reported_once_ = false;
};

}  // namespace edgeferry::agent
