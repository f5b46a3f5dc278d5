// RepeatLimiter with a manual clock: how many occurrences pass, and what is reported
// as held back, window by window.
#include "edgeferry/repeat_limiter.h"

#include <gtest/gtest.h>

#include <thread>

namespace edgeferry {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(RepeatLimiter, LetsTheBurstThroughPerKeyAndReportsTheRestOnceTheWindowEnds) {
  ManualClock clock(0);
  RepeatLimiter limiter(3, 10 * kSecond, clock);
  int passed_a = 0, passed_b = 0;
  for (int i = 0; i < 100; ++i) passed_a += limiter.Allow("a");
  for (int i = 0; i < 2; ++i) passed_b += limiter.Allow("b");
  EXPECT_EQ(passed_a, 3);
  EXPECT_EQ(passed_b, 2);
  EXPECT_TRUE(limiter.TakeEnded().empty()) << "the window has not ended";
  clock.AdvanceNs(10 * kSecond);
  const auto held = limiter.TakeEnded();
  ASSERT_EQ(held.size(), 1u) << "b held nothing back";
  EXPECT_EQ(held[0].key, "a");
  EXPECT_EQ(held[0].held_back, 97u);
  EXPECT_EQ(held[0].window_ns, 10 * kSecond);
  EXPECT_TRUE(limiter.TakeEnded().empty()) << "reported once";
  // A new window lets a new burst through.
  int passed = 0;
  for (int i = 0; i < 5; ++i) passed += limiter.Allow("a");
  EXPECT_EQ(passed, 3);
  const auto at_stop = limiter.TakeAll();
  ASSERT_EQ(at_stop.size(), 1u);
  EXPECT_EQ(at_stop[0].held_back, 2u);
}

TEST(RepeatLimiter, AnEndedWindowThatHeldNothingBackStartsAFreshBurst) {
  ManualClock clock(0);
  RepeatLimiter limiter(2, kSecond, clock);
  EXPECT_TRUE(limiter.Allow("k"));
  clock.AdvanceNs(2 * kSecond);
  EXPECT_TRUE(limiter.Allow("k"));
  EXPECT_TRUE(limiter.Allow("k"));
  EXPECT_FALSE(limiter.Allow("k"));
}

TEST(RepeatLimiter, CountsEveryOccurrenceFromManyThreads) {
  ManualClock clock(0);
  RepeatLimiter limiter(5, kSecond, clock);
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) passed += limiter.Allow("k");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed.load(), 5);
  const auto held = limiter.TakeAll();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].held_back, 3995u);
}

}  // namespace
}  // namespace edgeferry
