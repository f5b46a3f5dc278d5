// Faults at the far end, through the real agent: the uplink is down while 100k records
// arrive; the local broker restarts mid-stream; one sink stalls beside a healthy one.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "agent_process.h"
#include "cloud_servers.h"

namespace edgeferry::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Every envelope the scripted HTTP server received (gzip bodies), in arrival order.
std::vector<json> HttpEnvelopes(const ScriptedHttpServer& server) {
  std::vector<json> out;
  for (const auto& r : server.Requests()) {
    for (const auto& line : Lines(Gunzip(r["body"].get<std::string>()))) out.push_back(json::parse(line));
  }
  return out;
}

uint64_t Stored(const AgentProcess& agent) { return agent.BufferStats()["appended_total"].get<uint64_t>(); }

TEST(Outage, HundredThousandRecordsDuringAnUplinkOutageAllArriveInOrderWithFlatMemory) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("python3");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  ScriptedHttpServer cloud(dir);  // not started: the uplink is down
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-outage"
data_dir = "@DATA@"
[sources.air]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["air/#"]
[sinks.cloud]
type = "http"
url = ")" + cloud.url() + R"("
max_records = 5000
retry_base = "100ms"
retry_max = "500ms"
)");
  ASSERT_TRUE(agent.Start());
  std::vector<std::string> argv = {ReplayBinary(), "-q", "--broker", broker.uri(), "--topic", "air/row"};
  for (int i = 0; i < 50; ++i) argv.push_back(SourceDir() + "/examples/data/uci-airquality-2000.csv");
  ChildProcess publisher(argv, dir / "replay.log");
  long rss_at_20k = 0, rss_peak = 0;
  std::vector<std::pair<uint64_t, long>> curve;
  while (true) {
    const uint64_t stored = Stored(agent);
    const long rss = agent.RssKib();
    curve.emplace_back(stored, rss);
    rss_peak = std::max(rss_peak, rss);
    if (rss_at_20k == 0 && stored >= 20'000) rss_at_20k = rss;
    if (stored >= 100'000) break;
    ASSERT_TRUE(publisher.Running() || stored < 100'000 || true);
    ASSERT_LT(curve.size(), 1500u) << "took too long: " << stored << " stored";
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(publisher.Wait(30s), 0);
  const long rss_at_100k = agent.RssKib();
  // `buffer stats` shows committed state: the last open segment lands within a commit interval.
  EXPECT_TRUE(WaitUntil([&] { return agent.BufferStats()["cursors"][0]["backlog_records"] == 100'000; }, 5s))
      << "the whole outage is buffered";
#if defined(__SANITIZE_ADDRESS__)
  // ASan keeps freed memory in quarantine on purpose: RSS says nothing here.
#else
  EXPECT_LT(rss_at_100k - rss_at_20k, 8 * 1024) << "RSS does not grow with the backlog (KiB)";
#endif
  // The uplink comes back.
  ASSERT_TRUE(cloud.Start());
  long rss_drain_peak = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        rss_drain_peak = std::max(rss_drain_peak, agent.RssKib());
        return agent.BufferStats()["cursors"][0]["backlog_records"] == 0;
      },
      60s));
  EXPECT_EQ(agent.Terminate(), 0);
  const auto got = HttpEnvelopes(cloud);
  ASSERT_EQ(got.size(), 100'000u) << "exactly once";
  for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1]["seq"], got[i]["seq"]) << "in seq order";
  std::printf("[ outage ] 100000 records buffered during the outage; RSS %ld KiB at 20k, %ld KiB at 100k, peak %ld "
              "KiB; drain peak %ld KiB; delivered %zu, duplicates 0\n",
              rss_at_20k, rss_at_100k, rss_peak, rss_drain_peak, got.size());
  std::printf("[ outage ] RSS curve (stored records: KiB):");
  for (size_t i = 0; i < curve.size(); i += std::max<size_t>(1, curve.size() / 10)) {
    std::printf(" %llu:%ld", static_cast<unsigned long long>(curve[i].first), curve[i].second);
  }
  std::printf("\n");
}

TEST(BrokerRestart, PersistentQos1SessionLosesNothingAcrossALocalBrokerRestart) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  TempDir dir;
  const int port = FreeLoopbackPort();
  WriteFile(dir / "broker.conf", "listener " + std::to_string(port) +
                                     " 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location " +
                                     dir.path() + "/\nmax_queued_messages 0\n" + (getuid() == 0 ? "user root\n" : ""));
  Server broker({FindTool("mosquitto"), "-c", dir / "broker.conf"}, port, dir / "broker.log");
  ASSERT_TRUE(broker.Start());
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-restart"
data_dir = "@DATA@"
[sources.plant]
type = "mqtt"
uri = ")" + uri + R"("
client_id = "edgeferry-restart-test"
topics = ["plant/#"]
qos = 1
clean_session = false
reconnect_min = "50ms"
reconnect_max = "200ms"
[sinks.local]
type = "outbox"
linger = "100ms"
)");
  ASSERT_TRUE(agent.Start());
  auto publish = [&](int from, int to) {
    std::string lines;
    for (int i = from; i < to; ++i) lines += "{\"id\":" + std::to_string(i) + "}\n";
    WriteFile(dir / "pub.txt", lines);
    return std::system(("mosquitto_pub -p " + std::to_string(port) + " -q 1 -t plant/line -l < " + dir.path() +
                        "/pub.txt").c_str());
  };
  ASSERT_EQ(publish(0, 2000), 0);
  broker.Terminate();  // right after the burst: part of it is still queued for edgeferry
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(broker.Start());
  ASSERT_EQ(publish(2000, 3000), 0);
  std::set<int> ids;
  size_t total = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        ids.clear();
        total = 0;
        for (const auto& line : ReadOutboxLines(agent.outbox())) {
          ids.insert(json::parse(line)["payload"]["id"].get<int>());
          ++total;
        }
        return ids.size() == 3000;
      },
      30s))
      << ids.size() << " of 3000\n" << agent.Log();
  EXPECT_NE(agent.Log().find("reconnected to"), std::string::npos);
  EXPECT_EQ(agent.Terminate(), 0);
  std::printf("[ broker restart ] 3000 published around a restart: %zu distinct delivered, %zu redelivered\n",
              ids.size(), total - ids.size());
}

TEST(Backpressure, AFullStoreStopsTheMqttSourceAndTheBrokerHoldsTheRest) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  EDGEFERRY_REQUIRE_TOOL("python3");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  ScriptedHttpServer cloud(dir);  // down for now
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-bp"
data_dir = "@DATA@"
[buffer]
max_bytes = "1MiB"
when_full = "backpressure"
min_free_bytes = 0
segment_max_records = 16
[sources.cam]
type = "mqtt"
uri = ")" + broker.uri() + R"("
client_id = "edgeferry-bp"
topics = ["cam/#"]
qos = 1
clean_session = false
[sinks.cloud]
type = "http"
url = ")" + cloud.url() + R"("
compression = "none"
max_records = 50
retry_base = "100ms"
retry_max = "300ms"
)");
  ASSERT_TRUE(agent.Start());
  // 600 messages of ~6 KB random text: about 3.6 MB that zstd cannot shrink much.
  std::mt19937 rng(3);
  std::string lines;
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (int i = 0; i < 600; ++i) {
    lines += std::to_string(i) + ":";
    for (int k = 0; k < 6000; ++k) lines.push_back(kAlphabet[rng() % 62]);
    lines += "\n";
  }
  WriteFile(dir / "pub.txt", lines);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t cam/frames -l < " +
                         dir.path() + "/pub.txt").c_str()),
            0);
  // The store fills and the source stops taking messages: the broker holds the rest.
  ASSERT_TRUE(WaitUntil([&] { return agent.BufferStats()["full"] == true; }, 20s)) << agent.Log();
  std::this_thread::sleep_for(1s);
  const auto full = agent.BufferStats();
  EXPECT_LT(full["appended_total"].get<uint64_t>(), 600u);
  EXPECT_GT(full["backpressure_waits"].get<uint64_t>(), 0u);
  // The uplink returns: everything arrives, nothing was dropped.
  ASSERT_TRUE(cloud.Start());
  std::set<int> ids;
  ASSERT_TRUE(WaitUntil(
      [&] {
        ids.clear();
        for (const auto& r : cloud.Requests()) {
          for (const auto& l : Lines(r["body"].get<std::string>())) {
            const std::string text = json::parse(l)["payload"];
            ids.insert(std::stoi(text.substr(0, text.find(':'))));
          }
        }
        return ids.size() == 600;
      },
      60s))
      << ids.size() << " of 600";
  const auto after = agent.BufferStats();
  for (const auto& [reason, n] : after["dropped"].items()) EXPECT_EQ(n, 0) << reason;
  EXPECT_EQ(agent.Terminate(), 0);
  std::printf("[ backpressure ] 600 x 6 KB into a 1 MiB store with the uplink down: stopped at %llu, "
              "%llu waits; all 600 delivered, 0 dropped\n",
              static_cast<unsigned long long>(full["appended_total"].get<uint64_t>()),
              static_cast<unsigned long long>(full["backpressure_waits"].get<uint64_t>()));
}

TEST(SlowSink, AStalledSinkSlowsNeitherIngestNorTheOtherSink) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("python3");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  ScriptedHttpServer slow(dir);
  ASSERT_TRUE(slow.Start());
  // The stall outlasts ingest by far on any build (ASan included), so the oracle is
  // causal (the outbox is complete while the cloud cursor is still behind), not a clock.
  slow.Script(json::array({{{"sleep", 20}, {"status", 200}}}));
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-slow"
data_dir = "@DATA@"
[sources.air]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["air/#"]
[sinks.local]
type = "outbox"
linger = "100ms"
[sinks.cloud]
type = "http"
url = ")" + slow.url() + R"("
timeout = "30s"
linger = "0"
)");
  ASSERT_TRUE(agent.Start());
  const auto t0 = std::chrono::steady_clock::now();
  std::string out;
  ASSERT_EQ(RunCommand({ReplayBinary(), "-q", "--broker", broker.uri(), "--topic", "air/row",
                        SourceDir() + "/examples/data/uci-airquality-2000.csv"},
                       &out),
            0);
  ASSERT_TRUE(WaitUntil([&] { return ReadOutboxLines(agent.outbox()).size() == 2000; }, 12s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // `buffer stats` shows committed state: the last records land within a commit interval.
  EXPECT_TRUE(WaitUntil([&] { return agent.BufferStats()["appended_total"] == 2000; }, 5s));
  const auto stats = agent.BufferStats();
  uint64_t cloud_backlog = 0;
  for (const auto& c : stats["cursors"]) {
    if (c["sink"] == "cloud") cloud_backlog = c["backlog_records"];
  }
  EXPECT_GT(cloud_backlog, 0u) << "the stalled sink is still behind";
  ASSERT_TRUE(WaitUntil([&] { return HttpEnvelopes(slow).size() >= 2000; }, 45s)) << "and catches up later";
  EXPECT_EQ(agent.Terminate(), 0);
  std::printf("[ slow sink ] 2000 records: ingest and outbox done in %.2f s while the HTTP sink stalled 20 s\n", secs);
}

// ---------------------------------------------------------------- poison records (issue 12, item 9)

// A cloud broker with AWS IoT Core's 128 KiB limit (mosquitto drops a client that sends a
// larger packet) and an agent that forwards a local broker's records to it.
class OversizeRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGEFERRY_REQUIRE_TOOL("mosquitto");
    EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
    EDGEFERRY_REQUIRE_TOOL("mosquitto_sub");
    ASSERT_TRUE(local_.Start());
    ASSERT_TRUE(cloud_.Start());
    subscriber_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{FindTool("mosquitto_sub"), "-p", std::to_string(cloud_.port()), "-q", "1", "-t",
                                 "up/#", "-F", "%p"},
        dir_ / "cloud.txt");
    ASSERT_TRUE(WaitUntil([&] { return subscriber_->Running(); }, 2s));
    std::this_thread::sleep_for(300ms);  // subscribed before anything is published
  }
  // Start with Start(2): the source and the sink both connected (the sink often logs
  // first, and a record published before the source subscribed is lost).
  std::unique_ptr<AgentProcess> Agent(const std::string& sink_extra) {
    auto agent = std::make_unique<AgentProcess>(dir_, R"(
[gateway]
id = "gw-poison"
data_dir = "@DATA@"
[sources.plant]
type = "mqtt"
uri = ")" + local_.uri() + R"("
topics = ["plant/#"]
[sinks.iot]
type = "mqtt"
uri = ")" + cloud_.uri() + R"("
topic = "up/{source}"
retry_base = "100ms"
retry_max = "500ms"
)" + sink_extra);
    return agent;
  }
  void Publish(const std::string& payload) {
    WriteFile(dir_ / "payload.bin", payload);
    ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(local_.port()) + " -q 1 -t plant/a -f " +
                           (dir_ / "payload.bin"))
                              .c_str()),
              0);
  }
  // The seqs of the i-th published messages, given the first one's seq (seq starts at
  // the wall-clock floor, not 1: buffer/FORMAT.md "Seq").
  static std::set<uint64_t> Seqs(uint64_t first, std::initializer_list<uint64_t> offsets) {
    std::set<uint64_t> out;
    for (uint64_t o : offsets) out.insert(first + o);
    return out;
  }
  uint64_t FirstSeq() {
    const auto s = CloudSeqs();
    return s.empty() ? 0 : *s.begin();
  }
  // Envelope seqs the cloud broker delivered to its subscriber.
  std::set<uint64_t> CloudSeqs() {
    std::set<uint64_t> seqs;
    for (const auto& line : ReadLines(dir_ / "cloud.txt")) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("seq")) seqs.insert(j["seq"].get<uint64_t>());
    }
    return seqs;
  }
  std::string DlqList(const AgentProcess& agent) {
    std::string out;
    RunCommand({EdgeferryBinary(), "dlq", "list", "--config", agent.config_path()}, &out);
    return out;
  }
  // SIGTERM; returns how long the agent took to exit.
  std::chrono::milliseconds TimedTerminate(AgentProcess& agent) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(agent.Terminate(), 0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  }

  TempDir dir_;
  MosquittoBroker local_;
  MosquittoBroker cloud_{"max_packet_size 131072\n"};
  std::unique_ptr<ChildProcess> subscriber_;
};

std::string Small(int i) { return "{\"i\":" + std::to_string(i) + "}"; }
const std::string kBig = "{\"image\":\"" + std::string(200 * 1024, 'A') + "\"}";

TEST_F(OversizeRecord, A200KBRecordIsDeadLetteredBeforeSendingEveryOtherRecordArrivesAndSigtermIsFast) {
  auto agent = Agent("");  // the default max_record_bytes of an MQTT sink: 128 KiB
  ASSERT_TRUE(agent->Start(2));
  for (int i = 0; i < 5; ++i) Publish(Small(i));
  Publish(kBig);
  for (int i = 5; i < 10; ++i) Publish(Small(i));
  ASSERT_TRUE(WaitUntil([&] { return CloudSeqs().size() == 10; }, 20s)) << CloudSeqs().size() << "\n" << agent->Log();
  const uint64_t first = FirstSeq();
  EXPECT_EQ(CloudSeqs(), Seqs(first, {0, 1, 2, 3, 4, 6, 7, 8, 9, 10}));
  const std::string dlq = DlqList(*agent);
  EXPECT_NE(dlq.find("1 dead letter"), std::string::npos) << dlq;
  EXPECT_NE(dlq.find("exceeds the sink's max_record_bytes of 131072"), std::string::npos) << dlq;
  const auto took = TimedTerminate(*agent);
  std::printf("[ poison ] 200 KiB record dead-lettered before sending; SIGTERM took %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, 5s);
}

TEST_F(OversizeRecord, WhenTheLimitIsSetTooHighTheBrokersRefusalIsBisectedToTheRecord) {
  // The operator raised the limit: the broker drops the connection on the PUBLISH instead.
  auto agent = Agent("max_record_bytes = \"1MiB\"\nmax_inflight = 10\n");
  ASSERT_TRUE(agent->Start(2));
  for (int i = 0; i < 5; ++i) Publish(Small(i));
  Publish(kBig);
  for (int i = 5; i < 10; ++i) Publish(Small(i));
  ASSERT_TRUE(WaitUntil([&] { return CloudSeqs().size() == 10; }, 30s)) << CloudSeqs().size() << "\n" << agent->Log();
  const uint64_t first = FirstSeq();
  EXPECT_EQ(CloudSeqs(), Seqs(first, {0, 1, 2, 3, 4, 6, 7, 8, 9, 10}));
  // The uplink's MQTT client may resend what followed the refused record on its own
  // after reconnecting, before the forwarder has proven which record it was.
  std::string dlq;
  EXPECT_TRUE(WaitUntil([&] { return (dlq = DlqList(*agent)).find("1 dead letter") != std::string::npos; }, 20s))
      << dlq;
  EXPECT_NE(dlq.find("refused by the destination: connection lost after publishing seq " + std::to_string(first + 5)),
            std::string::npos)
      << dlq;
  const auto took = TimedTerminate(*agent);
  std::printf("[ poison ] broker refusal bisected to seq 6; SIGTERM took %lld ms\n", static_cast<long long>(took.count()));
  EXPECT_LT(took, 5s);
}

TEST_F(OversizeRecord, SigtermWhileTheSinkIsStuckRetryingARefusedRecordExitsWithinSeconds) {
  // The big record is the newest: nothing after it can prove the link works, so the sink
  // keeps retrying it (a dead link is never dead-lettered) until an operator acts.
  auto agent = Agent("max_record_bytes = \"1MiB\"\nmax_inflight = 10\n");
  ASSERT_TRUE(agent->Start(2));
  for (int i = 0; i < 3; ++i) Publish(Small(i));
  Publish(kBig);
  ASSERT_TRUE(WaitUntil([&] { return CloudSeqs().size() == 3; }, 20s)) << agent->Log();
  const uint64_t first = FirstSeq();
  const auto lost_after = [&](uint64_t offset) {
    return agent->Log().find("connection lost after publishing seq " + std::to_string(first + offset)) !=
           std::string::npos;
  };
  ASSERT_TRUE(WaitUntil([&] { return lost_after(3); }, 20s))
      << agent->Log();
  std::this_thread::sleep_for(1s);  // in the middle of its retries
  EXPECT_NE(DlqList(*agent).find("0 dead letters"), std::string::npos);
  // The operator unblocks it by hand, beside the running agent.
  std::string out;
  ASSERT_EQ(RunCommand({EdgeferryBinary(), "dlq", "move", "--config", agent->config_path(), "--sink", "iot", "--seq",
                        std::to_string(first + 3)},
                       &out),
            0)
      << out;
  ASSERT_TRUE(WaitUntil([&] { return DlqList(*agent).find("moved to the dead letter queue by hand") != std::string::npos; },
                        5s))
      << agent->Log();
  Publish(Small(3));
  ASSERT_TRUE(WaitUntil([&] { return CloudSeqs().count(first + 4) == 1; }, 20s)) << agent->Log();
  Publish(kBig);  // stuck again
  ASSERT_TRUE(WaitUntil([&] { return lost_after(5); }, 20s))
      << agent->Log();
  std::this_thread::sleep_for(1s);
  const auto took = TimedTerminate(*agent);
  std::printf("[ poison ] SIGTERM while the sink retried a refused record took %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, 5s);
}

}  // namespace
}  // namespace edgeferry::testing
