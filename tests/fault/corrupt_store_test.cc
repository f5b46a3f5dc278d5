// A corrupt store at start: a truncated file and garbage pages are quarantined by the
// running agent (logged, counted in stats) and a fresh store takes over; a WAL with
// garbage frames is recovered by SQLite up to the last good commit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "agent_process.h"
#include "edgeferry/buffer/store.h"
#include "test_support.h"

namespace edgeferry::testing {
namespace {

namespace fs = std::filesystem;

void FillStore(const std::string& path, int n) {
  buffer::StoreOptions o;
  o.path = path;
  auto store = std::move(buffer::Store::Open(o)).value();
  std::mt19937 rng(5);
  for (int i = 0; i < n; ++i) {
    std::string payload(300, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    ASSERT_TRUE(store->Append(Record{i, "plant", "t", ContentType::kBinary, payload}).ok());
  }
  ASSERT_TRUE(store->Close().ok());
}

void Garbage(const std::string& path, long offset, size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  std::mt19937 rng(9);
  for (size_t i = 0; i < n; ++i) f.put(static_cast<char>(rng()));
}

struct Damage {
  std::string name;
  std::function<void(const std::string&)> apply;
};
void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

class CorruptAtStart : public ::testing::TestWithParam<Damage> {};

TEST_P(CorruptAtStart, AgentQuarantinesReportsAndKeepsRunning) {
  TempDir dir;
  fs::create_directories(dir / "data");
  FillStore(dir / "data/buffer.db", 2000);
  GetParam().apply(dir / "data/buffer.db");
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-corrupt"
data_dir = "@DATA@"
[sinks.local]
type = "outbox"
)");
  ASSERT_TRUE(agent.Start(0));
  EXPECT_NE(agent.Log().find("corrupt store quarantined to"), std::string::npos) << agent.Log();
  const auto stats = agent.BufferStats();
  EXPECT_EQ(stats["quarantined"], 1);
  EXPECT_NE(stats["last_quarantine"].get<std::string>().find("quarantine/buffer.db."), std::string::npos);
  EXPECT_GE(stats["next_seq"].get<uint64_t>(), 2001u) << "seq continues above the quarantined store";
  size_t kept = 0;
  for (const auto& e : fs::directory_iterator(dir / "data/quarantine")) kept += fs::file_size(e.path()) > 0;
  EXPECT_GE(kept, 1u) << "the damaged file is kept for inspection";
  EXPECT_EQ(agent.Terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Damages, CorruptAtStart,
    ::testing::Values(Damage{"truncated", [](const std::string& p) { fs::resize_file(p, fs::file_size(p) / 2); }},
                      Damage{"garbage_header", [](const std::string& p) { Garbage(p, 0, 4096); }},
                      Damage{"garbage_pages", [](const std::string& p) { Garbage(p, 65536, 32768); }}),
    [](const auto& p) { return p.param.name; });

TEST(CorruptWal, GarbageFramesAreDiscardedAndTheStoreKeepsTheCommitsBefore) {
  TempDir dir;
  buffer::StoreOptions o;
  o.path = dir / "buffer.db";
  o.durability = buffer::Durability::kSync;  // one WAL commit per record
  const pid_t pid = fork();
  if (pid == 0) {
    auto store = std::move(buffer::Store::Open(o)).value();
    // Few enough commits to stay below the WAL auto-checkpoint: they all live in the WAL.
    for (int i = 0; i < 40; ++i) (void)store->Append(Record{i, "plant", "t", ContentType::kText, std::string(100, 'a')});
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const auto wal = o.path + "-wal";
  ASSERT_GT(fs::file_size(wal), 40'000u);
  Garbage(wal, static_cast<long>(fs::file_size(wal) / 2), 4096);
  o.durability = buffer::Durability::kNormal;
  auto store = buffer::Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const auto stats = (*store)->Stats();
  EXPECT_EQ(stats.quarantined, 0u) << "a bad WAL tail is not corruption: SQLite stops at the first bad frame";
  EXPECT_GT(stats.records, 0u);
  EXPECT_LT(stats.records, 40u);
  std::vector<StoredRecord> all;
  ASSERT_TRUE((*store)->ReadAfter(0, buffer::ReadLimits{1000, 1 << 30}, &all).ok());
  ASSERT_EQ(all.size(), stats.records);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, i + 1) << "a prefix, no holes";
  EXPECT_GT(*(*store)->Append(Record{1, "p", "t", ContentType::kText, "x"}), 40u) << "seq never reused";
  std::printf("[ corrupt ] WAL damaged after 40 sync commits: %llu records kept\n",
              static_cast<unsigned long long>(stats.records));
}

}  // namespace
}  // namespace edgeferry::testing
