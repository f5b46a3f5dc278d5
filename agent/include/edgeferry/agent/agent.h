// Agent: wires sources -> buffer -> forwarders -> sinks from an AgentConfig.
//
// Start order: buffer (recovered or quarantined), cursors of removed sinks dropped,
// forwarders (so a backlog starts draining), then sources. Stop order is the
// reverse for sources, then the open segment is sealed and committed, then
// forwarders stop after their delivery in progress, then the buffer closes.
#pragma once

#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "edgeferry/agent/config.h"
#include "edgeferry/agent/forwarder.h"
#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/sink.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::agent {

struct AgentStats {
  int64_t config_version = 0;  // AgentConfig::version in force (a fleet push), 0 = a local file
  buffer::StoreStats buffer;
  std::map<std::string, drivers::SourceStats> sources;
  std::map<std::string, SinkStats> sinks;
};

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
  // every sink are appended again; cursors of removed sinks are dropped when due.
  void Tick();
  // Thread-safe once started.
  AgentStats Stats();
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

  AgentConfig config_;
  std::unique_ptr<buffer::Store> store_;
  std::mutex mu_;  // guards the slot maps against Stats() from other threads
  std::map<std::string, SourceSlot> sources_;
  std::map<std::string, SinkSlot> sinks_;
  std::map<std::string, int64_t> cursor_drops_;  // removed sink -> when (monotonic ns) its cursor goes
  bool started_ = false;
};

}  // namespace edgeferry::agent
