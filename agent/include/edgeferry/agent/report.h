// Human and machine renderings of the agent's and buffer's stats.
#pragma once

#include <string>
#include <vector>

#include "edgeferry/agent/agent.h"
#include "edgeferry/buffer/store.h"

namespace edgeferry::agent {

// Stable JSON for scripts (`edgeferry buffer stats --json`); keys documented in docs/operations.md.
std::string StoreStatsJson(const buffer::StoreStats& s);
// A short aligned table for a person.
std::string StoreStatsText(const buffer::StoreStats& s);
// One log line: records in/out per source and sink, backlog, ratio, drops.
std::string AgentStatsLine(const AgentStats& s);
// Prometheus text exposition format 0.0.4, base units (seconds, bytes): per-source and
// per-sink counters, last receive / last success times, backlog and the age of its
// oldest record, wire bytes, latency histograms, buffer size, room and offline cover,
// drops by reason, dead letters, sink state, build info (`version` and `commit` as
// labels). `now_ns`: wall clock, ns since epoch, for ages. docs/operations.md lists them.
std::string PrometheusText(const AgentStats& s, std::string_view version, std::string_view commit, int64_t now_ns);

// The process metrics every Prometheus client library exports, in base units, read from
// /proc/self (Linux): process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_start_time_seconds (seconds since the epoch),
// process_open_fds, process_max_fds. A file that cannot be read leaves its metrics out.
// Thread-safe.
std::string ProcessMetricsText();
// A short status for systemd (`systemctl status`): records held, backlog and state per sink.
std::string AgentStatusText(const AgentStats& s);

// What `edgeferry status` shows about the process beside its stats.
struct RunInfo {
  std::string version;
  std::string config_path;
  int64_t started_ns = 0;  // wall clock, ns since the Unix epoch
  std::vector<std::string> health;  // empty when healthy, else each reason (liveness as /healthz, and [health] rules)
  std::string fleet;       // the last fleet push's outcome, e.g. "applied version 7"; "" = none
  std::string gateway_id;
  std::string buffer_path;  // which agent this is: `status` compares it with its configuration's
  int64_t pid = 0;
};

// The running agent's status as JSON (served on /status, printed by `edgeferry status
// --json`). Keys documented in docs/operations.md; "running" is true.
std::string AgentStatusJson(const AgentStats& s, const RunInfo& run);
// The same document for an agent that is not running, from the buffer alone: backlog
// per cursor, no source or sink state. "running" is false.
std::string OfflineStatusJson(const buffer::StoreStats& s);
// Renders either document for a person. `now_ns` (ns since epoch) ages the start time.
// A document that does not parse yields a one-line message saying so.
std::string StatusForPerson(std::string_view status_json, int64_t now_ns);

}  // namespace edgeferry::agent
