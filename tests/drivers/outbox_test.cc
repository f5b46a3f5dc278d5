#include "edgeferry/drivers/outbox/outbox_sink.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"

namespace edgeferry::drivers {
namespace {

namespace fs = std::filesystem;
using edgeferry::testing::TempDir;

std::vector<StoredRecord> Batch(uint64_t first, int n) {
  std::vector<StoredRecord> v;
  for (int i = 0; i < n; ++i) {
    v.push_back({first + i, Record{1, "s", "c", ContentType::kJson, "{\"n\":" + std::to_string(first + i) + "}"}});
  }
  return v;
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(OutboxSink, WritesOneCompressedFileNamedBySeqRangeAndAcksIt) {
  TempDir dir;
  OutboxSink sink({"local", "gw-01", dir / "out", {}, 3});
  ASSERT_TRUE(sink.Start().ok());
  const auto batch = Batch(7, 5);
  const Delivery d = sink.Deliver(batch);
  ASSERT_TRUE(d.error.ok()) << d.error.ToString();
  EXPECT_EQ(d.acked_through, 11u);
  EXPECT_TRUE(d.rejected.empty());
  ASSERT_EQ(Files(dir / "out"),
            std::vector<std::string>{"gw-01-00000000000000000007-00000000000000000011.ndjson.zst"});
  const auto lines = edgeferry::testing::ReadOutboxLines(dir / "out");
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[0].find("\"seq\":7,"), std::string::npos);
  EXPECT_NE(lines[4].find("\"payload\":{\"n\":11}}"), std::string::npos);
}

TEST(OutboxSink, RetryRewritesTheSameFileAndRecoveryFindsTheNewest) {
  TempDir dir;
  OutboxSink sink({"local", "gw-01", dir.path(), {}, 3});
  ASSERT_TRUE(sink.Start().ok());
  EXPECT_EQ(sink.RecoverDeliveredSeq(), 0u);
  ASSERT_TRUE(sink.Deliver(Batch(1, 10)).error.ok());
  ASSERT_TRUE(sink.Deliver(Batch(11, 10)).error.ok());
  ASSERT_TRUE(sink.Deliver(Batch(11, 10)).error.ok());  // a retry after a lost ack
  EXPECT_EQ(Files(dir.path()).size(), 2u);
  EXPECT_EQ(edgeferry::testing::ReadOutboxLines(dir.path()).size(), 20u);
  // Another gateway's files and stray names do not confuse recovery.
  edgeferry::testing::WriteFile(dir / "gw-02-00000000000000000001-00000000000000009999.ndjson.zst", "x");
  edgeferry::testing::WriteFile(dir / "gw-01-notes.txt", "x");
  OutboxSink restarted({"local", "gw-01", dir.path(), {}, 3});
  EXPECT_EQ(restarted.RecoverDeliveredSeq(), 20u);
}

TEST(OutboxSink, RecoveryIgnoresFileNamesWhoseSeqDoesNotFitInsteadOfThrowing) {
  TempDir dir;
  // 20 digits can exceed UINT64_MAX (18446744073709551615): std::stoull threw here.
  edgeferry::testing::WriteFile(dir / "gw-01-00000000000000000001-99999999999999999999.ndjson.zst", "x");
  edgeferry::testing::WriteFile(dir / "gw-01-00000000000000000001-00000000000000000007.ndjson.zst", "x");
  OutboxSink sink({"local", "gw-01", dir.path(), {}, 3});
  EXPECT_EQ(sink.RecoverDeliveredSeq(), 7u);
}

TEST(OutboxSink, StartRemovesTempFilesACrashLeftBehind) {
  TempDir dir;
  edgeferry::testing::WriteFile(dir / ".gw-01-00000000000000000001-00000000000000000009.ndjson.zst.tmp", "half");
  OutboxSink sink({"local", "gw-01", dir.path(), {}, 3});
  ASSERT_TRUE(sink.Start().ok());
  EXPECT_TRUE(Files(dir.path()).empty());
}

TEST(OutboxSink, PlainNdjsonWhenCompressionIsOff) {
  TempDir dir;
  OutboxSink sink({"local", "gw-01", dir.path(), {}, 0});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_TRUE(sink.Deliver(Batch(1, 2)).error.ok());
  const std::string text =
      edgeferry::testing::ReadFile(dir / "gw-01-00000000000000000001-00000000000000000002.ndjson");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_EQ(sink.RecoverDeliveredSeq(), 2u);
}

TEST(OutboxSink, AnUnwritableDirectoryIsARetryableErrorAndNothingIsAcked) {
  TempDir dir;
  edgeferry::testing::WriteFile(dir / "blocker", "a file where the directory should be");
  OutboxSink sink({"local", "gw-01", dir / "blocker", {}, 3});
  EXPECT_FALSE(sink.Start().ok());
  const Delivery d = sink.Deliver(Batch(1, 3));
  EXPECT_TRUE(d.error.IsUnavailable()) << d.error.ToString();
  EXPECT_EQ(d.acked_through, 0u);
}

}  // namespace
}  // namespace edgeferry::drivers
