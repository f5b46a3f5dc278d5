// Fleet configuration pushes against a real mosquitto: the agent subscribes to
// edgeferry/<gw>/config/desired (retained), validates, applies in place, watches a
// health window, rolls back, and reports on .../config/reported.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <set>

#include "agent_process.h"
#include "edgeferry/drivers/http/http_client.h"

namespace edgeferry::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGEFERRY_REQUIRE_TOOL("mosquitto");
    EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
    EDGEFERRY_REQUIRE_TOOL("mosquitto_sub");
    ASSERT_TRUE(broker_.Start());
  }

  // The gateway's own file: management on the test broker, a short health window.
  std::string LocalConfig(const std::string& extra_fleet = "") const {
    return R"(
[gateway]
id = "gw-fleet"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(metrics_port_) + R"(
[fleet]
uri = ")" + broker_.uri() + R"("
health_window = "1500ms"
removed_sink_grace = "3s"
pinned = ["buffer", "metrics"]
)" + extra_fleet + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker_.uri() + R"("
topics = ["plant/#"]
[sinks.local]
type = "outbox"
linger = "50ms"
)";
  }

  // A pushed document: the same schema, with a version. "@DATA@" as in AgentProcess.
  std::string Document(int version, const AgentProcess& agent, const std::string& sinks_extra = "",
                       const std::string& more = "") const {
    std::string doc = "version = " + std::to_string(version) + R"(
[gateway]
id = "gw-fleet"
data_dir = ")" + agent.data_dir() + R"("
[sources.plant]
type = "mqtt"
uri = ")" + broker_.uri() + R"("
topics = ["plant/#"]
[sinks.local]
type = "outbox"
linger = "100ms"
)" + sinks_extra + more;
    return doc;
  }

  void Push(const std::string& payload) {
    WriteFile(dir_ / "push.txt", payload);
    std::string out;
    ASSERT_EQ(RunCommand({FindTool("mosquitto_pub"), "-p", std::to_string(broker_.port()), "-q", "1", "-r", "-t",
                          "edgeferry/gw-fleet/config/desired", "-f", dir_ / "push.txt"},
                         &out),
              0)
        << out;
  }

  // The retained report, once it is about `version` with `status` (and mentions
  // `mentions`, to tell reports about the same version apart); null on timeout.
  nlohmann::json WaitReport(int version, const std::string& status, const std::string& mentions = "",
                            std::chrono::milliseconds timeout = 10s) {
    nlohmann::json last;
    const bool ok = WaitUntil(
        [&] {
          std::string out;
          RunCommand({FindTool("mosquitto_sub"), "-p", std::to_string(broker_.port()), "-t",
                      "edgeferry/gw-fleet/config/reported", "-C", "1", "-W", "1"},
                     &out);
          last = nlohmann::json::parse(out, nullptr, false);
          return last.is_object() && last.value("version", -1) == version && last.value("status", "") == status &&
                 last["errors"].dump().find(mentions) != std::string::npos;
        },
        timeout);
    EXPECT_TRUE(ok) << "no report of " << status << " for version " << version << "; last: " << last.dump();
    return ok ? last : nlohmann::json();
  }

  void Publish(int from, int to) {
    std::string lines;
    for (int i = from; i < to; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
    WriteFile(dir_ / "pub.txt", lines);
    ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker_.port()) + " -q 1 -t plant/a -l < " +
                           dir_.path() + "/pub.txt")
                              .c_str()),
              0);
  }

  // The distinct "i" values in an outbox, and whether any seq appeared twice.
  std::set<int> Delivered(const std::string& outbox, bool* duplicate_seq = nullptr) {
    std::set<int> values;
    std::set<uint64_t> seqs;
    for (const auto& r : OutboxRecords(outbox)) {
      values.insert(r["payload"]["i"].get<int>());
      if (!seqs.insert(r["seq"].get<uint64_t>()).second && duplicate_seq) *duplicate_seq = true;
    }
    return values;
  }

  MosquittoBroker broker_;
  TempDir dir_;
  int metrics_port_ = FreeLoopbackPort();
};

TEST_F(FleetTest, AValidPushIsAppliedInPlaceReportedAndLosesNothing) {
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  Publish(0, 300);
  // v1 adds a second sink and changes the first one's linger: both are rebuilt, the
  // source is untouched, the buffer stays open.
  const auto pushed = Clock::now();
  Push(Document(1, agent, "[sinks.copy]\ntype = \"outbox\"\ndir = \"" + agent.data_dir() + "/copy\"\nlinger = \"50ms\"\n"));
  Publish(300, 600);  // while the push is applied
  const auto report = WaitReport(1, "applied");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - pushed).count();
  std::printf("push -> applied report: %lld ms (health window 1500 ms)\n", static_cast<long long>(ms));
  EXPECT_EQ(report["applied_version"], 1);
  EXPECT_TRUE(report["errors"].empty());
  Publish(600, 900);
  bool dup = false;
  ASSERT_TRUE(WaitUntil([&] { return Delivered(agent.outbox(), &dup).size() == 900; }, 15s))
      << Delivered(agent.outbox()).size() << " of 900\n" << agent.Log();
  EXPECT_FALSE(dup);
  // The new sink starts at the backlog's beginning: it gets everything still buffered.
  ASSERT_TRUE(WaitUntil([&] { return Delivered(agent.data_dir() + "/copy").count(899) == 1; }, 15s)) << agent.Log();
  EXPECT_NE(agent.Log().find("apply: sink local changed: restarting it at its cursor"), std::string::npos);
  EXPECT_NE(agent.Log().find("apply: starting sink copy"), std::string::npos);
  EXPECT_EQ(agent.Log().find("apply: source plant"), std::string::npos) << "an unchanged source was restarted";
  EXPECT_EQ(agent.Log().find("buffer: " + agent.data_dir() + "/buffer.db opened", 200), std::string::npos)
      << "the buffer was reopened";
  EXPECT_EQ(agent.BufferStats()["cursors"].size(), 2u);
  // The applied version is visible to people and to Prometheus.
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("fleet version 1 in force (last push: applied version 1)"), std::string::npos) << out;
  drivers::http::HttpClient http({});
  drivers::http::HttpRequest get;
  get.method = "GET";
  get.url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
  EXPECT_NE(http.Send(get).body.find("\nedgeferry_config_version 1\n"), std::string::npos);

  // v2 removes the copy sink: its cursor stays for the grace period (3 s), then goes.
  Push(Document(2, agent));
  ASSERT_FALSE(WaitReport(2, "applied").is_null()) << agent.Log();
  EXPECT_EQ(agent.BufferStats()["cursors"].size(), 2u) << "the removed sink's cursor went before its grace period";
  ASSERT_TRUE(WaitUntil([&] { return agent.BufferStats()["cursors"].size() == 1; }, 10s)) << agent.Log();

  // A restart runs the applied push (linger 100 ms), not the file (50 ms)...
  Push(Document(3, agent, "[sinks.copy]\ntype = \"outbox\"\ndir = \"" + agent.data_dir() + "/copy\"\n"));
  ASSERT_FALSE(WaitReport(3, "applied").is_null()) << agent.Log();
  ASSERT_EQ(agent.Terminate(), 0);
  ASSERT_TRUE(agent.Start());
  EXPECT_NE(agent.Log().find("configuration fleet version 3"), std::string::npos) << agent.Log();
  Publish(900, 950);
  ASSERT_TRUE(WaitUntil([&] { return Delivered(agent.data_dir() + "/copy").count(949) == 1; }, 15s)) << agent.Log();
  EXPECT_EQ(Delivered(agent.outbox()).size(), 950u);
  // ... and the retained push, delivered again on reconnect, is not applied twice.
  EXPECT_EQ(agent.Log().find("fleet: applying version 3", agent.Log().rfind("configuration fleet version 3")),
            std::string::npos);
  // Told otherwise, it runs the file.
  ASSERT_EQ(agent.Terminate(), 0);
  ChildProcess file_run({EdgeferryBinary(), "run", "--ignore-applied", "--config", agent.config_path()}, dir_ / "file.log");
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(dir_ / "file.log").find(" info: running") != std::string::npos; }, 10s));
  EXPECT_NE(ReadFile(dir_ / "file.log").find("configuration " + agent.config_path()), std::string::npos);
  EXPECT_EQ(file_run.Stop(SIGTERM, 10s), 0) << ReadFile(dir_ / "file.log");
}

TEST_F(FleetTest, InvalidPinnedAndOlderPushesAreRejectedAndChangeNothing) {
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  Push(Document(5, agent, "", "[buffer]\nwhen_full = \"drop_newest\"\n"));
  auto r = WaitReport(5, "rejected");
  ASSERT_FALSE(r.is_null());
  EXPECT_NE(r["errors"].dump().find("buffer: pinned by the gateway's local configuration"), std::string::npos) << r;
  // Not pinned, but invalid: the key path is named.
  Push(Document(6, agent, "[sinks.cloud]\ntype = \"http\"\nurl = \"ftp://x\"\n"));
  r = WaitReport(6, "rejected");
  ASSERT_FALSE(r.is_null());
  EXPECT_NE(r["errors"].dump().find("sinks.cloud.url: must start with http://"), std::string::npos) << r;
  // The management connection is always pinned.
  Push(Document(7, agent, "", "[fleet]\nuri = \"tcp://127.0.0.1:1\"\n"));
  r = WaitReport(7, "rejected");
  ASSERT_FALSE(r.is_null());
  EXPECT_NE(r["errors"].dump().find("fleet: pinned"), std::string::npos) << r;
  // A valid JSON document is applied...
  const std::string json = R"({"version": 8, "gateway": {"id": "gw-fleet", "data_dir": ")" + agent.data_dir() +
                           R"("}, "sources": {"plant": {"type": "mqtt", "uri": ")" +
                           broker_.uri() + R"(", "topics": ["plant/#"]}}, "sinks": {"local": {"type": "outbox", "linger": "20ms"}}})";
  Push(json);
  ASSERT_FALSE(WaitReport(8, "applied").is_null());
  // ... and an older version afterwards is a replay.
  Push(Document(4, agent));
  r = WaitReport(4, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("older than version 8"), std::string::npos) << r;
  EXPECT_EQ(r["applied_version"], 8);
  Publish(0, 20);
  ASSERT_TRUE(WaitUntil([&] { return Delivered(agent.outbox()).size() == 20; }, 10s)) << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
}

TEST_F(FleetTest, AnUnhealthyPushIsRolledBackWithinItsHealthWindow) {
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  Publish(0, 100);
  const int closed = FreeLoopbackPort();
  const auto pushed = Clock::now();
  Push(Document(1, agent,
                "[sinks.cloud]\ntype = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(closed) +
                    "/in\"\nlinger = \"50ms\"\nretry_base = \"50ms\"\n"));
  Publish(100, 200);
  const auto r = WaitReport(1, "rolled_back");
  ASSERT_FALSE(r.is_null());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - pushed).count();
  std::printf("push -> rolled_back report: %lld ms (health window 1500 ms)\n", static_cast<long long>(ms));
  EXPECT_LT(ms, 1500 + 3000) << "rollback came long after the health window";
  EXPECT_NE(r["errors"].dump().find("sink cloud"), std::string::npos) << r;
  EXPECT_EQ(r["applied_version"], 0);
  // Back on the file's configuration; records flow and none was lost.
  Publish(200, 300);
  bool dup = false;
  ASSERT_TRUE(WaitUntil([&] { return Delivered(agent.outbox(), &dup).size() == 300; }, 15s))
      << Delivered(agent.outbox()).size() << "\n" << agent.Log();
  EXPECT_FALSE(dup);
  // The rolled-back version, still retained on the broker, is not tried again after a restart.
  ASSERT_EQ(agent.Terminate(), 0);
  ASSERT_TRUE(agent.Start());
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(agent.Log().find("fleet: applying version 1", agent.Log().rfind("edgeferry 0.")), std::string::npos)
      << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
}

TEST_F(FleetTest, WithAKeyInstalledOnlyCorrectlySignedPushesAreApplied) {
  EDGEFERRY_REQUIRE_TOOL("openssl");
  std::string out;
  ASSERT_EQ(RunCommand({FindTool("openssl"), "genpkey", "-algorithm", "ed25519", "-out", dir_ / "fleet.key"}, &out), 0) << out;
  ASSERT_EQ(RunCommand({FindTool("openssl"), "pkey", "-in", dir_ / "fleet.key", "-pubout", "-out", dir_ / "fleet.pub"}, &out), 0)
      << out;
  ASSERT_EQ(RunCommand({FindTool("openssl"), "genpkey", "-algorithm", "ed25519", "-out", dir_ / "other.key"}, &out), 0) << out;
  AgentProcess agent(dir_, LocalConfig("public_key_file = \"" + dir_.path() + "/fleet.pub\"\n"));
  ASSERT_TRUE(agent.Start());
  auto sign = [&](const std::string& doc, const std::string& key) {
    WriteFile(dir_ / "doc.toml", doc);
    std::string o;
    EXPECT_EQ(RunCommand({FindTool("openssl"), "pkeyutl", "-sign", "-rawin", "-inkey", dir_ / key, "-in",
                          dir_ / "doc.toml", "-out", dir_ / "doc.sig"},
                         &o),
              0)
        << o;
    EXPECT_EQ(RunCommand({FindTool("openssl"), "base64", "-A", "-in", dir_ / "doc.sig"}, &o), 0);
    return nlohmann::json{{"document", doc}, {"signature", o}}.dump();
  };
  Push(Document(1, agent));  // unsigned
  auto r = WaitReport(0, "rejected");
  ASSERT_FALSE(r.is_null());
  EXPECT_NE(r["errors"].dump().find("not signed"), std::string::npos) << r;
  Push(sign(Document(2, agent), "other.key"));  // signed by someone else
  r = WaitReport(0, "rejected", "does not verify");
  ASSERT_FALSE(r.is_null());
  EXPECT_NE(r["errors"].dump().find("does not verify"), std::string::npos) << r;
  // A signature over other bytes than those sent.
  auto tampered = nlohmann::json::parse(sign(Document(3, agent), "fleet.key"));
  tampered["document"] = Document(3, agent, "", "# one more line\n");
  WriteFile(dir_ / "marker.txt", "");
  Push("not a configuration");  // a marker report, so the next one is known to be new
  ASSERT_FALSE(WaitReport(0, "rejected", "not signed").is_null());
  Push(tampered.dump());
  r = WaitReport(0, "rejected", "does not verify");
  ASSERT_FALSE(r.is_null());
  Push(sign(Document(4, agent), "fleet.key"));
  ASSERT_FALSE(WaitReport(4, "applied").is_null()) << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
}

}  // namespace
}  // namespace edgeferry::testing
