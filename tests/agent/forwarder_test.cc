// Forwarder over a real Store, with a fault-injecting sink (fakes are for faults only).
#include "edgeferry/agent/forwarder.h"
#include "edgeferry/buffer/dead_letter_admin.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/drivers/outbox/outbox_sink.h"
#include "edgeferry/timebase.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <mutex>
#include <thread>

#include "test_support.h"

namespace edgeferry::agent {
namespace {

using edgeferry::testing::TempDir;
using edgeferry::testing::WaitUntil;
using namespace std::chrono_literals;

// What the sink does on each Deliver call, in order; after the script, it accepts.
struct Step {
  Status error;                   // Unavailable -> nothing acked; Permanent -> batch refused
  std::vector<uint64_t> reject;   // seqs refused for good (rest accepted)
  std::chrono::milliseconds stall{0};
  bool throw_instead = false;     // Deliver throws (a bug in a sink or its parser)
};

class FaultySink final : public drivers::Sink {
 public:
  FaultySink(std::string name, drivers::BatchPolicy policy) : name_(std::move(name)), policy_(policy) {}
  const std::string& name() const override { return name_; }
  drivers::BatchPolicy policy() const override { return policy_; }
  Status Start() override { return Status::Ok(); }
  uint64_t RecoverDeliveredSeq() override { return recovered_; }
  drivers::DestinationLimits limits() const override { return limits_; }
  void Cancel() override { cancelled_ = true; }
  drivers::Delivery Deliver(std::span<const StoredRecord> batch) override {
    if (hang_until_cancelled_) {
      {
        std::lock_guard<std::mutex> l(mu_);
        calls_.emplace_back();
      }
      while (!cancelled_) std::this_thread::sleep_for(10ms);
      drivers::Delivery d;
      d.error = Status::Unavailable("cancelled");
      return d;
    }
    Step step;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!script_.empty()) {
        step = script_.front();
        script_.pop_front();
      }
      calls_.push_back(std::vector<uint64_t>());
      for (const auto& r : batch) {
        calls_.back().push_back(r.seq);
        channels_.push_back(r.record.channel);
      }
    }
    std::this_thread::sleep_for(step.stall);
    if (step.throw_instead) throw std::runtime_error("[json.exception.type_error.302] type must be string");
    drivers::Delivery d;
    // The destination refuses any batch holding a poison record (or every batch: a dead link).
    for (const auto& r : batch) {
      if (refuse_all_ || poison_.count(r.seq)) {
        d.error = poison_permanent_ ? Status::Permanent("HTTP 413: too large") : Status::Unavailable("connection lost");
        d.refused = true;
        return d;
      }
    }
    d.error = step.error;
    if (!step.error.ok()) return d;
    for (uint64_t s : step.reject) d.rejected.push_back({s, "rejected by test"});
    d.acked_through = batch.back().seq;
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& r : batch) {
      if (std::find(step.reject.begin(), step.reject.end(), r.seq) == step.reject.end()) {
        accepted_.push_back(r.seq);
        payloads_[r.seq] = r.record.payload;
      }
    }
    return d;
  }
  std::map<uint64_t, std::string> Payloads() {
    std::lock_guard<std::mutex> l(mu_);
    return payloads_;
  }
  std::vector<std::string> ChannelsSent() {
    std::lock_guard<std::mutex> l(mu_);
    return channels_;
  }
  void Script(std::vector<Step> steps) { script_.assign(steps.begin(), steps.end()); }
  std::vector<uint64_t> Accepted() {
    std::lock_guard<std::mutex> l(mu_);
    return accepted_;
  }
  std::vector<std::vector<uint64_t>> Calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  uint64_t recovered_ = 0;
  drivers::DestinationLimits limits_;
  std::set<uint64_t> poison_;
  bool poison_permanent_ = false;
  std::atomic<bool> refuse_all_{false};
  bool hang_until_cancelled_ = false;
  std::atomic<bool> cancelled_{false};

 private:
  std::string name_;
  drivers::BatchPolicy policy_;
  std::mutex mu_;
  std::deque<Step> script_;
  std::vector<std::vector<uint64_t>> calls_;
  std::vector<uint64_t> accepted_;
  std::map<uint64_t, std::string> payloads_;  // accepted, as sent
  std::vector<std::string> channels_;         // of every record in every call
};

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buffer::StoreOptions o;
    o.path = dir_ / "buffer.db";
    o.commit_interval_ns = 20'000'000;
    store_ = std::move(buffer::Store::Open(o)).value();
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(store_->Append(Record{i, "src", "ch", ContentType::kText, "r" + std::to_string(i)}).ok());
    }
  }
  static std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
    std::vector<uint64_t> v;
    for (uint64_t s = from; s <= to; ++s) v.push_back(s);
    return v;
  }
  TempDir dir_;
  std::unique_ptr<buffer::Store> store_;
  RetryPolicy fast_retry_{10'000'000, 50'000'000};
};

TEST_F(ForwarderTest, DeliversEverythingInOrderInBatchesUpToMaxRecords) {
  FaultySink sink("s", {10, 1 << 20, 0});
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  Append(95);
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 95; }, 5s));
  EXPECT_EQ(sink.Accepted(), Range(1, 95));
  for (const auto& call : sink.Calls()) EXPECT_LE(call.size(), 10u);
  // The sink holds the records before the forwarder, back from Deliver, acks them.
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 95u; }, 5s)) << f.Stats().acked_seq;
  EXPECT_EQ(f.Stats().delivered_records, 95u);
  EXPECT_EQ(f.Stats().state, SinkState::kOnline);
  ASSERT_TRUE(WaitUntil([&] { return store_->Stats().records == 0; }, 5s)) << "acked segments are deleted";
}

// Routing (issue 14): a sink receives only what its route selects; the cursor passes
// over the rest, which is counted, never delivered.
TEST_F(ForwarderTest, ARouteDeliversOnlyWhatItSelectsAndTheCursorPassesTheRest) {
  FaultySink sink("alarms", {7, 1 << 20, 0});
  Forwarder f(*store_, sink, fast_retry_, {}, Route{{"plant"}, {"+/alarm/#"}});
  ASSERT_TRUE(f.Start().ok());
  // seq i (from 1): source plant or gps; channel press/alarm/high, press/temp or oven/alarm.
  const std::vector<std::string> sources = {"plant", "plant", "gps"};
  const std::vector<std::string> channels = {"press/alarm/high", "press/temp", "oven/alarm", "oven/alarm/x/y"};
  std::vector<uint64_t> expected;
  for (int i = 1; i <= 200; ++i) {
    const std::string& src = sources[i % sources.size()];
    const std::string& ch = channels[(i / 3) % channels.size()];
    ASSERT_TRUE(store_->Append(Record{i, src, ch, ContentType::kText, "r"}).ok());
    // Selected: from plant, and the second level is "alarm".
    if (src == "plant" && ch.find("/alarm") != std::string::npos) expected.push_back(static_cast<uint64_t>(i));
  }
  ASSERT_GT(expected.size(), 30u);
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 200; }, 5s)) << f.Stats().acked_seq;
  EXPECT_EQ(sink.Accepted(), expected);
  EXPECT_EQ(f.Stats().delivered_records, expected.size());
  EXPECT_EQ(f.Stats().skipped_records, 200 - expected.size());
  for (const auto& call : sink.Calls()) EXPECT_FALSE(call.empty()) << "a batch with nothing selected is not sent";
  ASSERT_TRUE(WaitUntil([&] { return store_->Stats().records == 0; }, 5s)) << "skipped records do not pin the buffer";
}

TEST_F(ForwarderTest, ARoutedSinkThatFailsDoesNotPassRecordsItHasNotDelivered) {
  FaultySink sink("alarms", {100, 1 << 20, 0});
  const Status down = Status::Unavailable("connection refused");
  sink.Script({{down, {}}, {down, {}}});
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(store_->Append(Record{i, "plant", i % 2 ? "a/alarm" : "a/temp", ContentType::kText, "r"}).ok());
  }
  Forwarder f(*store_, sink, fast_retry_, {}, Route{{}, {"+/alarm"}});
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 20; }, 5s));
  std::vector<uint64_t> odd;
  for (uint64_t s = 1; s <= 20; s += 2) odd.push_back(s);
  EXPECT_EQ(sink.Accepted(), odd);
  // The failed attempts sent the same records: the cursor stayed before seq 1.
  const auto calls = sink.Calls();
  ASSERT_EQ(calls.size(), 3u);
  for (const auto& call : calls) EXPECT_EQ(call, odd);
}

// Per-sink processors (issue 14): the sink sends what they make of each record, acks past
// what they drop, dead-letters what they fail on; retries do not count a record twice.
TEST_F(ForwarderTest, SinkProcessorsShapeWhatIsSentDropAndDeadLetterAndCountEachRecordOnce) {
  FaultySink sink("cloud", {100, 1 << 20, 0});
  const Status down = Status::Unavailable("connection refused");
  sink.Script({{down, {}}, {down, {}}});
  pipeline::FieldsConfig strip;
  strip.kind = pipeline::FieldsConfig::Kind::kDrop;
  strip.names = {"secret"};
  pipeline::FilterConfig warm;
  warm.field = pipeline::ParseFieldPath("t");
  warm.op = pipeline::FilterConfig::Op::kGe;
  warm.value = 5;
  std::vector<uint64_t> sent, dead;
  uint64_t dropped = 0;
  for (int i = 1; i <= 30; ++i) {
    if (i % 10 == 0) {  // not JSON: drop_fields fails on it
      ASSERT_TRUE(store_->Append(Record{i, "plant", "a", ContentType::kText, "t=" + std::to_string(i)}).ok());
      dead.push_back(static_cast<uint64_t>(i));
      continue;
    }
    const std::string json = nlohmann::json{{"t", i}, {"secret", "pw"}, {"i", i}}.dump();
    ASSERT_TRUE(store_->Append(Record{i, "plant", "a", ContentType::kJson, json}).ok());
    if (i >= 5) {
      sent.push_back(static_cast<uint64_t>(i));
    } else {
      ++dropped;
    }
  }
  Forwarder f(*store_, sink, fast_retry_, {}, Route{}, {strip, warm});
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 30; }, 5s)) << f.Stats().acked_seq;
  EXPECT_EQ(sink.Accepted(), sent);
  for (const auto& [seq, payload] : sink.Payloads()) {
    EXPECT_EQ(nlohmann::json::parse(payload), (nlohmann::json{{"t", seq}, {"i", seq}})) << payload;
  }
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), dead.size());
  for (size_t k = 0; k < dlq.size(); ++k) {
    EXPECT_EQ(*dlq[k].seq, dead[k]);
    EXPECT_EQ(dlq[k].stage, "sink:cloud");
    EXPECT_NE(dlq[k].reason.find("processor 0 (drop_fields)"), std::string::npos) << dlq[k].reason;
    EXPECT_EQ(dlq[k].record.payload, "t=" + std::to_string(dead[k])) << "as stored, for a replay";
  }
  const auto stats = f.Stats();
  EXPECT_EQ(sink.Calls().size(), 3u) << "two failed attempts, then the batch";
  EXPECT_EQ(stats.dropped_records, dropped);
  ASSERT_EQ(stats.processors.size(), 2u);
  EXPECT_EQ(stats.processors[0].in, 30u) << "counted once, though read three times";
  EXPECT_EQ(stats.processors[0].failed, dead.size());
  EXPECT_EQ(stats.processors[1].dropped, dropped);
  EXPECT_EQ(stats.processors[1].out, sent.size());
}

// Found while adding per-sink processors: the probe that tells a poison record from a
// dead link sent the next record in the store, whether the sink's route selected it or not.
TEST_F(ForwarderTest, ThePoisonProbeIsARecordTheSinkWouldSend) {
  FaultySink sink("alarms", {100, 1 << 20, 0});
  sink.poison_ = {7};
  pipeline::FieldsConfig tag;
  tag.kind = pipeline::FieldsConfig::Kind::kSet;
  tag.set["site"] = "north";
  for (int i = 1; i <= 40; ++i) {
    ASSERT_TRUE(store_->Append(Record{i, "plant", i % 2 ? "a/alarm" : "a/temp", ContentType::kJson, "{}"}).ok());
  }
  Forwarder f(*store_, sink, fast_retry_, {}, Route{{}, {"+/alarm"}}, {tag});
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 40; }, 5s)) << f.Stats().last_error;
  for (const auto& ch : sink.ChannelsSent()) EXPECT_EQ(ch, "a/alarm");
  for (const auto& [seq, payload] : sink.Payloads()) EXPECT_EQ(payload, R"({"site":"north"})") << seq;
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(*dlq[0].seq, 7u);
  EXPECT_EQ(f.Stats().poison_records, 1u);
}

// Found by review: the probe looked 256 records ahead only, so on a sparse route a
// poison record that could not be proven was retried for ever, holding back the rest.
TEST_F(ForwarderTest, OnASparseRouteThePoisonProbeLooksFarEnough) {
  FaultySink sink("alarms", {100, 1 << 20, 0});
  sink.poison_ = {501};
  for (int i = 1; i <= 2000; ++i) {
    ASSERT_TRUE(store_->Append(Record{i, "plant", i % 500 == 1 ? "a/alarm" : "a/temp", ContentType::kText, "r"}).ok());
  }
  Forwarder f(*store_, sink, fast_retry_, {}, Route{{}, {"+/alarm"}});
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 2000; }, 10s)) << f.Stats().acked_seq;
  EXPECT_EQ(sink.Accepted(), (std::vector<uint64_t>{1, 1001, 1001, 1501})) << "1001 was the probe, then sent in turn";
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(*dlq[0].seq, 501u);
}

TEST_F(ForwarderTest, ReplayedDeadLettersPassTheSinksProcessors) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.Script({{Status::Ok(), {3}}});  // refused the first time
  pipeline::FieldsConfig strip;
  strip.kind = pipeline::FieldsConfig::Kind::kDrop;
  strip.names = {"secret"};
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(store_->Append(Record{i, "src", "ch", ContentType::kJson, R"({"v":1,"secret":"pw"})"}).ok());
  }
  Forwarder f(*store_, sink, fast_retry_, {}, Route{}, {strip});
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 5; }, 5s));
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].record.payload, R"({"v":1,"secret":"pw"})") << "the dead letter keeps the record as stored";
  auto admin = buffer::DeadLetterAdmin::Open(dir_ / "buffer.db");
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  EXPECT_EQ(*(*admin)->Replay({}, ""), 1u);
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 5; }, 5s));
  EXPECT_EQ(sink.Payloads()[3], R"({"v":1})") << "the replayed record in the sink's shape";
}

// Found by review: a server's response body went raw into the log, /status and the
// terminal of `edgeferry status` (escape sequences, a forged second log line).
TEST_F(ForwarderTest, ADestinationsAnswerIsKeptPrintableInErrorsAndDeadLetterReasons) {
  FaultySink sink("s", {10, 1 << 20, 0});
  const std::string hostile = "HTTP 503: \x1b[2J\x1b]0;pwned\x07\r\nsink s online\x7f";
  sink.Script({{Status::Unavailable(hostile), {}}, {Status::Permanent(hostile), {}}});
  Append(3);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 3; }, 5s));
  f.Stop();
  const auto printable = [](const std::string& s) {
    return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  };
  const std::string err = f.Stats().last_error;
  EXPECT_TRUE(printable(err)) << err;
  EXPECT_NE(err.find("HTTP 503: \\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x0asink s online\\x7f"), std::string::npos) << err;
  auto dead = store_->ListDeadLetters(0, 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 3u);
  for (const auto& d : *dead) EXPECT_TRUE(printable(d.reason)) << d.reason;
}

TEST_F(ForwarderTest, TransientFailuresAreRetriedAndTheCursorWaits) {
  FaultySink sink("s", {100, 1 << 20, 0});
  const Status down = Status::Unavailable("connection refused");
  sink.Script({{down, {}}, {down, {}}, {down, {}}});
  Append(30);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 30; }, 5s));
  EXPECT_EQ(sink.Accepted(), Range(1, 30));
  EXPECT_EQ(f.Stats().retries, 3u);
  EXPECT_EQ(f.Stats().last_error, "Unavailable: connection refused");
  // Every attempt started from the same record: the cursor did not move on failure.
  for (const auto& call : sink.Calls()) EXPECT_EQ(call.front(), 1u);
}

TEST_F(ForwarderTest, RecordsRejectedForGoodAreDeadLetteredAndTheCursorMovesOn) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.Script({{Status::Ok(), {5, 7}}});
  Append(20);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 20; }, 5s));
  EXPECT_EQ(sink.Accepted().size(), 18u);
  EXPECT_EQ(f.Stats().dead_lettered, 2u);
  EXPECT_EQ(f.Stats().delivered_records, 18u);
  auto dlq = store_->ListDeadLetters(0, 10);
  ASSERT_EQ(dlq->size(), 2u);
  EXPECT_EQ((*dlq)[0].seq, 5u);
  EXPECT_EQ((*dlq)[0].stage, "sink:s");
  EXPECT_EQ((*dlq)[0].reason, "rejected by test");
  EXPECT_EQ((*dlq)[1].record.payload, "r6");
}

TEST_F(ForwarderTest, APermanentBatchErrorDeadLettersTheBatchInsteadOfRetryingForever) {
  FaultySink sink("s", {10, 1 << 20, 0});
  sink.Script({{Status::Permanent("HTTP 400: bad request"), {}}});
  Append(25);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 25; }, 5s));
  EXPECT_EQ(f.Stats().dead_lettered, 10u);
  EXPECT_EQ(sink.Accepted(), Range(11, 25));
  EXPECT_EQ((*store_->ListDeadLetters(0, 100))[9].reason, "HTTP 400: bad request");
}

TEST_F(ForwarderTest, LingerGathersRecordsIntoOneBatch) {
  FaultySink sink("s", {1000, 1 << 20, 400'000'000});
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  Append(50);
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 50; }, 5s));
  ASSERT_EQ(sink.Calls().size(), 1u);
  EXPECT_EQ(sink.Calls()[0].size(), 50u);
}

TEST_F(ForwarderTest, MaxBytesSealsBatchesToo) {
  FaultySink sink("s", {1000, 6, 0});  // payloads are 2-3 bytes: 2 per batch
  Append(9);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 9; }, 5s));
  for (const auto& call : sink.Calls()) EXPECT_LE(call.size(), 3u);
}

TEST_F(ForwarderTest, WhatTheDestinationAlreadyHoldsIsNotSentAgain) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.recovered_ = 30;
  Append(40);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 10; }, 5s));
  EXPECT_EQ(sink.Accepted(), Range(31, 40));
}

TEST_F(ForwarderTest, DrainRateLimitPacesABacklog) {
  FaultySink sink("s", {1000, 1 << 20, 0});
  Append(600);
  DrainPolicy drain;
  drain.records_per_s = 200;  // a metered link
  Forwarder f(*store_, sink, fast_retry_, drain);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 600; }, 10s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // One second of budget up front, then 200/s: 600 records take about 2 s, never under 1.8.
  EXPECT_GT(secs, 1.8);
  EXPECT_LT(secs, 4.0);
  for (const auto& call : sink.Calls()) EXPECT_LE(call.size(), 200u) << "a batch never exceeds one second of budget";
}

TEST_F(ForwarderTest, LiveFirstSendsNewRecordsAheadOfTheBacklog) {
  FaultySink sink("s", {100, 1 << 20, 0});
  Append(1000);  // the backlog built while the link was down
  DrainPolicy drain;
  drain.live_first = true;
  drain.records_per_s = 300;  // slow enough that new records arrive while it drains (~3 s)
  Forwarder f(*store_, sink, fast_retry_, drain);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return !sink.Accepted().empty(); }, 5s));
  Append(50);  // live records: seq 1001..1050
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 1050; }, 10s));
  const auto order = sink.Accepted();
  const auto first_live = std::find(order.begin(), order.end(), 1001u) - order.begin();
  const auto last_backlog = std::find(order.begin(), order.end(), 1000u) - order.begin();
  EXPECT_LT(first_live, last_backlog) << "live records went ahead of the end of the backlog";
  std::set<uint64_t> distinct(order.begin(), order.end());
  EXPECT_EQ(distinct.size(), 1050u) << "each exactly once";
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 1050; }, 5s)) << "the cursor catches up at the end";
}

// Live-first reads newer records before the backlog: each stream keeps its own count of
// what the sink's processors saw, so a backlog record they fail on is still dead-lettered.
TEST_F(ForwarderTest, LiveFirstWithProcessorsStillDeadLettersTheBacklogsFailures) {
  FaultySink sink("s", {100, 1 << 20, 0});
  for (int i = 1; i <= 400; ++i) {
    const bool bad = i % 100 == 50;  // 50, 150, 250, 350: not JSON
    ASSERT_TRUE(store_->Append(Record{i, "src", "ch", bad ? ContentType::kText : ContentType::kJson,
                                      bad ? "x" : R"({"v":1,"secret":"pw"})"})
                    .ok());
  }
  DrainPolicy drain;
  drain.live_first = true;
  drain.records_per_s = 300;
  pipeline::FieldsConfig strip;
  strip.kind = pipeline::FieldsConfig::Kind::kDrop;
  strip.names = {"secret"};
  Forwarder f(*store_, sink, fast_retry_, drain, Route{}, {strip});
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return !sink.Accepted().empty(); }, 5s));
  for (int i = 401; i <= 450; ++i) {
    ASSERT_TRUE(store_->Append(Record{i, "src", "ch", i == 420 ? ContentType::kText : ContentType::kJson,
                                      i == 420 ? "x" : R"({"v":1})"})
                    .ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 450; }, 10s)) << f.Stats().acked_seq;
  std::set<uint64_t> dead;
  const auto dlq = store_->ListDeadLetters(0, 100).value();
  for (const auto& d : dlq) dead.insert(d.seq.value_or(0));
  EXPECT_EQ(dead, (std::set<uint64_t>{50, 150, 250, 350, 420}));
  EXPECT_EQ(sink.Accepted().size(), 445u);
  EXPECT_EQ(f.Stats().processors[0].in, 450u);
}

TEST_F(ForwarderTest, ReplayedDeadLettersGoBackToTheirSink) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.Script({{Status::Ok(), {3, 4}}});  // refused the first time
  Append(10);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 10; }, 5s));
  EXPECT_EQ(sink.Accepted().size(), 8u);
  // The operator fixed the cause and replays: `edgeferry dlq replay --all`.
  auto admin = buffer::DeadLetterAdmin::Open(dir_ / "buffer.db");
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  EXPECT_EQ(*(*admin)->Replay({}, ""), 2u);
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 10; }, 5s));
  EXPECT_EQ(sink.Accepted()[8], 3u) << "with its original seq";
  EXPECT_EQ(sink.Accepted()[9], 4u);
  EXPECT_TRUE((*admin)->List(0, 10)->empty());
  EXPECT_TRUE(WaitUntil([&] { return store_->Stats().replay_queued == 0u; }, 5s)) << "taken once delivered";
}

TEST_F(ForwarderTest, AStalledSinkBlocksNeitherIngestNorOtherSinks) {
  FaultySink slow("slow", {10, 1 << 20, 0});
  slow.Script({{Status::Ok(), {}, 3000ms}});
  FaultySink fast("fast", {10, 1 << 20, 0});
  Forwarder fs(*store_, slow, fast_retry_), ff(*store_, fast, fast_retry_);
  ASSERT_TRUE(fs.Start().ok());
  ASSERT_TRUE(ff.Start().ok());
  Append(1);
  ASSERT_TRUE(WaitUntil([&] { return slow.Calls().size() == 1; }, 2s));  // slow is now stuck
  Append(199);
  EXPECT_TRUE(WaitUntil([&] { return fast.Accepted().size() == 200; }, 2s)) << fast.Accepted().size();
  EXPECT_TRUE(slow.Accepted().empty());
  const auto stats = store_->Stats();
  EXPECT_EQ(stats.appended_total, 200u);
  ASSERT_TRUE(WaitUntil([&] { return slow.Accepted().size() == 200; }, 10s));
}

// ---------------------------------------------------------------- poison records (issue 12)

TEST_F(ForwarderTest, ARecordOverTheSinksMaxRecordBytesIsDeadLetteredBeforeSendingAndTheRestFlows) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.limits_.max_record_bytes = 1000;
  sink.limits_.gateway_id = "gw";
  Append(3);
  ASSERT_TRUE(store_->Append(Record{7, "src", "ch", ContentType::kText, std::string(2000, 'x')}).ok());
  Append(3);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 7; }, 5s));
  EXPECT_EQ(sink.Accepted(), (std::vector<uint64_t>{1, 2, 3, 5, 6, 7}));
  for (const auto& call : sink.Calls()) EXPECT_EQ(std::count(call.begin(), call.end(), 4u), 0) << "never sent";
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(*dlq[0].seq, 4u);
  // The envelope of a 2000-byte text payload is the payload as a JSON string plus the fields around it.
  std::string envelope;
  drivers::AppendEnvelope("gw", StoredRecord{4, Record{7, "src", "ch", ContentType::kText, std::string(2000, 'x')}},
                          &envelope);
  EXPECT_EQ(dlq[0].reason, "record of " + std::to_string(envelope.size() - 1) +
                               " bytes (envelope) exceeds the sink's max_record_bytes of 1000");
  EXPECT_EQ(f.Stats().oversize_records, 1u);
  EXPECT_EQ(f.Stats().dead_lettered, 1u);
}

TEST_F(ForwarderTest, MaxBatchBytesCutsABatchByTheSizeOfItsEnvelopes) {
  FaultySink sink("s", {1000, 1 << 20, 0});
  std::string one;
  drivers::AppendEnvelope("gw", StoredRecord{1, Record{0, "src", "ch", ContentType::kText, "r0"}}, &one);
  sink.limits_.max_batch_bytes = 3 * (one.size() + 2);  // about three envelopes per batch
  sink.limits_.gateway_id = "gw";
  Append(30);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 30; }, 5s));
  EXPECT_EQ(sink.Accepted(), Range(1, 30));
  for (const auto& call : sink.Calls()) EXPECT_LE(call.size(), 3u);
}

TEST_F(ForwarderTest, ABatchTheDestinationRefusesIsBisectedDownToThePoisonRecordWhichIsDeadLettered) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.poison_ = {37};  // e.g. the broker drops the connection after this PUBLISH
  Append(100);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 100; }, 5s)) << f.Stats().last_error;
  auto accepted = sink.Accepted();
  std::set<uint64_t> distinct(accepted.begin(), accepted.end());
  std::set<uint64_t> expected;
  for (uint64_t s = 1; s <= 100; ++s) {
    if (s != 37) expected.insert(s);
  }
  EXPECT_EQ(distinct, expected) << "every other record delivered";
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(*dlq[0].seq, 37u);
  EXPECT_EQ(dlq[0].reason, "refused by the destination: connection lost");
  EXPECT_EQ(f.Stats().poison_records, 1u);
  // Bisection: about two calls per halving (log2 100 ~ 7), plus the probe.
  EXPECT_LE(sink.Calls().size(), 2u * 7 + 6) << "bisected, not record by record";
}

TEST_F(ForwarderTest, APermanentRefusalIsBisectedToo) {
  FaultySink sink("s", {50, 1 << 20, 0});
  sink.poison_ = {10, 11};
  sink.poison_permanent_ = true;  // e.g. HTTP 413
  Append(50);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 50; }, 5s));
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 2u);
  EXPECT_EQ(*dlq[0].seq, 10u);
  EXPECT_EQ(*dlq[1].seq, 11u);
  EXPECT_EQ(sink.Accepted().size(), 48u);
}

TEST_F(ForwarderTest, ALinkThatRefusesEveryBatchIsRetriedForEverAndNothingIsDeadLettered) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.refuse_all_ = true;  // a broker that drops every client after every PUBLISH: the link, not a record
  Append(20);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().retries >= 5; }, 5s));
  EXPECT_TRUE(store_->ListDeadLetters(0, 10)->empty());
  EXPECT_EQ(f.Stats().acked_seq, 0u);
  EXPECT_EQ(f.Stats().poison_records, 0u);
  // Once the destination accepts again, everything arrives.
  sink.refuse_all_ = false;
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 20; }, 5s));
}

TEST_F(ForwarderTest, AnExceptionEscapingTheSinkIsCaughtCountedAndRetried) {
  FaultySink sink("s", {100, 1 << 20, 0});
  Step boom;
  boom.throw_instead = true;
  sink.Script({boom, boom});
  Append(10);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return sink.Accepted().size() == 10; }, 5s));
  EXPECT_EQ(f.Stats().sink_exceptions, 2u);
  EXPECT_EQ(f.Stats().retries, 2u);
  EXPECT_TRUE(store_->ListDeadLetters(0, 10)->empty()) << "an exception is not the record's fault";
}

TEST_F(ForwarderTest, StopCancelsASinkStuckInADeliveryAndReturnsPromptly) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.hang_until_cancelled_ = true;
  Append(5);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return !sink.Calls().empty(); }, 5s));
  const auto t0 = std::chrono::steady_clock::now();
  f.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_TRUE(sink.cancelled_);
}

TEST_F(ForwarderTest, ARecordMovedByHandIsDeadLetteredAndTheStuckSinkMovesOn) {
  FaultySink sink("s", {100, 1 << 20, 0});
  sink.poison_ = {5};
  sink.refuse_all_ = false;
  // Refusals of 5 that cannot be proven (no probe succeeds: the destination refuses 5 and
  // is otherwise down) keep the sink retrying; the operator moves 5 by hand.
  Append(5);
  Forwarder f(*store_, sink, fast_retry_);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 4 && f.Stats().retries >= 2; }, 5s))
      << "5 is the last record: nothing after it proves the link works";
  EXPECT_TRUE(store_->ListDeadLetters(0, 10)->empty());
  auto admin = buffer::DeadLetterAdmin::Open(dir_ / "buffer.db");
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  // The admin reads the cursor from the file: the ack of 4 must be committed first (under
  // TSan the commit interval had not passed and the move of 4 was accepted).
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ((*admin)->RequestMove("s", 4).code(), Status::Code::kInvalidArgument) << "already delivered";
  EXPECT_EQ((*admin)->RequestMove("nope", 5).code(), Status::Code::kNotFound);
  ASSERT_TRUE((*admin)->RequestMove("s", 5).ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 5; }, 5s));
  const auto dlq = store_->ListDeadLetters(0, 10).value();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(*dlq[0].seq, 5u);
  EXPECT_EQ(dlq[0].reason, "moved to the dead letter queue by hand (edgeferry dlq move)");
  EXPECT_EQ(f.Stats().moved_records, 1u);
  EXPECT_EQ(store_->Stats().replay_queued, 0u) << "the move request is consumed";
  Append(3);
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 8; }, 5s));
}

// Trustworthy time (issue 14): a record stored while the clock was unsynchronized
// leaves the gateway re-based once it is; one from an earlier boot leaves marked with
// its boot. Through a real outbox: the lines are what a consumer reads.
TEST_F(ForwarderTest, RecordsStampedBeforeClockSyncLeaveRebasedAndAnEarlierBootsLeaveMarked) {
  constexpr int64_t kSec = 1'000'000'000;
  constexpr int64_t kTrueBoot = 1'795'000'000 * kSec;  // when this boot really began
  ManualClock clock(0);
  clock.Reboot("boot-b", 12 * kSec, /*synced=*/false);
  Record earlier_boot{40 * kSec, "src", "ch", ContentType::kText, "a"};
  earlier_boot.ts_source = TsSource::kUnsynced;
  earlier_boot.boot_id = "boot-a";
  earlier_boot.boot_ns = 3 * kSec;
  ASSERT_TRUE(store_->Append(earlier_boot).ok());
  clock.AdvanceNs(5 * kSec);
  Record early{0, "src", "ch", ContentType::kText, "b"};
  StampReceipt(clock, &early);
  ASSERT_TRUE(store_->Append(early).ok());
  clock.AdvanceNs(95 * kSec);
  clock.SetWallNs(kTrueBoot + 100 * kSec);  // NTP
  clock.SetSynchronized(true);
  Record synced{0, "src", "ch", ContentType::kText, "c"};
  StampReceipt(clock, &synced);
  ASSERT_TRUE(store_->Append(synced).ok());

  drivers::OutboxSink sink({"out", "gw", dir_ / "outbox", {10, 1 << 20, 0}, 0});
  ASSERT_TRUE(sink.Start().ok());
  Rebaser rebaser(clock);
  Forwarder f(*store_, sink, fast_retry_, {}, {}, {}, nullptr, &rebaser);
  ASSERT_TRUE(f.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return f.Stats().acked_seq == 3u; }, 5s));
  f.Stop();
  std::vector<nlohmann::json> lines;
  for (const auto& file : std::filesystem::directory_iterator(dir_ / "outbox")) {
    std::ifstream in(file.path());
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(lines.size(), 3u);
  std::sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a["seq"] < b["seq"]; });
  EXPECT_EQ(lines[0]["ts_source"], "unsynced");
  EXPECT_EQ(lines[0]["boot_id"], "boot-a");
  EXPECT_EQ(lines[0]["boot_ns"], 3 * kSec);
  EXPECT_EQ(lines[0]["ts"], "1970-01-01T00:00:40.000000000Z");
  EXPECT_EQ(lines[1]["ts_source"], "rebased");
  EXPECT_EQ(lines[1]["ts"], "2026-11-18T11:06:45.000000000Z") << "true boot + 5 s";
  EXPECT_FALSE(lines[1].contains("boot_id"));
  EXPECT_EQ(lines[2]["ts_source"], "clock");
  EXPECT_EQ(lines[2]["ts"], "2026-11-18T11:08:20.000000000Z") << "true boot + 100 s";
}

}  // namespace
}  // namespace edgeferry::agent
