// TapHub (tap.h): off until polled, bounded, filters, and what a slow client missed.
#include "edgeferry/agent/tap.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

namespace edgeferry::agent {
namespace {

constexpr int64_t kSec = 1'000'000'000;

Record R(const std::string& source, const std::string& channel, const std::string& payload) {
  return Record{1, source, channel, ContentType::kJson, payload};
}

TEST(TapHub, KeepsNothingUntilPolledAndStopsWhenNobodyPolls) {
  TapHub hub;
  hub.Offer(TapPoint::kSource, "plant", R("plant", "a", "{}"));
  auto page = hub.Poll(0, {}, 100, 0);
  EXPECT_TRUE(page.entries.empty()) << "offered before any client polled";
  hub.Offer(TapPoint::kSource, "plant", R("plant", "a", "1"));
  page = hub.Poll(page.next, {}, 100, kSec);
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].record.payload, "1");
  hub.Expire(kSec + TapHub::kIdleNs - 1);
  EXPECT_TRUE(hub.Active());
  hub.Expire(kSec + TapHub::kIdleNs);
  EXPECT_FALSE(hub.Active());
  hub.Offer(TapPoint::kSource, "plant", R("plant", "a", "2"));
  EXPECT_TRUE(hub.Poll(page.next, {}, 100, 10 * kSec).entries.empty());
}

TEST(TapHub, FiltersByPointSourceSinkAndChannel) {
  TapHub hub;
  (void)hub.Poll(0, {}, 1, 0);
  hub.Offer(TapPoint::kSource, "plant", R("plant", "plant/a/temp", "s"));
  hub.Offer(TapPoint::kStored, "plant", R("plant", "plant/a/temp", "t"));
  hub.Offer(TapPoint::kSink, "cloud", R("plant", "plant/b/alarm", "k"), 7);
  hub.Offer(TapPoint::kSink, "local", R("gps", "/dev/ttyUSB0", "g"), 8);
  auto payloads = [&](const TapFilter& f) {
    std::string out;
    for (const auto& e : hub.Poll(0, f, 100, 0).entries) out += e.record.payload;
    return out;
  };
  EXPECT_EQ(payloads({}), "stkg");
  EXPECT_EQ(payloads({{TapPoint::kSource, TapPoint::kSink}, "", "", ""}), "skg");
  EXPECT_EQ(payloads({{}, "plant", "", ""}), "stk");
  EXPECT_EQ(payloads({{}, "", "cloud", ""}), "k");
  EXPECT_EQ(payloads({{}, "", "", "plant/+/temp"}), "st");
  EXPECT_EQ(payloads({{}, "", "", "#"}), "stkg");
}

TEST(TapHub, IsBoundedAndTellsASlowClientHowManyItMissed) {
  TapHub hub;
  (void)hub.Poll(0, {}, 1, 0);
  hub.Offer(TapPoint::kStored, "plant", R("plant", "a", "first"));
  const uint64_t start = hub.Poll(0, {}, 1, 0).next;  // 1: the client has seen "first"
  ASSERT_EQ(start, 1u);
  const std::string big(TapHub::kMaxPayloadBytes * 3, 'x');
  for (int i = 0; i < 2500; ++i) hub.Offer(TapPoint::kStored, "plant", R("plant", "a", i == 2499 ? big : "p"));
  auto page = hub.Poll(start, {}, TapHub::kCapacity, 0);
  EXPECT_EQ(page.missed, 1500u);
  ASSERT_EQ(page.entries.size(), TapHub::kCapacity);
  EXPECT_EQ(page.entries.back().record.payload.size(), TapHub::kMaxPayloadBytes);
  EXPECT_EQ(page.entries.back().payload_bytes, big.size());
  // A page at a time: `next` resumes where the page stopped.
  page = hub.Poll(start + 1500, {}, 10, 0);
  EXPECT_EQ(page.missed, 0u);
  ASSERT_EQ(page.entries.size(), 10u);
  EXPECT_EQ(hub.Poll(page.next, {}, 1, 0).entries.front().id, page.entries.back().id + 1);
}

TEST(TapHub, AnIdFromBeforeARestartStartsOver) {
  TapHub hub;
  (void)hub.Poll(0, {}, 1, 0);
  hub.Offer(TapPoint::kSource, "plant", R("plant", "a", "after restart"));
  auto page = hub.Poll(123456, {}, 10, 0);  // an id the agent's previous hub gave out
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].record.payload, "after restart");
}

TEST(TapHub, OffersFromManyThreadsWhilePolled) {
  TapHub hub;
  (void)hub.Poll(0, {}, 1, 0);
  hub.Offer(TapPoint::kSink, "s", R("x", "c", "first"), 1);
  uint64_t next = hub.Poll(0, {}, 1, 0).next;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hub] {
      for (int i = 0; i < 5000; ++i) hub.Offer(TapPoint::kSink, "s", R("x", "c", "p"), 1);
    });
  }
  uint64_t seen = 0, missed = 0;
  for (int i = 0; i < 200; ++i) {
    auto page = hub.Poll(next, {}, TapHub::kCapacity, 0);
    seen += page.entries.size();
    missed += page.missed;
    next = page.next;
  }
  for (auto& th : threads) th.join();
  auto page = hub.Poll(next, {}, TapHub::kCapacity, 0);
  seen += page.entries.size();
  missed += page.missed;
  EXPECT_EQ(seen + missed, 20000u) << "every record either shown or counted as missed";
}

TEST(TapAnswer, RendersJsonAndRefusesMalformedQueries) {
  TapHub hub;
  auto [code, body] = TapAnswer(hub, "", 0);
  EXPECT_EQ(code, 200);
  hub.Offer(TapPoint::kSink, "cloud", Record{1'800'000'000'000'000'000, "plant", "a/b", ContentType::kBinary,
                                             std::string("\xff\x01", 2)},
            42);
  std::tie(code, body) = TapAnswer(hub, "point=sink&channel=a%2F%2B&max=5", 0);
  ASSERT_EQ(code, 200) << body;
  const auto j = nlohmann::json::parse(body);
  ASSERT_EQ(j["entries"].size(), 1u) << body;
  EXPECT_EQ(j["entries"][0]["seq"], 42);
  EXPECT_EQ(j["entries"][0]["name"], "cloud");
  EXPECT_EQ(j["entries"][0]["ts"], "2027-01-15T08:00:00.000000000Z");
  EXPECT_EQ(j["entries"][0]["payload_bytes"], 2);
  for (const char* bad : {"point=nowhere", "max=0", "max=5000", "after=x", "channel=a/%23/b", "channel=%zz", "color=red"}) {
    std::tie(code, body) = TapAnswer(hub, bad, 0);
    EXPECT_EQ(code, 400) << bad;
    EXPECT_TRUE(nlohmann::json::parse(body).contains("error")) << body;
  }
}

}  // namespace
}  // namespace edgeferry::agent
