// Agent: wires sources -> buffer -> forwarders -> sinks from an AgentConfig.
//
// Start order: buffer (recovered or quarantined), cursors of removed sinks dropped,
// forwarders (so a backlog starts draining), then sources. Stop order is the
// reverse for sources, then the open segment is sealed and committed, then
// forwarders stop after their delivery in progress, then the buffer closes.
#pragma once

#include <map>
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
  // Periodic work of the main loop (about once a second): dead letters replayed for
  // every sink are appended again.
  void Tick();
  // Thread-safe once started.
  AgentStats Stats();
  const AgentConfig& config() const { return config_; }

 private:
  class StoreIngest;
  AgentConfig config_;
  std::unique_ptr<buffer::Store> store_;
  std::vector<std::unique_ptr<StoreIngest>> ingests_;
  std::vector<drivers::SourcePtr> sources_;
  std::vector<drivers::SinkPtr> sinks_;
  std::vector<std::unique_ptr<Forwarder>> forwarders_;
  bool started_ = false;
};

}  // namespace edgeferry::agent
