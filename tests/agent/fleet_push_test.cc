// Fleet push reading as pure functions on byte buffers: bounds checked on the raw
// bytes before parsing, and the keys a push may never set, in every syntax.
#include "edgeferry/agent/fleet.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstdlib>
#include <string>

namespace edgeferry::agent {
namespace {

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

constexpr const char* kLocal = R"(
[gateway]
id = "gw-1"
data_dir = "/tmp/ef-fleet-unit"
[metrics]
port = 9464
[fleet]
uri = "tcp://127.0.0.1:1883"
allow_unsigned = true
[sources.plant]
type = "mqtt"
uri = "tcp://127.0.0.1:1883"
topics = ["plant/#"]
[sinks.local]
type = "outbox"
[sinks.cloud]
type = "http"
url = "https://cloud.example/in"
bearer_token_file = "/etc/edgeferry/token"
)";

const std::string kBase = R"(
[gateway]
id = "gw-1"
data_dir = "/tmp/ef-fleet-unit"
[sources.plant]
type = "mqtt"
uri = "tcp://127.0.0.1:1883"
topics = ["plant/#"]
[sinks.local]
type = "outbox"
)";

// The errors EffectiveConfig reports for a push (TOML or JSON text), joined.
std::string PushErrors(const std::string& text) {
  auto doc = DecodePush(text, "");
  if (!doc.ok()) return std::string(doc.status().message());
  ConfigErrors errors;
  auto eff = EffectiveConfig(*doc, kLocal, {}, &errors);
  return eff.ok() ? "" : errors.Join();
}

TEST(FleetPushBounds, DepthIsCountedOnRawBytesForJsonAndEveryTomlForm) {
  const PushLimits limits;  // 64 levels
  // JSON: 64 nested arrays pass, 65 do not; brackets inside strings do not count.
  EXPECT_TRUE(CheckPushBounds("{\"a\":" + Repeat("[", 63) + Repeat("]", 63) + "}", true, limits).ok());
  EXPECT_FALSE(CheckPushBounds("{\"a\":" + Repeat("[", 64) + Repeat("]", 64) + "}", true, limits).ok());
  EXPECT_TRUE(CheckPushBounds("{\"a\":\"" + Repeat("[{", 1000) + "\\\"\"}", true, limits).ok());
  EXPECT_FALSE(CheckPushBounds(Repeat("{\"a\":", 100'000), true, limits).ok());
  // TOML inline arrays and tables.
  EXPECT_FALSE(CheckPushBounds("a = " + Repeat("[", 100'000) + Repeat("]", 100'000) + "\n", false, limits).ok());
  EXPECT_FALSE(CheckPushBounds("a = " + Repeat("{b = ", 100'000) + "1" + Repeat("}", 100'000) + "\n", false, limits).ok());
  EXPECT_TRUE(CheckPushBounds("a = " + Repeat("[", 60) + Repeat("]", 60) + "\n", false, limits).ok());
  // Dotted keys and table headers nest too.
  EXPECT_FALSE(CheckPushBounds(Repeat("a.", 100'000) + "b = 1\n", false, limits).ok());
  EXPECT_FALSE(CheckPushBounds("[" + Repeat("a.", 100) + "b]\nc = 1\n", false, limits).ok());
  EXPECT_TRUE(CheckPushBounds("[a.b.c]\nd.e = 1.5\n", false, limits).ok());
  // Strings, multi-line strings and comments do not count.
  EXPECT_TRUE(CheckPushBounds("a = \"" + Repeat("[", 1000) + "\"\nb = '''\n" + Repeat("{", 1000) + "\n'''\n# " +
                                  Repeat("[", 1000) + "\n",
                              false, limits)
                  .ok());
  // Size first.
  EXPECT_FALSE(CheckPushBounds(std::string((1 << 20) + 1, ' '), false, limits).ok());
}

// Found by a review: a string the scan ended early (a multi-line string closed by four
// quotes, a single-line one cut by a line break, a backslash before the break) must not
// hide the next line's table header from the depth count.
TEST(FleetPushBounds, AStringThatEndsOddlyDoesNotHideTheNextHeader) {
  const PushLimits limits;
  const std::string header = "[" + Repeat("a.", 300) + "a]\nb = 1\n";
  for (const std::string prefix : {"x = \"\"\"a\"\"\"\"\n", "x = \"\"\"a\"\"\"\"\"\n", "x = \"a\n",
                                    "x = \"a\\\n", "x = 'a\n", "x = \'\'\'a\'\'\'\'\n"}) {
    const Status st = CheckPushBounds("version = 6\n" + prefix + header, false, limits);
    EXPECT_FALSE(st.ok()) << prefix;
    EXPECT_NE(st.message().find("nested deeper than 64"), std::string::npos) << prefix << st.ToString();
  }
  // Quotes that legitimately end a multi-line string do not reject a shallow document.
  EXPECT_TRUE(CheckPushBounds("version = 6\nx = \"\"\"a\"\"\"\"\n[a.b]\nc = 1\n", false, limits).ok());
}

TEST(FleetPushBounds, DecodePushRejectsDeepDocumentsInsideASignedEnvelopeAndBareOnesAlike) {
  const std::string deep = "version = 1\na = " + Repeat("[", 100'000) + Repeat("]", 100'000) + "\n";
  auto bare = DecodePush(deep, "");
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.status().message().find("nested deeper than 64"), std::string::npos);
  // The envelope hides the depth in a string; the document meets the bound once extracted.
  nlohmann::json env = {{"document", deep}};
  auto enveloped = DecodePush(env.dump(), "");
  ASSERT_FALSE(enveloped.ok());
  EXPECT_NE(enveloped.status().message().find("nested deeper than 64"), std::string::npos);
  const std::string deep_json = "{\"version\":1,\"a\":" + Repeat("[", 100'000) + Repeat("]", 100'000) + "}";
  EXPECT_FALSE(DecodePush(deep_json, "").ok());
}

TEST(FleetPushPins, ANewSinkNamingALocalFileIsRejectedInEverySyntax) {
  const char* want = "sinks.rogue.password_file: names a local file";
  // TOML table, quoted key, dotted key, inline table.
  EXPECT_NE(PushErrors("version = 1\n" + kBase +
                       "[sinks.rogue]\ntype = \"mqtt\"\nuri = \"tcp://10.0.0.1:1883\"\npassword_file = \"/etc/hostname\"\n")
                .find(want),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase +
                       "[sinks.\"rogue\"]\ntype = \"mqtt\"\nuri = \"tcp://x:1\"\n\"password_file\" = \"/etc/hostname\"\n")
                .find(want),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\nsinks.rogue.password_file = \"/etc/hostname\"\n" + kBase).find(want),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + "[sinks.rogue]\ntls = { ca_file = \"/etc/shadow\" }\n")
                .find("sinks.rogue.tls.ca_file: names a local file"),
            std::string::npos);
  // JSON, with a unicode-escaped key.
  EXPECT_NE(PushErrors(R"({"version": 1, "sinks": {"rogue": {"type": "mqtt", "uri": "tcp://x:1", "passwor\u0064_file": "/etc/hostname"}}})")
                .find(want),
            std::string::npos);
  // Outbox dir, buffer path, serial device, credentials.
  EXPECT_NE(PushErrors("version = 1\n" + kBase + "[sinks.out]\ntype = \"outbox\"\ndir = \"/tmp/elsewhere\"\n")
                .find("sinks.out.dir: names a local file"),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + "[buffer]\npath = \"/tmp/other.db\"\n").find("buffer.path"),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + "[sources.tty]\ntype = \"serial\"\ndevice = \"/dev/sda\"\n")
                .find("sources.tty.device: names a local file"),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + "[sinks.k]\ntype = \"kinesis\"\nstream = \"s\"\ncredentials_file = \"/root/.aws/credentials\"\n")
                .find("sinks.k.credentials_file: names a local file"),
            std::string::npos);
}

TEST(FleetPushPins, MetricsAndTheDestinationOfALocalSecretArePinned) {
  EXPECT_NE(PushErrors("version = 1\n" + kBase + "[metrics]\naddress = \"0.0.0.0\"\n").find("metrics: pinned"),
            std::string::npos);
  // The local token may stay, but not go to another server.
  const std::string cloud = "[sinks.cloud]\ntype = \"http\"\nbearer_token_file = \"/etc/edgeferry/token\"\n";
  EXPECT_NE(PushErrors("version = 1\n" + kBase + cloud + "url = \"http://127.0.0.1:9/steal\"\n").find("sinks.cloud.url: pinned"),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + cloud + "url = \"https://cloud.example/in\"\n[sinks.cloud.tls]\nverify = false\n")
                .find("sinks.cloud.tls.verify: pinned"),
            std::string::npos);
  // Unchanged, it passes; leaving the sink out passes too.
  EXPECT_EQ(PushErrors("version = 1\n" + kBase + cloud + "url = \"https://cloud.example/in\"\n"), "");
  EXPECT_EQ(PushErrors("version = 1\n" + kBase), "");
}

// Found by a review. An AWS sink signs with the process's own credentials when it has no
// credentials_file (environment, ~/.aws): a push may not choose where those signatures
// and the session token go, by endpoint, region (part of the host) or bucket.
TEST(FleetPushPins, AnAwsSinkCannotBePointedAnywhereByAPush) {
  const std::string kinesis = "[sinks.k]\ntype = \"kinesis\"\nstream = \"s\"\n";
  EXPECT_NE(PushErrors("version = 1\n" + kBase + kinesis + "endpoint = \"http://127.0.0.1:9\"\n").find("sinks.k.endpoint: pinned"),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + kinesis + "region = \"x@127.0.0.1:9/#\"\n").find("sinks.k.region: pinned"),
            std::string::npos);
  EXPECT_NE(PushErrors("version = 1\n" + kBase + kinesis + "profile = \"other\"\n").find("sinks.k.profile: pinned"),
            std::string::npos);
  const std::string s3 = "[sinks.o]\ntype = \"s3\"\nbucket = \"evil.example\"\n";
  EXPECT_NE(PushErrors("version = 1\n" + kBase + s3).find("sinks.o.bucket: pinned"), std::string::npos);
  EXPECT_NE(PushErrors("{\"version\":1,\"gateway\":{\"id\":\"gw-1\",\"data_dir\":\"/tmp/ef-fleet-unit\"},"
                       "\"sinks\":{\"k\":{\"type\":\"kinesis\",\"stream\":\"s\",\"endpoint\":\"http://127.0.0.1:9\"}}}")
                .find("sinks.k.endpoint: pinned"),
            std::string::npos);
}

// Found by a review: ttl = "1ms" in a push deleted the undelivered backlog. What can
// drop buffered records or dead letters is pinned with the buffer's path.
TEST(FleetPushPins, BufferKeysThatDropRecordsArePinned) {
  for (const std::string kv : {"ttl = \"1ms\"", "max_bytes = \"1MiB\"", "when_full = \"reject_new\"",
                               "min_free_bytes = \"100GiB\"", "dlq_max_records = 1", "path = \"/tmp/x.db\""}) {
    const std::string key = "buffer." + kv.substr(0, kv.find(' '));
    EXPECT_NE(PushErrors("version = 1\n" + kBase + "[buffer]\n" + kv + "\n").find(key + ": pinned"), std::string::npos)
        << kv;
  }
  EXPECT_EQ(PushErrors("version = 1\n" + kBase + "[buffer]\ncommit_interval = \"500ms\"\n"), "");
}

TEST(FleetPushPolicy, UnsignedPushesAreRefusedBeforeParsingUnlessAllowed) {
  const std::string local_toml = std::string(kLocal).substr(0, std::string(kLocal).find("[sinks.cloud]"));
  ConfigErrors errors;
  auto local = ParseConfig(local_toml, "local", &errors);
  ASSERT_TRUE(local.ok()) << errors.Join();
  int64_t version = -1;
  local->fleet.allow_unsigned = false;
  auto v = ValidatePush("version = 3\n" + kBase, *local, local_toml, &errors, &version);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(errors.Join().find("allow_unsigned"), std::string::npos);
  EXPECT_EQ(version, -1) << "decoded although refused";
  local->fleet.allow_unsigned = true;
  v = ValidatePush("version = 3\n" + kBase, *local, local_toml, &errors, &version);
  ASSERT_TRUE(v.ok()) << errors.Join();
  EXPECT_EQ(version, 3);
  EXPECT_EQ(v->config.metrics_port, 9464);
  // Keys are case-sensitive: another casing is no alias, it is an unknown key.
  v = ValidatePush("version = 5\n" + kBase + "Password_File = \"/etc/hostname\"\n", *local, local_toml, &errors, &version);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(errors.Join().find("sinks.local.Password_File: unknown key"), std::string::npos) << errors.Join();
  // A client taking over the management connection's MQTT session.
  v = ValidatePush("version = 4\n" + kBase + "[sinks.up]\ntype = \"mqtt\"\nuri = \"tcp://127.0.0.1:1883\"\n"
                   "client_id = \"edgeferry-gw-1-fleet\"\n", *local, local_toml, &errors, &version);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(errors.Join().find("sinks.up.client_id: \"edgeferry-gw-1-fleet\" is the fleet connection's"), std::string::npos)
      << errors.Join();
}

TEST(FleetPushPolicy, JsonIntegersBeyond64BitsAreRejectedNotWrapped) {
  auto doc = DecodePush(R"({"version": 18446744073709551615})", "");
  EXPECT_FALSE(doc.ok());
}

}  // namespace
}  // namespace edgeferry::agent

namespace edgeferry::agent {
namespace {

// ${VAR} is expanded in the local file only: expanding a push would hand the gateway's
// environment (credentials in it, too) to whoever can push.
TEST(FleetPushPolicy, VariablesInAPushStayLiteral) {
  ::setenv("HOME", "/home/edgeferry-test", 1);
  const std::string local_toml = std::string(kLocal).substr(0, std::string(kLocal).find("[sinks.cloud]"));
  ConfigErrors errors;
  auto local = ParseConfig(local_toml, "local", &errors);
  ASSERT_TRUE(local.ok()) << errors.Join();
  int64_t version = -1;
  const std::string push = R"(version = 7
[gateway]
id = "gw-1"
data_dir = "/tmp/ef-fleet-unit"
[sources.plant]
type = "mqtt"
uri = "tcp://127.0.0.1:1883"
topics = ["${HOME}/#", "a$$b/#", "${UNSET_IN_ANY_TEST:-d}/#"]
[sinks.local]
type = "outbox"
)";
  for (const bool json : {false, true}) {
    std::string payload = push;
    if (json) {
      payload = nlohmann::json{{"version", 8},
                               {"gateway", {{"id", "gw-1"}, {"data_dir", "/tmp/ef-fleet-unit"}}},
                               {"sources", {{"plant", {{"type", "mqtt"}, {"uri", "tcp://127.0.0.1:1883"},
                                                       {"topics", {"${HOME}/#", "a$$b/#", "${UNSET_IN_ANY_TEST:-d}/#"}}}}}},
                               {"sinks", {{"local", {{"type", "outbox"}}}}}}
                    .dump();
    }
    auto v = ValidatePush(payload, *local, local_toml, &errors, &version);
    ASSERT_TRUE(v.ok()) << json << ": " << errors.Join();
    ASSERT_EQ(v->config.sources.size(), 1u);
    const auto& subs = v->config.sources[0].As<edgeferry::drivers::MqttSourceConfig>()->subscriptions;
    ASSERT_EQ(subs.size(), 3u);
    EXPECT_EQ(subs[0].filter, "${HOME}/#") << json;
    EXPECT_EQ(subs[1].filter, "a$$b/#") << json;
    EXPECT_EQ(subs[2].filter, "${UNSET_IN_ANY_TEST:-d}/#") << json;
    EXPECT_EQ(v->toml.find("/home/edgeferry-test"), std::string::npos) << v->toml;
  }
}

}  // namespace
}  // namespace edgeferry::agent
