// MqttSource against a real mosquitto broker on a free loopback port, storing into a
// real buffer::Store.
#include "edgeferry/drivers/mqtt/mqtt_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/envelope.h"
#include "store_ingest.h"
#include "test_support.h"

namespace edgeferry::drivers {
namespace {

using edgeferry::testing::MosquittoBroker;
using edgeferry::testing::TempDir;
using edgeferry::testing::WaitUntil;
using namespace std::chrono_literals;

class MqttSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGEFERRY_REQUIRE_TOOL("mosquitto");
    EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
    ASSERT_TRUE(broker_.Start());
    buffer::StoreOptions o;
    o.path = dir_ / "buffer.db";
    store_ = std::move(buffer::Store::Open(o)).value();
    ingest_ = std::make_unique<edgeferry::testing::StoreIngest>(*store_, "source:test");
  }

  MqttSourceConfig Config(std::vector<MqttSubscription> subs) {
    MqttSourceConfig c;
    c.name = "plant";
    c.uri = broker_.uri();
    c.client_id = "edgeferry-test-" + std::to_string(getpid());
    c.subscriptions = std::move(subs);
    c.reconnect_min_ns = 50'000'000;
    c.reconnect_max_ns = 200'000'000;
    return c;
  }

  // Publishes `n` messages "<prefix><i>" to `topic` with mosquitto_pub, in order.
  // A separate process on purpose: a second Paho client in this process would wait
  // for the source client's select() timeout to connect (Paho C shares one thread).
  void Publish(const std::string& topic, int n, int qos, const std::string& prefix = "m") {
    std::string lines;
    for (int i = 0; i < n; ++i) lines += prefix + std::to_string(i) + "\n";
    PublishFile(topic, qos, lines, /*per_line=*/true);
  }
  void PublishOne(const std::string& topic, int qos, const std::string& payload) {
    PublishFile(topic, qos, payload, /*per_line=*/false);
  }
  void PublishFile(const std::string& topic, int qos, const std::string& content, bool per_line) {
    const std::string file = dir_ / "publish.txt";
    edgeferry::testing::WriteFile(file, content);
    const int rc = std::system(("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_.port()) + " -q " +
                                std::to_string(qos) + " -t '" + topic + "' " + (per_line ? "-l < " : "-f ") + file)
                                   .c_str());
    ASSERT_EQ(rc, 0) << "mosquitto_pub failed";
  }

  std::vector<StoredRecord> Stored() {
    std::vector<StoredRecord> out;
    EXPECT_TRUE(store_->ReadAfter(0, buffer::ReadLimits{100000, 1ull << 30}, &out).ok());
    return out;
  }

  TempDir dir_;
  MosquittoBroker broker_;
  std::unique_ptr<buffer::Store> store_;
  std::unique_ptr<edgeferry::testing::StoreIngest> ingest_;
};

TEST_F(MqttSourceTest, StoresQos0AndQos1MessagesWithTopicAsChannel) {
  MqttSource source(Config({{"sensors/#", 1}}), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  Publish("sensors/q0", 50, 0);
  Publish("sensors/q1", 50, 1);
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 100; }, 5s)) << source.Stats().stored;
  const auto records = Stored();
  ASSERT_EQ(records.size(), 100u);
  EXPECT_EQ(records[0].record.channel, "sensors/q0");
  EXPECT_EQ(records[0].record.payload, "m0");
  EXPECT_EQ(records[0].record.source, "plant");
  EXPECT_EQ(records[0].record.content_type, ContentType::kText);
  EXPECT_EQ(records[99].record.channel, "sensors/q1");
  EXPECT_EQ(records[99].record.payload, "m49");
  EXPECT_EQ(source.Stats().received, 100u);
}

TEST_F(MqttSourceTest, WildcardFiltersSelectTopicsAndJsonIsDetected) {
  MqttSource source(Config({{"site/+/temp", 0}, {"alarms/#", 2}}), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  Publish("site/a/temp", 3, 1, "{\"t\":");  // "{\"t\":0" is not JSON: stored as text
  Publish("site/a/hum", 3, 1);              // not subscribed
  Publish("site/a/b/temp", 3, 1);           // + matches one level only
  PublishOne("alarms/door/1", 2, "{\"open\":true}");
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 4; }, 5s));
  std::this_thread::sleep_for(200ms);
  const auto records = Stored();
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[3].record.channel, "alarms/door/1");
  EXPECT_EQ(records[3].record.content_type, ContentType::kJson);
  EXPECT_EQ(records[0].record.content_type, ContentType::kText);
}

// A source that declares its payloads JSON must not let anything else through as kJson.
TEST_F(MqttSourceTest, DeclaredJsonThatIsNotJsonIsDeadLettered) {
  auto c = Config({{"json/#", 1}});
  c.content_type = ContentType::kJson;
  MqttSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  PublishOne("json/a", 1, "{\"ok\":1}");
  PublishOne("json/a", 1, "{\"truncated\":");
  PublishOne("json/a", 1, "{\"pretty\":\n  2}");  // JSON with a line break: valid, stored
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored + source.Stats().dead_lettered == 3; }, 5s));
  EXPECT_EQ(source.Stats().stored, 2u);
  EXPECT_EQ(source.Stats().dead_lettered, 1u);
  const auto dl = store_->ListDeadLetters(0, 10);
  ASSERT_TRUE(dl.ok());
  ASSERT_EQ(dl->size(), 1u);
  EXPECT_EQ((*dl)[0].record.payload, "{\"truncated\":");
  EXPECT_NE((*dl)[0].reason.find("not valid JSON"), std::string::npos);
}

// Issue 12 items 6 and 7, as published: printf '{"a":1}\0,"injected":true,"x":"' > f;
// mosquitto_pub -f f. An auto-detecting source carries it (and JSON nested past the
// bound) as text; a source that declares JSON dead-letters both with the reason.
TEST_F(MqttSourceTest, NulAfterJsonAndTooDeepJsonAreTextWhenDetectedAndDeadLetteredWhenDeclared) {
  EDGEFERRY_REQUIRE_TOOL("printf");
  EDGEFERRY_REQUIRE_TOOL("python3");
  const std::string file = dir_ / "injected.bin";
  ASSERT_EQ(std::system(("printf '{\"a\":1}\\0,\"injected\":true,\"x\":\"' > " + file).c_str()), 0);
  const std::string injected = edgeferry::testing::ReadFile(file);
  ASSERT_EQ(injected.size(), 30u);
  ASSERT_EQ(injected[7], '\0');
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');

  auto declared = Config({{"declared/#", 1}});
  declared.client_id += "-declared";
  declared.content_type = ContentType::kJson;
  MqttSource detect(Config({{"auto/#", 1}}), *ingest_), strict(declared, *ingest_);
  ASSERT_TRUE(detect.Start().ok());
  ASSERT_TRUE(strict.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return detect.Stats().connected && strict.Stats().connected; }, 5s));
  for (const std::string topic : {"auto/a", "declared/a"}) {
    const int rc = std::system(("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_.port()) + " -q 1 -t " +
                                topic + " -f " + file).c_str());
    ASSERT_EQ(rc, 0);
    PublishOne(topic, 1, deep);
  }
  ASSERT_TRUE(WaitUntil([&] { return detect.Stats().stored == 2 && strict.Stats().dead_lettered == 2; }, 10s));

  const auto records = Stored();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].record.payload, injected) << "every byte kept, the NUL too";
  EXPECT_EQ(records[0].record.content_type, ContentType::kText);
  EXPECT_EQ(records[1].record.content_type, ContentType::kText);
  std::string line;
  AppendEnvelope("gw", records[0], &line);
  const std::string checked = edgeferry::testing::PythonEnvelopeCheck(line, injected);
  EXPECT_NE(checked.find("\"parses\": true"), std::string::npos) << checked;
  EXPECT_NE(checked.find("\"encoding\": \"text\""), std::string::npos) << checked;
  EXPECT_NE(checked.find("\"payload_matches\": true"), std::string::npos) << checked;

  const auto dl = store_->ListDeadLetters(0, 10);
  ASSERT_TRUE(dl.ok());
  ASSERT_EQ(dl->size(), 2u);
  EXPECT_EQ((*dl)[0].record.payload, injected);
  EXPECT_EQ((*dl)[0].reason, "not valid JSON (the source declares content_type = \"json\"): NUL byte at 7");
  EXPECT_EQ((*dl)[1].reason, "not valid JSON (the source declares content_type = \"json\"): nesting depth > 64");
}

TEST_F(MqttSourceTest, OversizePayloadIsDeadLetteredWithTheReason) {
  auto c = Config({{"big/#", 1}});
  c.max_record_bytes = 1000;
  MqttSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  PublishOne("big/one", 1, std::string(1001, 'x'));
  PublishOne("big/two", 1, std::string(1000, 'y'));
  // `received` counts on arrival, `stored` once the append returned: wait for both outcomes.
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored + source.Stats().dead_lettered == 2; }, 5s));
  EXPECT_EQ(source.Stats().received, 2u);
  EXPECT_EQ(source.Stats().dead_lettered, 1u);
  EXPECT_EQ(source.Stats().stored, 1u);
  auto dlq = store_->ListDeadLetters(0, 10);
  ASSERT_EQ(dlq->size(), 1u);
  EXPECT_EQ((*dlq)[0].record.channel, "big/one");
  EXPECT_EQ((*dlq)[0].reason, "payload 1001 bytes > max_record_bytes 1000");
  EXPECT_EQ((*dlq)[0].record.payload.size(), 1001u);
}

TEST_F(MqttSourceTest, ReconnectsAndResubscribesAfterTheBrokerIsKilled) {
  MqttSource source(Config({{"sensors/#", 1}}), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s));
  Publish("sensors/a", 100, 1, "before-");
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 100; }, 5s));
  broker_.Kill();
  ASSERT_TRUE(WaitUntil([&] { return !source.Stats().connected; }, 10s));
  EXPECT_FALSE(source.Stats().last_error.empty());
  std::this_thread::sleep_for(300ms);  // a few failed reconnects
  ASSERT_TRUE(broker_.Start());         // same port, no memory of the session
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 10s));
  Publish("sensors/a", 100, 1, "after-");
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 200; }, 5s)) << source.Stats().stored;
  EXPECT_EQ(source.Stats().reconnects, 1u);
  EXPECT_EQ(Stored().back().record.payload, "after-99");
}

TEST_F(MqttSourceTest, UnreachableBrokerIsRetriedWithoutCrashingThenConnects) {
  broker_.Kill();
  MqttSource source(Config({{"sensors/#", 1}}), *ingest_);
  ASSERT_TRUE(source.Start().ok());
  std::this_thread::sleep_for(700ms);
  EXPECT_FALSE(source.Stats().connected);
  EXPECT_FALSE(source.Stats().last_error.empty());
  ASSERT_TRUE(broker_.Start());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 10s));
  Publish("sensors/x", 5, 1);
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 5; }, 5s));
  EXPECT_EQ(source.Stats().reconnects, 0u) << "the first successful connect is not a reconnect";
}

class PersistentSession : public MqttSourceTest, public ::testing::WithParamInterface<int> {};

TEST_P(PersistentSession, ReceivesWhatWasPublishedWhileAway) {
  auto c = Config({{"queue/#", 1}});
  c.clean_session = false;
  c.mqtt_version = GetParam();
  {
    MqttSource first(c, *ingest_);
    ASSERT_TRUE(first.Start().ok());
    ASSERT_TRUE(WaitUntil([&] { return first.Stats().connected; }, 5s));
    first.Stop();
  }
  Publish("queue/a", 50, 1, "while-away-");
  MqttSource second(c, *ingest_);
  ASSERT_TRUE(second.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return second.Stats().stored == 50; }, 5s)) << second.Stats().stored;
  EXPECT_EQ(Stored().front().record.payload, "while-away-0");
}

INSTANTIATE_TEST_SUITE_P(MqttVersions, PersistentSession, ::testing::Values(4, 5),
                         [](const auto& p) { return p.param == 5 ? std::string("mqtt5") : std::string("mqtt311"); });

TEST_F(MqttSourceTest, Mqtt5ClientReceivesToo) {
  auto c = Config({{"v5/#", 1}});
  c.mqtt_version = 5;
  c.clean_session = false;
  MqttSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().connected; }, 5s)) << source.Stats().last_error;
  Publish("v5/a", 10, 1);
  ASSERT_TRUE(WaitUntil([&] { return source.Stats().stored == 10; }, 5s));
}

// Fault injection: a "broker" that answers CONNECT with CONNACK (MQTT 3.1.1, 3.2) and
// then never answers SUBSCRIBE. Counts the connections it accepted.
class SilentSubackBroker {
 public:
  SilentSubackBroker() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SilentSubackBroker() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  // Waits up to 50 ms for `fd` to be readable; false when the test is over.
  bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      if (poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }
  void Serve() {
    while (Readable(fd_)) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted_;
      char buf[512];
      bool answered = false;
      while (Readable(c)) {
        if (read(c, buf, sizeof buf) <= 0) break;
        if (!answered && (static_cast<unsigned char>(buf[0]) >> 4) == 1) {
          const unsigned char connack[] = {0x20, 0x02, 0x00, 0x00};
          answered = write(c, connack, sizeof connack) == sizeof connack;
        }
      }
      close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST_F(MqttSourceTest, ABrokerThatNeverAnswersSubscribeFailsTheAttemptAndIsRetried) {
  SilentSubackBroker silent;
  MqttSourceConfig c = Config({{"sensors/#", 1}});
  c.uri = "tcp://127.0.0.1:" + std::to_string(silent.port());
  c.connect_timeout_ns = 300'000'000;
  MqttSource source(c, *ingest_);
  ASSERT_TRUE(source.Start().ok());
  // Without a bound on the SUBACK wait the source would sit in its first attempt forever.
  ASSERT_TRUE(WaitUntil([&] { return silent.accepted() >= 3; }, 10s)) << silent.accepted() << " connections";
  EXPECT_FALSE(source.Stats().connected);
  EXPECT_NE(source.Stats().last_error.find("SUBACK"), std::string::npos) << source.Stats().last_error;
  const auto t0 = std::chrono::steady_clock::now();
  source.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}


// Fault injection: a store that takes 20 ms per record (a slow card in sync durability).
class SlowIngest final : public Ingest {
 public:
  explicit SlowIngest(Ingest& inner) : inner_(inner) {}
  Result<uint64_t> Append(Record record) override {
    std::this_thread::sleep_for(20ms);
    return inner_.Append(std::move(record));
  }
  void DeadLetter(const Record& record, std::string_view reason) override { inner_.DeadLetter(record, reason); }

 private:
  Ingest& inner_;
};

// A persistent session's queued messages arrive before the SUBACK; storing them takes
// longer than the connect timeout, and that is progress, not a silent broker.
TEST_F(MqttSourceTest, AQueuedBacklogSlowerThanTheConnectTimeoutIsNotASilentBroker) {
  auto c = Config({{"queue/#", 1}});
  c.clean_session = false;
  c.connect_timeout_ns = 500'000'000;
  {
    MqttSource first(c, *ingest_);
    ASSERT_TRUE(first.Start().ok());
    ASSERT_TRUE(WaitUntil([&] { return first.Stats().connected; }, 5s));
    first.Stop();
  }
  Publish("queue/a", 150, 1, "queued-");  // 150 x 20 ms = 3 s of storing, 6 connect timeouts
  SlowIngest slow(*ingest_);
  MqttSource second(c, slow);
  ASSERT_TRUE(second.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return second.Stats().stored == 150; }, 20s)) << second.Stats().stored;
  EXPECT_TRUE(WaitUntil([&] { return second.Stats().connected; }, 5s)) << second.Stats().last_error;
  EXPECT_EQ(second.Stats().last_error, "") << "no attempt failed";
  const auto stored = Stored();
  ASSERT_EQ(stored.size(), 150u) << "each stored once";
  EXPECT_EQ(stored.back().record.payload, "queued-149");
}

}  // namespace
}  // namespace edgeferry::drivers
