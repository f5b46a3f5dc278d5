// `edgeferry check --connect`: can every source and sink of a configuration reach its
// broker, device or destination now? Each component's read-only probe (Source::Probe,
// Sink::Probe in drivers/probe.h) runs on a fresh, never-started driver instance, so a
// running agent with the same configuration is not disturbed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edgeferry/agent/config.h"
#include "edgeferry/drivers/probe.h"

namespace edgeferry::agent {

struct ComponentCheck {
  std::string kind;  // "source" or "sink"
  std::string name;  // as configured, e.g. "plant"
  std::string type;  // "mqtt", "serial", "outbox", "http", "kinesis", "s3"
  drivers::ProbeResult result;
  int64_t elapsed_ns = 0;  // how long the probe took
};

struct ConnectCheckReport {
  std::vector<ComponentCheck> components;  // sources, then sinks, each as AgentConfig lists them
  // A probe overran its bound and its thread is still running (left behind): the
  // caller should leave with std::_Exit after printing, not run static destructors.
  bool abandoned = false;
  // True when no component failed (ok or skipped).
  bool ok() const;
};

// Probes every source and sink of `config`, all at once (one thread each); each probe
// is bounded by `timeout_ns` (> 0). A probe that has not returned by timeout_ns + 2 s is
// reported as failed and abandoned. Details carry no credentials: URLs are redacted and
// configured passwords and header values are masked. Never throws (beyond bad_alloc).
ConnectCheckReport CheckConnections(const AgentConfig& config, int64_t timeout_ns);

// One component to probe (ProbeAll): who it is and the call that probes it. `probe`
// owns what it uses (the driver): it runs on a thread of its own, which may outlive
// ProbeAll when the probe overruns (abandoned).
struct ProbeTarget {
  std::string kind, name, type;
  std::function<drivers::ProbeResult(int64_t timeout_ns)> probe;
};

// The engine of CheckConnections, public for tests: runs every probe at once, waits up
// to timeout_ns + 2 s, reports the ones still running as failed (abandoned); masks
// `secrets` and redacts URLs in every detail. Components in the order given.
ConnectCheckReport ProbeAll(std::vector<ProbeTarget> targets, int64_t timeout_ns,
                            const std::vector<std::string>& secrets = {});

// One line per component, e.g.
//   source mqtt plant: ok (connected to tcp://127.0.0.1:1883 in 12 ms)
//   sink kinesis cloud: FAILED: no AWS credentials (looked in: ...) [3 ms]
//   sink s3 archive: skipped (no probe for this type)
// then a summary line.
std::string ConnectCheckText(const ConnectCheckReport& report);

// {"ok":bool,"components":[{"kind","name","type","ok","skipped","detail","ms"}]}, one line.
std::string ConnectCheckJson(const ConnectCheckReport& report);

}  // namespace edgeferry::agent
