// Health rules beyond "the process is alive": a source whose recent input is mostly
// dead-lettered, a sink whose oldest unacknowledged record is too old. The rules are
// pure functions of counters and times, so `edgeferry status`, /healthz and the unit
// tests evaluate them the same way. docs/configuration.md ([health]) and
// docs/operations.md ("Watching it") describe them for operators.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "edgeferry/thread_annotations.h"

namespace edgeferry::agent {

// [health] in the configuration.
struct HealthRules {
  int64_t window_ns = 300'000'000'000;   // the recent window the dead-letter rule looks at
  int dead_letter_percent = 90;          // unhealthy at or above this share of inputs, 1..100
  uint64_t min_inputs = 20;              // fewer inputs in the window than this: never flagged
  int64_t max_lag_ns = 3'600'000'000'000;  // default for every sink; 0 = the lag rule is off
  std::map<std::string, int64_t> sink_max_lag_ns;  // per-sink override (sinks.<name>.max_lag)
};

// What a source did in the window: every input either stored, dead-lettered or refused.
struct SourceWindowCounts {
  uint64_t inputs = 0;          // records handed to the buffer or its dead letter queue
  uint64_t dead_lettered = 0;   // of those, dead-lettered
};

// The reason a source is unhealthy by the dead-letter rule, or nullopt.
std::optional<std::string> SourceDeadLetterProblem(const std::string& source, const SourceWindowCounts& window,
                                                   const HealthRules& rules);

// The reason a sink is unhealthy by the lag rule, or nullopt. `oldest_unacked_ns`: wall
// clock (ns since epoch) when the first record the sink has not acknowledged was stored,
// 0 when it has acknowledged everything; `now_ns` the wall clock now.
std::optional<std::string> SinkLagProblem(const std::string& sink, int64_t oldest_unacked_ns, int64_t now_ns,
                                          const HealthRules& rules);

// Counts of inputs and dead letters in a sliding window, in kBuckets time buckets (the
// window moves a bucket at a time, so it covers between window - window/kBuckets and
// window). Times are monotonic ns supplied by the caller. Thread-safe.
class SlidingWindowCounter {
 public:
  static constexpr int kBuckets = 30;
  explicit SlidingWindowCounter(int64_t window_ns);
  void Add(int64_t now_ns, bool dead_lettered) EXCLUDES(mu_);
  SourceWindowCounts Sum(int64_t now_ns) const EXCLUDES(mu_);

 private:
  struct Bucket {
    int64_t index = -1;  // now_ns / bucket_ns_ when it was filled; stale buckets are skipped
    SourceWindowCounts counts;
  };
  const int64_t bucket_ns_;
  mutable Mutex mu_;
  std::array<Bucket, kBuckets> buckets_ GUARDED_BY(mu_);
};

}  // namespace edgeferry::agent
