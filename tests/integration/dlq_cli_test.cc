// `edgeferry dlq list|show|replay|purge` beside a running agent: records a sink refused
// are listed with the reason, replayed to that sink once the cause is fixed, or purged.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <sstream>

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
  const RefusingPort refusing;  // nothing listens: every delivery fails and is reported
  const int closed = refusing.port();
  const std::string url = "http://ingest:PASSWORD-123@127.0.0.1:" + std::to_string(closed) +
                          "/v1?sig=SIG-456&X-Amz-Signature=AMZ-789&token=TOKEN-000";
  // A token as the user name alone, with no password, is a credential too.
  const std::string url2 = "http://USERTOKEN-555@127.0.0.1:" + std::to_string(closed) + "/v2";
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
[sinks.cloud2]
type = "http"
url = ")" + url2 + R"("
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
        const size_t first = status_text.find("last error:");
        return first != std::string::npos && status_text.find("last error:", first + 1) != std::string::npos;
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
  EXPECT_NE(status_text.find("http://REDACTED@127.0.0.1:" + std::to_string(closed) + "/v1?sig=REDACTED"),
            std::string::npos)
      << status_text;
  EXPECT_NE(status_text.find("http://REDACTED@127.0.0.1:" + std::to_string(closed) + "/v2"), std::string::npos)
      << status_text;
  EXPECT_NE(log.find("sink cloud"), std::string::npos) << log;
  for (const char* secret : {"PASSWORD-123", "SIG-456", "AMZ-789", "TOKEN-000", "USERTOKEN-555", "ingest:"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in the log:\n" << log;
    EXPECT_EQ(status_json.find(secret), std::string::npos) << secret << " in /status:\n" << status_json;
    EXPECT_EQ(status_text.find(secret), std::string::npos) << secret << " in edgeferry status:\n" << status_text;
    EXPECT_EQ(status_cmd_json.find(secret), std::string::npos) << secret << " in edgeferry status --json";
  }
}

// An agent whose MQTT source declares JSON, so anything else is dead-lettered at the
// source, delivering to an outbox. `extra`: more TOML tables.
std::string JsonOnlyConfig(const std::string& gateway_id, const std::string& broker_uri, const std::string& extra = "") {
  return R"(
[gateway]
id = ")" + gateway_id + R"("
data_dir = "@DATA@"
[sources.plant]
type = "mqtt"
uri = ")" + broker_uri + R"("
topics = ["plant/#"]
content_type = "json"
[sinks.out]
type = "outbox"
)" + extra;
}

// `dlq list/show --json` for scripts: a binary payload a source refused comes back
// byte-exact (base64), and `buffer stats` text shows replays queued while the agent is
// stopped.
TEST(DlqCli, JsonListsARefusedBinaryPayloadExactlyAndStatsShowQueuedReplays) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, JsonOnlyConfig("gw-dlq-json", broker.uri()));
  ASSERT_TRUE(agent.Start());
  const std::string cfg = agent.config_path();
  const std::string bytes("\x00\xff{not json\x80", 12);
  WriteFile(dir / "payload.bin", bytes);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t plant/raw -f " +
                         (dir / "payload.bin")).c_str()),
            0);
  std::string out;
  json list;
  ASSERT_TRUE(WaitUntil(
      [&] {
        RunCommand({EdgeferryBinary(), "dlq", "list", "--json", "--config", cfg}, &out);
        list = json::parse(out, nullptr, false);
        return !list.is_discarded() && list.value("count", 0) == 1;
      },
      10s))
      << out;
  const json& d = list["dead_letters"][0];
  EXPECT_EQ(d["stage"], "source:plant");
  EXPECT_NE(d["reason"].get<std::string>().find("JSON"), std::string::npos) << d.dump();
  EXPECT_TRUE(d["seq"].is_null()) << "never stored";
  EXPECT_EQ(d["record"]["gateway_id"], "gw-dlq-json");
  EXPECT_EQ(d["record"]["channel"], "plant/raw");
  // Independent decoding: python's base64 module, not ours.
  EXPECT_EQ(d["record"]["payload_encoding"], "base64");
  WriteFile(dir / "b64.txt", d["record"]["payload"].get<std::string>());
  std::string decoded;
  ASSERT_EQ(RunCommand({"/usr/bin/python3", "-c",
                        "import base64,sys; sys.stdout.write(base64.b64decode(open(sys.argv[1]).read()).hex())",
                        dir / "b64.txt"},
                       &decoded),
            0);
  EXPECT_EQ(decoded, "00ff7b6e6f74206a736f6e80") << d.dump();
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "show", "--json", "--id", std::to_string(d["id"].get<int>()),
                        "--config", cfg},
                       &out),
            0);
  EXPECT_EQ(json::parse(out)["dead_letters"][0], d);

  EXPECT_EQ(agent.Terminate(), 0);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "replay", "--all", "--sink", "out", "--config", cfg}, &out), 0) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "buffer", "stats", "--config", cfg}, &out), 0);
  EXPECT_NE(out.find("1 queued for replay"), std::string::npos) << out;
}


// A source that dead-letters everything (a wrong content type, a wrong baud rate) writes
// a few lines and a count, not one line per record; every record is accounted for.
TEST(DeadLetterLog, ThousandsOfDeadLettersWriteABoundedNumberOfLinesWithTheRightCount) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, JsonOnlyConfig("gw-dlq-log", broker.uri()));
  ASSERT_TRUE(agent.Start());
  constexpr int kRecords = 3000;
  std::string lines;
  for (int i = 0; i < kRecords; ++i) lines += "not json " + std::to_string(i) + "\n";
  WriteFile(dir / "lines.txt", lines);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t plant/csv -l < " +
                         (dir / "lines.txt")).c_str()),
            0);
  ASSERT_TRUE(WaitUntil([&] { return agent.BufferStats().value("dead_letters", 0) == kRecords; }, 30s))
      << agent.BufferStats().dump();
  EXPECT_EQ(agent.Terminate(), 0);
  int logged = 0, summarised = 0, log_lines = 0;
  std::istringstream log(agent.Log());
  for (std::string line; std::getline(log, line);) {
    ++log_lines;
    if (line.find("source plant: dead-lettered a record on plant/csv") != std::string::npos) ++logged;
    const std::string summary = "source plant: dead-lettered records: ";
    if (const auto at = line.find(summary); at != std::string::npos) {
      summarised += std::stoi(line.substr(at + summary.size()));
    }
  }
  EXPECT_EQ(logged + summarised, kRecords) << agent.Log();
  EXPECT_LE(logged, 5 * 4) << "at most 5 per 10 s window";
  EXPECT_LT(log_lines, 60) << agent.Log();
}


// log.format = "json": every line the agent writes is one JSON object with ts, level and
// msg, even when the message carries a topic with quotes, backslashes and non-ASCII.
TEST(DeadLetterLog, JsonFormatKeepsEveryLineOneObjectWhateverTheTopic) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, JsonOnlyConfig("gw-log-json", broker.uri(), "[log]\nformat = \"json\"\n"));
  ASSERT_TRUE(agent.Start());
  const std::string topic = "plant/q\"uo\\te/\u00e9t\u00e9";
  WriteFile(dir / "topic.txt", topic);
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) + " -q 1 -t \"$(cat " +
                         (dir / "topic.txt") + ")\" -m 'not json'").c_str()),
            0);
  ASSERT_TRUE(WaitUntil([&] { return agent.BufferStats().value("dead_letters", 0) == 1; }, 10s));
  EXPECT_EQ(agent.Terminate(), 0);
  int lines = 0;
  bool saw_topic = false;
  std::istringstream log(agent.Log());
  for (std::string line; std::getline(log, line);) {
    ++lines;
    const json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not one JSON object: " << line;
    EXPECT_TRUE(j["ts"].is_string() && j["level"].is_string() && j["msg"].is_string()) << line;
    if (j["msg"].get<std::string>().find("dead-lettered a record on " + topic + ":") != std::string::npos) {
      saw_topic = true;
      EXPECT_EQ(j["level"], "warning") << line;
    }
  }
  EXPECT_GT(lines, 3);
  EXPECT_TRUE(saw_topic) << agent.Log();
}

}  // namespace
}  // namespace edgeferry::testing
