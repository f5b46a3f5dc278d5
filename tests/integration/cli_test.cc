// The edgeferry command line: exit codes, config errors, stats, SIGTERM behaviour.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

TEST(Cli, CheckAcceptsTheExampleAndRejectsABadConfigWithExitCode78) {
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", SourceDir() + "/examples/edgeferry.toml"}, &out), 0)
      << out;
  // The example leaves gateway.id unset: the host name applies (else one from /etc/machine-id).
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  const std::string expected_id = std::string(host).empty() || std::string(host) == "localhost" ? "gw-" : host;
  EXPECT_NE(out.find("OK (gateway " + expected_id), std::string::npos) << out;
  EXPECT_NE(out.find(", 1 sources, 1 sinks"), std::string::npos) << out;
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

TEST(Cli, VersionFlagAndSubcommandPrintTheVersionAndExitZero) {
  // The version as CMakeLists.txt declares it, read independently of the build.
  std::smatch m;
  const std::string cmake = ReadFile(SourceDir() + "/CMakeLists.txt");
  ASSERT_TRUE(std::regex_search(cmake, m, std::regex(R"(project\(edgeferry VERSION ([0-9.]+))")));
  const std::string version = m[1];
  // The commit: `git describe --always --dirty`, or "unknown" outside a checkout.
  const std::regex line("edgeferry " + std::regex_replace(version, std::regex(R"(\.)"), R"(\.)") +
                        R"( \((unknown|[0-9a-f]{7,40}(-dirty)?|v?[0-9][^ ()]*)\)\n)");
  std::string out, sub;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "--version"}, &out), 0) << out;
  EXPECT_TRUE(std::regex_match(out, line)) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "version"}, &sub), 0) << sub;
  EXPECT_EQ(sub, out);
  EXPECT_EQ(RunCommand({ReplayBinary(), "--version"}, &out), 0) << out;
  EXPECT_EQ(out, "edgeferry-replay " + sub.substr(std::string("edgeferry ").size()));
  // Without either, a subcommand is still required: a usage error, sysexits' EX_USAGE.
  EXPECT_EQ(RunCommand({EdgeferryBinary()}, &out), 64) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--no-such-flag"}, &out), 64) << out;
  EXPECT_NE(out.find("--no-such-flag"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "move", "--sink", "s"}, &out), 64) << "--seq is required: " << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "--help"}, &out), 0) << out;
}

TEST(Cli, ConfigGoesBeforeOrAfterTheSubcommandAndDefaultsToEdgeferryConfig) {
  TempDir dir;
  WriteFile(dir / "c.toml", "[gateway]\nid = \"gw-cli\"\ndata_dir = \"" + dir.path() + "/nothing\"\n");
  std::string out;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {EdgeferryBinary(), "-c", dir / "c.toml", "check"},
           {EdgeferryBinary(), "--config", dir / "c.toml", "check"},
           {EdgeferryBinary(), "check", "-c", dir / "c.toml"},
           {EdgeferryBinary(), "-c", dir / "missing.toml", "check", "--config", dir / "c.toml"}}) {
    EXPECT_EQ(RunCommand(argv, &out), 0) << argv[1] << " " << argv[2] << ": " << out;
    EXPECT_NE(out.find("OK (gateway gw-cli, 0 sources, 0 sinks"), std::string::npos) << out;
  }
  // Nested subcommands too: this config has no buffer, so stats fails on the store, not the flag.
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {EdgeferryBinary(), "-c", dir / "c.toml", "buffer", "stats", "--json"},
           {EdgeferryBinary(), "buffer", "stats", "--json", "--config", dir / "c.toml"}}) {
    EXPECT_EQ(RunCommand(argv, &out), 74) << out;
    EXPECT_NE(out.find("no store at " + dir.path() + "/nothing"), std::string::npos) << out;
  }
  // EDGEFERRY_CONFIG is the default; -c wins over it.
  ASSERT_EQ(::setenv("EDGEFERRY_CONFIG", (dir / "c.toml").c_str(), 1), 0);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check"}, &out), 0) << out;
  EXPECT_NE(out.find("OK (gateway gw-cli"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "-c", dir / "missing.toml"}, &out), 78) << out;
  EXPECT_NE(out.find(dir / "missing.toml"), std::string::npos) << out;
  ASSERT_EQ(::setenv("EDGEFERRY_CONFIG", (dir / "missing.toml").c_str(), 1), 0);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check"}, &out), 78) << out;
  EXPECT_NE(out.find(dir / "missing.toml" + ": cannot read the configuration file"), std::string::npos) << out;
  ::unsetenv("EDGEFERRY_CONFIG");
}

TEST(Cli, VariablesIncludesAndTheExampleIdInTheRealBinary) {
  TempDir dir;
  WriteFile(dir / "c.toml", "include = [\"conf.d/*.toml\"]\n[gateway]\nid = \"${EF_TEST_GW}\"\ndata_dir = \"" +
                                dir.path() + "/data\"\n");
  std::filesystem::create_directories(dir / "conf.d");
  WriteFile(dir / "conf.d/sink.toml", "[sinks.local]\ntype = \"outbox\"\n");
  std::string out;
  ::unsetenv("EF_TEST_GW");
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "-c", dir / "c.toml"}, &out), 78) << out;
  EXPECT_NE(out.find("gateway.id: the environment variable EF_TEST_GW is not set"), std::string::npos) << out;
  ASSERT_EQ(::setenv("EF_TEST_GW", "gw-from-env", 1), 0);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "-c", dir / "c.toml"}, &out), 0) << out;
  EXPECT_NE(out.find("OK (gateway gw-from-env, 0 sources, 1 sinks"), std::string::npos) << out;
  // The documented example id: the agent refuses to start.
  ASSERT_EQ(::setenv("EF_TEST_GW", "gw-example-01", 1), 0);
  for (const char* cmd : {"check", "run"}) {
    EXPECT_EQ(RunCommand({EdgeferryBinary(), cmd, "-c", dir / "c.toml"}, &out), 78) << cmd << ": " << out;
    EXPECT_NE(out.find("gateway.id: \"gw-example-01\" is the documentation's example"), std::string::npos) << out;
  }
  ::unsetenv("EF_TEST_GW");
}

// The README's hello world sets no gateway.id: it must pass `check` as printed.
TEST(Cli, TheReadmeHelloWorldConfigIsValid) {
  const std::string readme = ReadFile(SourceDir() + "/README.md");
  const size_t start = readme.find("```toml\n# hello.toml");
  ASSERT_NE(start, std::string::npos) << "README: no hello world block";
  const size_t body = readme.find('\n', start) + 1;
  const size_t end = readme.find("```", body);
  ASSERT_NE(end, std::string::npos);
  TempDir dir;
  WriteFile(dir / "hello.toml", readme.substr(body, end - body));
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "-c", dir / "hello.toml"}, &out), 0) << out;
  EXPECT_NE(out.find(", 1 sources, 1 sinks"), std::string::npos) << out;
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
