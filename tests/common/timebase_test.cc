// Trustworthy time: records received before the wall clock is synchronized are
// re-based once it is, within one boot (issue 14). The expected receive times come
// from the test's own "true time" line, not from the Rebaser's formula.
#include "edgeferry/timebase.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <thread>
#include <vector>

#include "edgeferry/clock.h"
#include "edgeferry/record.h"

namespace edgeferry {
namespace {

constexpr int64_t kSec = 1'000'000'000;
// The real instant this boot started; the unsynchronized clock believes it is 1970.
constexpr int64_t kTrueBoot = 1'795'000'000 * kSec;  // 2026-11-18
constexpr int64_t kFakeBoot = 12 * kSec;              // what a Pi without an RTC reads

// A clock whose wall reads kFakeBoot + boot time until Sync() steps it to the true time.
struct PiClock {
  ManualClock clock{kFakeBoot};
  PiClock() {
    clock.Reboot("11111111-1111-1111-1111-111111111111", kFakeBoot, /*synced=*/false);
  }
  void Sync() {
    clock.SetWallNs(kTrueBoot + clock.BootNs());
    clock.SetSynchronized(true);
  }
};

Record ReceivedNow(const Clock& clock) {
  Record r;
  StampReceipt(clock, &r);
  return r;
}

TEST(Timebase, ARecordStampedBeforeSyncIsRebasedToTheTrueTimeOfItsReceipt) {
  PiClock pi;
  pi.clock.AdvanceNs(5 * kSec);
  Record early = ReceivedNow(pi.clock);
  EXPECT_EQ(early.ts_source, TsSource::kUnsynced);
  EXPECT_EQ(early.ts_ns, kFakeBoot + 5 * kSec);
  EXPECT_EQ(early.boot_ns, 5 * kSec);
  EXPECT_EQ(early.boot_id, "11111111-1111-1111-1111-111111111111");

  Rebaser rebaser(pi.clock);
  Record copy = early;
  EXPECT_FALSE(rebaser.Rebase(&copy)) << "nothing to re-base on while the clock is unsynchronized";
  EXPECT_EQ(copy.ts_ns, early.ts_ns);

  pi.clock.AdvanceNs(95 * kSec);  // NTP answers 100 s after boot
  pi.Sync();
  pi.clock.AdvanceNs(30 * kSec);  // the link comes back later still
  ASSERT_TRUE(rebaser.Rebase(&early));
  EXPECT_EQ(early.ts_source, TsSource::kRebased);
  EXPECT_EQ(early.ts_ns, kTrueBoot + 5 * kSec);
  EXPECT_TRUE(early.boot_id.empty());
  EXPECT_EQ(early.boot_ns, 0);

  Record late = ReceivedNow(pi.clock);
  EXPECT_EQ(late.ts_source, TsSource::kClock);
  EXPECT_EQ(late.ts_ns, kTrueBoot + 130 * kSec);
  EXPECT_FALSE(rebaser.Rebase(&late)) << "a record stamped by a synchronized clock is left alone";
}

TEST(Timebase, ARebootBetweenReceiptAndSyncLeavesTheRecordUnsyncedAndMarked) {
  PiClock pi;
  pi.clock.AdvanceNs(7 * kSec);
  Record before_reboot = ReceivedNow(pi.clock);
  pi.clock.Reboot("22222222-2222-2222-2222-222222222222", kFakeBoot, /*synced=*/false);
  pi.clock.AdvanceNs(60 * kSec);
  pi.Sync();
  Rebaser rebaser(pi.clock);  // the agent after the reboot
  const Record kept = before_reboot;
  EXPECT_FALSE(rebaser.Rebase(&before_reboot));
  EXPECT_EQ(before_reboot.ts_source, TsSource::kUnsynced);
  EXPECT_EQ(before_reboot.ts_ns, kept.ts_ns);
  EXPECT_EQ(before_reboot.boot_id, "11111111-1111-1111-1111-111111111111");
  EXPECT_EQ(before_reboot.boot_ns, 7 * kSec);
}

TEST(Timebase, TheSyncPointIsKeptSoALaterStepDoesNotMoveEarlierRecordsApart) {
  PiClock pi;
  pi.clock.AdvanceNs(1 * kSec);
  Record a = ReceivedNow(pi.clock);
  pi.clock.AdvanceNs(1 * kSec);
  Record b = ReceivedNow(pi.clock);
  pi.clock.AdvanceNs(8 * kSec);
  pi.Sync();
  Rebaser rebaser(pi.clock);
  ASSERT_TRUE(rebaser.Rebase(&a));
  pi.clock.SetWallNs(pi.clock.NowNs() + 3600 * kSec);  // an operator sets the clock an hour ahead
  ASSERT_TRUE(rebaser.Rebase(&b));
  EXPECT_EQ(a.ts_ns, kTrueBoot + 1 * kSec);
  EXPECT_EQ(b.ts_ns, kTrueBoot + 2 * kSec);
  ASSERT_TRUE(rebaser.sync_point().has_value());
  EXPECT_EQ(rebaser.sync_point()->boot_ns, 10 * kSec);
}

TEST(Timebase, ABootTimeFromADamagedBufferThatWouldOverflowIsLeftUnplaced) {
  PiClock pi;
  pi.Sync();
  Rebaser rebaser(pi.clock);
  Record r;
  r.ts_source = TsSource::kUnsynced;
  r.boot_id = pi.clock.BootId();
  r.boot_ns = std::numeric_limits<int64_t>::min();
  EXPECT_FALSE(rebaser.Rebase(&r));
  EXPECT_EQ(r.ts_source, TsSource::kUnsynced);
}

TEST(Timebase, ARecordWithoutABootIdIsNeverPlaced) {
  PiClock pi;
  pi.Sync();
  Record r;
  r.ts_source = TsSource::kUnsynced;  // from a damaged or hand-made buffer
  r.ts_ns = 42;
  Rebaser rebaser(pi.clock);
  EXPECT_FALSE(rebaser.Rebase(&r));
  EXPECT_EQ(r.ts_ns, 42);
}

TEST(Timebase, ConcurrentRebasesAgreeOnOneSyncPoint) {
  PiClock pi;
  std::vector<Record> records;
  for (int i = 0; i < 400; ++i) {
    pi.clock.AdvanceNs(kSec / 100);
    records.push_back(ReceivedNow(pi.clock));
  }
  pi.Sync();
  Rebaser rebaser(pi.clock);
  // The clock runs on, and is stepped, while the forwarders re-base: every record must
  // still land on the one line of the first sync point.
  std::atomic<bool> done{false};
  std::thread ticker([&] {
    for (int i = 0; !done; ++i) {
      pi.clock.AdvanceNs(kSec / 1000);
      if (i % 7 == 0) pi.clock.SetWallNs(pi.clock.NowNs() + kSec);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < records.size(); i += 4) rebaser.Rebase(&records[i]);
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  ticker.join();
  ASSERT_TRUE(rebaser.sync_point().has_value());
  const int64_t line = rebaser.sync_point()->wall_ns - rebaser.sync_point()->boot_ns;
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].ts_source, TsSource::kRebased) << i;
    EXPECT_EQ(records[i].ts_ns, line + static_cast<int64_t>(i + 1) * (kSec / 100)) << i;
  }
}

TEST(SystemClockTest, KnowsItsBootAndCountsBootTime) {
  const std::string id = SystemClock().BootId();
  EXPECT_EQ(id.size(), 36u) << "from /proc/sys/kernel/random/boot_id";
  const int64_t a = SystemClock().BootNs();
  const int64_t b = SystemClock().BootNs();
  EXPECT_GT(a, 0);
  EXPECT_GE(b, a);
}

TEST(SystemClockTest, ATrustedClockIsAlwaysSynchronized) {
  TrustSystemClock(true);
  EXPECT_TRUE(SystemClock().Synchronized());
  Record r;
  StampReceipt(SystemClock(), &r);
  EXPECT_EQ(r.ts_source, TsSource::kClock);
  EXPECT_TRUE(r.boot_id.empty());
  TrustSystemClock(false);
}

}  // namespace
}  // namespace edgeferry
