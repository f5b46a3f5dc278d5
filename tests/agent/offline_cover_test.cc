// OfflineCover: the rate over the window and the cover it gives, against figures worked
// out by hand; Histogram: bucket edges as Prometheus reads them (le = less or equal).
#include "edgeferry/agent/offline_cover.h"

#include <gtest/gtest.h>

#include <cmath>

#include "edgeferry/histogram.h"

namespace edgeferry::agent {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(OfflineCover, UnknownUntilTwoSamplesFiveSecondsApart) {
  OfflineCover c;
  EXPECT_FALSE(c.PayloadBytesPerSecond());
  c.Sample(100 * kSecond, 0);
  c.Sample(104 * kSecond, 4000);
  EXPECT_FALSE(c.PayloadBytesPerSecond()) << "4 s is too short a span";
  EXPECT_FALSE(c.CoverSeconds(1'000'000, 2.0));
  c.Sample(105 * kSecond, 5000);
  ASSERT_TRUE(c.PayloadBytesPerSecond());
  EXPECT_DOUBLE_EQ(*c.PayloadBytesPerSecond(), 1000.0);
}

TEST(OfflineCover, CoverIsRoomOverTheDiskRate) {
  OfflineCover c;
  c.Sample(0, 0);
  c.Sample(10 * kSecond, 36'000);  // 3,600 payload bytes/s
  // A quarter of a disk byte per payload byte: 900 disk bytes/s; 3,240,000 bytes of room last 3,600 s.
  EXPECT_DOUBLE_EQ(*c.CoverSeconds(3'240'000, 0.25), 3600.0);
  // Unknown: counted as 1, the pessimistic case.
  EXPECT_DOUBLE_EQ(*c.CoverSeconds(3'600'000, 0.0), 1000.0);
  EXPECT_DOUBLE_EQ(*c.CoverSeconds(0, 0.25), 0.0);
}

TEST(OfflineCover, ADiskByteCountsTheDatabasesOverheadOverTheSegments) {
  // 4x compression; 1.25 MB of pages for 1 MB of segments: 0.25 x 1.25.
  EXPECT_DOUBLE_EQ(OfflineCover::DiskBytesPerPayloadByte(4.0, 1'250'000, 1'000'000), 0.3125);
  // Too few segments to measure the overhead: the ratio alone.
  EXPECT_DOUBLE_EQ(OfflineCover::DiskBytesPerPayloadByte(4.0, 1'250'000, 1000), 0.25);
  // A nearly empty store's pages dwarf its segments: clamped at 4x.
  EXPECT_DOUBLE_EQ(OfflineCover::DiskBytesPerPayloadByte(2.0, 100'000'000, 100'000), 2.0);
  EXPECT_DOUBLE_EQ(OfflineCover::DiskBytesPerPayloadByte(0.0, 5, 5), 1.0);
}

TEST(OfflineCover, NoIngestIsInfiniteCover) {
  OfflineCover c;
  c.Sample(0, 500);
  c.Sample(60 * kSecond, 500);
  EXPECT_TRUE(std::isinf(*c.CoverSeconds(1, 1.0)));
}

TEST(OfflineCover, TheRateFollowsTheLastFiveMinutes) {
  OfflineCover c;
  // 10 minutes at 1,000 B/s, then 10 minutes at 100 B/s, sampled every 10 s.
  uint64_t bytes = 0;
  int64_t t = 0;
  for (; t <= 600 * kSecond; t += 10 * kSecond, bytes += 10'000) c.Sample(t, bytes);
  bytes -= 10'000;
  t -= 10 * kSecond;
  for (int i = 0; i < 60; ++i) {
    t += 10 * kSecond;
    bytes += 1'000;
    c.Sample(t, bytes);
  }
  // The window keeps one sample at or just past 5 min old: 300 s at 100 B/s.
  EXPECT_NEAR(*c.PayloadBytesPerSecond(), 100.0, 1.0);
}

TEST(OfflineCover, AReadingOlderThanTheNewestIsIgnored) {
  OfflineCover c;
  c.Sample(0, 0);
  c.Sample(10 * kSecond, 1000);
  c.Sample(20 * kSecond, 500);  // read before the previous sample, on another thread
  c.Sample(5 * kSecond, 1500);
  EXPECT_DOUBLE_EQ(*c.PayloadBytesPerSecond(), 100.0);
  c.Sample(20 * kSecond, 3000);
  EXPECT_DOUBLE_EQ(*c.PayloadBytesPerSecond(), 150.0);
}

TEST(Histogram, BucketsAreUpperInclusiveAndTheRestIsInf) {
  Histogram h;
  h.ObserveNs(5'000'000);           // exactly 0.005 s: first bucket
  h.ObserveNs(5'000'001);           // just over: second (0.01)
  h.ObserveNs(2 * 86400 * kSecond);  // two days: above every bound
  h.ObserveNs(-kSecond);            // a clock stepped back: 0
  EXPECT_EQ(h.counts[0], 2u);
  EXPECT_EQ(h.counts[1], 1u);
  EXPECT_EQ(h.counts[Histogram::kBoundsSeconds.size()], 1u);
  EXPECT_EQ(h.count, 4u);
  EXPECT_NEAR(h.sum_seconds, 0.005 + 0.005000001 + 172800.0, 1e-9);
}

}  // namespace
}  // namespace edgeferry::agent
