// `edgeferry dlq list|show|replay|purge` beside a running agent: records a sink refused
// are listed with the reason, replayed to that sink once the cause is fixed, or purged.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "agent_process.h"
#include "edgeferry/drivers/http/http_client.h"
#include "cloud_servers.h"

namespace edgeferry::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST(DlqCli, ListShowReplayAndPurgeBesideARunningAgent) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  EDGEFERRY_REQUIRE_TOOL("python3");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  ScriptedHttpServer api(dir);
  ASSERT_TRUE(api.Start());
  // Every record is refused (the forwarder splits the batch down to each one) until the
  // API is fixed below.
  api.Script(json::array(), {{"status", 422}, {"body", "unknown field t"}});
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-dlq"
data_dir = "@DATA@"
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.api]
type = "http"
url = ")" + api.url() + R"("
compression = "none"
linger = "300ms"
)");
  ASSERT_TRUE(agent.Start());
  const std::string cfg = agent.config_path();
  ASSERT_EQ(std::system(("printf '{\"t\":1}\\n{\"t\":2}\\n{\"t\":3}\\n' | mosquitto_pub -p " +
                         std::to_string(broker.port()) + " -q 1 -t plant/a -l").c_str()),
            0);
  std::string out;
  ASSERT_TRUE(WaitUntil(
      [&] {
        RunCommand({EdgeferryBinary(), "dlq", "list", "--config", cfg}, &out);
        return out.find("3 dead letters") != std::string::npos;
      },
      10s))
      << out;
  EXPECT_NE(out.find("sink:api"), std::string::npos) << out;
  EXPECT_NE(out.find("HTTP 422: unknown field t"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "show", "--id", "2", "--config", cfg}, &out), 0);
  EXPECT_NE(out.find("{\"t\":2}"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "show", "--id", "99", "--config", cfg}, &out), 1);
  EXPECT_NE(out.find("no dead letter 99"), std::string::npos);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "replay", "--config", cfg}, &out), 2) << "needs --id or --all";
  // The API was fixed (it now accepts): replay two, purge the third.
  const auto lines_sent = [&] {
    std::vector<std::string> lines;
    for (const auto& r : api.Requests()) {
      for (const auto& l : Lines(r["body"].get<std::string>())) lines.push_back(l);
    }
    return lines;
  };
  const size_t refused_lines = lines_sent().size();
  api.Script(json::array());
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "replay", "--id", "1", "--id", "2", "--config", cfg}, &out), 0) << out;
  EXPECT_NE(out.find("2 dead letters queued for replay"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "purge", "--all", "--config", cfg}, &out), 0) << out;
  EXPECT_NE(out.find("1 dead letter purged"), std::string::npos) << out;
  std::vector<std::string> delivered;
  ASSERT_TRUE(WaitUntil([&] { return (delivered = lines_sent()).size() >= refused_lines + 2; }, 10s));
  ASSERT_EQ(delivered.size(), refused_lines + 2);
  EXPECT_EQ(json::parse(delivered[refused_lines])["seq"], json::parse(delivered[0])["seq"])
      << "replayed with its original seq";
  EXPECT_EQ(json::parse(delivered[refused_lines])["payload"]["t"], 1);
  EXPECT_EQ(json::parse(delivered[refused_lines + 1])["payload"]["t"], 2);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "list", "--config", cfg}, &out), 0);
  EXPECT_NE(out.find("0 dead letters"), std::string::npos) << out;
  EXPECT_EQ(agent.Terminate(), 0);
}

TEST(DlqCli, MoveRefusesUnknownSinksAndDeliveredRecordsAndNeedsSinkAndSeq) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-move"
data_dir = "@DATA@"
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.local]
type = "outbox"
linger = "50ms"
)");
  ASSERT_TRUE(agent.Start());
  ASSERT_EQ(std::system(("printf '{\"t\":1}\\n{\"t\":2}\\n' | mosquitto_pub -p " + std::to_string(broker.port()) +
                         " -q 1 -t plant/a -l").c_str()),
            0);
  ASSERT_TRUE(WaitUntil([&] { return OutboxRecords(agent.outbox()).size() == 2; }, 10s));
  const std::string cfg = agent.config_path();
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "move", "--config", cfg, "--sink", "nope", "--seq", "1"}, &out), 1);
  EXPECT_NE(out.find("no sink \"nope\""), std::string::npos) << out;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return RunCommand({EdgeferryBinary(), "dlq", "move", "--config", cfg, "--sink", "local", "--seq", "2"}, &out) ==
                   1 &&
               out.find("already delivered") != std::string::npos;
      },
      5s))
      << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "move", "--config", cfg, "--sink", "local", "--seq",
                        "9000000000000000000"},
                       &out),
            1);
  EXPECT_NE(out.find("not in the store"), std::string::npos) << out;
  EXPECT_NE(RunCommand({EdgeferryBinary(), "dlq", "move", "--config", cfg, "--sink", "local"}, &out), 0) << "--seq is required";
  EXPECT_EQ(agent.Terminate(), 0);
}

// Issue 12, item 13: a sink URL's password and query secrets never reach the log,
// /status or `edgeferry status`.
TEST(Redaction, CredentialsInASinkUrlAppearInNeitherTheLogNorStatusNorTheStatusCommand) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int metrics = FreeLoopbackPort();
  const int closed = FreeLoopbackPort();  // nothing listens: every delivery fails and is reported
  const std::string url = "http://ingest:PASSWORD-123@127.0.0.1:" + std::to_string(closed) +
                          "/v1?sig=SIG-456&X-Amz-Signature=AMZ-789&token=TOKEN-000";
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-redact"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(metrics) + R"(
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.cloud]
type = "http"
url = ")" + url + R"("
linger = "50ms"
retry_base = "50ms"
retry_max = "200ms"
)");
  ASSERT_TRUE(agent.Start());
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t plant/a -m '{\"t\":1}'").c_str()),
            0);
  std::string status_text;
  ASSERT_TRUE(WaitUntil(
      [&] {
        RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &status_text);
        return status_text.find("last error:") != std::string::npos;
      },
      10s))
      << status_text;
  drivers::http::HttpClient http({});
  drivers::http::HttpRequest get;
  get.method = "GET";
  get.url = "http://127.0.0.1:" + std::to_string(metrics) + "/status";
  const std::string status_json = http.Send(get).body;
  ASSERT_NE(status_json.find("last_error"), std::string::npos) << status_json;
  std::string status_cmd_json;
  RunCommand({EdgeferryBinary(), "status", "--json", "--config", agent.config_path()}, &status_cmd_json);
  EXPECT_EQ(agent.Terminate(), 0);
  const std::string log = agent.Log();
  // The endpoint is still named, so the message says where it failed.
  EXPECT_NE(status_text.find("http://ingest:REDACTED@127.0.0.1:" + std::to_string(closed) + "/v1?sig=REDACTED"),
            std::string::npos)
      << status_text;
  EXPECT_NE(log.find("sink cloud"), std::string::npos) << log;
  for (const char* secret : {"PASSWORD-123", "SIG-456", "AMZ-789", "TOKEN-000"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in the log:\n" << log;
    EXPECT_EQ(status_json.find(secret), std::string::npos) << secret << " in /status:\n" << status_json;
    EXPECT_EQ(status_text.find(secret), std::string::npos) << secret << " in edgeferry status:\n" << status_text;
    EXPECT_EQ(status_cmd_json.find(secret), std::string::npos) << secret << " in edgeferry status --json";
  }
}

}  // namespace
}  // namespace edgeferry::testing
