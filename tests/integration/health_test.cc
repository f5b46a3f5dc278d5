// `edgeferry status` health rules ([health]) against a real agent and a real broker: a
// source whose input is mostly dead-lettered, a sink whose oldest record waits too long,
// and the config keys' validation.
#include <gtest/gtest.h>

#include <chrono>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

using namespace std::chrono_literals;

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Publishes `count` lines (payload `prefix` + i) to `topic`, one message each.
void Publish(const MosquittoBroker& broker, const TempDir& dir, const std::string& topic, const std::string& prefix,
             int count) {
  std::string lines;
  for (int i = 0; i < count; ++i) lines += prefix + std::to_string(i) + "\n";
  WriteFile(dir / "pub.txt", lines);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t " + topic + " -l < " +
                         dir.path() + "/pub.txt")
                            .c_str()),
            0);
}

struct StatusRun {
  int rc = -1;
  std::string text;
  nlohmann::json json;
};

StatusRun Status(const AgentProcess& agent) {
  StatusRun s;
  s.rc = RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &s.text);
  std::string out;
  RunCommand({EdgeferryBinary(), "status", "--json", "--config", agent.config_path()}, &out);
  s.json = nlohmann::json::parse(out, nullptr, false);
  return s;
}

uint64_t Outcomes(const nlohmann::json& src) {
  return src["stored"].get<uint64_t>() + src["dead_lettered"].get<uint64_t>() + src["rejected"].get<uint64_t>();
}

TEST(Health, ASourceFedOnlyJunkIsUnhealthyWithTheReasonUntilGoodDataOutweighsIt) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-health"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(port) + R"(
[health]
window = "10m"
dead_letter_percent = 90
min_inputs = 20
[sources.junk]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["junk/#"]
content_type = "json"
[sources.few]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["few/#"]
content_type = "json"
[sinks.local]
type = "outbox"
linger = "50ms"
)");
  ASSERT_TRUE(agent.Start(2));
  {
    const StatusRun s = Status(agent);
    EXPECT_EQ(s.rc, 0) << s.text;
  }
  Publish(broker, dir, "junk/a", "not json ", 25);
  Publish(broker, dir, "few/a", "not json either ", 5);  // below min_inputs: not flagged
  StatusRun s;
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Status(agent);
        return s.json.is_object() && s.json["sources"]["junk"]["dead_lettered"] == 25 &&
               s.json["sources"]["few"]["dead_lettered"] == 5;
      },
      10s))
      << s.text;
  s = Status(agent);  // both sources' dead letters counted: the verdict now covers all 30
  const std::string reason = "source junk: 25 of 25 records in the last 10m dead-lettered (100%, limit 90%)";
  EXPECT_EQ(s.rc, 1) << s.text;
  EXPECT_NE(s.text.find("UNHEALTHY"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("unhealthy: " + reason + "\n"), std::string::npos) << s.text;
  EXPECT_EQ(s.text.find("source few:"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("last error: dead-lettered: not valid JSON"), std::string::npos) << s.text;
  EXPECT_FALSE(s.json["healthy"].get<bool>());
  EXPECT_EQ(s.json["health_reasons"], nlohmann::json::array({reason}));
  EXPECT_EQ(s.json["health"], reason);
  for (const char* name : {"junk", "few"}) {
    const auto& src = s.json["sources"][name];
    EXPECT_EQ(src["received"].get<uint64_t>(), Outcomes(src)) << name;
    EXPECT_EQ(src["last_error"].get<std::string>().rfind("dead-lettered: not valid JSON", 0), 0u) << src;
  }
  EXPECT_EQ(s.json["sources"]["junk"]["window_inputs"], 25);
  EXPECT_EQ(s.json["sources"]["junk"]["window_dead_lettered"], 25);

  // 250 good records: 25 of 275 (9 %) dead-lettered in the window, healthy again. The
  // last error still names the newest dead letter (no newer connection error).
  Publish(broker, dir, "junk/a", "", 250);  // "0".."249": JSON numbers
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Status(agent);
        return s.json.is_object() && s.json["sources"]["junk"]["stored"] == 250;
      },
      10s))
      << s.text;
  s = Status(agent);
  EXPECT_EQ(s.rc, 0) << s.text;
  EXPECT_TRUE(s.json["healthy"].get<bool>()) << s.text;
  EXPECT_EQ(s.json["health_reasons"], nlohmann::json::array());
  EXPECT_EQ(s.json["sources"]["junk"]["received"], 275);
  EXPECT_EQ(s.json["sources"]["junk"]["received"].get<uint64_t>(), Outcomes(s.json["sources"]["junk"]));
  EXPECT_NE(s.text.find("in 275, stored 250, dead-lettered 25"), std::string::npos) << s.text;
  ASSERT_EQ(agent.Terminate(), 0);
}

TEST(Health, ASinkWhoseOldestRecordWaitsPastMaxLagIsUnhealthy) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  const RefusingPort refusing;  // nothing listens: the cloud sink never delivers
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-lag"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(port) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.local]
type = "outbox"
linger = "50ms"
[sinks.cloud]
type = "http"
url = "http://127.0.0.1:)" + std::to_string(refusing.port()) + R"(/ingest"
linger = "50ms"
retry_base = "50ms"
retry_max = "200ms"
max_lag = "2s"
)");
  ASSERT_TRUE(agent.Start());
  const int64_t before = WallNs();
  Publish(broker, dir, "plant/a", "", 5);  // "0".."4"
  const int64_t published = WallNs();
  StatusRun s;
  ASSERT_TRUE(WaitUntil(
      [&] {
        s = Status(agent);
        return s.json.is_object() && s.json["sinks"]["cloud"]["backlog"] == 5 &&
               s.json["sinks"]["local"]["delivered"] == 5;
      },
      10s))
      << s.text;
  // When the first record was stored: after we started publishing, and at most one
  // commit interval (250 ms) after the last one went out, plus the agent's scheduling.
  const int64_t oldest = s.json["sinks"]["cloud"]["oldest_unacked_ns"].get<int64_t>();
  EXPECT_GE(oldest, before);
  EXPECT_LE(oldest, published + 1'000'000'000);
  EXPECT_EQ(s.json["sinks"]["local"]["oldest_unacked_ns"], 0);
  ASSERT_TRUE(WaitUntil([&] { return (s = Status(agent)).rc == 1; }, 10s)) << s.text;
  EXPECT_GE(WallNs() - oldest, 2'000'000'000) << "flagged before max_lag had passed";
  ASSERT_TRUE(s.json.is_object()) << s.text;
  ASSERT_EQ(s.json["health_reasons"].size(), 1u) << s.json.dump(2);
  const std::string reason = s.json["health_reasons"][0].get<std::string>();
  EXPECT_EQ(reason.rfind("sink cloud: oldest unacknowledged record stored ", 0), 0u) << reason;
  EXPECT_NE(reason.find("s ago (max_lag 2s)"), std::string::npos) << reason;
  EXPECT_NE(s.text.find("unhealthy: sink cloud: oldest unacknowledged record stored "), std::string::npos) << s.text;
  EXPECT_EQ(s.text.find("sink local:"), std::string::npos) << s.text;
  ASSERT_EQ(agent.Terminate(), 0);
}

TEST(Health, BadHealthKeysAreNamedAndExit78) {
  TempDir dir;
  const std::string base = "[gateway]\nid = \"gw\"\n[sinks.local]\ntype = \"outbox\"\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[health]\ndead_letter_percent = 0\n", "health.dead_letter_percent: must be between 1 and 100 (got 0)"},
      {"[health]\nwindow = \"500ms\"\n", "health.window: must be between 1000 ms and 86400000 ms (got 500 ms)"},
      {"[health]\nwindow = \"2d\"\n", "health.window: must be between 1000 ms and 86400000 ms (got 172800000 ms)"},
      {"[health]\nmin_inputs = -1\n", "health.min_inputs: must be between 1 and 1000000000 (got -1)"},
      {"[health]\nmax_lag = 60\n", "health.max_lag: must be a duration"},
      {"[health]\nlag = \"1h\"\n", "health.lag: unknown key"},
  };
  for (const auto& [extra, error] : cases) {
    SCOPED_TRACE(extra);
    WriteFile(dir / "bad.toml", base + extra);
    std::string out;
    for (const char* cmd : {"check", "status"}) {
      EXPECT_EQ(RunCommand({EdgeferryBinary(), cmd, "--config", dir / "bad.toml"}, &out), 78) << cmd << ": " << out;
      EXPECT_NE(out.find(error), std::string::npos) << out;
    }
  }
  WriteFile(dir / "bad.toml", "[gateway]\nid = \"gw\"\n[sinks.local]\ntype = \"outbox\"\nmax_lag = \"soon\"\n");
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", dir / "bad.toml"}, &out), 78) << out;
  EXPECT_NE(out.find("sinks.local.max_lag: must be a duration"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgeferry::testing
