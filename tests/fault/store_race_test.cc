// The store's flusher encodes sealed segments without the lock. While commits fail
// for a full file system, drop_oldest appends drop the oldest records still in memory.
// Forces the interleaving of the two (issue 12, item 17) with a VFS that fails writes
// with SQLITE_FULL on demand and a hook in the flusher's encode window, and checks
// per seq that every appended record is either read back or counted as dropped.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "edgeferry/buffer/store.h"
#include "powercut_vfs.h"
#include "test_support.h"

namespace edgeferry::buffer {
namespace {

using edgeferry::testing::TempDir;
using edgeferry::testing::WaitUntil;
using namespace std::chrono_literals;

std::string Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(StoreRace, DropOldestDuringACommitRetryLosesNothingUncountedPerSeq) {
  edgeferry::testing::RegisterPowerCutVfs();
  TempDir dir;
  std::atomic<bool> armed{false}, in_window{false}, appender_done{false};
  StoreOptions o;
  o.path = dir / "buffer.db";
  o.sqlite_vfs = edgeferry::testing::kPowerCutVfs;
  o.when_full = FullPolicy::kDropOldest;
  o.segment_max_records = 4;
  o.commit_interval_ns = 3'600'000'000'000;  // segments seal by count only
  o.max_pending_bytes = 16 << 10;           // ~14 records of 1 KB
  o.integrity_check = IntegrityCheck::kNone;
  o.test_hook_encoding = [&] {
    if (!armed.exchange(false)) return;
    // The disk has space again; an appender runs while the flusher encodes the batch.
    edgeferry::testing::FailWritesWithFull(false);
    in_window = true;
    WaitUntil([&] { return appender_done.load(); }, 500ms);
  };
  auto opened = Store::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = **opened;
  std::map<uint64_t, std::string> appended;  // seq -> payload
  int n = 0;
  auto append = [&] {
    Record r{n, "p", "t", ContentType::kBinary, Noise(1000, static_cast<uint32_t>(n))};
    ++n;
    auto seq = store.Append(r);
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    appended[*seq] = r.payload;
  };
  for (int i = 0; i < 8; ++i) append();
  ASSERT_TRUE(store.Flush().ok());
  const uint64_t durable = appended.rbegin()->first;

  edgeferry::testing::FailWritesWithFull(true);
  for (int i = 0; i < 40; ++i) append();  // commits fail: the oldest in memory are dropped
  ASSERT_FALSE(store.Stats().writable);
  ASSERT_GT(store.Stats().dropped.at("disk_full"), 0u);

  armed = true;  // the next retry (within 1 s) runs the hook
  ASSERT_TRUE(WaitUntil([&] { return in_window.load(); }, 5s));
  for (int i = 0; i < 8; ++i) append();  // under the old code these dropped segments being written
  appender_done = true;
  const Status flushed = store.Flush();
  EXPECT_TRUE(flushed.ok()) << flushed.ToString();
  const uint64_t dropped = store.Stats().dropped.at("disk_full");
  EXPECT_TRUE(store.Close().ok());

  auto reopened = Store::Open(o);
  ASSERT_TRUE(reopened.ok());
  std::map<uint64_t, std::string> got;
  std::vector<StoredRecord> batch;
  for (uint64_t after = 0;;) {
    ASSERT_TRUE((*reopened)->ReadAfter(after, ReadLimits{100, 1 << 30}, &batch).ok());
    if (batch.empty()) break;
    for (auto& r : batch) got[r.seq] = r.record.payload;
    after = batch.back().seq;
  }
  EXPECT_EQ((*reopened)->Stats().dropped.at("disk_full"), dropped) << "the drop count was committed";
  // Drops take the oldest uncommitted records and no commit succeeded in between: the
  // dropped seqs are exactly durable+1 .. durable+dropped; every other seq reads back.
  for (const auto& [seq, payload] : appended) {
    const bool counted_dropped = seq > durable && seq <= durable + dropped;
    if (counted_dropped) {
      EXPECT_EQ(got.count(seq), 0u) << "seq " << seq << " counted as dropped but also delivered";
    } else {
      ASSERT_EQ(got.count(seq), 1u) << "seq " << seq << " lost without being counted";
      EXPECT_EQ(got.at(seq), payload) << seq;
    }
  }
  EXPECT_EQ(appended.size(), got.size() + dropped) << "appended = delivered + dropped";
  edgeferry::testing::FailWritesWithFull(false);
}

}  // namespace
}  // namespace edgeferry::buffer
