// Human and machine renderings of the agent's and buffer's stats.
#pragma once

#include <string>

#include "edgeferry/agent/agent.h"
#include "edgeferry/buffer/store.h"

namespace edgeferry::agent {

// Stable JSON for scripts (`edgeferry buffer stats --json`); keys documented in docs/operations.md.
std::string StoreStatsJson(const buffer::StoreStats& s);
// A short aligned table for a person.
std::string StoreStatsText(const buffer::StoreStats& s);
// One log line: records in/out per source and sink, backlog, ratio, drops.
std::string AgentStatsLine(const AgentStats& s);
// Prometheus text exposition format 0.0.4: per-source and per-sink counters, backlog,
// buffer size and compression, drops by reason, dead letters, sink state, build info.
std::string PrometheusText(const AgentStats& s, std::string_view version);
// A short status for systemd (`systemctl status`): records held, backlog and state per sink.
std::string AgentStatusText(const AgentStats& s);

}  // namespace edgeferry::agent
