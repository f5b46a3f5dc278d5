// Agent: wires sources -> buffer -> forwarders -> sinks from an AgentConfig.
//
// Start order: buffer (recovered or quarantined), cursors of removed sinks dropped,
// forwarders (so a backlog starts draining), then sources. Stop order is the
// reverse for sources, then the open segment is sealed and committed, then
// forwarders stop after their delivery in progress, then the buffer closes.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeferry/agent/config.h"
#include "edgeferry/agent/forwarder.h"
#include "edgeferry/agent/offline_cover.h"
#include "edgeferry/agent/tap.h"
#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/sink.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::agent {

struct AgentStats {
  int64_t config_version = 0;  // AgentConfig::version in force (a fleet push), 0 = a local file
  buffer::StoreStats buffer;
  std::map<std::string, drivers::SourceStats> sources;
  std::map<std::string, SourceWindowCounts> source_windows;  // inputs in the [health] window, by source
  std::map<std::string, SinkStats> sinks;
  std::map<std::string, std::vector<pipeline::ProcessorStats>> processors;  // by source, in order
  // Records the buffer dropped in about the [health] window, by reason (StoreStats::dropped).
  std::map<std::string, uint64_t> dropped_in_window;
  // Ingest over the last minutes (OfflineCover), payload bytes/s; nullopt until measured.
  std::optional<double> ingest_payload_bytes_per_second;
  // Seconds the buffer's room lasts at that rate with no sink acknowledging (+inf when
  // nothing comes in); nullopt until measured.
  std::optional<double> offline_cover_seconds;
};

// Why the agent is unhealthy by the [health] rules (health.h): one reason per source
// that dead-letters too much of its input, one per sink lagging more than its max_lag.
// Empty = healthy by these rules. `now_ns`: wall clock, ns since epoch.
std::vector<std::string> HealthProblems(const AgentStats& stats, const HealthRules& rules, int64_t now_ns);

class Agent {
 public:
  explicit Agent(AgentConfig config);
  ~Agent();  // Stop()s

  // Errors: IOError when the buffer cannot be opened or created; InvalidArgument
  // when a source or sink rejects its settings.
  Status Start();
  // Idempotent. Returns the buffer's close status.
  Status Stop();
  // Applies `next` in place, keeping the buffer open: sources and sinks whose settings
  // changed (by fingerprint) or that were removed are stopped, new and changed ones
  // started; unchanged ones keep running. A sink keeps its cursor by name; a removed
  // sink's cursor is dropped after removed_sink_grace. Errors: FailedPrecondition-like
  // InvalidArgument when [buffer] or [gateway] changed (the caller restarts instead);
  // a source's or sink's start error (the agent is then partly applied: apply the
  // previous configuration to go back).
  Status Apply(const AgentConfig& next);
  // True when `next` can be applied in place (same buffer and gateway settings).
  bool CanApplyInPlace(const AgentConfig& next) const;
  // Periodic work of the main loop (about once a second): dead letters replayed for
  // every sink are appended again; cursors of removed sinks are dropped when due;
  // processors' closed aggregate windows are stored.
  void Tick();
  // Thread-safe once started.
  AgentStats Stats();
  // Where `edgeferry tap` sees records pass (tap.h). Thread-safe; lives as long as the agent.
  TapHub& tap() { return tap_; }
  const AgentConfig& config() const { return config_; }

 private:
  class StoreIngest;
  struct SourceSlot {
    std::string fingerprint;
    std::unique_ptr<StoreIngest> ingest;
    drivers::SourcePtr source;
  };
  struct SinkSlot {
    std::string fingerprint;
    drivers::SinkPtr sink;
    std::unique_ptr<Forwarder> forwarder;
  };
  Status StartSink(const SinkConfig& sc);
  Status StartSource(const SourceConfig& sc);
  void ScheduleCursorDrop(const std::string& sink);
  // Where a source's processor state is kept across restarts (data_dir/state/).
  std::string StatePath(const std::string& source) const;

  AgentConfig config_;
  std::unique_ptr<buffer::Store> store_;
  RouteTable routes_;  // every sink's route, for the unrouted count at ingest; outlives the sources
  TapHub tap_;         // outlives the sources and sinks that offer to it
  std::mutex mu_;  // guards the slot maps against Stats() from other threads
  std::map<std::string, SourceSlot> sources_;
  std::map<std::string, SinkSlot> sinks_;
  std::map<std::string, int64_t> cursor_drops_;
  OfflineCover cover_;  // sampled by Stats(), guarded by mu_
  // (monotonic ns, StoreStats::dropped) samples over the health window; guarded by mu_.
  std::deque<std::pair<int64_t, std::map<std::string, uint64_t>>> drop_samples_;  // removed sink -> when (monotonic ns) its cursor goes
  bool started_ = false;
};

}  // namespace edgeferry::agent
