// edgeferry SIGKILLed again and again while ingesting and delivering. After every
// restart the store opens by itself and seq continues; at the end every published
// message is in the outbox except those the documented commit window allows
// (none in sync durability), and no (gateway_id, seq) appears twice.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Publishes {"id":N} at a steady rate with QoS 1 and remembers when the broker acked each.
class Publisher {
 public:
  Publisher(const std::string& uri, int rate_per_s) : client_(uri, "kill-test-publisher"), rate_(rate_per_s) {
    client_.connect()->wait();
    thread_ = std::thread([this] { Run(); });
  }
  ~Publisher() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int published() const { return next_id_; }
  Clock::time_point AckedAt(int id) {
    std::lock_guard<std::mutex> l(mu_);
    return acked_at_[id];
  }

 private:
  void Run() {
    const auto start = Clock::now();
    while (!stop_) {
      const int id = next_id_;
      client_.publish("plant/line1", "{\"id\":" + std::to_string(id) + "}", 1, false)->wait();
      {
        std::lock_guard<std::mutex> l(mu_);
        acked_at_[id] = Clock::now();
      }
      next_id_ = id + 1;
      std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * (id + 1) / rate_));
    }
    client_.disconnect()->wait();
  }
  mqtt::async_client client_;
  const int rate_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_id_{0};
  std::mutex mu_;
  std::map<int, Clock::time_point> acked_at_;
  std::thread thread_;
};

struct KillCase {
  std::string name;
  std::string durability;
  int commit_interval_ms;
  int publish_rate;  // msg/s; sync mode commits each QoS 1 message before its PUBACK
};
void PrintTo(const KillCase& c, std::ostream* os) { *os << c.name; }


class KillTest : public ::testing::TestWithParam<KillCase> {};

TEST_P(KillTest, RepeatedSigkillLosesAtMostTheCommitWindowAndNeverDuplicatesASeq) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  const KillCase& kc = GetParam();
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-kill"
data_dir = "@DATA@"
[buffer]
durability = ")" + kc.durability + R"("
commit_interval = ")" + std::to_string(kc.commit_interval_ms) + R"(ms"
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
client_id = "edgeferry-kill-test"
topics = ["plant/#"]
qos = 1
clean_session = false
[sinks.outbox]
type = "outbox"
max_records = 200
linger = "150ms"
)");
  ASSERT_TRUE(agent.Start());
  Publisher publisher(broker.uri(), kc.publish_rate);
  std::mt19937 rng(20261121);
  std::vector<Clock::time_point> kills;
  constexpr int kKills = 20;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 450));
    kills.push_back(Clock::now());
    agent.Kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
    ASSERT_TRUE(agent.Start()) << "restart " << k;
  }
  std::this_thread::sleep_for(300ms);
  publisher.Stop();
  const int published = publisher.published();
  // Drain: wait until the outbox stops growing.
  size_t last = 0;
  for (int stable = 0; stable < 5;) {
    std::this_thread::sleep_for(200ms);
    const size_t n = ReadOutboxLines(agent.outbox()).size();
    stable = n == last ? stable + 1 : 0;
    last = n;
  }
  EXPECT_EQ(agent.Terminate(), 0) << agent.Log();

  std::set<uint64_t> seqs;
  std::map<int, int> delivered;  // id -> times
  for (const auto& r : OutboxRecords(agent.outbox())) {
    EXPECT_TRUE(seqs.insert(r["seq"].get<uint64_t>()).second) << "duplicate seq " << r["seq"];
    delivered[r["payload"]["id"].get<int>()]++;
  }
  int lost = 0, redelivered = 0;
  for (const auto& [id, n] : delivered) redelivered += n - 1;
  const auto window = std::chrono::milliseconds(kc.commit_interval_ms + 400);  // + scheduling slack
  for (int id = 0; id < published; ++id) {
    if (delivered.count(id)) continue;
    ++lost;
    const auto acked = publisher.AckedAt(id);
    const bool near_a_kill = std::any_of(kills.begin(), kills.end(), [&](auto kill) {
      return acked <= kill + 50ms && acked >= kill - window;
    });
    EXPECT_TRUE(near_a_kill) << "message " << id << " was lost but was not received within the commit window "
                             << "before any kill";
  }
  if (kc.durability == "sync") {
    EXPECT_EQ(lost, 0) << "sync durability loses nothing";
  }
  std::printf("[ kill test ] %s: %d kills, %d published, %zu distinct delivered, %d lost, %d redelivered (QoS 1)\n",
              kc.name.c_str(), kKills, published, delivered.size(), lost, redelivered);
  EXPECT_GT(delivered.size(), static_cast<size_t>(published) * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(Durability, KillTest,
                         ::testing::Values(KillCase{"normal", "normal", 100, 1500},
                                           KillCase{"sync", "sync", 100, 300}),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace edgeferry::testing
