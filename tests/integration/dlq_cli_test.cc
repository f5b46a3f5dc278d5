// `edgeferry dlq list|show|replay|purge` beside a running agent: records a sink refused
// are listed with the reason, replayed to that sink once the cause is fixed, or purged.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "agent_process.h"
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
  api.Script(json::array({{{"status", 422}, {"body", "unknown field t"}}}));  // the first batch is refused
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
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "replay", "--id", "1", "--id", "2", "--config", cfg}, &out), 0) << out;
  EXPECT_NE(out.find("2 dead letters queued for replay"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "purge", "--all", "--config", cfg}, &out), 0) << out;
  EXPECT_NE(out.find("1 dead letter purged"), std::string::npos) << out;
  std::vector<std::string> delivered;
  ASSERT_TRUE(WaitUntil(
      [&] {
        delivered.clear();
        for (const auto& r : api.Requests()) {
          for (const auto& l : Lines(r["body"].get<std::string>())) delivered.push_back(l);
        }
        return delivered.size() >= 5;  // 3 refused + 2 replayed
      },
      10s));
  ASSERT_EQ(delivered.size(), 5u);
  EXPECT_EQ(json::parse(delivered[3])["seq"], json::parse(delivered[0])["seq"]) << "replayed with its original seq";
  EXPECT_EQ(json::parse(delivered[4])["payload"]["t"], 2);
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "dlq", "list", "--config", cfg}, &out), 0);
  EXPECT_NE(out.find("0 dead letters"), std::string::npos) << out;
  EXPECT_EQ(agent.Terminate(), 0);
}

}  // namespace
}  // namespace edgeferry::testing
