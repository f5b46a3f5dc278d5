// The [health] rules as pure functions: thresholds, min_inputs, the window, sink lag.
#include "edgeferry/agent/health.h"

#include <gtest/gtest.h>

#include "edgeferry/agent/agent.h"

namespace edgeferry::agent {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(HealthRule, SourceBelowMinInputsIsNeverFlagged) {
  const HealthRules rules;  // 90 %, min 20, 5 m
  EXPECT_FALSE(SourceDeadLetterProblem("ser", {19, 19}, rules));
  EXPECT_FALSE(SourceDeadLetterProblem("ser", {0, 0}, rules));
}

TEST(HealthRule, SourceAtOrAboveThePercentIsFlaggedWithTheCounts) {
  const HealthRules rules;
  // 18 of 20 = 90 %: at the limit.
  EXPECT_EQ(SourceDeadLetterProblem("ser", {20, 18}, rules),
            "source ser: 18 of 20 records in the last 5m dead-lettered (90%, limit 90%)");
  EXPECT_FALSE(SourceDeadLetterProblem("ser", {20, 17}, rules));  // 85 %
  // 19 of 21 = 90.47 % (flagged); 18 of 21 = 85.7 % (not): no rounding up to the limit.
  EXPECT_TRUE(SourceDeadLetterProblem("ser", {21, 19}, rules));
  EXPECT_FALSE(SourceDeadLetterProblem("ser", {21, 18}, rules));
  HealthRules strict = rules;
  strict.dead_letter_percent = 1;
  strict.min_inputs = 1;
  strict.window_ns = 90 * kSec;
  EXPECT_EQ(SourceDeadLetterProblem("a", {1000, 10}, strict),
            "source a: 10 of 1000 records in the last 90s dead-lettered (1%, limit 1%)");
  EXPECT_FALSE(SourceDeadLetterProblem("a", {1000, 9}, strict));
}

TEST(HealthRule, SinkLagUsesTheDefaultOrTheSinksOverride) {
  HealthRules rules;
  rules.max_lag_ns = 3600 * kSec;
  rules.sink_max_lag_ns["fast"] = 2 * kSec;
  const int64_t now = 1'800'000'000 * kSec;
  EXPECT_FALSE(SinkLagProblem("cloud", 0, now, rules));  // nothing unacknowledged
  EXPECT_FALSE(SinkLagProblem("cloud", now - 3600 * kSec, now, rules));  // exactly max_lag
  EXPECT_EQ(SinkLagProblem("cloud", now - 7200 * kSec, now, rules),
            "sink cloud: oldest unacknowledged record stored 2h00m ago (max_lag 1h)");
  EXPECT_EQ(SinkLagProblem("fast", now - 3 * kSec, now, rules),
            "sink fast: oldest unacknowledged record stored 3.0s ago (max_lag 2s)");
  EXPECT_FALSE(SinkLagProblem("fast", now - 2 * kSec, now, rules));
  EXPECT_EQ(SinkLagProblem("fast", now - 2'400'000'000, now, rules),
            "sink fast: oldest unacknowledged record stored 2.4s ago (max_lag 2s)");
  EXPECT_EQ(SinkLagProblem("cloud", now - 3725 * kSec, now, rules),
            "sink cloud: oldest unacknowledged record stored 1h02m ago (max_lag 1h)");
  rules.sink_max_lag_ns["off"] = 0;
  EXPECT_FALSE(SinkLagProblem("off", now - 86400 * kSec, now, rules));
}

TEST(HealthRule, WindowForgetsWhatIsOlderThanTheWindow) {
  SlidingWindowCounter w(30 * kSec);  // 30 buckets of 1 s
  const int64_t t0 = 1000 * kSec + kSec / 2;
  for (int i = 0; i < 10; ++i) w.Add(t0, /*dead_lettered=*/i < 3);
  EXPECT_EQ(w.Sum(t0).inputs, 10u);
  EXPECT_EQ(w.Sum(t0).dead_lettered, 3u);
  w.Add(t0 + 20 * kSec, true);
  EXPECT_EQ(w.Sum(t0 + 29 * kSec).inputs, 11u);  // both buckets inside
  const auto later = w.Sum(t0 + 30 * kSec);     // the first bucket has left
  EXPECT_EQ(later.inputs, 1u);
  EXPECT_EQ(later.dead_lettered, 1u);
  // Its slot reused by a newer bucket starts from zero.
  w.Add(t0 + 30 * kSec, false);
  EXPECT_EQ(w.Sum(t0 + 30 * kSec).inputs, 2u);
  EXPECT_EQ(w.Sum(t0 + 60 * kSec).inputs, 0u);
}

TEST(HealthRule, AgentProblemsCoverSourcesAndConfiguredSinksOnly) {
  HealthRules rules;
  rules.max_lag_ns = 10 * kSec;
  const int64_t now = 1'800'000'000 * kSec;
  AgentStats s;
  s.source_windows["good"] = {100, 0};
  s.source_windows["junk"] = {100, 100};
  s.sinks["cloud"] = {};
  s.buffer.cursors.push_back({"cloud", 5, 10, now - 60 * kSec});
  s.buffer.cursors.push_back({"removed", 0, 10, now - 600 * kSec});  // a removed sink's cursor in its grace period
  const auto problems = HealthProblems(s, rules, now);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "source junk: 100 of 100 records in the last 5m dead-lettered (100%, limit 90%)",
                          "sink cloud: oldest unacknowledged record stored 1m00s ago (max_lag 10s)"}));
}

// Found by review: a buffer dropping records at the cap was "healthy" once the junk
// that filled it aged out of the dead-letter window.
TEST(HealthRule, RecordsTheBufferDroppedInTheWindowAreAProblemButTtlExpiryIsNot) {
  HealthRules rules;
  AgentStats s;
  s.dropped_in_window = {{"cap", 2660}, {"ttl", 50}, {"disk_full", 0}};
  EXPECT_EQ(HealthProblems(s, rules, 0),
            (std::vector<std::string>{"buffer: 2660 records dropped in the last 5m (cap 2660); see edgeferry buffer stats"}));
  s.dropped_in_window = {{"ttl", 50}};
  EXPECT_TRUE(HealthProblems(s, rules, 0).empty());
}

}  // namespace
}  // namespace edgeferry::agent
