#include "edgeferry/agent/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <regex>

#include "test_support.h"

namespace edgeferry::agent {
namespace {

constexpr const char* kMinimal = R"(
[gateway]
id = "gw-1"
data_dir = "/tmp/ef"
[sources.plant]
type = "mqtt"
topics = ["sensors/#"]
[sinks.local]
type = "outbox"
)";

TEST(Config, SinkProcessorsAreReadInOrder) {
  ConfigErrors errors;
  auto cfg = ParseConfig(std::string(kMinimal) +
                             "[[sinks.local.processors]]\ntype = \"drop_fields\"\nfields = [\"secret\"]\n"
                             "[[sinks.local.processors]]\ntype = \"filter\"\nfield = \"t\"\nop = \">\"\nvalue = 1.5\n",
                         "test.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  const auto& p = cfg->sinks[0].processors;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(pipeline::ProcessorTypeName(p[0]), "drop_fields");
  EXPECT_EQ(pipeline::ProcessorTypeName(p[1]), "filter");
  EXPECT_EQ(std::get<pipeline::FilterConfig>(p[1]).value, 1.5);
}

TEST(Config, ParseProcessorsAreReadWithTheirFormat) {
  ConfigErrors errors;
  auto cfg = ParseConfig(std::string(kMinimal) +
                             "[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"csv\"\ncolumns = [\"t\", \"rh\"]\n"
                             "separator = \";\"\ndecimal_comma = true\n"
                             "[[sinks.local.processors]]\ntype = \"parse\"\nformat = \"regex\"\nfield = \"raw\"\n"
                             "pattern = '(?P<t>[0-9.]+)C'\n",
                         "test.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  const auto& csv = std::get<pipeline::ParseConfig>(cfg->sources[0].processors.at(0));
  EXPECT_EQ(csv.format, pipeline::ParseConfig::Format::kCsv);
  EXPECT_EQ(csv.columns, (std::vector<std::string>{"t", "rh"}));
  EXPECT_EQ(csv.separator, ';');
  EXPECT_TRUE(csv.decimal_comma);
  const auto& re = std::get<pipeline::ParseConfig>(cfg->sinks[0].processors.at(0));
  EXPECT_EQ(re.format, pipeline::ParseConfig::Format::kRegex);
  EXPECT_EQ(re.pattern, "(?P<t>[0-9.]+)C");
  ASSERT_TRUE(re.field.has_value());
  EXPECT_EQ(re.field->text, "raw");
}

TEST(Config, MinimalConfigGetsDocumentedDefaults) {
  ConfigErrors errors;
  auto cfg = ParseConfig(kMinimal, "test.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->gateway_id, "gw-1");
  EXPECT_EQ(cfg->buffer.path, "/tmp/ef/buffer.db");
  EXPECT_EQ(cfg->buffer.commit_interval_ns, 250'000'000);
  EXPECT_EQ(cfg->buffer.when_full, buffer::FullPolicy::kDropOldest);
  EXPECT_FALSE(cfg->clock_trusted) << "the kernel says when the clock is synchronized";
  ASSERT_EQ(cfg->sources.size(), 1u);
  const auto& m = *cfg->sources[0].As<drivers::MqttSourceConfig>();
  EXPECT_EQ(m.uri, "tcp://127.0.0.1:1883");
  EXPECT_EQ(m.client_id, "edgeferry-gw-1-plant");
  ASSERT_EQ(m.subscriptions.size(), 1u);
  EXPECT_EQ(m.subscriptions[0].qos, 1);
  EXPECT_FALSE(m.tls.has_value());
  ASSERT_EQ(cfg->sinks.size(), 1u);
  EXPECT_EQ(cfg->sinks[0].As<edgeferry::drivers::OutboxSinkConfig>()->dir, "/tmp/ef/outbox");
  EXPECT_EQ(cfg->sinks[0].As<edgeferry::drivers::OutboxSinkConfig>()->gateway_id, "gw-1");
  EXPECT_EQ(cfg->health.window_ns, 300'000'000'000);
  EXPECT_EQ(cfg->health.dead_letter_percent, 90);
  EXPECT_EQ(cfg->health.min_inputs, 20u);
  EXPECT_EQ(cfg->health.max_lag_ns, 3'600'000'000'000);
  EXPECT_TRUE(cfg->health.sink_max_lag_ns.empty());
}

TEST(Config, HealthRulesAndPerSinkMaxLag) {
  ConfigErrors errors;
  std::string text = std::string(kMinimal) + "max_lag = \"2s\"\n[health]\nwindow = \"1m\"\ndead_letter_percent = 50\n"
                                               "min_inputs = 5\nmax_lag = 0\n";
  auto cfg = ParseConfig(text, "test.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->health.window_ns, 60'000'000'000);
  EXPECT_EQ(cfg->health.dead_letter_percent, 50);
  EXPECT_EQ(cfg->health.min_inputs, 5u);
  EXPECT_EQ(cfg->health.max_lag_ns, 0);
  EXPECT_EQ(cfg->health.sink_max_lag_ns, (std::map<std::string, int64_t>{{"local", 2'000'000'000}}));
}

TEST(Config, ShippedExamplesAreValid) {
  edgeferry::testing::TempDir dir;
  for (const char* name : {"edgeferry.toml", "demo.toml"}) {
    // demo.toml as scripts/demo.sh fills it in.
    std::string text = edgeferry::testing::ReadFile(edgeferry::testing::SourceDir() + "/examples/" + name);
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"@PORT@", "1883"}, {"@CLOUD_PORT@", "1884"}, {"@DATA@", dir / "data"}, {"@SERIAL@", "/dev/ttyUSB0"}}) {
      for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
    }
    edgeferry::testing::WriteFile(dir / name, text);
    ConfigErrors errors;
    auto cfg = LoadConfigFile(dir / name, &errors);
    EXPECT_TRUE(cfg.ok()) << name << ":\n" << errors.Join();
  }
}

TEST(Config, EveryKeyIsReadWithUnitsAndNestedTables) {
  edgeferry::testing::TempDir dir;
  edgeferry::testing::WriteFile(dir / "pw", "s3cret\n");
  edgeferry::testing::WriteFile(dir / "ca.pem", "pem");
  const std::string text = R"(
[gateway]
id = "gw.site-7"
data_dir = "/data"
[log]
level = "debug"
stats_interval = "10s"
[buffer]
path = "/data/b.db"
max_bytes = "64MiB"
when_full = "reject_new"
ttl = "7d"
durability = "sync"
commit_interval = "100ms"
sync_interval = "2s"
segment_max_records = 100
segment_max_bytes = "256KiB"
compression_level = 9
integrity_check = "none"
dlq_max_records = 50
max_pending_bytes = "8MiB"
[sources.plant]
type = "mqtt"
uri = "ssl://broker:8883"
client_id = "me"
topics = ["a/#", { filter = "b/+", qos = 2 }]
qos = 0
clean_session = false
mqtt_version = "5"
username = "u"
password_file = ")" + (dir / "pw") + R"("
keepalive = "1m"
reconnect_min = "1s"
reconnect_max = "1m"
max_record_bytes = "1KiB"
content_type = "json"
[sources.plant.tls]
ca_file = ")" + (dir / "ca.pem") + R"("
verify = false
[sinks.local]
type = "outbox"
dir = "/out"
max_records = 5
max_bytes = "1MiB"
linger = "0"
compression_level = 0
retry_base = "100ms"
retry_max = "5s"
)";
  ConfigErrors errors;
  auto cfg = ParseConfig(text, "full.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->buffer.max_bytes, 64u << 20);
  EXPECT_EQ(cfg->buffer.ttl_ns, 7 * 86400'000'000'000);
  EXPECT_EQ(cfg->buffer.durability, buffer::Durability::kSync);
  EXPECT_EQ(cfg->buffer.when_full, buffer::FullPolicy::kRejectNew);
  const auto& m = *cfg->sources[0].As<drivers::MqttSourceConfig>();
  EXPECT_EQ(m.password, "s3cret");
  EXPECT_EQ(m.mqtt_version, 5);
  EXPECT_EQ(m.keepalive_s, 60);
  EXPECT_EQ(m.subscriptions[0].qos, 0);
  EXPECT_EQ(m.subscriptions[1].qos, 2);
  ASSERT_TRUE(m.tls.has_value());
  EXPECT_FALSE(m.tls->verify);
  EXPECT_EQ(m.content_type, ContentType::kJson);
  EXPECT_EQ(cfg->sinks[0].As<edgeferry::drivers::OutboxSinkConfig>()->batch.linger_ns, 0);
  EXPECT_EQ(cfg->sinks[0].As<edgeferry::drivers::OutboxSinkConfig>()->batch.max_records, 5u);
  EXPECT_EQ(cfg->sinks[0].retry.max_ns, 5'000'000'000);
}

struct BadCase {
  std::string name;
  std::string toml;           // replaces or extends the minimal config
  std::string expected_error; // one line of the error list, exactly
};
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }


class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, NamesTheKeyPathAndTheReason) {
  ConfigErrors errors;
  auto cfg = ParseConfig(GetParam().toml, "bad.toml", &errors);
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(std::find(errors.errors.begin(), errors.errors.end(), GetParam().expected_error), errors.errors.end())
      << "got:\n" << errors.Join();
}

std::string With(const std::string& extra) { return std::string(kMinimal) + extra; }
std::string Replace(std::string from, const std::string& to) {
  std::string s = kMinimal;
  s.replace(s.find(from), from.size(), to);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfig,
    ::testing::Values(
        BadCase{"health_window", With("[health]\nwindow = \"5 minutes\"\n"),
                "health.window: must be a duration such as \"250ms\", \"30s\", \"15m\", \"6h\" or \"7d\""},
        BadCase{"health_percent", With("[health]\ndead_letter_percent = 150\n"),
                "health.dead_letter_percent: must be between 1 and 100 (got 150)"},
        BadCase{"health_min_inputs", With("[health]\nmin_inputs = 0\n"),
                "health.min_inputs: must be between 1 and 1000000000 (got 0)"},
        BadCase{"health_unknown", With("[health]\nmax_lagg = \"1h\"\n"), "health.max_lagg: unknown key"},
        BadCase{"processor_type", With("[[sources.plant.processors]]\ntype = \"lua\"\n"),
                "sources.plant.processors[0].type: unknown processor type \"lua\" (known: filter, set, rename, drop_fields, select, deadband, sample, aggregate, parse)"},
        BadCase{"processor_no_type", With("[[sources.plant.processors]]\nfield = \"t\"\n"),
                "sources.plant.processors[0].type: is required"},
        BadCase{"deadband_field", With("[[sources.plant.processors]]\ntype = \"deadband\"\nabsolute = 0.5\n"),
                "sources.plant.processors[0].field: is required"},
        BadCase{"deadband_path", With("[[sources.plant.processors]]\ntype = \"deadband\"\nfield = \"a..b\"\n"),
                "sources.plant.processors[0].field: \"a..b\" is not a field path (names joined by '.', at most 16 levels)"},
        BadCase{"deadband_negative", With("[[sources.plant.processors]]\ntype = \"deadband\"\nfield = \"t\"\nabsolute = -1\n"),
                "sources.plant.processors[0].absolute: must be a finite number of at least 0"},
        BadCase{"sample_both", With("[[sources.plant.processors]]\ntype = \"sample\"\nevery = 2\ninterval = \"1s\"\n"),
                "sources.plant.processors[0].every: set exactly one of every (1 in N) or interval"},
        BadCase{"filter_value", With("[[sources.plant.processors]]\ntype = \"filter\"\nfield = \"t\"\nop = \">\"\n"),
                "sources.plant.processors[0].value: is required with op = \">\""},
        BadCase{"filter_unknown_key", With("[[sources.plant.processors]]\ntype = \"filter\"\nfeild = \"t\"\n"),
                "sources.plant.processors[0].feild: unknown key"},
        BadCase{"set_empty", With("[[sources.plant.processors]]\ntype = \"set\"\n"),
                "sources.plant.processors[0].fields: is required: a table of name = value"},
        BadCase{"aggregate_no_fields", With("[[sources.plant.processors]]\ntype = \"aggregate\"\nwindow = \"1m\"\n"),
                "sources.plant.processors[0].fields: is required: a list of numeric fields"},
        BadCase{"aggregate_window", With("[[sources.plant.processors]]\ntype = \"aggregate\"\nwindow = \"10ms\"\nfields = [\"t\"]\n"),
                "sources.plant.processors[0].window: must be between 1000 ms and 86400000 ms (got 10 ms)"},
        BadCase{"aggregate_path", With("[[sources.plant.processors]]\ntype = \"aggregate\"\nfields = [\"t\", \".x\"]\n"),
                "sources.plant.processors[0].fields: \".x\" is not a field path (names joined by '.', at most 16 levels)"},
        BadCase{"sink_processor_stateful", With("[[sinks.local.processors]]\ntype = \"deadband\"\nfield = \"t\"\n"),
                "sinks.local.processors[0].type: \"deadband\" keeps state and runs at a source; a sink's processors are "
                "filter, set, rename, drop_fields, select and parse"},
        BadCase{"parse_no_format", With("[[sources.plant.processors]]\ntype = \"parse\"\n"),
                "sources.plant.processors[0].format: is required: csv, kv, regex or nmea"},
        BadCase{"parse_csv_columns", With("[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"csv\"\n"),
                "sources.plant.processors[0].columns: is required: the names of the row's cells, in order"},
        BadCase{"parse_bad_pattern",
                With("[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"regex\"\npattern = \"(?P<t>[0-9]+\"\n"),
                "sources.plant.processors[0].pattern: missing ): (?P<t>[0-9]+"},
        BadCase{"parse_unnamed_pattern",
                With("[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"regex\"\npattern = \"[0-9]+\"\n"),
                "sources.plant.processors[0].pattern: no named group: name what to keep, e.g. (?P<temp>[0-9.]+)"},
        BadCase{"parse_key_of_other_format",
                With("[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"nmea\"\ncolumns = [\"a\"]\n"),
                "sources.plant.processors[0].columns: is for format = \"csv\""},
        BadCase{"parse_decimal_comma",
                With("[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"csv\"\ncolumns = [\"a\"]\ndecimal_comma = true\n"),
                "sources.plant.processors[0].decimal_comma: needs a separator other than ','"},
        BadCase{"parse_separator",
                With("[[sources.plant.processors]]\ntype = \"parse\"\nformat = \"kv\"\nkv_separator = \"==\"\n"),
                "sources.plant.processors[0].kv_separator: must be one printable ASCII character other than '\"'"},
        BadCase{"sink_processor_key", With("[[sinks.local.processors]]\ntype = \"select\"\nfeilds = [\"t\"]\n"),
                "sinks.local.processors[0].feilds: unknown key"},
        BadCase{"select_not_list", With("[[sources.plant.processors]]\ntype = \"select\"\nfields = \"a\"\n"),
                "sources.plant.processors[0].fields: must be a non-empty list of strings"},
        BadCase{"processors_not_array", With("[sources.plant.processors]\ntype = \"sample\"\n"),
                "sources.plant.processors: must be an array of tables ([[sources.<name>.processors]])"},
        BadCase{"route_unknown_source", Replace("type = \"outbox\"", "type = \"outbox\"\nsources = [\"plant\", \"gps\"]"),
                "sinks.local.sources[1]: no source named \"gps\" (configured: plant)"},
        BadCase{"route_bad_filter", Replace("type = \"outbox\"", "type = \"outbox\"\nchannels = [\"a/#/b\"]"),
                "sinks.local.channels[0]: \"a/#/b\" is not a valid topic filter ('+' and '#' only as whole levels, '#' last)"},
        BadCase{"route_empty", Replace("type = \"outbox\"", "type = \"outbox\"\nchannels = []"),
                "sinks.local.channels: must be a non-empty list of strings (leave it out to select everything)"},
        BadCase{"route_not_string", Replace("type = \"outbox\"", "type = \"outbox\"\nsources = [\"plant\", 7]"),
                "sinks.local.sources[1]: must be a string"},
        BadCase{"sink_max_lag", Replace("type = \"outbox\"", "type = \"outbox\"\nmax_lag = \"soon\""),
                "sinks.local.max_lag: must be a duration such as \"250ms\", \"30s\", \"15m\", \"6h\" or \"7d\""},
        BadCase{"qos", Replace("type = \"mqtt\"", "type = \"mqtt\"\nqos = 3"),
                "sources.plant.qos: must be 0, 1 or 2 (got 3)"},
        BadCase{"topic_qos", Replace("[\"sensors/#\"]", "[{filter = \"a\", qos = 5}]"),
                "sources.plant.topics[0].qos: must be 0, 1 or 2 (got 5)"},
        BadCase{"unknown_key", With("[buffer]\nmax_byte = 1\n"), "buffer.max_byte: unknown key"},
        BadCase{"unknown_top", With("[telemetry]\nport = 1\n"), "telemetry: unknown key"},
        BadCase{"no_gateway", "[sinks.a]\ntype=\"outbox\"\n", "gateway: is required (with at least id = \"...\")"},
        BadCase{"no_id", Replace("id = \"gw-1\"", ""), "gateway.id: is required"},
        BadCase{"bad_id", Replace("\"gw-1\"", "\"gw 1\""), "gateway.id: must be 1 to 64 of A-Z a-z 0-9 . _ -"},
        // Found by config_fuzz: an explicit empty id passed (only a missing one defaults).
        BadCase{"empty_id", Replace("\"gw-1\"", "\"\""), "gateway.id: must be 1 to 64 of A-Z a-z 0-9 . _ -"},
        BadCase{"clock", Replace("id = \"gw-1\"", "id = \"gw-1\"\nclock = \"ntp\""),
                "gateway.clock: must be one of \"kernel\", \"trusted\" (got \"ntp\")"},
        BadCase{"size", With("[buffer]\nmax_bytes = \"12XB\"\n"),
                "buffer.max_bytes: must be a size such as 4096, \"512KiB\", \"64MiB\" or \"1GiB\""},
        BadCase{"size_range", With("[buffer]\nmax_bytes = 10\n"),
                "buffer.max_bytes: must be between 1.0 MiB and 1024.0 TiB (got 10 B)"},
        BadCase{"duration", With("[buffer]\ncommit_interval = 250\n"),
                "buffer.commit_interval: must be a duration such as \"250ms\", \"30s\", \"15m\", \"6h\" or \"7d\""},
        BadCase{"enum", With("[buffer]\nwhen_full = \"drop_newest\"\n"),
                "buffer.when_full: must be one of \"drop_oldest\", \"reject_new\", \"backpressure\" (got \"drop_newest\")"},
        BadCase{"type", With("[buffer]\nsegment_max_records = \"many\"\n"),
                "buffer.segment_max_records: must be an integer"},
        BadCase{"source_type", Replace("type = \"mqtt\"", "type = \"modbus\""),
                "sources.plant.type: unknown source type \"modbus\" (known: mqtt, serial)"},
        BadCase{"serial_device", With("[sources.gps]\ntype = \"serial\"\n"), "sources.gps.device: is required"},
        BadCase{"serial_baud", With("[sources.gps]\ntype = \"serial\"\ndevice = \"/dev/ttyUSB0\"\nbaud = 0\n"),
                "sources.gps.baud: must be between 50 and 4000000 (got 0)"},
        BadCase{"serial_stop", With("[sources.gps]\ntype = \"serial\"\ndevice = \"/d\"\nstop_bits = 3\n"),
                "sources.gps.stop_bits: must be 1, 2 or \"1.5\""},
        BadCase{"serial_delim", With("[sources.gps]\ntype = \"serial\"\ndevice = \"/d\"\nframing = \"delimiter\"\n"),
                "sources.gps.delimiter: is required with framing = \"delimiter\""},
        BadCase{"serial_fixed", With("[sources.gps]\ntype = \"serial\"\ndevice = \"/d\"\nframing = \"fixed\"\n"),
                "sources.gps.frame_bytes: is required with framing = \"fixed\""},
        BadCase{"serial_hex", With("[sources.gps]\ntype = \"serial\"\ndevice = \"/d\"\nframing = \"fixed\"\nframe_bytes = 8\nframe_start = \"zz\"\n"),
                "sources.gps.frame_start: must be hex bytes, e.g. \"aa55\""},
        BadCase{"serial_comma", With("[sources.m]\ntype = \"serial\"\ndevice = \"/d\"\nformat = \"csv\"\ncsv_decimal_comma = true\n"),
                "sources.m.csv_decimal_comma: needs a csv_separator other than \",\""},
        BadCase{"serial_csv_keys", With("[sources.m]\ntype = \"serial\"\ndevice = \"/d\"\ncsv_separator = \";\"\n"),
                "sources.m.format: csv_* keys need format = \"csv\""},
        BadCase{"serial_format", With("[sources.m]\ntype = \"serial\"\ndevice = \"/d\"\nformat = \"xml\"\n"),
                "sources.m.format: must be one of \"nmea\", \"csv\", \"json\", \"raw\" (got \"xml\")"},
        BadCase{"sink_type", Replace("type = \"outbox\"", "type = \"ftp\""),
                "sinks.local.type: unknown sink type \"ftp\" (known: outbox, mqtt, http, kinesis, s3)"},
        BadCase{"mqtt_sink_uri", With("[sinks.cloud]\ntype = \"mqtt\"\n"), "sinks.cloud.uri: is required"},
        BadCase{"mqtt_sink_topic", With("[sinks.cloud]\ntype = \"mqtt\"\nuri = \"tcp://h:1883\"\ntopic = \"a/{site}\"\n"),
                "sinks.cloud.topic: unknown template field {site} (known: gateway_id, source, channel, prefix, seq, first_seq, last_seq, yyyy, mm, dd, HH)"},
        BadCase{"mqtt_sink_wild", With("[sinks.cloud]\ntype = \"mqtt\"\nuri = \"tcp://h:1883\"\ntopic = \"a/#\"\n"),
                "sinks.cloud.topic: must not contain the wildcards # or +"},
        BadCase{"http_url", With("[sinks.api]\ntype = \"http\"\nurl = \"ftp://x\"\n"),
                "sinks.api.url: must start with http:// or https:// (got \"ftp://x\")"},
        // Paho answered these only at the first connect, with "MQTT error [-1]".
        BadCase{"mqtt_userinfo", Replace("topics = [\"sensors/#\"]", "topics = [\"sensors/#\"]\nuri = \"tcp://u:p@h:1883\""),
                "sources.plant.uri: must not carry a user name or password (user:pass@): set username and password_file"},
        BadCase{"mqtt_port", With("[sinks.cloud]\ntype = \"mqtt\"\nuri = \"tcp://h:99999\"\n"),
                "sinks.cloud.uri: port must be 1 to 65535 (got \"99999\")"},
        BadCase{"http_port", With("[sinks.api]\ntype = \"http\"\nurl = \"https://[::1]:0/ingest\"\n"),
                "sinks.api.url: port must be 1 to 65535 (got \"0\")"},
        BadCase{"http_port_secret", With("[sinks.api]\ntype = \"http\"\nurl = \"https://user:pa/ss@h/x\"\n"),
                "sinks.api.url: port must be 1 to 65535"},
        BadCase{"http_no_host", With("[sinks.api]\ntype = \"http\"\nurl = \"https://:8080/x\"\n"),
                "sinks.api.url: has no host"},
        BadCase{"http_compression", With("[sinks.api]\ntype = \"http\"\nurl = \"https://x\"\ncompression = \"br\"\n"),
                "sinks.api.compression: must be one of \"none\", \"gzip\", \"zstd\" (got \"br\")"},
        BadCase{"kinesis_batch", With("[sinks.k]\ntype = \"kinesis\"\nstream = \"s\"\nmax_records = 1000\n"),
                "sinks.k.max_records: must be at most 500 for Kinesis PutRecords"},
        BadCase{"kinesis_stream", With("[sinks.k]\ntype = \"kinesis\"\n"), "sinks.k.stream: is required"},
        BadCase{"s3_key", With("[sinks.lake]\ntype = \"s3\"\nbucket = \"b\"\nkey_template = \"{prefix}/x.ndjson\"\n"),
                "sinks.lake.key_template: must contain {first_seq} and {last_seq}, so a retried upload writes the same key"},
        BadCase{"s3_part", With("[sinks.lake]\ntype = \"s3\"\nbucket = \"b\"\npart_size = \"1MiB\"\n"),
                "sinks.lake.part_size: must be between 5.0 MiB and 5.0 GiB (got 1.0 MiB)"},
        BadCase{"filter", Replace("[\"sensors/#\"]", "[\"a/#/b\"]"),
                "sources.plant.topics[0]: \"a/#/b\" is not a valid MQTT topic filter"},
        BadCase{"no_topics", Replace("topics = [\"sensors/#\"]", ""),
                "sources.plant.topics: is required (a list of topic filters, e.g. [\"sensors/#\"])"},
        BadCase{"uri", Replace("type = \"mqtt\"", "type = \"mqtt\"\nuri = \"http://x\""),
                "sources.plant.uri: must start with tcp://, ssl://, mqtt://, mqtts://, ws:// or wss:// (got \"http://x\")"},
        BadCase{"password_file", Replace("type = \"mqtt\"", "type = \"mqtt\"\npassword_file = \"/nonexistent/pw\""),
                "sources.plant.password_file: cannot read \"/nonexistent/pw\""},
        BadCase{"tls_on_tcp", With("[sources.plant.tls]\nverify = true\n"),
                "sources.plant.tls: is set but uri does not start with ssl://, mqtts:// or wss://"},
        BadCase{"tls_pair", Replace("type = \"mqtt\"", "type = \"mqtt\"\nuri = \"ssl://h:8883\"\ntls = { cert_file = \"/etc/hostname\" }"),
                "sources.plant.tls.key_file: cert_file and key_file go together"},
        BadCase{"tls_unknown", Replace("type = \"mqtt\"", "type = \"mqtt\"\nuri = \"ssl://h:8883\"\ntls = { verfy = false }"),
                "sources.plant.tls.verfy: unknown key"},
        BadCase{"name", With("[sources.\"bad name\"]\ntype = \"mqtt\"\n"),
                "sources.bad name: source names must be 1 to 64 of A-Z a-z 0-9 _ -"},
        BadCase{"reconnect", Replace("type = \"mqtt\"", "type = \"mqtt\"\nreconnect_min = \"10s\"\nreconnect_max = \"1s\""),
                "sources.plant.reconnect_max: must not be below reconnect_min"},
        BadCase{"syntax", "[gateway\nid = 1\n", "bad.toml:1:9: TOML syntax: Error while parsing table header: expected ']', saw '\\n'"}),
    [](const auto& p) { return p.param.name; });

// Every integer key, fed values outside its documented range (docs/configuration.md)
// and outside the range of the type it is stored in: each must be refused by name.
// 4294967297 = 2^32 + 1 (wraps to 1 in 32 bits), 2147483648 = 2^31, 9223372036854775807 = INT64_MAX.
struct IntKeyCase {
  std::string name;
  std::string key_path;                            // as named in the error
  std::function<std::string(const std::string&)> config;  // the config with the key set to the value
  std::vector<std::string> bad_values;
};
void PrintTo(const IntKeyCase& c, std::ostream* os) { *os << c.name; }

class IntegerKey : public ::testing::TestWithParam<IntKeyCase> {};

TEST_P(IntegerKey, OutOfRangeValuesAreRefusedNamingTheKey) {
  for (const std::string& value : GetParam().bad_values) {
    ConfigErrors errors;
    auto cfg = ParseConfig(GetParam().config(value), "ints.toml", &errors);
    EXPECT_FALSE(cfg.ok()) << GetParam().key_path << " = " << value << " was accepted";
    const std::string prefix = GetParam().key_path + ": must be ";
    EXPECT_TRUE(std::any_of(errors.errors.begin(), errors.errors.end(),
                            [&](const std::string& e) { return e.starts_with(prefix); }))
        << GetParam().key_path << " = " << value << " gave:\n" << errors.Join();
  }
}

std::function<std::string(const std::string&)> InTable(std::string header, std::string key) {
  return [=](const std::string& v) { return With("[" + header + "]\n" + key + " = " + v + "\n"); };
}
std::function<std::string(const std::string&)> InTableWith(std::string header, std::string extra, std::string key) {
  return [=](const std::string& v) { return With("[" + header + "]\n" + extra + key + " = " + v + "\n"); };
}
std::function<std::string(const std::string&)> InSource(std::string key) {
  return [=](const std::string& v) { return Replace("type = \"mqtt\"", "type = \"mqtt\"\n" + key + " = " + v); };
}
std::function<std::string(const std::string&)> InOutbox(std::string key) {
  return [=](const std::string& v) { return Replace("type = \"outbox\"", "type = \"outbox\"\n" + key + " = " + v); };
}
const std::string kSerial = "type = \"serial\"\ndevice = \"/dev/ttyS0\"\n";
const std::string kMqttSink = "type = \"mqtt\"\nuri = \"tcp://127.0.0.1:1883\"\n";
const std::string kS3Sink = "type = \"s3\"\nbucket = \"b\"\n";

INSTANTIATE_TEST_SUITE_P(
    EveryKey, IntegerKey,
    ::testing::Values(
        IntKeyCase{"version", "version", [](const std::string& v) { return "version = " + v + "\n" + kMinimal; },
                   {"-1", "-9223372036854775808"}},
        IntKeyCase{"metrics_port", "metrics.port", InTable("metrics", "port"),
                   {"-1", "65536", "4294967297", "9223372036854775807"}},
        IntKeyCase{"buffer_max_bytes", "buffer.max_bytes", InTable("buffer", "max_bytes"),
                   {"-1", "1125899906842625", "9223372036854775807"}},
        IntKeyCase{"buffer_min_free_bytes", "buffer.min_free_bytes", InTable("buffer", "min_free_bytes"),
                   {"-1", "1125899906842625"}},
        IntKeyCase{"buffer_segment_max_records", "buffer.segment_max_records", InTable("buffer", "segment_max_records"),
                   {"-1", "0", "1000001", "4294967297", "9223372036854775807"}},
        IntKeyCase{"buffer_segment_max_bytes", "buffer.segment_max_bytes", InTable("buffer", "segment_max_bytes"),
                   {"-1", "67108865", "4294967297"}},
        IntKeyCase{"buffer_compression_level", "buffer.compression_level", InTable("buffer", "compression_level"),
                   {"-1", "0", "20", "4294967297", "2147483648"}},
        IntKeyCase{"buffer_dlq_max_records", "buffer.dlq_max_records", InTable("buffer", "dlq_max_records"),
                   {"-1", "0", "100000001", "4294967297"}},
        IntKeyCase{"buffer_max_pending_bytes", "buffer.max_pending_bytes", InTable("buffer", "max_pending_bytes"),
                   {"-1", "1073741825", "4294967297"}},
        IntKeyCase{"source_qos", "sources.plant.qos", InSource("qos"),
                   {"-1", "3", "4294967297", "4294967296", "2147483648", "-4294967295"}},
        IntKeyCase{"topic_qos", "sources.plant.topics[0].qos",
                   [](const std::string& v) { return Replace("[\"sensors/#\"]", "[{filter = \"a\", qos = " + v + "}]"); },
                   {"-1", "3", "4294967297", "9223372036854775807"}},
        IntKeyCase{"source_max_record_bytes", "sources.plant.max_record_bytes", InSource("max_record_bytes"),
                   {"-1", "0", "268435457", "4294967297"}},
        IntKeyCase{"serial_baud", "sources.gps.baud", InTableWith("sources.gps", kSerial, "baud"),
                   {"-1", "49", "4000001", "4294967297", "4294967346"}},
        IntKeyCase{"serial_data_bits", "sources.gps.data_bits", InTableWith("sources.gps", kSerial, "data_bits"),
                   {"-1", "4", "9", "4294967304"}},
        IntKeyCase{"serial_max_frame_bytes", "sources.gps.max_frame_bytes",
                   InTableWith("sources.gps", kSerial, "max_frame_bytes"), {"-1", "0", "16777217", "4294967297"}},
        IntKeyCase{"serial_frame_bytes", "sources.gps.frame_bytes",
                   InTableWith("sources.gps", kSerial + "framing = \"fixed\"\n", "frame_bytes"),
                   {"-1", "16777217", "4294967297", "9223372036854775807"}},
        IntKeyCase{"sink_max_records", "sinks.local.max_records", InOutbox("max_records"),
                   {"-1", "0", "10000001", "4294967297"}},
        IntKeyCase{"sink_max_bytes", "sinks.local.max_bytes", InOutbox("max_bytes"), {"-1", "0", "4294967297"}},
        IntKeyCase{"sink_drain_rate", "sinks.local.drain_rate", InOutbox("drain_rate"),
                   {"-1", "100000001", "4294967297"}},
        IntKeyCase{"sink_drain_bytes_rate", "sinks.local.drain_bytes_rate", InOutbox("drain_bytes_rate"),
                   {"-1", "1099511627777"}},
        IntKeyCase{"outbox_compression_level", "sinks.local.compression_level", InOutbox("compression_level"),
                   {"-1", "20", "4294967297"}},
        IntKeyCase{"mqtt_sink_qos", "sinks.cloud.qos", InTableWith("sinks.cloud", kMqttSink, "qos"),
                   {"-1", "3", "4294967297", "4294967296"}},
        IntKeyCase{"mqtt_sink_max_inflight", "sinks.cloud.max_inflight",
                   InTableWith("sinks.cloud", kMqttSink, "max_inflight"), {"-1", "0", "65536", "4294967297"}},
        IntKeyCase{"s3_multipart_threshold", "sinks.lake.multipart_threshold",
                   InTableWith("sinks.lake", kS3Sink, "multipart_threshold"), {"-1", "5242879", "5368709121"}},
        IntKeyCase{"s3_part_size", "sinks.lake.part_size", InTableWith("sinks.lake", kS3Sink, "part_size"),
                   {"-1", "5242879", "5368709121"}}),
    [](const auto& p) { return p.param.name; });

TEST(Config, IntegerKeysKeepValuesAtTheEdgesOfTheirRange) {
  ConfigErrors errors;
  auto cfg = ParseConfig(With("[sources.gps]\n" + kSerial + "baud = 4000000\ndata_bits = 5\n[metrics]\nport = 65535\n"
                              "[buffer]\nsegment_max_records = 1000000\n"),
                         "edges.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->metrics_port, 65535);
  EXPECT_EQ(cfg->buffer.segment_max_records, 1'000'000u);
  const auto gps = std::find_if(cfg->sources.begin(), cfg->sources.end(), [](const auto& s) { return s.name == "gps"; });
  ASSERT_NE(gps, cfg->sources.end());
  EXPECT_EQ(gps->As<drivers::serial::SerialSourceConfig>()->baud, 4'000'000u);
  EXPECT_EQ(gps->As<drivers::serial::SerialSourceConfig>()->data_bits, 5u);
}

TEST(Config, SerialSourceKeys) {
  ConfigErrors errors;
  auto cfg = ParseConfig(With(R"(
[sources.gps]
type = "serial"
device = "/dev/serial/by-id/usb-u-blox_GNSS-if00"
baud = 4800
data_bits = 7
parity = "even"
stop_bits = "1.5"
flow_control = "rts_cts"
format = "nmea"
max_frame_bytes = 512
reopen_min = "1s"
reopen_max = "30s"
[sources.meter]
type = "serial"
device = "/dev/ttyAMA0"
format = "raw"
framing = "fixed"
frame_bytes = 16
frame_start = "AA55"
[sources.lab]
type = "serial"
device = "/dev/ttyUSB1"
format = "csv"
framing = "delimiter"
delimiter = "\r\n"
csv_columns = ["t", "rh"]
csv_separator = ";"
csv_decimal_comma = true
channel = "lab/bench1"
)"), "serial.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  ASSERT_EQ(cfg->sources.size(), 4u);
  auto source = [&](const std::string& name) -> const drivers::serial::SerialSourceConfig& {
    for (const auto& src : cfg->sources) {
      if (src.name == name) return *src.As<drivers::serial::SerialSourceConfig>();
    }
    throw std::runtime_error("no source " + name);
  };
  const auto& gps = source("gps");
  EXPECT_EQ(gps.baud, 4800u);
  EXPECT_EQ(gps.data_bits, 7u);
  EXPECT_EQ(gps.parity, drivers::serial::Parity::kEven);
  EXPECT_EQ(gps.stop_bits, drivers::serial::StopBits::kOnePointFive);
  EXPECT_EQ(gps.flow_control, drivers::serial::FlowControl::kHardware);
  EXPECT_EQ(gps.framing.max_frame_bytes, 512u);
  const auto& lab = source("lab");
  EXPECT_EQ(lab.framing.delimiter, "\r\n");
  EXPECT_EQ(lab.csv.columns, (std::vector<std::string>{"t", "rh"}));
  EXPECT_TRUE(lab.csv.decimal_comma);
  EXPECT_EQ(lab.channel, "lab/bench1");
  const auto& meter = source("meter");
  EXPECT_EQ(meter.framing.mode, drivers::serial::FramingConfig::Mode::kFixed);
  EXPECT_EQ(meter.framing.frame_start, "\xaa\x55");
}

TEST(Config, CloudSinkKeysAndPerTypeBatchDefaults) {
  ConfigErrors errors;
  auto cfg = ParseConfig(With(R"(
[sinks.cloud]
type = "mqtt"
uri = "ssl://iot.example.com:443"
topic = "dt/{gateway_id}/{source}/{channel}"
qos = 1
max_inflight = 50
[sinks.cloud.tls]
alpn = ["x-amzn-mqtt-ca"]
[sinks.api]
type = "http"
url = "https://ingest.example.com/v1/batch"
compression = "zstd"
headers = { "X-Tenant" = "plant-7" }
[sinks.stream]
type = "kinesis"
stream = "telemetry"
region = "eu-west-1"
partition_key = "{gateway_id}/{source}"
[sinks.lake]
type = "s3"
bucket = "sensor-lake"
endpoint = "http://127.0.0.1:9000"
path_style = true
linger = "15m"
)"), "cloud.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  std::map<std::string, const SinkConfig*> by;
  for (const auto& s : cfg->sinks) by[s.name] = &s;
  EXPECT_EQ(by["cloud"]->As<drivers::MqttUplinkSinkConfig>()->batch.linger_ns, 0) << "streaming by default";
  EXPECT_EQ(by["cloud"]->As<drivers::MqttUplinkSinkConfig>()->tls->alpn, std::vector<std::string>{"x-amzn-mqtt-ca"});
  EXPECT_EQ(by["cloud"]->As<drivers::MqttUplinkSinkConfig>()->client_id, "edgeferry-gw-1-cloud");
  EXPECT_EQ(by["api"]->As<drivers::http::HttpSinkConfig>()->compression, drivers::Compression::kZstd);
  EXPECT_EQ(by["api"]->As<drivers::http::HttpSinkConfig>()->headers.at("X-Tenant"), "plant-7");
  EXPECT_EQ(by["stream"]->As<drivers::aws::KinesisSinkConfig>()->batch.max_records, 500u);
  EXPECT_EQ(by["stream"]->As<drivers::aws::KinesisSinkConfig>()->region, "eu-west-1");
  EXPECT_TRUE(by["lake"]->As<drivers::aws::S3SinkConfig>()->path_style);
  EXPECT_EQ(by["lake"]->As<drivers::aws::S3SinkConfig>()->batch.linger_ns, 900'000'000'000);
  EXPECT_EQ(by["local"]->As<drivers::OutboxSinkConfig>()->batch.max_records, 10'000u);
}

TEST(Config, SinkDestinationLimitsHaveDocumentedDefaultsAndAreRangeChecked) {
  const std::string sinks = R"(
[sinks.cloud]
type = "mqtt"
uri = "tcp://127.0.0.1:1883"
[sinks.api]
type = "http"
url = "https://ingest.example.com/v1"
[sinks.stream]
type = "kinesis"
stream = "telemetry"
[sinks.lake]
type = "s3"
bucket = "sensor-lake"
)";
  ConfigErrors errors;
  auto cfg = ParseConfig(With(sinks), "limits.toml", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  std::map<std::string, const SinkConfig*> by;
  for (const auto& s : cfg->sinks) by[s.name] = &s;
  // docs/configuration.md, "Poison records cannot stall a sink".
  EXPECT_EQ(by["cloud"]->As<drivers::MqttUplinkSinkConfig>()->limits.max_record_bytes, 128u * 1024);
  EXPECT_EQ(by["api"]->As<drivers::http::HttpSinkConfig>()->limits.max_record_bytes, 4u << 20);
  EXPECT_EQ(by["api"]->As<drivers::http::HttpSinkConfig>()->limits.max_batch_bytes, 16u << 20);
  EXPECT_EQ(by["stream"]->As<drivers::aws::KinesisSinkConfig>()->limits.max_record_bytes, 1u << 20);
  EXPECT_EQ(by["stream"]->As<drivers::aws::KinesisSinkConfig>()->limits.max_batch_bytes, 4u << 20);
  EXPECT_EQ(by["lake"]->As<drivers::aws::S3SinkConfig>()->limits.max_record_bytes, 5ull << 30);
  EXPECT_EQ(by["lake"]->As<drivers::aws::S3SinkConfig>()->limits.max_batch_bytes, (8ull << 20) * 10'000);

  ConfigErrors set_errors;
  auto set = ParseConfig(With(R"(
[sinks.cloud]
type = "mqtt"
uri = "tcp://127.0.0.1:1883"
max_record_bytes = "256KiB"
[sinks.api]
type = "http"
url = "https://ingest.example.com/v1"
max_record_bytes = 1000
max_batch_bytes = "2MiB"
)"), "limits.toml", &set_errors);
  ASSERT_TRUE(set.ok()) << set_errors.Join();
  for (const auto& s : set->sinks) by[s.name] = &s;
  EXPECT_EQ(by["cloud"]->As<drivers::MqttUplinkSinkConfig>()->limits.max_record_bytes, 256u * 1024);
  EXPECT_EQ(by["api"]->As<drivers::http::HttpSinkConfig>()->limits.max_record_bytes, 1000u);
  EXPECT_EQ(by["api"]->As<drivers::http::HttpSinkConfig>()->limits.max_batch_bytes, 2u << 20);

  ConfigErrors bad;
  EXPECT_FALSE(ParseConfig(With(R"(
[sinks.stream]
type = "kinesis"
stream = "telemetry"
max_record_bytes = "2MiB"
max_batch_bytes = 0
[sinks.local2]
type = "outbox"
max_record_bytes = 10
)"), "bad.toml", &bad).ok());
  const std::string all = bad.Join();
  EXPECT_NE(all.find("sinks.stream.max_record_bytes: must be between"), std::string::npos) << all;
  EXPECT_NE(all.find("sinks.stream.max_batch_bytes: must be between"), std::string::npos) << all;
  EXPECT_NE(all.find("sinks.local2.max_record_bytes: unknown key"), std::string::npos) << all;
}

TEST(Config, ReportsEveryProblemAtOnce) {
  ConfigErrors errors;
  auto cfg = ParseConfig(With("[buffer]\nmax_bytes = \"x\"\nttl = \"forever\"\nbogus = 1\n"), "bad.toml", &errors);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(errors.errors.size(), 3u) << errors.Join();
}

TEST(Config, MissingFileIsAnError) {
  ConfigErrors errors;
  EXPECT_FALSE(LoadConfigFile("/nonexistent/edgeferry.toml", &errors).ok());
  ASSERT_EQ(errors.errors.size(), 1u);
  EXPECT_EQ(errors.errors[0], "/nonexistent/edgeferry.toml: cannot read the configuration file");
}

}  // namespace
}  // namespace edgeferry::agent

namespace edgeferry::agent {
namespace {

std::string ConfigErrorsOf(const std::string& text) {
  ConfigErrors errors;
  auto cfg = ParseConfig(text, "test.toml", &errors);
  return cfg.ok() ? "" : errors.Join();
}

const std::string kGateway = "[gateway]\nid = \"gw-1\"\ndata_dir = \"/tmp/ef-config-unit\"\n";

// Found by a review: values that end up in a host name or an HTTP header, and a
// password in an MQTT URI quoted back by an error.
TEST(Config, HostNamePartsHeadersAndQuotedUrisAreCheckedAndRedacted) {
  EXPECT_NE(ConfigErrorsOf(kGateway + "[sinks.k]\ntype = \"kinesis\"\nstream = \"s\"\nregion = \"x@127.0.0.1:9/#\"\n")
                .find("sinks.k.region: must be an AWS region name"),
            std::string::npos);
  EXPECT_NE(ConfigErrorsOf(kGateway + "[sinks.o]\ntype = \"s3\"\nbucket = \"Evil/Bucket\"\nregion = \"eu-west-1\"\n")
                .find("sinks.o.bucket: must be an S3 bucket name"),
            std::string::npos);
  const std::string http = kGateway + "[sinks.h]\ntype = \"http\"\nurl = \"https://a.example/in\"\n[sinks.h.headers]\n";
  EXPECT_NE(ConfigErrorsOf(http + "X-A = \"1\\r\\nX-Injected: 1\"\n").find("sinks.h.headers.X-A: names and values"),
            std::string::npos);
  EXPECT_NE(ConfigErrorsOf(http + "\"X-B:\" = \"1\"\n").find("names and values"), std::string::npos);
  EXPECT_EQ(ConfigErrorsOf(http + "X-C = \"ok\"\n"), "");
  const std::string bad_uri = ConfigErrorsOf(kGateway + "[sources.m]\ntype = \"mqtt\"\nuri = \"tls://alice:S3cretPw@b.example:8883\"\n"
                                             "topics = [\"a\"]\n");
  EXPECT_NE(bad_uri.find("sources.m.uri: must start with"), std::string::npos) << bad_uri;
  EXPECT_EQ(bad_uri.find("S3cretPw"), std::string::npos) << bad_uri;
}

}  // namespace
}  // namespace edgeferry::agent
