// Power cut model: a child process appends records through a VFS that keeps an image
// of every file as of its last fsync; the child is SIGKILLed and the files are rolled
// back to those images, which is what survives a power cut. Every record acknowledged
// in sync durability must survive; the store must open without repair.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include "edgeferry/buffer/store.h"
#include "powercut_vfs.h"
#include "test_support.h"

namespace edgeferry::buffer {
namespace {

using edgeferry::testing::TempDir;
using Clock = std::chrono::steady_clock;

std::string Payload(uint64_t i) { return "{\"reading\":" + std::to_string(i) + ",\"t\":21.5}"; }

struct Ack {
  uint64_t seq;
  uint64_t index;
};

// Forks a child that appends records until killed, reporting (seq, index) after each
// Append returns. Kills it after `run` and returns the acks with their arrival times.
std::vector<std::pair<Ack, Clock::time_point>> RunAndCut(const StoreOptions& o, std::chrono::milliseconds run) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto store = Store::Open(o);
    if (!store.ok()) _exit(2);
    for (uint64_t i = 0;; ++i) {
      auto seq = (*store)->Append(Record{static_cast<int64_t>(i), "plant", "t", ContentType::kJson, Payload(i)});
      if (!seq.ok()) _exit(3);
      const Ack a{*seq, i};
      if (write(fds[1], &a, sizeof(a)) != sizeof(a)) _exit(4);
    }
  }
  close(fds[1]);
  std::vector<std::pair<Ack, Clock::time_point>> acks;
  const auto deadline = Clock::now() + run;
  Ack a{};
  while (Clock::now() < deadline && read(fds[0], &a, sizeof(a)) == sizeof(a)) acks.push_back({a, Clock::now()});
  kill(pid, SIGKILL);
  while (read(fds[0], &a, sizeof(a)) == sizeof(a)) acks.push_back({a, Clock::now()});
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return acks;
}

std::map<uint64_t, std::string> ReadBack(const StoreOptions& o, StoreStats* stats) {
  auto store = Store::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  std::map<uint64_t, std::string> got;
  if (!store.ok()) return got;
  *stats = (*store)->Stats();
  std::vector<StoredRecord> batch;
  uint64_t after = 0;
  do {
    EXPECT_TRUE((*store)->ReadAfter(after, ReadLimits{1000, 1 << 30}, &batch).ok());
    for (const auto& r : batch) got[r.seq] = r.record.payload;
    if (!batch.empty()) after = batch.back().seq;
  } while (!batch.empty());
  return got;
}

TEST(PowerCut, EveryRecordAcknowledgedInSyncModeSurvives) {
  edgeferry::testing::RegisterPowerCutVfs();
  uint64_t total_acked = 0;
  for (int round = 0; round < 6; ++round) {
    TempDir dir;
    StoreOptions o;
    o.path = dir / "buffer.db";
    o.durability = Durability::kSync;
    o.sqlite_vfs = edgeferry::testing::kPowerCutVfs;
    const auto acks = RunAndCut(o, std::chrono::milliseconds(150 + 70 * round));
    ASSERT_FALSE(acks.empty());
    edgeferry::testing::SimulatePowerCut(o.path);
    StoreOptions reopen = o;
    reopen.sqlite_vfs.clear();
    StoreStats stats;
    const auto got = ReadBack(reopen, &stats);
    EXPECT_EQ(stats.quarantined, 0u) << "the store opens without repair";
    for (const auto& [a, t] : acks) {
      ASSERT_TRUE(got.count(a.seq)) << "round " << round << ": acknowledged seq " << a.seq << " lost";
      ASSERT_EQ(got.at(a.seq), Payload(a.index));
    }
    total_acked += acks.size();
    std::printf("[ power cut ] sync round %d: %zu acknowledged, %zu survived\n", round, acks.size(), got.size());
  }
  EXPECT_GT(total_acked, 100u);
}

TEST(PowerCut, NormalModeKeepsEverythingOlderThanTheSyncWindowAndNoHoles) {
  edgeferry::testing::RegisterPowerCutVfs();
  TempDir dir;
  StoreOptions o;
  o.path = dir / "buffer.db";
  o.commit_interval_ns = 20'000'000;
  o.sync_interval_ns = 100'000'000;
  o.sqlite_vfs = edgeferry::testing::kPowerCutVfs;
  const auto acks = RunAndCut(o, std::chrono::milliseconds(2500));
  const auto cut = acks.back().second;
  edgeferry::testing::SimulatePowerCut(o.path);
  StoreOptions reopen = o;
  reopen.sqlite_vfs.clear();
  StoreStats stats;
  const auto got = ReadBack(reopen, &stats);
  EXPECT_EQ(stats.quarantined, 0u);
  // What survives is a prefix: no holes.
  uint64_t expect = got.empty() ? 0 : got.begin()->first;
  for (const auto& [seq, payload] : got) ASSERT_EQ(seq, expect++);
  // Everything acknowledged longer ago than commit + sync interval (+ slack for a
  // flusher thread starved on a loaded sanitizer build) survives.
  size_t must = 0, lost = 0;
  for (const auto& [a, t] : acks) {
    if (t < cut - std::chrono::milliseconds(20 + 100 + 900)) {
      ++must;
      if (!got.count(a.seq)) ++lost;
    }
  }
  EXPECT_GT(must, 0u) << "the run is longer than the window";
  EXPECT_EQ(lost, 0u) << "of " << must << " records acknowledged before the window";
  std::printf("[ power cut ] normal: %zu acknowledged, %zu survived (window 120 ms, checked with 1 s of slack)\n",
              acks.size(), got.size());
}

}  // namespace
}  // namespace edgeferry::buffer
