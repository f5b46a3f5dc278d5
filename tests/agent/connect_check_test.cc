// ConnectCheckReport: ok() and the text and JSON renderings of `edgeferry check --connect`,
// and CheckConnections on components that need no server.
#include "edgeferry/agent/connect_check.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "edgeferry/drivers/sink.h"
#include "test_support.h"

namespace edgeferry::agent {
namespace {

using drivers::ProbeResult;

ConnectCheckReport Sample() {
  ConnectCheckReport r;
  r.components = {{"source", "plant", "mqtt", ProbeResult::Ok("connected to tcp://127.0.0.1:1883"), 12'400'000},
                  {"sink", "cloud", "kinesis", ProbeResult::Failed("no AWS credentials (looked in: x)"), 3'000'000},
                  {"sink", "later", "future", ProbeResult::Skipped(), 0}};
  return r;
}

TEST(ConnectCheck, OkUnlessAComponentFailedSkippedCountsAsOk) {
  ConnectCheckReport r = Sample();
  EXPECT_FALSE(r.ok());
  r.components.erase(r.components.begin() + 1);
  EXPECT_TRUE(r.ok()) << "a skipped component does not fail the check";
  EXPECT_TRUE(ConnectCheckReport{}.ok());
}

TEST(ConnectCheck, TextHasOneLinePerComponentAndASummary) {
  EXPECT_EQ(ConnectCheckText(Sample()),
            "source mqtt plant: ok (connected to tcp://127.0.0.1:1883 in 12 ms)\n"
            "sink kinesis cloud: FAILED: no AWS credentials (looked in: x) [3 ms]\n"
            "sink future later: skipped (no probe for this type)\n"
            "1 ok, 1 failed, 1 skipped\n");
}

TEST(ConnectCheck, JsonHasTheDocumentedShape) {
  const auto j = nlohmann::json::parse(ConnectCheckJson(Sample()));
  EXPECT_EQ(j, nlohmann::json::parse(R"j({"ok":false,"components":[
    {"kind":"source","name":"plant","type":"mqtt","ok":true,"skipped":false,"detail":"connected to tcp://127.0.0.1:1883","ms":12},
    {"kind":"sink","name":"cloud","type":"kinesis","ok":false,"skipped":false,"detail":"no AWS credentials (looked in: x)","ms":3},
    {"kind":"sink","name":"later","type":"future","ok":false,"skipped":true,"detail":"no probe for this type","ms":0}]})j"));
}

// A sink type that predates probes: the Sink default reports skipped.
class OldSink final : public drivers::Sink {
 public:
  const std::string& name() const override { return name_; }
  drivers::BatchPolicy policy() const override { return {}; }
  Status Start() override { return Status::Ok(); }
  drivers::Delivery Deliver(std::span<const StoredRecord>) override { return {}; }

 private:
  std::string name_ = "old";
};

TEST(ConnectCheck, TheDefaultProbeIsSkipped) {
  OldSink sink;
  const ProbeResult r = sink.Probe(1'000'000'000);
  EXPECT_TRUE(r.skipped());
  EXPECT_EQ(r.detail, "no probe for this type");
}

TEST(ConnectCheck, CheckConnectionsProbesEachComponentAndMasksSecrets) {
  testing::TempDir dir;
  AgentConfig cfg;
  SinkConfig ok;
  ok.name = "local";
  edgeferry::drivers::OutboxSinkConfig outbox;
  outbox.dir = dir / "outbox";
  ok.settings = outbox;
  SinkConfig bad = ok;
  bad.name = "blocked";
  testing::WriteFile(dir / "file", "");
  outbox.dir = dir / "file/outbox";
  bad.settings = outbox;
  // A configured secret (a header value) that appears in a detail is masked: here it is
  // contrived to be the path in the outbox's message.
  SinkConfig web;
  web.name = "web";
  edgeferry::drivers::http::HttpSinkConfig http;
  http.url = "http://user:pw-in-url@127.0.0.1:9/x?token=abc";
  http.headers = {{"X-Key", dir / "file"}};
  web.settings = http;
  cfg.sinks = {ok, bad, web};
  const ConnectCheckReport r = CheckConnections(cfg, 2'000'000'000);
  ASSERT_EQ(r.components.size(), 3u);
  EXPECT_FALSE(r.abandoned);
  EXPECT_TRUE(r.components[0].result.ok()) << r.components[0].result.detail;
  EXPECT_TRUE(r.components[1].result.failed());
  EXPECT_EQ(r.components[1].result.detail, "REDACTED: not a directory");
  EXPECT_EQ(r.components[2].result.detail.find("pw-in-url"), std::string::npos) << r.components[2].result.detail;
  EXPECT_EQ(r.components[2].result.detail.find("abc"), std::string::npos) << r.components[2].result.detail;
  EXPECT_FALSE(r.ok());
}

TEST(ConnectCheck, AProbeThatOverrunsIsReportedFailedAndAbandoned) {
  // The probe ignores its timeout; the check gives up on it at timeout + 2 s.
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::vector<ProbeTarget> targets;
  targets.push_back({"sink", "stuck", "test", [release, finished](int64_t) {
                       while (!*release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                       *finished = true;
                       return ProbeResult::Ok("late");
                     }});
  targets.push_back({"sink", "quick", "test", [](int64_t) { return ProbeResult::Ok("fine"); }});
  const auto t0 = std::chrono::steady_clock::now();
  const ConnectCheckReport r = ProbeAll(std::move(targets), 100'000'000);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(2100));
  EXPECT_LT(waited, std::chrono::milliseconds(4000));
  ASSERT_EQ(r.components.size(), 2u);
  EXPECT_TRUE(r.abandoned);
  EXPECT_TRUE(r.components[0].result.failed());
  EXPECT_EQ(r.components[0].result.detail, "no result within 100 ms (the probe did not stop at its timeout)");
  EXPECT_TRUE(r.components[1].result.ok());
  EXPECT_FALSE(r.ok());
  // The abandoned thread still owns its state: let it finish cleanly.
  *release = true;
  for (int i = 0; i < 500 && !*finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(*finished);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past its last lock
}

}  // namespace
}  // namespace edgeferry::agent
