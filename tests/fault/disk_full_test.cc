// The store on a small real file system (a 4 MiB tmpfs mounted by the test): the
// configured policy holds when the disk fills, nothing crashes or corrupts, and the
// store recovers when space frees.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "edgeferry/buffer/store.h"
#include "test_support.h"

namespace edgeferry::buffer {
namespace {

using edgeferry::testing::TempDir;
using edgeferry::testing::WaitUntil;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs v {};
  statvfs(dir.c_str(), &v);
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      if (edgeferry::testing::UnderCi()) FAIL() << "the disk-full test mounts a tmpfs and needs root";
      GTEST_SKIP() << "SKIPPED (developer machine): mounting a tmpfs needs root";
    }
    mnt_ = dir_ / "small";
    fs::create_directories(mnt_);
    ASSERT_EQ(mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=4m"), 0) << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2(mnt_.c_str(), MNT_DETACH);
  }
  StoreOptions Options() {
    StoreOptions o;
    o.path = mnt_ + "/buffer.db";
    o.max_bytes = 1ull << 30;  // the cap is not what stops it here
    o.segment_max_records = 16;
    o.commit_interval_ns = 10'000'000;
    return o;
  }
  // Appends n records of 4 KB noise; returns how many were accepted.
  int Fill(Store& store, int n, int from = 0) {
    int accepted = 0;
    for (int i = from; i < from + n; ++i) {
      if (store.Append(Record{i, "plant", "t", ContentType::kBinary, Noise(4000, static_cast<uint32_t>(i))}).ok()) {
        ++accepted;
      }
      if (i % 16 == 15) (void)store.Flush();
    }
    return accepted;
  }
  TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
};

TEST_F(DiskFull, WithAFreeSpaceFloorDropOldestKeepsAcceptingAndTheStoreStaysSound) {
  auto o = Options();
  o.min_free_bytes = 2 << 20;
  auto store = std::move(Store::Open(o)).value();
  EXPECT_EQ(Fill(*store, 2500), 2500) << "drop_oldest never refuses";  // 10 MB into 4 MiB
  ASSERT_TRUE(WaitUntil([&] { return store->Stats().pending_records == 0; }, 10s));
  const auto stats = store->Stats();
  EXPECT_GT(stats.dropped.at("disk_full"), 0u);
  EXPECT_EQ(stats.records + stats.dropped.at("disk_full"), 2500u);
  EXPECT_GT(FreeBytes(mnt_), 512u * 1024) << "the floor held, less a WAL's worth";
  ASSERT_TRUE(store->Close().ok());
  auto reopened = std::move(Store::Open(Options())).value();  // quick_check at open
  EXPECT_EQ(reopened->Stats().quarantined, 0u);
  std::vector<StoredRecord> all, batch;
  uint64_t after = 0;
  do {
    ASSERT_TRUE(reopened->ReadAfter(after, ReadLimits{100, 1 << 30}, &batch).ok());
    all.insert(all.end(), batch.begin(), batch.end());
    if (!batch.empty()) after = batch.back().seq;
  } while (!batch.empty());
  ASSERT_EQ(all.size(), stats.records);
  EXPECT_EQ(all.back().seq, 2500u) << "the newest survive";
  EXPECT_EQ(all.back().record.payload, Noise(4000, 2499));
  std::printf("[ disk full ] floor 2 MiB on a 4 MiB fs: 2500 x 4 KB appended, %llu kept, %llu dropped (disk_full)\n",
              static_cast<unsigned long long>(stats.records),
              static_cast<unsigned long long>(stats.dropped.at("disk_full")));
}

// Another program fills the disk: nothing can be written (WAL mode needs free bytes
// even to delete). The store keeps running, holds records in memory up to its limit,
// drops the oldest of those beyond it (drop_oldest), and catches up when space frees.
TEST_F(DiskFull, FilledByAnotherProgramTheStoreSurvivesAndRecovers) {
  auto o = Options();
  o.max_pending_bytes = 1 << 20;
  auto store = std::move(Store::Open(o)).value();
  EXPECT_EQ(Fill(*store, 100), 100);
  ASSERT_TRUE(store->Flush().ok());
  {
    std::ofstream filler(mnt_ + "/filler", std::ios::binary);
    const std::string chunk(64 << 10, 'f');
    while (filler.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
    }
  }
  EXPECT_EQ(Fill(*store, 1000, 100), 1000) << "still accepting";
  auto stats = store->Stats();
  EXPECT_GT(stats.dropped.at("disk_full"), 0u) << "memory is bounded: the oldest waiting records went";
  EXPECT_LE(stats.pending_records * 4000, 2u << 20);
  fs::remove(mnt_ + "/filler");
  ASSERT_TRUE(WaitUntil([&] { return store->Stats().pending_records == 0; }, 15s)) << "commits resume";
  stats = store->Stats();
  EXPECT_EQ(stats.records + stats.dropped.at("disk_full"), 1100u);
  ASSERT_TRUE(store->Close().ok());
  auto reopened = std::move(Store::Open(Options())).value();
  EXPECT_EQ(reopened->Stats().quarantined, 0u);
  EXPECT_EQ(reopened->Stats().records, stats.records);
  std::printf("[ disk full ] filled by another program: 1100 appended, %llu kept, %llu dropped while full\n",
              static_cast<unsigned long long>(stats.records),
              static_cast<unsigned long long>(stats.dropped.at("disk_full")));
}

TEST_F(DiskFull, AFreeSpaceFloorStopsGrowthUnderRejectNewToo) {
  auto o = Options();
  o.min_free_bytes = 2 << 20;
  o.when_full = FullPolicy::kRejectNew;
  auto store = std::move(Store::Open(o)).value();
  const int accepted = Fill(*store, 1500);
  EXPECT_LT(accepted, 1500);
  ASSERT_TRUE(WaitUntil([&] { return store->Stats().pending_records == 0; }, 10s));
  EXPECT_EQ(store->Stats().dropped.at("reject_new"), static_cast<uint64_t>(1500 - accepted));
  EXPECT_GT(FreeBytes(mnt_), 512u * 1024) << "the floor held, less a WAL's worth";
}

TEST_F(DiskFull, RejectNewRefusesWhileFullAndAcceptsWhenSpaceFrees) {
  // Leave ~1.5 MiB to the store: a filler file takes the rest.
  {
    std::ofstream filler(mnt_ + "/filler", std::ios::binary);
    const std::string mb(1 << 20, 'f');
    for (int i = 0; i < 2; ++i) filler << mb;
  }
  auto o = Options();
  o.when_full = FullPolicy::kRejectNew;
  auto store = std::move(Store::Open(o)).value();
  const int accepted = Fill(*store, 1000);
  EXPECT_LT(accepted, 1000);
  ASSERT_TRUE(WaitUntil([&] { return store->Stats().full; }, 10s));
  EXPECT_EQ(store->Stats().dropped.at("reject_new"), static_cast<uint64_t>(1000 - accepted));
  fs::remove(mnt_ + "/filler");  // an operator frees space
  ASSERT_TRUE(WaitUntil([&] { return !store->Stats().full; }, 10s));
  ASSERT_TRUE(WaitUntil([&] { return store->Stats().pending_records == 0; }, 10s)) << "pending commits went through";
  EXPECT_GT(Fill(*store, 50, 5000), 0) << "accepting again";
  const auto stats = store->Stats();
  EXPECT_EQ(stats.dropped.at("cap") + stats.dropped.at("disk_full"), 0u) << "reject_new never drops what it accepted";
  ASSERT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace edgeferry::buffer
