// The systemd side of the agent: the sd_notify protocol on a NOTIFY_SOCKET the test
// binds, SIGHUP reload, and the unit file checked by systemd-analyze.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <optional>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

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

// Publishes each line of `lines` as one QoS 1 message on `topic` to `broker`
// (mosquitto_pub -l, through a file in `dir`); mosquitto_pub's exit status.
int PublishLines(const MosquittoBroker& broker, const TempDir& dir, const std::string& topic, const std::string& lines) {
  WriteFile(dir / "pub.txt", lines);
  std::string out;
  return RunCommand({"/bin/sh", "-c", FindTool("mosquitto_pub") + " -p " + std::to_string(broker.port()) + " -q 1 -t " +
                                          topic + " -l < " + (dir / "pub.txt")},
                    &out);
}

// The value of `series` ("name" or "name{labels}") in a Prometheus text page; NaN when
// absent (so every comparison with it is false).
double Sample(const std::string& page, const std::string& series) {
  const auto at = page.find("\n" + series + " ");
  return at == std::string::npos ? std::nan("") : std::strtod(page.c_str() + at + series.size() + 2, nullptr);
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
  EDGEFERRY_REQUIRE_TOOL("promtool");
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
  const auto started_s = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE(agent.Start());
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
  lines += std::string(200, 'x') + "\n";  // too big: dead-lettered
  ASSERT_EQ(PublishLines(broker, dir, "plant/a", lines), 0);
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
  // Process metrics against what the kernel says of the agent's pid, read here.
  const auto metric = [&](const std::string& series) { return Sample(page, series); };
  if (AgentIsEmulated()) {
    // qemu-user answers the emulated program's /proc/self/stat with zeros for CPU and RSS.
    std::printf("[ metrics ] process metrics not compared with the kernel's: the agent runs under qemu-user\n");
  } else {
    const double rss_kernel = static_cast<double>(agent.RssKib()) * 1024;
    EXPECT_NEAR(metric("process_resident_memory_bytes"), rss_kernel, rss_kernel * 0.25) << page;
    EXPECT_GE(metric("process_start_time_seconds"), static_cast<double>(started_s - 2));
    EXPECT_LE(metric("process_start_time_seconds"), static_cast<double>(started_s + 62)) << "Start() waits up to 60 s";
    size_t fds = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(agent.pid()) + "/fd")) ++fds;
    EXPECT_NEAR(metric("process_open_fds"), static_cast<double>(fds), 8) << page;
    EXPECT_GT(metric("process_cpu_seconds_total"), 0) << page;
  }
  // The exposition as Prometheus itself parses it.
  WriteFile(dir / "scrape.txt", page);
  std::string promtool;
  EXPECT_EQ(RunCommand({"/bin/sh", "-c", "promtool check metrics < " + (dir / "scrape.txt")}, &promtool), 0) << promtool;

  EXPECT_EQ(Get(port, "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  Get(port, "/nope", &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(agent.Terminate(), 0);
}

// Issue 18: the time-based and wire metrics, checked against what the test itself
// measured (clock readings around the publish, the outbox files' sizes on disk).
TEST(Metrics, TimesWireBytesLatencyAndOfflineCoverMatchWhatHappened) {
  EDGEFERRY_REQUIRE_TOOL("promtool");
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  const RefusingPort refusing;  // the cloud sink never delivers: its backlog ages
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-times"
data_dir = "@DATA@"
[log]
stats_interval = "1s"
[metrics]
port = )" + std::to_string(port) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.local]
type = "outbox"
linger = "100ms"
[sinks.cloud]
type = "http"
url = "http://127.0.0.1:)" + std::to_string(refusing.port()) + R"(/ingest"
)");
  ASSERT_TRUE(agent.Start());
  const auto wall = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  std::string lines;
  for (int i = 0; i < 200; ++i) lines += "{\"reading\":" + std::to_string(i * 7) + ",\"unit\":\"kPa\"}\n";
  const double published_from = wall();
  ASSERT_EQ(PublishLines(broker, dir, "plant/a", lines), 0);
  const double published_to = wall();
  long status = 0;
  std::string page;
  const auto metric = [&](const std::string& series) { return Sample(page, series); };
  // Two stats samples 5 s apart measure the ingest rate; the outbox has everything.
  ASSERT_TRUE(WaitUntil(
      [&] {
        page = Get(port, "/metrics", &status);
        return metric("edgeferry_sink_records_delivered_total{sink=\"local\"}") == 200 &&
               metric("edgeferry_sink_backlog_records{sink=\"local\"}") == 0 &&
               page.find("\nedgeferry_buffer_offline_cover_seconds ") != std::string::npos;
      },
      30s))
      << page;
  const double scraped_at = wall();
  // Bytes on the wire of the outbox: the compressed files it wrote, summed here.
  uint64_t file_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(agent.data_dir() + "/outbox")) file_bytes += e.file_size();
  EXPECT_GT(file_bytes, 0u);
  EXPECT_EQ(metric("edgeferry_sink_wire_bytes_total{sink=\"local\"}"), static_cast<double>(file_bytes)) << page;
  EXPECT_LT(static_cast<double>(file_bytes), static_cast<double>(lines.size())) << "zstd: fewer bytes than the payloads";
  // Nothing reached the refusing port.
  EXPECT_EQ(metric("edgeferry_sink_wire_bytes_total{sink=\"cloud\"}"), 0) << page;
  // Times: inside the window this test observed.
  const double last_rx = metric("edgeferry_source_last_receive_timestamp_seconds{source=\"plant\"}");
  EXPECT_GE(last_rx, published_from - 1) << page;
  EXPECT_LE(last_rx, scraped_at + 1) << page;
  const double success = metric("edgeferry_sink_last_success_timestamp_seconds{sink=\"local\"}");
  EXPECT_GE(success, published_from - 1) << page;
  EXPECT_LE(success, scraped_at + 1) << page;
  EXPECT_EQ(metric("edgeferry_sink_last_success_timestamp_seconds{sink=\"cloud\"}"), 0) << page;
  // The cloud backlog's oldest record was stored during the publish.
  const double age = metric("edgeferry_sink_oldest_unacked_age_seconds{sink=\"cloud\"}");
  EXPECT_GE(age, scraped_at - published_to - 2) << page;
  EXPECT_LE(age, scraped_at - published_from + 2) << page;
  EXPECT_EQ(metric("edgeferry_sink_oldest_unacked_age_seconds{sink=\"local\"}"), 0) << page;
  // Latency: one observation per record delivered, each at most publish-to-scrape long.
  EXPECT_EQ(metric("edgeferry_sink_delivery_latency_seconds_count{sink=\"local\"}"), 200) << page;
  EXPECT_EQ(metric("edgeferry_sink_delivery_latency_seconds_bucket{sink=\"local\",le=\"+Inf\"}"), 200) << page;
  EXPECT_LE(metric("edgeferry_sink_delivery_latency_seconds_sum{sink=\"local\"}"), 200 * (scraped_at - published_from + 1));
  EXPECT_EQ(metric("edgeferry_sink_delivery_latency_seconds_count{sink=\"cloud\"}"), 0) << page;
  EXPECT_GE(metric("edgeferry_sink_request_duration_seconds_count{sink=\"local\"}"), 1) << page;
  EXPECT_GE(metric("edgeferry_sink_request_duration_seconds_count{sink=\"cloud\"}"), 1) << "failed calls count too";
  // The buffer: payload appended = what was published; a finite, positive cover.
  EXPECT_EQ(metric("edgeferry_buffer_appended_payload_bytes_total"), static_cast<double>(lines.size() - 200)) << page;
  EXPECT_GT(metric("edgeferry_buffer_room_bytes"), 0) << page;
  EXPECT_GT(metric("edgeferry_buffer_offline_cover_seconds"), 0) << page;
  WriteFile(dir / "scrape.txt", page);
  std::string promtool;
  EXPECT_EQ(RunCommand({"/bin/sh", "-c", "promtool check metrics < " + (dir / "scrape.txt")}, &promtool), 0) << promtool;
  // Every metric the shipped alert rules use is in a real scrape (a rename breaks this).
  std::ifstream rules_file(std::string(EDGEFERRY_SOURCE_DIR) + "/packaging/prometheus/edgeferry-alerts.yml");
  const std::string rules((std::istreambuf_iterator<char>(rules_file)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(rules.empty());
  const std::regex name("edgeferry_[a-z_]+");
  int used = 0;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), name); it != std::sregex_iterator(); ++it, ++used) {
    const bool found = page.find("\n" + it->str() + "{") != std::string::npos ||
                       page.find("\n" + it->str() + " ") != std::string::npos;
    EXPECT_TRUE(found) << it->str() << " is in the alert rules, not in the scrape";
  }
  EXPECT_GE(used, 8);
  // status shows the same, for a person.
  std::string out;
  RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &out);
  EXPECT_NE(out.find("before when_full acts"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("local +online .*last success \\d+s ago"))) << out;
  EXPECT_EQ(agent.Terminate(), 0);
}

// The shipped Prometheus rules, by Prometheus's own rule test runner: each alert fires
// on the series meant to trigger it and not on the healthy ones beside them.
TEST(AlertRules, PromtoolRuleTestsPass) {
  EDGEFERRY_REQUIRE_TOOL("promtool");
  const std::string dir = std::string(EDGEFERRY_SOURCE_DIR) + "/packaging/prometheus";
  std::string out;
  const std::string promtool = FindTool("promtool");
  EXPECT_EQ(RunCommand({promtool, "check", "rules", dir + "/edgeferry-alerts.yml"}, &out), 0) << out;
  EXPECT_EQ(RunCommand({promtool, "test", "rules", dir + "/edgeferry-alerts.test.yml"}, &out), 0) << out;
  // Every command the alerts tell an operator to run exists (found by review: a
  // `dlq list --source` that the CLI refused).
  std::ifstream in(dir + "/edgeferry-alerts.yml");
  const std::string rules((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::regex command("`edgeferry ([^`]*)`");
  int commands = 0;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), command); it != std::sregex_iterator(); ++it) {
    std::vector<std::string> argv = {EdgeferryBinary()};
    std::stringstream words((*it)[1].str());
    for (std::string w; words >> w;) argv.push_back(w == "<id>" ? "1" : w);
    // With a configuration that is not there: the command line itself must parse (CLI11
    // exits 100 and above on a usage error; --help would hide one).
    argv.insert(argv.end(), {"-c", "/nonexistent/edgeferry.toml"});
    const int rc = RunCommand(argv, &out);
    EXPECT_LT(rc, 100) << it->str() << "\n" << out;
    EXPECT_EQ(out.find("not expected"), std::string::npos) << it->str() << "\n" << out;
    ++commands;
  }
  EXPECT_GE(commands, 3);
}

// Routes (issue 14): each sink receives what its channels select; a record no sink
// selects is stored, counted and named in status.
TEST(Routes, EachSinkGetsItsChannelsAndUnroutedRecordsAreCounted) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-routes"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(port) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.alarms]
type = "outbox"
dir = "@DATA@/alarms"
linger = "50ms"
channels = ["plant/+/alarm"]
[sinks.temps]
type = "outbox"
dir = "@DATA@/temps"
linger = "50ms"
sources = ["plant"]
channels = ["plant/+/temp", "plant/hall/#"]
)");
  ASSERT_TRUE(agent.Start());
  // topic -> messages; which sink takes which is worked out by hand from the filters.
  const std::vector<std::pair<std::string, int>> publish = {
      {"plant/press/alarm", 7}, {"plant/press/temp", 11}, {"plant/hall", 3}, {"plant/hall/door/alarm", 5},
      {"plant/press/status", 13}};
  for (const auto& [topic, n] : publish) {
    std::string lines;
    for (int i = 0; i < n; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
    ASSERT_EQ(PublishLines(broker, dir, topic, lines), 0);
  }
  long status = 0;
  std::string page;
  const auto metric = [&](const std::string& series) { return Sample(page, series); };
  ASSERT_TRUE(WaitUntil(
      [&] {
        page = Get(port, "/metrics", &status);
        return metric("edgeferry_sink_backlog_records{sink=\"alarms\"}") == 0 &&
               metric("edgeferry_sink_backlog_records{sink=\"temps\"}") == 0 &&
               metric("edgeferry_source_records_stored_total{source=\"plant\"}") == 39;
      },
      10s))
      << page;
  const auto channels_in = [&](const std::string& sub) {
    std::map<std::string, int> by_channel;
    for (const auto& r : OutboxRecords(agent.data_dir() + "/" + sub)) ++by_channel[r["channel"].get<std::string>()];
    return by_channel;
  };
  EXPECT_EQ(channels_in("alarms"), (std::map<std::string, int>{{"plant/press/alarm", 7}}));
  // plant/hall/# also matches its parent, plant/hall.
  EXPECT_EQ(channels_in("temps"),
            (std::map<std::string, int>{{"plant/press/temp", 11}, {"plant/hall", 3}, {"plant/hall/door/alarm", 5}}));
  EXPECT_EQ(metric("edgeferry_sink_records_delivered_total{sink=\"alarms\"}"), 7);
  EXPECT_EQ(metric("edgeferry_sink_records_skipped_total{sink=\"alarms\"}"), 39 - 7);
  EXPECT_EQ(metric("edgeferry_sink_records_skipped_total{sink=\"temps\"}"), 39 - 19);
  EXPECT_EQ(metric("edgeferry_source_records_unrouted_total{source=\"plant\"}"), 13) << page;
  std::string out;
  RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &out);
  EXPECT_NE(out.find("(13 selected by no sink)"), std::string::npos) << out;
  EXPECT_NE(agent.Log().find("source plant: no sink's route selects records on channel \"plant/press/status\""),
            std::string::npos)
      << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
}

// Processors (issue 14) in the running agent: a filter, a reshape and a deadband before
// the buffer; what they drop is counted, never stored; the deadband's last values
// survive a SIGTERM restart. Expected outputs are worked out here from the inputs.
TEST(Processors, FilterReshapeAndDeadbandRunBeforeTheBufferAndSurviveARestart) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-proc"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(port) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
content_type = "json"
[[sources.plant.processors]]
type = "filter"
field = "status"
op = "=="
value = "ok"
[[sources.plant.processors]]
type = "select"
fields = ["t", "status"]
[[sources.plant.processors]]
type = "set"
fields = { site = "north" }
[[sources.plant.processors]]
type = "deadband"
field = "t"
absolute = 0.5
[sinks.local]
type = "outbox"
linger = "50ms"
)");
  // Readings per run: (t, status); the same topic throughout.
  const std::vector<std::pair<double, std::string>> run1 = {{20.0, "ok"}, {20.2, "ok"}, {20.6, "ok"}, {30.0, "err"},
                                                            {20.9, "ok"}, {21.2, "ok"}, {19.0, "ok"}};
  const std::vector<std::pair<double, std::string>> run2 = {{19.3, "ok"}, {19.6, "ok"}, {18.0, "err"}, {18.4, "ok"}};
  // Reference: keep status ok; pass when more than 0.5 from the last passed t (the
  // first always), across the restart.
  std::vector<double> expected;
  std::optional<double> last;
  uint64_t filtered = 0, banded = 0, run2_filtered = 0, run2_banded = 0;
  for (const auto* run : {&run1, &run2}) {
    for (const auto& [t, status] : *run) {
      if (status != "ok") {
        ++filtered;
        run2_filtered += run == &run2;
      } else if (!last || std::fabs(t - *last) > 0.5) {
        expected.push_back(t);
        last = t;
      } else {
        ++banded;
        run2_banded += run == &run2;
      }
    }
  }
  const auto publish = [&](const std::vector<std::pair<double, std::string>>& run) {
    std::string lines;
    for (const auto& [t, status] : run) {
      lines += nlohmann::json{{"t", t}, {"status", status}, {"debug", std::string(200, 'd')}}.dump() + "\n";
    }
    return PublishLines(broker, dir, "plant/line1", lines);
  };
  long status = 0;
  std::string page;
  const auto metric = [&](const std::string& series) { return Sample(page, series); };
  const auto settled = [&](double received) {
    return WaitUntil(
        [&] {
          page = Get(port, "/metrics", &status);
          return metric("edgeferry_source_records_received_total{source=\"plant\"}") == received &&
                 metric("edgeferry_sink_backlog_records{sink=\"local\"}") == 0;
        },
        10s);
  };
  ASSERT_TRUE(agent.Start());
  ASSERT_EQ(publish(run1), 0);
  ASSERT_TRUE(settled(static_cast<double>(run1.size()))) << page << agent.Log();
  EXPECT_EQ(metric("edgeferry_processor_records_total{source=\"plant\",processor=\"0:filter\",outcome=\"dropped\"}"), 1)
      << page;
  ASSERT_EQ(agent.Terminate(), 0);
  ASSERT_TRUE(agent.Start());
  ASSERT_EQ(publish(run2), 0);
  ASSERT_TRUE(settled(static_cast<double>(run2.size()))) << page << agent.Log();
  // Counters are per process: run 2's alone.
  EXPECT_EQ(metric("edgeferry_source_records_dropped_total{source=\"plant\"}"),
            static_cast<double>(run2_filtered + run2_banded))
      << page;
  const uint64_t ok2 = run2.size() - run2_filtered;
  std::string text;
  RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &text);
  EXPECT_NE(text.find(fmt::format("processors: filter {}->{}, select {}->{}, set {}->{}, deadband {}->{}", run2.size(),
                                  ok2, ok2, ok2, ok2, ok2, ok2, ok2 - run2_banded)),
            std::string::npos)
      << text;
  ASSERT_EQ(agent.Terminate(), 0);
  std::vector<double> got;
  for (const auto& r : OutboxRecords(agent.outbox())) {
    const auto& p = r["payload"];
    EXPECT_EQ(p, (nlohmann::json{{"t", p["t"]}, {"status", "ok"}, {"site", "north"}})) << r.dump();
    got.push_back(p["t"].get<double>());
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(filtered + banded + expected.size(), run1.size() + run2.size());
}

// An aggregate in the running agent: the readings of one 10 s window, half before a
// SIGTERM restart and half after, come out as one window record whose statistics are
// worked out here; no raw reading is stored.
TEST(Processors, AnAggregateWindowSpansASigtermRestart) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  // Its own metrics port: `status` asks the agent there, and another test's agent may
  // hold the default one.
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-agg"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(FreeLoopbackPort()) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
content_type = "json"
[[sources.plant.processors]]
type = "aggregate"
window = "20s"
fields = ["t", "p.kpa"]
[sinks.local]
type = "outbox"
linger = "50ms"
)");
  const std::vector<double> run1 = {20.5, 21.0, 19.25}, run2 = {22.0, 18.5};
  const auto publish = [&](const std::vector<double>& run) {
    std::string lines;
    for (double t : run) lines += nlohmann::json{{"t", t}, {"p", {{"kpa", t * 5}}}}.dump() + "\n";
    return PublishLines(broker, dir, "plant/line1", lines);
  };
  // Start just after a 20 s boundary, so both runs fall in one window (receive time).
  // 20 s, not less: two starts, a stop and the status polls take seconds under qemu.
  const auto since_boundary = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
               .count() %
           20'000;
  };
  while (since_boundary() > 300) std::this_thread::sleep_for(50ms);
  const auto window_start = std::chrono::system_clock::now();
  ASSERT_TRUE(agent.Start());
  ASSERT_EQ(publish(run1), 0);
  std::string text;
  ASSERT_TRUE(WaitUntil(
      [&] {
        RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &text);
        return text.find("aggregate 3->0") != std::string::npos;
      },
      5s))
      << text;
  ASSERT_EQ(agent.Terminate(), 0);
  const std::string state = ReadFile(agent.data_dir() + "/state/processors-plant.json");
  EXPECT_NE(state.find("\"records\":3"), std::string::npos) << state;
  ASSERT_TRUE(agent.Start());
  EXPECT_FALSE(std::filesystem::exists(agent.data_dir() + "/state/processors-plant.json"))
      << "taken once loaded: a crash now must not emit the same window twice";
  ASSERT_EQ(publish(run2), 0);
  ASSERT_LT(std::chrono::system_clock::now() - window_start, 19s) << "too slow to test within one window";
  ASSERT_TRUE(WaitUntil([&] { return !OutboxRecords(agent.outbox()).empty(); }, 30s)) << agent.Log();
  ASSERT_EQ(agent.Terminate(), 0);
  const auto records = OutboxRecords(agent.outbox());
  ASSERT_EQ(records.size(), 1u) << records.size();
  const auto& w = records[0]["payload"];
  std::vector<double> all = run1;
  all.insert(all.end(), run2.begin(), run2.end());
  double sum = 0;
  for (double t : all) sum += t;
  EXPECT_EQ(w["records"], 5) << w;
  EXPECT_EQ(w["t"]["count"], 5) << w;
  EXPECT_DOUBLE_EQ(w["t"]["min"].get<double>(), 18.5);
  EXPECT_DOUBLE_EQ(w["t"]["max"].get<double>(), 22.0);
  EXPECT_DOUBLE_EQ(w["t"]["sum"].get<double>(), sum);
  EXPECT_DOUBLE_EQ(w["t"]["mean"].get<double>(), sum / 5);
  EXPECT_DOUBLE_EQ(w["t"]["last"].get<double>(), 18.5);
  EXPECT_DOUBLE_EQ(w["p.kpa"]["max"].get<double>(), 110.0);
  const std::string start = w["window_start"].get<std::string>();
  EXPECT_EQ(std::stoi(start.substr(17, 2)) % 20, 0) << "a 20 s boundary: " << start;
}

// `edgeferry tap` (issue 14): records seen after the source, as stored (after the
// source's processors) and as each sink sends them (after its route and processors);
// bounded, and of no effect on delivery.
TEST(Tap, ShowsRecordsAtEachPointAsTheyAreThereWithoutTouchingDelivery) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-tap"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(port) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
content_type = "json"
[[sources.plant.processors]]
type = "drop_fields"
fields = ["debug"]
[sinks.local]
type = "outbox"
linger = "50ms"
[sinks.cloud]
type = "outbox"
dir = "@DATA@/cloud"
linger = "50ms"
channels = ["plant/alarm"]
[[sinks.cloud.processors]]
type = "set"
fields = { site = "north" }
)");
  ASSERT_TRUE(agent.Start());
  long status = 0;
  // No client yet: nothing is kept. The first poll turns the taps on.
  auto first = nlohmann::json::parse(Get(port, "/tap", &status));
  ASSERT_EQ(status, 200) << first;
  EXPECT_TRUE(first["entries"].empty());
  const uint64_t start = first["next"];
  ASSERT_EQ(PublishLines(broker, dir, "plant/alarm", "{\"v\":1,\"debug\":\"x\"}\n{\"v\":2,\"debug\":\"y\"}\n"), 0);
  ASSERT_EQ(PublishLines(broker, dir, "plant/temp", "{\"v\":3,\"debug\":\"z\"}\n"), 0);
  ASSERT_TRUE(WaitUntil([&] { return OutboxRecords(agent.outbox()).size() == 3; }, 10s)) << agent.Log();
  ASSERT_TRUE(WaitUntil([&] { return OutboxRecords(agent.data_dir() + "/cloud").size() == 2; }, 10s));

  std::string out;
  const auto tap = [&](std::vector<std::string> args) {
    std::vector<std::string> cmd = {EdgeferryBinary(), "tap", "--config", agent.config_path(), "--json"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return RunCommand(cmd, &out);
  };
  const auto lines = [&] {
    std::vector<nlohmann::json> v;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);) {
      if (!l.empty() && l[0] == '{') v.push_back(nlohmann::json::parse(l));
    }
    return v;
  };
  // As the source read them: with the debug field, all three.
  ASSERT_EQ(tap({"--point", "source", "--count", "3"}), 0) << out;
  auto got = lines();
  ASSERT_EQ(got.size(), 3u) << out;
  EXPECT_EQ(nlohmann::json::parse(got[0]["payload"].get<std::string>()), (nlohmann::json{{"v", 1}, {"debug", "x"}}));
  EXPECT_EQ(got[2]["channel"], "plant/temp");
  // As stored: the source's processor took the debug field out.
  ASSERT_EQ(tap({"--point", "stored", "--count", "3"}), 0) << out;
  got = lines();
  ASSERT_EQ(got.size(), 3u) << out;
  for (const auto& e : got) EXPECT_EQ(nlohmann::json::parse(e["payload"].get<std::string>()).count("debug"), 0u) << e;
  // As the cloud sink sends them: its route (alarms) and its processor (site).
  ASSERT_EQ(tap({"--sink", "cloud", "--count", "2"}), 0) << out;
  got = lines();
  ASSERT_EQ(got.size(), 2u) << out;
  for (const auto& e : got) {
    EXPECT_EQ(e["channel"], "plant/alarm");
    EXPECT_GT(e["seq"].get<uint64_t>(), 0u);
    EXPECT_EQ(nlohmann::json::parse(e["payload"].get<std::string>())["site"], "north") << e;
  }
  // A channel filter; and the human format names the point.
  ASSERT_EQ(RunCommand({EdgeferryBinary(), "tap", "--config", agent.config_path(), "--point", "stored", "--channel",
                        "plant/+", "--count", "1"},
                       &out),
            0);
  EXPECT_NE(out.find("stored:plant"), std::string::npos) << out;
  // Bounded: a client that falls behind is told how many records it missed.
  std::string lots;
  for (int i = 0; i < 1300; ++i) lots += "{\"v\":" + std::to_string(i) + "}\n";
  // A poll that matches nothing answers the newest id; it also keeps the taps on.
  const auto keep_alive = [&] { return nlohmann::json::parse(Get(port, "/tap?sink=none", &status))["next"].get<uint64_t>(); };
  const uint64_t before = keep_alive();
  EXPECT_GT(before, start);
  ASSERT_EQ(PublishLines(broker, dir, "plant/temp", lots), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        keep_alive();
        return OutboxRecords(agent.outbox()).size() == 1303;
      },
      20s));
  const auto behind = nlohmann::json::parse(Get(port, "/tap?point=stored&after=" + std::to_string(before), &status));
  // 1300 records at two points (source, stored) and one sink (local): 3900 entries
  // since `before`, of which the ring keeps the last 1000.
  EXPECT_EQ(behind["missed"], 3 * 1300 - 1000) << behind.dump().substr(0, 300);
  // Malformed queries are refused with the reason; no agent: exit 3.
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "tap", "--config", agent.config_path(), "--channel", "a/#/b"}, &out), 64);
  EXPECT_NE(out.find("channel: not an MQTT topic filter"), std::string::npos) << out;
  Get(port, "/tap?point=nowhere", &status);
  EXPECT_EQ(status, 400);
  ASSERT_EQ(agent.Terminate(), 0);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "tap", "--config", agent.config_path(), "--count", "1"}, &out), 3);
  EXPECT_NE(out.find("no agent answers"), std::string::npos) << out;
}

// Found by review: `status` showed whichever agent answered on the configured port as
// its own (a second agent on the same port could not bind it).
TEST(Status, AnotherAgentOnTheMetricsPortIsNotTakenForThisOne) {
  TempDir dir_a, dir_b;
  const int port = FreeLoopbackPort();
  const auto config = [&](const std::string& id) {
    return "[gateway]\nid = \"" + id + "\"\ndata_dir = \"@DATA@\"\n[metrics]\nport = " + std::to_string(port) +
           "\n[sinks.local]\ntype = \"outbox\"\n";
  };
  AgentProcess a(dir_a, config("gw-a"));
  ASSERT_TRUE(a.Start(0));
  AgentProcess b(dir_b, config("gw-b"));
  ASSERT_TRUE(b.Start(0));
  ASSERT_TRUE(WaitUntil([&] { return b.Log().find("in use") != std::string::npos; }, 5s)) << b.Log();
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "status", "--config", b.config_path()}, &out), 3) << out;
  EXPECT_NE(out.find("is gateway gw-a with buffer " + a.data_dir() + "/buffer.db, not this configuration's " +
                     b.data_dir() + "/buffer.db"),
            std::string::npos)
      << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "status", "--config", a.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("running"), std::string::npos) << out;
  EXPECT_EQ(b.Terminate(), 0);
  EXPECT_EQ(a.Terminate(), 0);
}

TEST(Status, ShowsSourcesSinksBacklogAndLastErrorsThenNotRunning) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  const RefusingPort refusing;  // nothing listens: the cloud sink fails
  const int closed = refusing.port();
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
  ASSERT_EQ(PublishLines(broker, dir, "plant/a", lines), 0);
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
  // 1.9 today; what is left is network access and serial devices, which edgeferry exists
  // for, and reading the clock's sync status (adjtimex, /proc/sys for the boot id).
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
