#include "edgeferry/agent/health.h"

#include <fmt/format.h>

#include "edgeferry/agent/agent.h"

namespace edgeferry::agent {

namespace {
constexpr int64_t kSecNs = 1'000'000'000;

// "90s", "5m", "2h": the unit the operator most likely wrote.
std::string ShortDuration(int64_t ns) {
  const int64_t s = ns / kSecNs;
  if (s >= 3600 && s % 3600 == 0) return fmt::format("{}h", s / 3600);
  if (s >= 60 && s % 60 == 0) return fmt::format("{}m", s / 60);
  if (s >= 1) return fmt::format("{}s", s);
  return fmt::format("{}ms", ns / 1'000'000);
}

// An age precise enough to compare with a limit: "2.3s", "4m05s", "1h02m".
std::string Age(int64_t ns) {
  const int64_t s = ns / kSecNs;
  if (s < 60) return fmt::format("{:.1f}s", static_cast<double>(ns) / kSecNs);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
}
}  // namespace

std::optional<std::string> SourceDeadLetterProblem(const std::string& source, const SourceWindowCounts& window,
                                                   const HealthRules& rules) {
  if (window.inputs == 0 || window.inputs < rules.min_inputs) return std::nullopt;
  // Integer comparison: dead * 100 >= percent * inputs, no rounding at the threshold.
  if (window.dead_lettered * 100 < static_cast<uint64_t>(rules.dead_letter_percent) * window.inputs) {
    return std::nullopt;
  }
  return fmt::format("source {}: {} of {} records in the last {} dead-lettered ({}%, limit {}%)", source,
                     window.dead_lettered, window.inputs, ShortDuration(rules.window_ns),
                     window.dead_lettered * 100 / window.inputs, rules.dead_letter_percent);
}

std::optional<std::string> SinkLagProblem(const std::string& sink, int64_t oldest_unacked_ns, int64_t now_ns,
                                          const HealthRules& rules) {
  const auto it = rules.sink_max_lag_ns.find(sink);
  const int64_t max_lag = it != rules.sink_max_lag_ns.end() ? it->second : rules.max_lag_ns;
  if (max_lag <= 0 || oldest_unacked_ns <= 0) return std::nullopt;
  const int64_t lag = now_ns - oldest_unacked_ns;
  if (lag <= max_lag) return std::nullopt;
  return fmt::format("sink {}: oldest unacknowledged record stored {} ago (max_lag {})", sink, Age(lag),
                     ShortDuration(max_lag));
}

SlidingWindowCounter::SlidingWindowCounter(int64_t window_ns)
    : bucket_ns_(std::max<int64_t>(1, window_ns / kBuckets)) {}

void SlidingWindowCounter::Add(int64_t now_ns, bool dead_lettered) {
  const int64_t index = now_ns / bucket_ns_;
  MutexLock l(mu_);
  Bucket& b = buckets_[static_cast<size_t>(index % kBuckets)];
  if (b.index != index) b = Bucket{index, {}};
  b.counts.inputs += 1;
  if (dead_lettered) b.counts.dead_lettered += 1;
}

SourceWindowCounts SlidingWindowCounter::Sum(int64_t now_ns) const {
  const int64_t index = now_ns / bucket_ns_;
  SourceWindowCounts sum;
  MutexLock l(mu_);
  for (const Bucket& b : buckets_) {
    if (b.index < 0 || b.index > index || index - b.index >= kBuckets) continue;
    sum.inputs += b.counts.inputs;
    sum.dead_lettered += b.counts.dead_lettered;
  }
  return sum;
}

std::vector<std::string> HealthProblems(const AgentStats& stats, const HealthRules& rules, int64_t now_ns) {
  std::vector<std::string> problems;
  for (const auto& [name, window] : stats.source_windows) {
    if (auto p = SourceDeadLetterProblem(name, window, rules)) problems.push_back(std::move(*p));
  }
  // Records lost while the agent runs (not the TTL's, which the operator chose).
  uint64_t lost = 0;
  std::string by_reason;
  for (const auto& [reason, n] : stats.dropped_in_window) {
    if (reason == "ttl" || n == 0) continue;
    lost += n;
    by_reason += fmt::format("{}{} {}", by_reason.empty() ? "" : ", ", reason, n);
  }
  if (lost > 0) {
    problems.push_back(fmt::format("buffer: {} records dropped in the last {} ({}); see edgeferry buffer stats",
                                   lost, ShortDuration(rules.window_ns), by_reason));
  }
  for (const auto& cursor : stats.buffer.cursors) {
    if (!stats.sinks.count(cursor.name)) continue;  // a removed sink's cursor, kept for a grace period
    if (auto p = SinkLagProblem(cursor.name, cursor.oldest_unacked_stored_ns, now_ns, rules)) {
      problems.push_back(std::move(*p));
    }
  }
  return problems;
}

}  // namespace edgeferry::agent
