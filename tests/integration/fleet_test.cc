// Fleet configuration pushes against a real mosquitto: the agent subscribes to
// edgeferry/<gw>/config/desired (retained), validates, applies in place, watches a
// health window, rolls back, and reports on .../config/reported.
#include <gtest/gtest.h>

#include <signal.h>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>

#include "agent_process.h"
#include "cloud_servers.h"
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
  std::string LocalConfig(const std::string& extra_fleet = "", bool allow_unsigned = true,
                          const std::string& pinned = "[]") const {
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
pinned = )" + pinned + "\n" + (allow_unsigned ? "allow_unsigned = true\n" : "") + extra_fleet + R"(
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
  nlohmann::json WaitReport(int64_t version, const std::string& status, const std::string& mentions = "",
                            std::chrono::milliseconds timeout = 10s) {
    nlohmann::json last;
    const bool ok = WaitUntil(
        [&] {
          std::string out;
          RunCommand({FindTool("mosquitto_sub"), "-p", std::to_string(broker_.port()), "-t",
                      "edgeferry/gw-fleet/config/reported", "-C", "1", "-W", "1"},
                     &out);
          last = nlohmann::json::parse(out, nullptr, false);
          return last.is_object() && last.value("version", int64_t{-1}) == version && last.value("status", "") == status &&
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

  // The distinct "i" values an HTTP sink sent to `server` (compression = "none").
  static std::set<int> HttpDelivered(const ScriptedHttpServer& server) {
    std::set<int> values;
    for (const auto& r : server.Requests()) {
      std::istringstream lines(r["body"].get<std::string>());
      for (std::string line; std::getline(lines, line);) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("payload") && j["payload"].contains("i")) values.insert(j["payload"]["i"].get<int>());
      }
    }
    return values;
  }

  // GET /healthz: its HTTP status (0 = no answer within `timeout_ms`) and how long it took.
  std::pair<int, int64_t> Healthz(int timeout_ms = 1000) const {
    drivers::http::HttpClient http({});
    drivers::http::HttpRequest get;
    get.method = "GET";
    get.url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/healthz";
    get.timeout_ms = timeout_ms;
    const auto t0 = Clock::now();
    const int status = http.Send(get).status;
    return {status, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()};
  }

  nlohmann::json State(const AgentProcess& agent) const {
    return nlohmann::json::parse(ReadFile(agent.data_dir() + "/fleet/state.json"), nullptr, false);
  }

  MosquittoBroker broker_;
  TempDir dir_;
  int metrics_port_ = FreeLoopbackPort();
};

TEST_F(FleetTest, AValidPushIsAppliedInPlaceReportedAndLosesNothing) {
  EDGEFERRY_REQUIRE_TOOL("python3");
  TempDir copy_dir;
  ScriptedHttpServer copy(copy_dir);
  ASSERT_TRUE(copy.Start());
  const std::string copy_sink = "[sinks.copy]\ntype = \"http\"\nurl = \"" + copy.url() +
                                "\"\ncompression = \"none\"\nlinger = \"50ms\"\n";
  ::umask(022);  // the fleet files are 0600 all the same
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  Publish(0, 300);
  // v1 adds a second sink and changes the first one's linger: both are rebuilt, the
  // source is untouched, the buffer stays open.
  const auto pushed = Clock::now();
  Push(Document(1, agent, copy_sink));
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
  ASSERT_TRUE(WaitUntil([&] { return HttpDelivered(copy).count(899) == 1; }, 15s)) << agent.Log();
  for (const char* f : {"state.json", "applied.toml", "last-good.toml"}) {
    struct stat st {};
    ASSERT_EQ(::stat((agent.data_dir() + "/fleet/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
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
  Push(Document(3, agent, copy_sink));
  ASSERT_FALSE(WaitReport(3, "applied").is_null()) << agent.Log();
  ASSERT_EQ(agent.Terminate(), 0);
  ASSERT_TRUE(agent.Start());
  EXPECT_NE(agent.Log().find("configuration fleet version 3"), std::string::npos) << agent.Log();
  Publish(900, 950);
  ASSERT_TRUE(WaitUntil([&] { return HttpDelivered(copy).count(949) == 1; }, 15s)) << agent.Log();
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
  AgentProcess agent(dir_, LocalConfig("", true, R"(["buffer"])"));
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
  const RefusingPort refusing;
  const int closed = refusing.port();
  const auto pushed = Clock::now();
  Push(Document(1, agent,
                "[sinks.cloud]\ntype = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(closed) +
                    "/in\"\nlinger = \"50ms\"\nretry_base = \"50ms\"\n"));
  // Records stored after the cloud sink exists: before it, the outbox may have taken
  // the backlog and its segments been deleted, leaving the new sink nothing to fail on.
  ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("apply: starting sink cloud") != std::string::npos; }, 10s))
      << agent.Log();
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
  AgentProcess agent(dir_, LocalConfig("public_key_file = \"" + dir_.path() + "/fleet.pub\"\n", /*allow_unsigned=*/false));
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

TEST_F(FleetTest, UnsignedPushesAreRefusedUnlessTheLocalFileAllowsThemAndCheckWarns) {
  AgentProcess agent(dir_, LocalConfig("", /*allow_unsigned=*/false));
  ASSERT_TRUE(agent.Start());
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", agent.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("warning: [fleet] has no public_key_file: every push will be refused"), std::string::npos) << out;
  Push(Document(1, agent));
  const auto r = WaitReport(0, "rejected", "allow_unsigned");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_EQ(agent.Log().find("fleet: applying"), std::string::npos);
  EXPECT_FALSE(State(agent).is_object() && State(agent).value("highest_version", 0) != 0) << State(agent);
  ASSERT_EQ(agent.Terminate(), 0);
  // Allowed by the file: applied, and `check` says what that means.
  AgentProcess allowed(dir_, LocalConfig());
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--config", allowed.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("warning: fleet.allow_unsigned = true: anyone who can publish"), std::string::npos) << out;
  ASSERT_TRUE(allowed.Start());
  ASSERT_FALSE(WaitReport(1, "applied").is_null()) << allowed.Log();
  EXPECT_EQ(allowed.Terminate(), 0);
}

// Issue 12 item 1: a pushed MQTT sink with password_file = "/etc/hostname" sent that
// file to another broker, then every record.
TEST_F(FleetTest, APushCannotSendALocalFileAsAPasswordToAnotherBroker) {
  MosquittoBroker rogue;
  ASSERT_TRUE(rogue.Start());
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  Push(Document(1, agent, "[sinks.rogue]\ntype = \"mqtt\"\nuri = \"" + rogue.uri() +
                              "\"\nusername = \"x\"\npassword_file = \"/etc/hostname\"\n"));
  auto r = WaitReport(1, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("sinks.rogue.password_file: names a local file or directory"), std::string::npos) << r;
  // The same as JSON, with the key spelled with an escape.
  Push(R"({"version": 2, "gateway": {"id": "gw-fleet", "data_dir": ")" + agent.data_dir() +
       R"("}, "sinks": {"local": {"type": "outbox"}, "rogue": {"type": "mqtt", "uri": ")" + rogue.uri() +
       R"(", "username": "x", "passwor\u0064_file": "/etc/hostname"}}})");
  r = WaitReport(2, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("sinks.rogue.password_file"), std::string::npos) << r;
  // Nothing reached the rogue broker: a subscriber there sees no record.
  Publish(0, 5);
  std::string out;
  RunCommand({FindTool("mosquitto_sub"), "-p", std::to_string(rogue.port()), "-t", "#", "-C", "1", "-W", "2"}, &out);
  EXPECT_EQ(out.find("\"i\""), std::string::npos) << out;
  EXPECT_EQ(agent.Log().find("sink rogue"), std::string::npos) << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
}

// Issue 12 item 1: an HTTP sink's bearer_token_file pointed at the fleet connection's
// password sent "Authorization: Bearer <password>" to the pusher's server.
TEST_F(FleetTest, APushCannotSendALocalTokenToARogueHttpServer) {
  EDGEFERRY_REQUIRE_TOOL("python3");
  TempDir rogue_dir, cloud_dir;
  ScriptedHttpServer rogue(rogue_dir), cloud(cloud_dir);
  ASSERT_TRUE(rogue.Start());
  ASSERT_TRUE(cloud.Start());
  const std::string secret = "s3cr3t-token-" + std::to_string(::getpid());
  WriteFile(dir_ / "token", secret + "\n");
  const std::string cloud_sink = "[sinks.cloud]\ntype = \"http\"\nurl = \"" + cloud.url() +
                                 "\"\ncompression = \"none\"\nlinger = \"50ms\"\nbearer_token_file = \"" +
                                 dir_.path() + "/token\"\n";
  std::string local = LocalConfig();
  local += cloud_sink;
  AgentProcess agent(dir_, local);
  ASSERT_TRUE(agent.Start());
  // A new sink naming the token file.
  Push(Document(1, agent, cloud_sink + "[sinks.steal]\ntype = \"http\"\nurl = \"" + rogue.url() +
                              "\"\nbearer_token_file = \"" + dir_.path() + "/token\"\n"));
  auto r = WaitReport(1, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("sinks.steal.bearer_token_file: names a local file"), std::string::npos) << r;
  // The existing sink keeping its token but sent elsewhere.
  std::string redirected = cloud_sink;
  redirected.replace(redirected.find(cloud.url()), cloud.url().size(), rogue.url());
  Push(Document(2, agent, redirected));
  r = WaitReport(2, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("sinks.cloud.url: pinned"), std::string::npos) << r;
  Publish(0, 10);
  ASSERT_TRUE(WaitUntil([&] { return HttpDelivered(cloud).size() == 10; }, 10s)) << agent.Log();
  EXPECT_EQ(cloud.Requests().front()["headers"].value("authorization", ""), "Bearer " + secret);
  EXPECT_TRUE(rogue.Requests().empty()) << "the rogue server was contacted";
  EXPECT_EQ(ReadFile(rogue.requests_path()).find(secret), std::string::npos);
  EXPECT_EQ(agent.Terminate(), 0);
}

// Issue 12 item 1: an outbox dir outside data_dir was written; metrics.address =
// "0.0.0.0" took effect. Neither is pinned by this file: they are by default.
TEST_F(FleetTest, APushCannotWriteOutsideTheDataDirMoveTheBufferOrExposeMetrics) {
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  const std::string elsewhere = dir_.path() + "/elsewhere";
  Push(Document(1, agent, "[sinks.out]\ntype = \"outbox\"\ndir = \"" + elsewhere + "\"\n"));
  auto r = WaitReport(1, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("sinks.out.dir: names a local file or directory"), std::string::npos) << r;
  Push(Document(2, agent, "", "[metrics]\naddress = \"0.0.0.0\"\nport = " + std::to_string(metrics_port_) + "\n"));
  r = WaitReport(2, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("metrics: pinned"), std::string::npos) << r;
  Push(Document(3, agent, "", "[buffer]\npath = \"" + agent.data_dir() + "/other.db\"\n"));
  r = WaitReport(3, "rejected");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_NE(r["errors"].dump().find("buffer.path: pinned"), std::string::npos) << r;
  Publish(0, 10);
  ASSERT_TRUE(WaitUntil([&] { return Delivered(agent.outbox()).size() == 10; }, 10s)) << agent.Log();
  ASSERT_EQ(agent.Terminate(), 0);
  // After a restart too: nothing pushed took effect.
  ASSERT_TRUE(agent.Start());
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(std::filesystem::exists(elsewhere));
  EXPECT_FALSE(std::filesystem::exists(agent.data_dir() + "/other.db"));
  EXPECT_NE(agent.Log().find("configuration " + agent.config_path()), std::string::npos) << agent.Log();
  EXPECT_EQ(agent.Log().find("0.0.0.0"), std::string::npos) << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
}

// Issue 12 item 2: a retained push 100,000 levels deep crashed the agent on every start.
TEST_F(FleetTest, APushNestedAHundredThousandLevelsIsRejectedUnparsedAndSurvivesRestarts) {
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  const std::string opens(100'000, '['), closes(100'000, ']');
  const std::string pushes[] = {
      "{\"version\": 1, \"a\": " + opens + closes + "}",               // JSON
      "version = 2\na = " + opens + closes + "\n",                     // TOML inline arrays
      "version = 3\n" + [] {                                            // TOML dotted key
        std::string k;
        for (int i = 0; i < 100'000; ++i) k += "a.";
        return k;
      }() + "b = 1\n",
  };
  int version = 1;
  for (const auto& payload : pushes) {
    const size_t pushed_at = agent.Log().size();
    Push(payload);
    ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("nested deeper than 64", pushed_at) != std::string::npos; }, 10s))
        << "push " << version << "\n" << agent.Log().substr(pushed_at);
    // Rejected before any parse, so the version is not known: the report says 0.
    const auto r = WaitReport(0, "rejected", "nested deeper than 64 levels");
    ASSERT_FALSE(r.is_null()) << "push " << version << "\n" << agent.Log();
    EXPECT_EQ(Healthz().first, 200);
    // Restarted with that push still retained on the broker: starts cleanly, rejects again.
    ASSERT_EQ(agent.Terminate(), 0) << agent.Log();
    const size_t from = agent.Log().size();
    ASSERT_TRUE(agent.Start()) << agent.Log();
    ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("nested deeper than 64", from) != std::string::npos; }, 10s))
        << agent.Log().substr(from);
    EXPECT_EQ(Healthz().first, 200);
    ++version;
  }
  EXPECT_EQ(agent.Terminate(), 0);
}

// Issue 12 item 3: a 10-16 MB push stalled the main loop ~24 s and SIGTERM took ~21 s.
TEST_F(FleetTest, ASixteenMegabytePushStallsNeitherHealthzNorStop) {
  // Over the default bound (1 MiB): dropped in the MQTT callback, unread.
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  const std::string big = "version = 1\nnote = \"" + std::string(16 << 20, 'x') + "\"\n";
  Push(big);
  auto r = WaitReport(0, "rejected", "more than fleet.max_push_bytes");
  ASSERT_FALSE(r.is_null()) << agent.Log();
  EXPECT_EQ(Healthz().first, 200);
  // The stop of an agent with no parse in progress, in this build (sanitizers are slow).
  const auto base_t0 = Clock::now();
  ASSERT_EQ(agent.Terminate(), 0);
  const auto base_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - base_t0).count();
  // Allowed by the file (32 MiB): parsed on the worker while /healthz keeps answering,
  // and SIGTERM does not wait for the parse.
  AgentProcess wide(dir_, LocalConfig("max_push_bytes = \"32MiB\"\n"));
  ASSERT_TRUE(wide.Start());  // the retained 16 MB push arrives now and is parsed
  ASSERT_TRUE(WaitUntil([&] { return wide.Log().find("configuration pushes on") != std::string::npos; }, 5s));
  int64_t worst_ms = 0;
  for (int i = 0; i < 20; ++i) {
    const auto [status, ms] = Healthz(1000);
    EXPECT_EQ(status, 200) << "probe " << i;
    worst_ms = std::max(worst_ms, ms);
    std::this_thread::sleep_for(100ms);
  }
  const bool still_parsing = wide.Log().find("fleet: push version 1 rejected") == std::string::npos;
  std::printf("16 MB push being parsed (%s after the probes): slowest /healthz %lld ms\n",
              still_parsing ? "still parsing" : "already handled", static_cast<long long>(worst_ms));
  EXPECT_LT(worst_ms, 1000);
  const auto t0 = Clock::now();
  EXPECT_EQ(wide.Terminate(), 0) << wide.Log();
  const auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  // The agent's own stop, by its log's clock: from the signal to "stopped cleanly".
  const auto logged_ms = [&](const std::string& line) -> int64_t {
    const std::string log = wide.Log();
    const auto at = log.find(line);
    if (at == std::string::npos) return -1;
    const auto start = log.rfind('\n', at);
    const std::string ts = log.substr(start == std::string::npos ? 0 : start + 1, 24);  // 2026-12-02T04:37:18.128Z
    return ((std::stoll(ts.substr(11, 2)) * 60 + std::stoll(ts.substr(14, 2))) * 60 + std::stoll(ts.substr(17, 2))) * 1000 +
           std::stoll(ts.substr(20, 3));
  };
  const int64_t signalled = logged_ms("SIGTERM received"), stopped = logged_ms("stopped cleanly");
  ASSERT_GE(signalled, 0) << wide.Log();
  ASSERT_GE(stopped, 0) << wide.Log();
  const int64_t agent_stop_ms = (stopped - signalled + 86'400'000) % 86'400'000;
  std::printf("SIGTERM during the parse -> stopped cleanly: %lld ms, process gone: %lld ms (with no parse: %lld ms)\n",
              static_cast<long long>(agent_stop_ms), static_cast<long long>(stop_ms), static_cast<long long>(base_ms));
  // The stop waits at most the worker's 0.5 s grace for the parse, which itself takes
  // tens of seconds here.
  EXPECT_LT(agent_stop_ms, 2000) << wide.Log();
  // The process then ends at once; the kernel's teardown of the parse's memory adds to
  // the wait (about 1 s under ThreadSanitizer, whose shadow memory is large). The old
  // bug waited for the whole parse: ~21 s in a release build.
  EXPECT_LT(stop_ms, base_ms + 8000);
  // Stopped on request, not killed by the push: nothing to quarantine at the next start.
  EXPECT_FALSE(std::filesystem::exists(wide.data_dir() + "/fleet/in-progress.json"));
}

// Issue 12 item 4: a rejected push with the largest version blocked every later one.
TEST_F(FleetTest, ARejectedPushWithTheLargestVersionDoesNotBlockLaterPushes) {
  AgentProcess agent(dir_, LocalConfig());
  ASSERT_TRUE(agent.Start());
  Push(Document(1, agent, "", "[sinks.local.bogus]\n"));  // invalid: an unknown key
  ASSERT_FALSE(WaitReport(1, "rejected", "sinks.local.bogus: unknown key").is_null()) << agent.Log();
  std::string doc = Document(1, agent, "", "[sinks.local.bogus]\n");
  doc.replace(0, doc.find('\n'), "version = 9223372036854775807");
  Push(doc);
  ASSERT_FALSE(WaitReport(INT64_MAX, "rejected").is_null()) << agent.Log();
  const auto state = State(agent);
  EXPECT_TRUE(!state.is_object() || state.value("highest_version", int64_t{0}) == 0) << state;
  Push(Document(2, agent));
  ASSERT_FALSE(WaitReport(2, "applied").is_null()) << agent.Log();
  EXPECT_EQ(State(agent).value("highest_version", int64_t{0}), 2);
  EXPECT_EQ(agent.Terminate(), 0);
}

// A push that kills the agent while it is handled comes back on every start (retained):
// it is quarantined, reported, and the agent starts on its last-known-good configuration.
TEST_F(FleetTest, APushThatKillsTheAgentIsQuarantinedAndNotHandledAgain) {
  AgentProcess agent(dir_, LocalConfig(), {"EDGEFERRY_TEST_FLEET_KILL_ON=kill-me-while-decoding"});
  ASSERT_TRUE(agent.Start());
  Push(Document(1, agent, "", "[log]\nlevel = \"debug\"\n"));
  ASSERT_FALSE(WaitReport(1, "applied").is_null()) << agent.Log();
  Push(Document(2, agent, "", "# kill-me-while-decoding\n"));
  ASSERT_TRUE(WaitUntil([&] { return !agent.Running(); }, 10s)) << "the test hook did not kill the agent";
  EXPECT_TRUE(std::filesystem::exists(agent.data_dir() + "/fleet/in-progress.json"));
  // Restarted against the same retained message.
  const size_t from = agent.Log().size();
  ASSERT_TRUE(agent.Start()) << agent.Log();
  const auto r = WaitReport(0, "quarantined");
  ASSERT_FALSE(r.is_null()) << agent.Log().substr(from);
  ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("ignoring a quarantined push", from) != std::string::npos; }, 10s))
      << agent.Log().substr(from);
  EXPECT_TRUE(agent.Running());
  EXPECT_NE(agent.Log().find("configuration fleet version 1", from), std::string::npos) << agent.Log().substr(from);
  EXPECT_EQ(State(agent)["quarantined"].size(), 1u) << State(agent);
  // Later pushes are handled as usual.
  Push(Document(3, agent));
  ASSERT_FALSE(WaitReport(3, "applied").is_null()) << agent.Log().substr(from);
  EXPECT_EQ(agent.Terminate(), 0);
}

}  // namespace
}  // namespace edgeferry::testing
