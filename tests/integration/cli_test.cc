// The edgeferry command line: exit codes, config errors, stats, SIGTERM behaviour.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

TEST(Cli, CheckAcceptsTheExampleAndRejectsABadConfigWithExitCode78) {
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", SourceDir() + "/examples/edgeferry.toml"}, &out), 0)
      << out;
  EXPECT_NE(out.find("OK (gateway gw-example-01, 1 sources, 1 sinks"), std::string::npos) << out;
  TempDir dir;
  WriteFile(dir / "bad.toml", "[gateway]\nid = \"gw\"\n[sources.plant]\ntype = \"mqtt\"\ntopics = [\"a\"]\nqos = 3\n");
  for (const char* cmd : {"check", "run"}) {
    EXPECT_EQ(RunCommand({EdgeferryBinary(), cmd, "--config", dir / "bad.toml"}, &out), 78) << cmd;
    EXPECT_NE(out.find("sources.plant.qos: must be 0, 1 or 2 (got 3)"), std::string::npos) << out;
  }
  // 2^32 + 1: once read as a 64-bit integer and cast to int, it ran as QoS 1.
  WriteFile(dir / "wrap.toml", "[gateway]\nid = \"gw\"\n[sources.plant]\ntype = \"mqtt\"\ntopics = [\"a\"]\nqos = 4294967297\n");
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", dir / "wrap.toml"}, &out), 78) << out;
  EXPECT_NE(out.find("sources.plant.qos: must be 0, 1 or 2 (got 4294967297)"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", dir / "missing.toml"}, &out), 78);
  EXPECT_NE(out.find("cannot read the configuration file"), std::string::npos) << out;
}

TEST(Cli, BufferStatsWithoutAStoreFailsClearly) {
  TempDir dir;
  WriteFile(dir / "c.toml", "[gateway]\nid = \"gw\"\ndata_dir = \"" + dir.path() + "/nothing\"\n");
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "buffer", "stats", "--config", dir / "c.toml"}, &out), 74);
  EXPECT_NE(out.find("no store at"), std::string::npos) << out;
}

// SIGTERM seals and commits the open segment even when no sink has taken the records.
TEST(Cli, SigtermCommitsTheOpenSegmentAndExitsZero) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-term"
data_dir = "@DATA@"
[log]
stats_interval = "100ms"
[buffer]
commit_interval = "60s"
segment_max_records = 100000
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["t/#"]
)");
  ASSERT_TRUE(agent.Start());
  {
    mqtt::async_client pub(broker.uri(), "cli-pub");
    pub.connect()->wait();
    for (int i = 0; i < 100; ++i) pub.publish("t/x", "{\"i\":" + std::to_string(i) + "}", 1, false)->wait();
    pub.disconnect()->wait();
  }
  ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("stored=100 ") != std::string::npos; },
                        std::chrono::seconds(10)))
      << agent.Log();
  const auto before = agent.BufferStats();
  EXPECT_EQ(before["records"], 0) << "nothing committed yet: the segment is open for 60 s";
  EXPECT_EQ(agent.Terminate(), 0) << agent.Log();
  EXPECT_NE(agent.Log().find("stopped cleanly"), std::string::npos);
  const auto after = agent.BufferStats();
  EXPECT_EQ(after["records"], 100);
  EXPECT_EQ(after["appended_total"], 100);
}

}  // namespace
}  // namespace edgeferry::testing
