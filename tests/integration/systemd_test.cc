// The systemd side of the agent: the sd_notify protocol on a NOTIFY_SOCKET the test
// binds, SIGHUP reload, and the unit file checked by systemd-analyze.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <regex>

#include "agent_process.h"
#include "edgeferry/drivers/http/http_client.h"

namespace edgeferry::testing {
namespace {

using namespace std::chrono_literals;

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
    timeval tv{0, 100'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~NotifySocket() { close(fd_); }
  // Messages received so far, appended to messages().
  const std::vector<std::string>& Poll() {
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd_, buf, sizeof(buf), 0)) > 0) messages_.emplace_back(buf, static_cast<size_t>(n));
    return messages_;
  }
  size_t Count(const std::string& prefix) {
    size_t c = 0;
    for (const auto& m : Poll()) c += m.rfind(prefix, 0) == 0;
    return c;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

TEST(Systemd, NotifiesReadyStatusWatchdogAndStopping) {
  TempDir dir;
  NotifySocket notify(dir / "notify.sock");
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-sd"
data_dir = "@DATA@"
[log]
stats_interval = "1s"
[sinks.local]
type = "outbox"
)",
                     {"NOTIFY_SOCKET=" + dir / "notify.sock", "WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(agent.Start(0));
  ASSERT_TRUE(WaitUntil([&] { return notify.Count("READY=1") == 1; }, 5s));
  ASSERT_TRUE(WaitUntil([&] { return notify.Count("WATCHDOG=1") >= 3; }, 5s)) << "pings at half the 1 s interval";
  ASSERT_TRUE(WaitUntil([&] { return notify.Count("STATUS=") >= 1; }, 5s));
  for (const auto& m : notify.Poll()) {
    if (m.rfind("STATUS=", 0) == 0) {
      EXPECT_TRUE(std::regex_search(m, std::regex("records buffered; local online backlog \\d+"))) << m;
    }
  }
  EXPECT_EQ(agent.Terminate(), 0);
  EXPECT_EQ(notify.Count("STOPPING=1"), 1u);
}

TEST(Systemd, SighupReloadsAValidConfigAndKeepsTheOldOneOnErrors) {
  TempDir dir;
  const std::string base = R"(
[gateway]
id = "gw-hup"
data_dir = "@DATA@"
[sinks.local]
type = "outbox"
)";
  AgentProcess agent(dir, base);
  ASSERT_TRUE(agent.Start(0));
  // An invalid file: rejected with the key path, the agent keeps running.
  WriteFile(agent.config_path(), std::regex_replace(base, std::regex("@DATA@"), agent.data_dir()) +
                                     "[sinks.local.extra]\nbogus = 1\n[buffer]\nwhen_full = \"sometimes\"\n");
  kill(agent.pid(), SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("still running the previous configuration") != std::string::npos; },
                        5s))
      << agent.Log();
  EXPECT_NE(agent.Log().find("buffer.when_full: must be one of"), std::string::npos);
  // A valid one with a second sink: applied without a restart of the process.
  WriteFile(agent.config_path(), std::regex_replace(base, std::regex("@DATA@"), agent.data_dir()) +
                                     "[sinks.archive]\ntype = \"outbox\"\ndir = \"" + agent.data_dir() + "/archive\"\n");
  kill(agent.pid(), SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("configuration reloaded: 0 sources, 2 sinks") != std::string::npos; },
                        10s))
      << agent.Log();
  ASSERT_TRUE(WaitUntil([&] { return agent.BufferStats()["cursors"].size() == 2; }, 5s));
  EXPECT_EQ(agent.Terminate(), 0);
}

std::string Get(int port, const std::string& path, long* status) {
  edgeferry::drivers::http::HttpClient client({});
  edgeferry::drivers::http::HttpRequest req;
  req.method = "GET";
  req.url = "http://127.0.0.1:" + std::to_string(port) + path;
  const auto r = client.Send(req);
  *status = r.status;
  return r.body;
}

TEST(Metrics, ScrapeShowsWhatWasSentAndHealthzIsOk) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-metrics"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(port) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
max_record_bytes = 100
[sinks.local]
type = "outbox"
linger = "100ms"
)");
  ASSERT_TRUE(agent.Start());
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
  lines += std::string(200, 'x') + "\n";  // too big: dead-lettered
  WriteFile(dir / "pub.txt", lines);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t plant/a -l < " + dir.path() +
                         "/pub.txt").c_str()),
            0);
  long status = 0;
  std::string page;
  ASSERT_TRUE(WaitUntil(
      [&] {
        page = Get(port, "/metrics", &status);
        // Delivered is counted just before the cursor is acked: wait for both.
        return page.find("edgeferry_sink_records_delivered_total{sink=\"local\"} 100\n") != std::string::npos &&
               page.find("edgeferry_sink_backlog_records{sink=\"local\"} 0\n") != std::string::npos;
      },
      10s))
      << page;
  EXPECT_EQ(status, 200);
  for (const char* want : {"edgeferry_source_records_received_total{source=\"plant\"} 101\n",
                           "edgeferry_source_records_stored_total{source=\"plant\"} 100\n",
                           "edgeferry_source_records_dead_lettered_total{source=\"plant\"} 1\n",
                           "edgeferry_source_connected{source=\"plant\"} 1\n",
                           "edgeferry_sink_backlog_records{sink=\"local\"} 0\n",
                           "edgeferry_sink_state{sink=\"local\",state=\"online\"} 1\n",
                           "edgeferry_buffer_dead_letters 1\n", "edgeferry_buffer_appended_records_total 100\n",
                           "# TYPE edgeferry_sink_records_delivered_total counter\n",
                           "edgeferry_build_info{version=\""}) {
    EXPECT_NE(page.find(want), std::string::npos) << want << "\n" << page;
  }
  EXPECT_EQ(Get(port, "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  Get(port, "/nope", &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(agent.Terminate(), 0);
}

TEST(Status, ShowsSourcesSinksBacklogAndLastErrorsThenNotRunning) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  const int closed = FreeLoopbackPort();  // nothing listens: the cloud sink fails
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-status"
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
url = "http://127.0.0.1:)" + std::to_string(closed) + R"(/ingest"
linger = "50ms"
)");
  ASSERT_TRUE(agent.Start());
  std::string lines;
  for (int i = 0; i < 25; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
  WriteFile(dir / "pub.txt", lines);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t plant/a -l < " + dir.path() +
                         "/pub.txt").c_str()),
            0);
  std::string out;
  int rc = -1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        rc = RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &out);
        return out.find("backlog 0, delivered 25") != std::string::npos &&
               out.find("cloud          backing_off backlog 25") != std::string::npos;
      },
      10s))
      << out;
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("agent     running 0."), std::string::npos) << out;
  EXPECT_NE(out.find("healthy"), std::string::npos) << out;
  EXPECT_NE(out.find("buffer    25 records"), std::string::npos) << out;
  EXPECT_NE(out.find("source    plant          up       in 25, stored 25"), std::string::npos) << out;
  EXPECT_NE(out.find("last error:"), std::string::npos) << out;  // the cloud sink's connection refused
  EXPECT_NE(out.find(std::to_string(closed)), std::string::npos) << out;

  ASSERT_EQ(RunCommand({EdgeferryBinary(), "status", "--json", "--config", agent.config_path()}, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_TRUE(j["running"].get<bool>());
  EXPECT_EQ(j["sources"]["plant"]["stored"], 25);
  EXPECT_EQ(j["sinks"]["local"]["delivered"], 25);
  EXPECT_EQ(j["sinks"]["cloud"]["backlog"], 25);
  EXPECT_GT(j["sinks"]["cloud"]["retries"].get<int>(), 0);

  ASSERT_EQ(agent.Terminate(), 0);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &out), 3) << out;
  EXPECT_NE(out.find("NOT RUNNING"), std::string::npos) << out;
  EXPECT_NE(out.find("sink      cloud          backlog 25"), std::string::npos) << out;
  EXPECT_NE(out.find("sink      local          backlog 0"), std::string::npos) << out;
  EXPECT_NE(out.find("no answer on http://127.0.0.1:" + std::to_string(port) + "/status"), std::string::npos) << out;
}

// The unit as installed, with ExecStart pointing at the built binary (verify and
// security check that the executable exists).
std::string UnitForTest(const TempDir& dir) {
  std::string unit = ReadFile(SourceDir() + "/systemd/edgeferry.service");
  unit = std::regex_replace(unit, std::regex("/usr/bin/edgeferry"), EdgeferryBinary());
  WriteFile(dir / "edgeferry.service", unit);
  return dir / "edgeferry.service";
}

TEST(Systemd, TheUnitFilePassesSystemdAnalyzeVerify) {
  EDGEFERRY_REQUIRE_TOOL("systemd-analyze");
  TempDir dir;
  std::string out;
  const int rc = RunCommand({FindTool("systemd-analyze"), "verify", UnitForTest(dir)}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "systemd-analyze verify exits 0 even on problems: any output is one";
}

TEST(Systemd, HardeningExposureScoreIsAtMostTwo) {
  EDGEFERRY_REQUIRE_TOOL("systemd-analyze");
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand({FindTool("systemd-analyze"), "security", "--offline=true", UnitForTest(dir)}, &out), 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(Overall exposure level for edgeferry\.service: ([0-9.]+))"))) << out;
  // 1.5 today; what is left is network access and serial devices, which edgeferry exists for.
  EXPECT_LE(std::stod(m[1]), 2.0) << out;
  for (const char* must : {"PrivateTmp=", "NoNewPrivileges=", "ProtectSystem=", "ProtectHome=",
                           "CapabilityBoundingSet=~CAP_SYS_ADMIN", "SystemCallFilter=~@mount"}) {
    const auto line = out.find(must);
    ASSERT_NE(line, std::string::npos) << must << "\n" << out;
    EXPECT_EQ(out.rfind("\n", line) + 1, out.find(std::string("\u2713 ") + must, out.rfind("\n", line)))
        << must << " is not satisfied:\n" << out;
  }
}

TEST(Systemd, SysusersAndTmpfilesCreateTheUserAndStateDirectory) {
  EDGEFERRY_REQUIRE_TOOL("systemd-sysusers");
  EDGEFERRY_REQUIRE_TOOL("systemd-tmpfiles");
  TempDir root;
  std::filesystem::create_directories(root / "etc");
  std::string out;
  ASSERT_EQ(RunCommand({FindTool("systemd-sysusers"), "--root=" + root.path(), SourceDir() + "/systemd/edgeferry.sysusers"},
                       &out),
            0)
      << out;
  const std::string passwd = ReadFile(root / "etc/passwd");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(passwd, m, std::regex(R"(edgeferry:x:(\d+):\d+:[^:]*:/var/lib/edgeferry:/usr/sbin/nologin)")))
      << passwd;
  const unsigned uid = static_cast<unsigned>(std::stoul(m[1]));
  EXPECT_TRUE(std::regex_search(ReadFile(root / "etc/group"), std::regex(R"(dialout:x:\d+:edgeferry\n)")));

  ASSERT_EQ(RunCommand({FindTool("systemd-tmpfiles"), "--create", "--root=" + root.path(),
                        SourceDir() + "/systemd/edgeferry.tmpfiles"},
                       &out),
            0)
      << out;
  for (const char* d : {"var/lib/edgeferry", "var/lib/edgeferry/outbox"}) {
    struct stat st{};
    ASSERT_EQ(stat((root / d).c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 07777, 0750u) << d;
    if (geteuid() == 0) {
      EXPECT_EQ(st.st_uid, uid) << d;  // chown needs root
    }
  }
}

}  // namespace
}  // namespace edgeferry::testing
