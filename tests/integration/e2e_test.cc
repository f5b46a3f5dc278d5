// The real sample through mosquitto -> edgeferry -> outbox: every published record
// appears exactly once, with a byte-identical payload.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

std::string PayloadSlice(const std::string& line) {
  const auto at = line.find("\"payload\":") + 10;
  return line.substr(at, line.size() - 1 - at);
}

std::vector<std::string> CsvCells(const std::string& line) {
  std::vector<std::string> cells(1);
  for (char c : line) {
    if (c == ',') {
      cells.emplace_back();
    } else {
      cells.back().push_back(c);
    }
  }
  return cells;
}

TEST(EndToEnd, RealSampleArrivesExactlyOnceWithIdenticalPayloads) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-e2e"
data_dir = "@DATA@"
[sources.lorawan]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["lorawan/#"]
[sources.air]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["air/#"]
max_record_bytes = "64KiB"
[sinks.outbox]
type = "outbox"
max_records = 500
linger = "300ms"
)");
  ASSERT_TRUE(agent.Start(2));
  const std::string lora = SourceDir() + "/examples/data/lorawan-tourperret-2000.ndjson.gz";
  const std::string air = SourceDir() + "/examples/data/uci-airquality-2000.csv";
  std::string out;
  ASSERT_EQ(RunCommand({ReplayBinary(), "-q", "--broker", broker.uri(), "--topic", "lorawan/up", lora}, &out), 0) << out;
  ASSERT_EQ(RunCommand({ReplayBinary(), "-q", "--broker", broker.uri(), "--topic", "air/row", "--qos", "0", air}, &out),
            0)
      << out;
  {  // one oversize message: dead-lettered, not delivered, nothing else lost
    mqtt::async_client pub(broker.uri(), "e2e-big");
    pub.connect()->wait();
    pub.publish("air/row", std::string(70000, 'z'), 1, false)->wait();
    pub.disconnect()->wait();
  }
  ASSERT_TRUE(WaitUntil([&] { return ReadOutboxLines(agent.outbox()).size() >= 4000; }, std::chrono::seconds(30)))
      << ReadOutboxLines(agent.outbox()).size() << "\n" << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);

  const auto lines = ReadOutboxLines(agent.outbox());
  ASSERT_EQ(lines.size(), 4000u);
  const auto want_lora = ReadGzipLines(lora);
  std::vector<std::string> got_lora;
  std::vector<nlohmann::json> got_air;
  std::set<uint64_t> seqs;
  uint64_t prev_seq = 0;
  for (const auto& line : lines) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["gateway_id"], "gw-e2e");
    const uint64_t seq = j["seq"];
    EXPECT_GT(seq, prev_seq) << "seq order in the outbox";
    prev_seq = seq;
    seqs.insert(seq);
    if (j["source"] == "lorawan") {
      EXPECT_EQ(j["channel"], "lorawan/up");
      EXPECT_EQ(j["content_type"], "json");
      got_lora.push_back(PayloadSlice(line));
    } else {
      got_air.push_back(j["payload"]);
    }
  }
  EXPECT_EQ(seqs.size(), 4000u);
  ASSERT_EQ(got_lora.size(), want_lora.size());
  for (size_t i = 0; i < want_lora.size(); ++i) ASSERT_EQ(got_lora[i], want_lora[i]) << "record " << i;

  std::ifstream csv(air);
  std::string header_line, row;
  std::getline(csv, header_line);
  const auto header = CsvCells(header_line);
  ASSERT_EQ(got_air.size(), 2000u);
  for (size_t i = 0; std::getline(csv, row); ++i) {
    const auto cells = CsvCells(row);
    ASSERT_EQ(got_air[i]["Date"], cells[0]) << i;
    ASSERT_EQ(got_air[i]["Time"], cells[1]) << i;
    ASSERT_DOUBLE_EQ(got_air[i]["CO_GT"].get<double>(), std::stod(cells[2])) << i;
    ASSERT_DOUBLE_EQ(got_air[i]["AH"].get<double>(), std::stod(cells[14])) << i;
  }

  const auto stats = agent.BufferStats();
  EXPECT_EQ(stats["appended_total"], 4000);
  EXPECT_EQ(stats["dead_letters"], 1);
  EXPECT_EQ(stats["cursors"][0]["backlog_records"], 0);
}

// Issue 12 items 6 and 7 end to end: the NUL-injection payload (printf + mosquitto_pub -f)
// and a 100,000-deep array through mosquitto -> edgeferry -> outbox. Each outbox line
// must parse with Python's json module and carry the payload's exact bytes as text,
// the deep one with payload_note (docs/envelope.md).
TEST(EndToEnd, NulInjectionAndHundredThousandLevelsArriveAsValidLinesCarryingTheBytes) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_pub");
  EDGEFERRY_REQUIRE_TOOL("python3");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  AgentProcess agent(dir, R"(
[gateway]
id = "gw-e2e"
data_dir = "@DATA@"
[sources.plant]
type = "mqtt"
uri = ")" + broker.uri() + R"("
topics = ["plant/#"]
[sinks.outbox]
type = "outbox"
linger = "100ms"
)");
  ASSERT_TRUE(agent.Start(1));
  const std::string injected_file = dir / "injected.bin", deep_file = dir / "deep.json";
  ASSERT_EQ(std::system(("printf '{\"a\":1}\\0,\"injected\":true,\"x\":\"' > " + injected_file).c_str()), 0);
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  WriteFile(deep_file, deep);
  std::string out;
  for (const auto& f : {injected_file, deep_file}) {
    ASSERT_EQ(RunCommand({FindTool("mosquitto_pub"), "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-q", "1", "-t",
                          "plant/x", "-f", f},
                         &out),
              0)
        << out;
  }
  ASSERT_TRUE(WaitUntil([&] { return ReadOutboxLines(agent.outbox()).size() >= 2; }, std::chrono::seconds(20)))
      << agent.Log();
  EXPECT_EQ(agent.Terminate(), 0);
  const auto lines = ReadOutboxLines(agent.outbox());
  ASSERT_EQ(lines.size(), 2u);
  const std::string injected = ReadFile(injected_file);
  ASSERT_EQ(injected.size(), 30u);
  const auto a = nlohmann::json::parse(PythonEnvelopeCheck(lines[0] + "\n", injected));
  EXPECT_EQ(a["parses"], true) << lines[0];
  EXPECT_EQ(a["raw_controls"], false);
  EXPECT_EQ(a["encoding"], "text");
  EXPECT_EQ(a["payload_matches"], true);
  const auto b = nlohmann::json::parse(PythonEnvelopeCheck(lines[1] + "\n", deep));
  EXPECT_EQ(b["parses"], true) << lines[1].substr(0, 300);
  EXPECT_EQ(b["encoding"], "text");
  EXPECT_EQ(b["note"], "nesting depth > 64");
  EXPECT_EQ(b["payload_matches"], true);
}

}  // namespace
}  // namespace edgeferry::testing
