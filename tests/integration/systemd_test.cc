// The systemd side of the agent: the sd_notify protocol on a NOTIFY_SOCKET the test
// binds, SIGHUP reload, and the unit file checked by systemd-analyze.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
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

TEST(Systemd, TheUnitFilePassesSystemdAnalyzeVerify) {
  EDGEFERRY_REQUIRE_TOOL("systemd-analyze");
  TempDir dir;
  // verify checks that ExecStart exists: point the unit at the built binary.
  std::string unit = ReadFile(SourceDir() + "/systemd/edgeferry.service");
  unit = std::regex_replace(unit, std::regex("/usr/bin/edgeferry"), EdgeferryBinary());
  WriteFile(dir / "edgeferry.service", unit);
  std::string out;
  const int rc = RunCommand({FindTool("systemd-analyze"), "verify", dir / "edgeferry.service"}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "systemd-analyze verify exits 0 even on problems: any output is one";
}

}  // namespace
}  // namespace edgeferry::testing
