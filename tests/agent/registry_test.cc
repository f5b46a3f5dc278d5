// The type registry (registry.h): every source and sink type reads, names and makes
// itself through the one list, and the messages list the types it has.
#include "edgeferry/agent/registry.h"

#include <gtest/gtest.h>

#include <set>

#include "edgeferry/agent/config.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::agent {
namespace {

constexpr int64_t kSec = 1'000'000'000;

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = list.find(", ", at);
    out.push_back(list.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 2;
  }
  return out;
}

TEST(Registry, ListsTheTypesOnceEach) {
  const auto sources = Split(KnownSourceTypes());
  const auto sinks = Split(KnownSinkTypes());
  EXPECT_EQ(sources, (std::vector<std::string>{"mqtt", "serial"}));
  EXPECT_EQ(sinks, (std::vector<std::string>{"outbox", "mqtt", "http", "kinesis", "s3"}));
  // A name twice would make the second entry unreachable.
  EXPECT_EQ(std::set<std::string>(sinks.begin(), sinks.end()).size(), sinks.size());
  EXPECT_EQ(std::set<std::string>(sources.begin(), sources.end()).size(), sources.size());
}

// The defaults docs/configuration.md promises ("Batch defaults").
TEST(Registry, SinkBatchDefaultsAreTheDocumentedOnes) {
  struct Want {
    const char* type;
    size_t records;
    uint64_t bytes;
    int64_t linger_ns;
  };
  for (const Want& w : {Want{"outbox", 10'000, 4 << 20, kSec}, Want{"mqtt", 1000, 1 << 20, 0},
                        Want{"http", 1000, 1 << 20, kSec}, Want{"kinesis", 500, 4 << 20, kSec},
                        Want{"s3", 1'000'000, 64 << 20, 300 * kSec}}) {
    const auto batch = DefaultBatch(w.type);
    ASSERT_TRUE(batch) << w.type;
    EXPECT_EQ(batch->max_records, w.records) << w.type;
    EXPECT_EQ(batch->max_bytes, w.bytes) << w.type;
    EXPECT_EQ(batch->linger_ns, w.linger_ns) << w.type;
  }
  EXPECT_FALSE(DefaultBatch("ftp"));
  EXPECT_FALSE(DefaultBatch(""));
}

// Each type named in a file comes back as that type's settings, with the name and the
// gateway settings the reader was given, and makes a driver.
TEST(Registry, EachTypeReadsIntoItsOwnSettingsAndMakesADriver) {
  ConfigErrors errors;
  auto cfg = ParseConfig(R"(
[gateway]
id = "gw-7"
data_dir = "/tmp/ef-registry"
[sources.plant]
type = "mqtt"
topics = ["a/#"]
[sources.gps]
type = "serial"
device = "/dev/null"
[sinks.local]
type = "outbox"
[sinks.cloud]
type = "mqtt"
uri = "tcp://127.0.0.1:1"
[sinks.api]
type = "http"
url = "http://127.0.0.1:1/in"
[sinks.stream]
type = "kinesis"
stream = "s"
[sinks.lake]
type = "s3"
bucket = "lake"
max_records = 7
)", "registry.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  ASSERT_EQ(cfg->sources.size(), 2u);
  ASSERT_EQ(cfg->sinks.size(), 5u);
  std::map<std::string, std::string> types;
  for (const auto& s : cfg->sources) types["source " + s.name] = std::string(s.type());
  for (const auto& s : cfg->sinks) types["sink " + s.name] = std::string(s.type());
  EXPECT_EQ(types, (std::map<std::string, std::string>{{"source plant", "mqtt"}, {"source gps", "serial"},
                                                       {"sink local", "outbox"}, {"sink cloud", "mqtt"},
                                                       {"sink api", "http"}, {"sink stream", "kinesis"},
                                                       {"sink lake", "s3"}}));
  // The context reached the readers: names, gateway id, data_dir, the batch read over
  // the type's defaults.
  const auto* plant = cfg->sources[0].name == "plant" ? cfg->sources[0].As<drivers::MqttSourceConfig>()
                                                       : cfg->sources[1].As<drivers::MqttSourceConfig>();
  ASSERT_NE(plant, nullptr);
  EXPECT_EQ(plant->name, "plant");
  EXPECT_EQ(plant->client_id, "edgeferry-gw-7-plant");
  for (const auto& s : cfg->sinks) {
    if (const auto* o = s.As<drivers::OutboxSinkConfig>()) {
      EXPECT_EQ(o->dir, "/tmp/ef-registry/outbox");
      EXPECT_EQ(o->gateway_id, "gw-7");
    }
    if (const auto* l = s.As<drivers::aws::S3SinkConfig>()) {
      EXPECT_EQ(l->batch.max_records, 7u);
      EXPECT_EQ(l->batch.linger_ns, 300 * kSec);
      EXPECT_EQ(l->name, "lake");
    }
    const auto sink = MakeSink(s.settings);
    ASSERT_NE(sink, nullptr) << s.name;
    EXPECT_EQ(sink->name(), s.name);
  }
  struct NoIngest final : drivers::Ingest {
    Result<uint64_t> Append(Record) override { return kDropped; }
    void DeadLetter(const Record&, std::string_view) override {}
  };
  NoIngest ingest;
  for (const auto& s : cfg->sources) {
    const auto source = MakeSource(s.settings, ingest);
    ASSERT_NE(source, nullptr) << s.name;
    EXPECT_EQ(source->name(), s.name);
  }
}

// What check --connect masks: each type names its own secrets.
TEST(Registry, EachTypeNamesTheSecretsItHolds) {
  drivers::MqttUplinkSinkConfig mqtt;
  mqtt.password = "s3cret-pw";
  drivers::http::HttpSinkConfig http;
  http.headers = {{"X-Api-Key", "k-123456"}, {"X-Tenant", "plant-7"}};
  drivers::MqttSourceConfig local;
  local.password = "local-pw";
  EXPECT_EQ(SecretsOf(SinkSettings(mqtt)), (std::vector<std::string>{"s3cret-pw"}));
  EXPECT_EQ(SecretsOf(SinkSettings(http)), (std::vector<std::string>{"k-123456", "plant-7"}));
  EXPECT_EQ(SecretsOf(SourceSettings(local)), (std::vector<std::string>{"local-pw"}));
  EXPECT_TRUE(SecretsOf(SinkSettings(drivers::OutboxSinkConfig{})).empty());
}

TEST(Registry, ATypeThatIsEmptyOrNotAStringIsAnErrorNeverASkippedTable) {
  for (const auto& [toml, want] : std::vector<std::pair<std::string, std::string>>{
           {"[sources.a]\ntype = \"\"\n", "sources.a.type: unknown source type \"\" (known: mqtt, serial)"},
           {"[sinks.b]\ntype = 5\n", "sinks.b.type: must be a string"},
           {"[sinks.b]\ntype = \"\"\n", "sinks.b.type: unknown sink type \"\" (known: outbox, mqtt, http, kinesis, s3)"},
           {"[[sources.a.processors]]\ntype = \"\"\n[sources.a]\ntype = \"mqtt\"\ntopics = [\"x\"]\n",
            "sources.a.processors[0].type: unknown processor type \"\" (known: filter, set, rename, drop_fields, "
            "select, deadband, sample, aggregate, parse)"},
       }) {
    ConfigErrors errors;
    EXPECT_FALSE(ParseConfig("[gateway]\nid = \"gw-1\"\n" + toml, "t.toml", &errors).ok()) << toml;
    ASSERT_FALSE(errors.errors.empty()) << toml;
    EXPECT_EQ(errors.errors[0], want) << toml;
  }
}

}  // namespace
}  // namespace edgeferry::agent
