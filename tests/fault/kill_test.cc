// edgeferry SIGKILLed again and again while ingesting and delivering. After every
// restart the store opens by itself and seq continues; at the end every published
// message is in the outbox except those the documented commit window allows
// (none in sync durability), and no (gateway_id, seq) appears twice.
//
// The oracle for "within the commit window" is the agent's own receive time (the
// envelope's ts: an MQTT record's ts is when edgeferry received it), not when the
// publisher got its PUBACK from the broker: on a slow machine (a sanitizer build) the
// agent lags the broker by seconds, and a message acked by the broker long before a
// kill can still be received by the agent inside the window.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Publishes {"id":N} at a steady rate with QoS 1.
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

 private:
  void Run() {
    const auto start = Clock::now();
    while (!stop_) {
      const int id = next_id_;
      client_.publish("plant/line1", "{\"id\":" + std::to_string(id) + "}", 1, false)->wait();
      next_id_ = id + 1;
      std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * (id + 1) / rate_));
    }
    client_.disconnect()->wait();
  }
  mqtt::async_client client_;
  const int rate_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_id_{0};
  std::thread thread_;
};

// "2026-11-21T08:47:37.123456789Z" (the envelope's ts) as ns since the epoch.
int64_t ParseRfc3339Ns(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char frac[16] = {};
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%15[0-9]Z", &y, &mo, &d, &h, &mi, &sec, frac) < 6) {
    ADD_FAILURE() << "not an RFC 3339 time: " << text;
    return 0;
  }
  std::string digits(frac);
  digits.resize(9, '0');
  using namespace std::chrono;
  const sys_days day{year_month_day{year{y}, month{static_cast<unsigned>(mo)}, std::chrono::day{static_cast<unsigned>(d)}}};
  return duration_cast<nanoseconds>(day.time_since_epoch() + hours{h} + minutes{mi} + seconds{sec}).count() +
         std::stoll(digits);
}

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
  const int64_t publish_start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch()).count();
  Publisher publisher(broker.uri(), kc.publish_rate);
  std::mt19937 rng(20261121);
  // Each kill as the interval from just before SIGKILL was sent to when the process was
  // reaped (ns since the epoch, the clock of the envelope's ts). A loaded machine can
  // deschedule this thread between reading the clock and kill(2), and a thread blocked in
  // fsync dies only when it returns: the agent may receive until the end of the interval.
  struct Kill {
    int64_t sent_ns, reaped_ns;
  };
  std::vector<Kill> kills;
  const auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  constexpr int kKills = 20;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 450));
    const int64_t sent = now_ns();
    agent.Kill();
    kills.push_back({sent, now_ns()});
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 100));
    ASSERT_TRUE(agent.Start()) << "restart " << k;
  }
  std::this_thread::sleep_for(300ms);
  publisher.Stop();
  const int published = publisher.published();
  // Drain: the last message was acked by the broker and no kill follows it, so the agent
  // receives it; the outbox writes in seq order, so once it is there everything before
  // it that survived is too. (Waiting for the outbox to "stop growing" guessed at the
  // agent's speed.)
  const int last_id = published - 1;
  const auto has_last = [&] {
    for (const auto& r : OutboxRecords(agent.outbox())) {
      if (r["payload"]["id"].get<int>() == last_id) return true;
    }
    return false;
  };
  const auto drain_deadline = Clock::now() + 120s;
  while (!has_last() && Clock::now() < drain_deadline) std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(has_last()) << "the last message (" << last_id << ") never reached the outbox\n" << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0) << agent.Log();

  std::set<uint64_t> seqs;
  std::map<int, int> delivered;        // id -> times
  std::map<int, int64_t> received_ns;  // id -> the agent's earliest receive time among its copies
  for (const auto& r : OutboxRecords(agent.outbox())) {
    EXPECT_TRUE(seqs.insert(r["seq"].get<uint64_t>()).second) << "duplicate seq " << r["seq"];
    const int id = r["payload"]["id"].get<int>();
    delivered[id]++;
    const int64_t ts = ParseRfc3339Ns(r["ts"].get<std::string>());
    received_ns[id] = received_ns.count(id) ? std::min(received_ns[id], ts) : ts;
  }
  int lost = 0, redelivered = 0;
  for (const auto& [id, n] : delivered) redelivered += n - 1;
  // The broker hands one topic's QoS 1 messages to the agent in order, and a commit keeps
  // a prefix of what was appended. So a run of lost messages sits between a delivered
  // message `before`, received by the agent shortly before a kill (after the last commit
  // that kept it, so at most the window earlier), and a delivered message `after`,
  // received only after that kill. Both times are the agent's own.
  // Two checks. Structural, exact: a lost run is bracketed by a kill (the message before
  // it received before that kill ended, the one after it received after it began); a
  // hole inside one process's live stream is a bug whatever the timing. Timing, bounded:
  // the message before it was received at most the commit window before the kill, where
  // the window is the commit interval plus the commit in flight. That commit is slow on a
  // loaded CI disk, hence the generous bound; the widest gap seen is printed.
  const int64_t window_ns = (kc.commit_interval_ms + 2000) * 1'000'000LL;
  int64_t widest_ns = 0;  // the largest kill - before.ts that explained a loss
  int unexplained = 0;
  for (int id = 0; id < published; ++id) {
    if (delivered.count(id)) continue;
    ++lost;
    const auto after = received_ns.upper_bound(id);
    const auto before = after == received_ns.begin() ? received_ns.end() : std::prev(after);
    // Lost from the very first message on: nothing was received before it, but nothing
    // could be before the publisher started either.
    const int64_t before_ns = before != received_ns.end() ? before->second : publish_start_ns;
    int64_t gap_ns = INT64_MAX;  // kill - before.ts of the closest kill that brackets the run
    if (after != received_ns.end()) {
      for (const Kill& kill : kills) {
        if (before_ns <= kill.reaped_ns && after->second >= kill.sent_ns) {
          gap_ns = std::min(gap_ns, std::max<int64_t>(0, kill.sent_ns - before_ns));
        }
      }
    }
    const bool explained = gap_ns <= window_ns;
    if (explained) widest_ns = std::max(widest_ns, gap_ns);
    if (explained) continue;
    // Say where the neighbours were received relative to the nearest kill: a run of
    // failures then reads as one loss, not thousands of lines.
    if (++unexplained > 5) continue;
    const auto nearest = std::min_element(kills.begin(), kills.end(), [&](const Kill& a, const Kill& b) {
      return std::llabs(a.sent_ns - before_ns) < std::llabs(b.sent_ns - before_ns);
    });
    const auto rel_ms = [&](int64_t t) { return (t - nearest->sent_ns) / 1e6; };
    ADD_FAILURE() << "message " << id << " was lost, unexplained by a kill. Before it: "
                  << (before == received_ns.end() ? std::string("nothing") : "message " + std::to_string(before->first))
                  << " received at " << rel_ms(before_ns) << " ms from the nearest kill (reaped at "
                  << rel_ms(nearest->reaped_ns) << " ms); after it: "
                  << (after == received_ns.end() ? std::string("nothing")
                                                 : "message " + std::to_string(after->first) + " received at " +
                                                       std::to_string(rel_ms(after->second)) + " ms")
                  << "; the allowed window is " << window_ns / 1e6 << " ms before the kill";
  }
  if (unexplained > 0) {
    ADD_FAILURE() << unexplained << " lost messages unexplained by a kill. The buffer's counters:\n"
                  << agent.BufferStats().dump(2) << "\nThe agent's warnings and errors:\n"
                  << [&] {
                       std::string out;
                       std::istringstream log(agent.Log());
                       for (std::string line; std::getline(log, line) && out.size() < 8000;) {
                         if (line.find("warn") != std::string::npos || line.find("error") != std::string::npos) {
                           out += line + "\n";
                         }
                       }
                       return out;
                     }();
  }
  if (kc.durability == "sync") {
    EXPECT_EQ(lost, 0) << "sync durability loses nothing";
  }
  std::printf("[ kill test ] %s: %d kills, %d published, %zu distinct delivered, %d lost, %d redelivered (QoS 1), "
              "widest kill - last kept receive %.0f ms\n",
              kc.name.c_str(), kKills, published, delivered.size(), lost, redelivered, widest_ns / 1e6);
  EXPECT_GT(delivered.size(), static_cast<size_t>(published) * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(Durability, KillTest,
                         ::testing::Values(KillCase{"normal", "normal", 100, 1500},
                                           // Below what sync durability stores per second (one fsync per
                                           // message) on a loaded sanitizer build: at 300 msg/s the broker's
                                           // queue grew with every restart until one took over 60 s.
                                           KillCase{"sync", "sync", 100, 60}),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace edgeferry::testing
