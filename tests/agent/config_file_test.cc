// Reading a configuration file: ${VAR} expansion, includes, the gateway.id default.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "edgeferry/agent/config.h"
#include "test_support.h"

namespace edgeferry::agent {
namespace {

using edgeferry::testing::TempDir;
using edgeferry::testing::WriteFile;

// A machine with exactly these variables, this host name and this machine id file.
ConfigHost FakeHost(std::map<std::string, std::string> env, std::string hostname = "gw-host-1",
                    std::string machine_id_path = "/nonexistent/machine-id") {
  ConfigHost h;
  h.getenv = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  h.hostname = [hostname] { return hostname; };
  h.machine_id_path = std::move(machine_id_path);
  return h;
}

constexpr const char* kSink = "[sinks.local]\ntype = \"outbox\"\n";

TEST(ConfigFile, ExpandsVariablesDefaultsAndDollarDollarInStringValues) {
  TempDir dir;
  WriteFile(dir / "c.toml", std::string(R"(
[gateway]
id = "${GW_ID}"
data_dir = "${DATA:-/tmp/ef-default}"
[sources.plant]
type = "mqtt"
uri = "tcp://${BROKER_HOST:-127.0.0.1}:${BROKER_PORT:-1883}"
topics = ["${SITE}/#", "price$$/x", "lone $ sign"]
client_id = "${EMPTY:-fallback}-${EMPTY}"
)") + kSink);
  ConfigErrors errors;
  auto cfg = LoadConfigFile(dir / "c.toml", &errors,
                            FakeHost({{"GW_ID", "gw-from-env"}, {"SITE", "plant-7"}, {"BROKER_PORT", "18830"},
                                      {"EMPTY", ""}}));
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->gateway_id, "gw-from-env");
  EXPECT_EQ(cfg->data_dir, "/tmp/ef-default");
  ASSERT_EQ(cfg->sources.size(), 1u);
  const auto& m = *cfg->sources[0].As<edgeferry::drivers::MqttSourceConfig>();
  EXPECT_EQ(m.uri, "tcp://127.0.0.1:18830");
  ASSERT_EQ(m.subscriptions.size(), 3u);
  EXPECT_EQ(m.subscriptions[0].filter, "plant-7/#");
  EXPECT_EQ(m.subscriptions[1].filter, "price$/x");
  EXPECT_EQ(m.subscriptions[2].filter, "lone $ sign");
  EXPECT_EQ(m.client_id, "fallback-");  // ":-" takes the default for an empty value too
}

TEST(ConfigFile, AVariableCannotInjectTomlStructure) {
  TempDir dir;
  WriteFile(dir / "c.toml", std::string("[gateway]\nid = \"${GW_ID}\"\ndata_dir = \"/tmp/ef\"\n") + kSink);
  ConfigErrors errors;
  // Would add a key if expanded before parsing.
  auto cfg = LoadConfigFile(dir / "c.toml", &errors, FakeHost({{"GW_ID", "gw\"\nbogus = \"1"}}));
  ASSERT_FALSE(cfg.ok());
  ASSERT_EQ(errors.errors.size(), 1u) << errors.Join();
  EXPECT_EQ(errors.errors[0], "gateway.id: must be 1 to 64 of A-Z a-z 0-9 . _ -");
}

// Found by review: a 60 KB file of one dotted key 30,000 levels deep overflowed the
// parser's stack (check and a SIGHUP reload died with SIGSEGV). Refused unparsed now,
// in the main file, an included one and a [table.header] alike.
TEST(ConfigFile, AFileNestedDeeperThan64LevelsIsRefusedBeforeParsing) {
  TempDir dir;
  std::string deep_key = "a";
  for (int i = 0; i < 30'000; ++i) deep_key += ".a";
  for (const std::string& body : {deep_key + " = 1\n", "[" + deep_key + "]\nx = 1\n"}) {
    WriteFile(dir / "c.toml", "[gateway]\nid = \"gw-1\"\ndata_dir = \"/tmp/ef\"\n[sinks.local]\ntype = \"outbox\"\n" + body);
    ConfigErrors errors;
    EXPECT_FALSE(LoadConfigFile(dir / "c.toml", &errors, FakeHost({})).ok());
    EXPECT_EQ(errors.Join(), dir / "c.toml" + ": nested deeper than 64 levels (tables, dotted keys, arrays); not parsed\n");
  }
  WriteFile(dir / "deep.toml", deep_key + " = 1\n");
  WriteFile(dir / "main.toml", "include = [\"deep.toml\"]\n[gateway]\nid = \"gw-1\"\ndata_dir = \"/tmp/ef\"\n");
  ConfigErrors errors;
  EXPECT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_NE(errors.Join().find("deep.toml: nested deeper than 64 levels"), std::string::npos) << errors.Join();
  // 60 levels is fine.
  std::string ok_key = "a";
  for (int i = 0; i < 59; ++i) ok_key += ".a";
  WriteFile(dir / "c.toml", "[gateway]\nid = \"gw-1\"\ndata_dir = \"/tmp/ef\"\n[sinks.local]\ntype = \"outbox\"\n[x]\n" + ok_key + " = 1\n");
  ConfigErrors ok_errors;
  (void)LoadConfigFile(dir / "c.toml", &ok_errors, FakeHost({}));
  EXPECT_EQ(ok_errors.Join().find("nested deeper"), std::string::npos) << ok_errors.Join();
}

TEST(ConfigFile, AnUnsetVariableIsAnErrorNamingTheKeyPath) {
  TempDir dir;
  WriteFile(dir / "c.toml", std::string(R"(
[gateway]
id = "gw-1"
data_dir = "/tmp/ef"
[sources.plant]
type = "mqtt"
topics = ["a/#", "${NOT_SET}/#"]
client_id = "${BAD NAME}"
password_file = "${UNCLOSED"
)") + kSink);
  ConfigErrors errors;
  auto cfg = LoadConfigFile(dir / "c.toml", &errors, FakeHost({}));
  ASSERT_FALSE(cfg.ok());
  const std::string all = errors.Join();
  EXPECT_EQ(errors.errors.size(), 3u) << all;
  EXPECT_NE(all.find("sources.plant.topics[1]: the environment variable NOT_SET is not set"), std::string::npos)
      << all;
  EXPECT_NE(all.find("sources.plant.client_id: \"${BAD NAME}\": a variable name is"), std::string::npos) << all;
  EXPECT_NE(all.find("sources.plant.password_file: \"${\" without a closing"), std::string::npos) << all;
}

TEST(ConfigFile, IncludesMergeInSortedOrderRelativeToTheIncludingFile) {
  TempDir dir;
  WriteFile(dir / "main.toml", "include = [\"conf.d/*.toml\", \"extra.toml\"]\n[gateway]\nid = \"gw-1\"\n"
                               "data_dir = \"/tmp/ef\"\n");
  std::filesystem::create_directories(dir / "conf.d");
  WriteFile(dir / "conf.d/20-sink.toml", "[sinks.b]\ntype = \"outbox\"\ndir = \"/tmp/ef/b\"\n");
  WriteFile(dir / "conf.d/10-sink.toml", "[sinks.a]\ntype = \"outbox\"\ndir = \"${OUT}\"\n");
  WriteFile(dir / "conf.d/ignored.txt", "not toml at all [[[");
  WriteFile(dir / "extra.toml", "[log]\nlevel = \"debug\"\n[gateway]\n# the same table, another key\n");
  ConfigErrors errors;
  // Run from another directory: patterns are relative to main.toml, not to the cwd.
  auto cfg = LoadConfigFile(dir / "main.toml", &errors, FakeHost({{"OUT", "/tmp/ef/a"}}));
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->log_level, "debug");
  ASSERT_EQ(cfg->sinks.size(), 2u);
  EXPECT_EQ(cfg->sinks[0].name, "a");
  EXPECT_EQ(cfg->sinks[0].As<edgeferry::drivers::OutboxSinkConfig>()->dir, "/tmp/ef/a");  // included files are expanded too
  EXPECT_EQ(cfg->sinks[1].As<edgeferry::drivers::OutboxSinkConfig>()->dir, "/tmp/ef/b");
}

TEST(ConfigFile, AKeyInTwoFilesIsAnErrorNamingTheKeyAndBothFiles) {
  TempDir dir;
  WriteFile(dir / "main.toml", std::string("include = [\"conf.d/*.toml\"]\n[gateway]\nid = \"gw-1\"\n") + kSink);
  std::filesystem::create_directories(dir / "conf.d");
  WriteFile(dir / "conf.d/a.toml", "[gateway]\ndata_dir = \"/tmp/one\"\n");
  ConfigErrors errors;
  auto cfg = LoadConfigFile(dir / "main.toml", &errors, FakeHost({}));
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->data_dir, "/tmp/one");

  WriteFile(dir / "conf.d/b.toml", "[gateway]\ndata_dir = \"/tmp/one\"\n");
  cfg = LoadConfigFile(dir / "main.toml", &errors, FakeHost({}));
  ASSERT_FALSE(cfg.ok());
  ASSERT_EQ(errors.errors.size(), 1u) << errors.Join();
  // Same value or not: two files setting one key is a conflict.
  EXPECT_EQ(errors.errors[0], "gateway.data_dir: defined in " + (dir / "conf.d/a.toml") + " and in " +
                                  (dir / "conf.d/b.toml"));

  std::filesystem::remove(dir / "conf.d/a.toml");
  WriteFile(dir / "conf.d/b.toml", "[sinks.local]\ntype = \"outbox\"\n");
  cfg = LoadConfigFile(dir / "main.toml", &errors, FakeHost({}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(errors.Join(), "sinks.local.type: defined in " + (dir / "main.toml") + " and in " +
                               (dir / "conf.d/b.toml") + "\n");
}

TEST(ConfigFile, IncludesAreBoundedAndNotNested) {
  TempDir dir;
  std::filesystem::create_directories(dir / "conf.d");
  WriteFile(dir / "main.toml", std::string("include = [\"conf.d/*.toml\"]\n[gateway]\nid = \"gw-1\"\n") + kSink);
  WriteFile(dir / "conf.d/a.toml", "include = [\"b.toml\"]\n");
  ConfigErrors errors;
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_EQ(errors.Join(), "include: " + (dir / "conf.d/a.toml") +
                               " includes other files; only the main configuration file may\n");

  for (int i = 0; i <= static_cast<int>(kMaxIncludedFiles); ++i) {
    WriteFile(dir / ("conf.d/f" + std::to_string(1000 + i) + ".toml"), "");
  }
  std::filesystem::remove(dir / "conf.d/a.toml");
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_EQ(errors.Join(), "include: the patterns match 257 files (at most 256)\n");

  std::filesystem::remove(dir / "conf.d/f1000.toml");
  EXPECT_TRUE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok()) << errors.Join();

  WriteFile(dir / "conf.d/f1001.toml", "# " + std::string(kMaxConfigFileBytes, 'x') + "\n");
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_NE(errors.Join().find("f1001.toml: larger than"), std::string::npos) << errors.Join();

  WriteFile(dir / "main.toml", std::string("include = \"conf.d\"\n[gateway]\nid = \"gw-1\"\n") + kSink);
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_NE(errors.Join().find("include: must be an array of file patterns"), std::string::npos) << errors.Join();
}

// A typo in a literal file name silently dropped the sinks it defined; a pattern with
// glob characters that matches nothing stays fine (an empty conf.d).
TEST(ConfigFile, AMissingLiteralIncludeIsAnErrorNamingTheKeyAndThePath) {
  TempDir dir;
  std::filesystem::create_directories(dir / "conf.d");
  WriteFile(dir / "main.toml", std::string("include = [\"conf.d/*.toml\", \"nodir/*.toml\", \"conf.d/1[0-9]-x.toml\", "
                                           "\"missing.toml\"]\n[gateway]\nid = \"gw-1\"\n") +
                                   kSink);
  ConfigErrors errors;
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_EQ(errors.Join(), "include[3]: \"missing.toml\": no such file (" + (dir / "missing.toml") +
                               "); a pattern without * ? [ must name a file\n");

  WriteFile(dir / "main.toml", "include = [\"" + (dir / "nodir/sinks.toml") + "\"]\n[gateway]\nid = \"gw-1\"\n" + kSink);
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_EQ(errors.Join(), "include[0]: \"" + (dir / "nodir/sinks.toml") + "\": no such file (" +
                               (dir / "nodir/sinks.toml") + "); a pattern without * ? [ must name a file\n");

  WriteFile(dir / "main.toml", std::string("include = [\"conf.d/*.toml\", \"nodir/*.toml\"]\n[gateway]\nid = \"gw-1\"\n") + kSink);
  EXPECT_TRUE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok()) << errors.Join();
}

// One file reached by two spellings (or a symbolic link) was read twice and reported as
// conflicting with itself.
TEST(ConfigFile, AFileReachedByTwoSpellingsOrALinkIsReadOnce) {
  TempDir dir;
  std::filesystem::create_directories(dir / "conf.d");
  WriteFile(dir / "main.toml", "include = [\"./conf.d/10-a.toml\", \"conf.d//10-a.toml\", \"conf.d/*.toml\", "
                               "\"link.toml\", \"../" + std::filesystem::path(dir.path()).filename().string() +
                               "/conf.d/10-a.toml\"]\n[gateway]\nid = \"gw-1\"\n");
  WriteFile(dir / "conf.d/10-a.toml", "[sinks.a]\ntype = \"outbox\"\ndir = \"/tmp/ef/a\"\n");
  WriteFile(dir / "conf.d/20-b.toml", "[sinks.b]\ntype = \"outbox\"\ndir = \"/tmp/ef/b\"\n");
  std::filesystem::create_symlink(dir / "conf.d/10-a.toml", dir / "link.toml");
  ConfigErrors errors;
  auto cfg = LoadConfigFile(dir / "main.toml", &errors, FakeHost({}));
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  ASSERT_EQ(cfg->sinks.size(), 2u);
  EXPECT_EQ(cfg->sinks[0].name, "a");
  EXPECT_EQ(cfg->sinks[1].name, "b");

  // Two distinct files still conflict, named as the patterns found them.
  WriteFile(dir / "conf.d/30-c.toml", "[sinks.a]\ntype = \"outbox\"\n");
  ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
  EXPECT_EQ(errors.Join(), "sinks.a.type: defined in " + (dir.path() + "/./conf.d/10-a.toml") + " and in " +
                               (dir / "conf.d/30-c.toml") + "\n");
}

// The main file listing itself was reported as "includes other files; only the main
// configuration file may", which is true of every main file.
TEST(ConfigFile, AFileThatIncludesItselfIsNamedAsSuch) {
  TempDir dir;
  for (const std::string self : {"main.toml", "./main.toml", ".//main.toml", "self-link.toml"}) {
    SCOPED_TRACE(self);
    WriteFile(dir / "main.toml", "include = [\"" + self + "\"]\n[gateway]\nid = \"gw-1\"\n" + kSink);
    if (!std::filesystem::exists(dir / "self-link.toml")) {
      std::filesystem::create_symlink(dir / "main.toml", dir / "self-link.toml");
    }
    ConfigErrors errors;
    ASSERT_FALSE(LoadConfigFile(dir / "main.toml", &errors, FakeHost({})).ok());
    EXPECT_EQ(errors.Join(), "include[0]: \"" + self + "\" is this file itself (" + (dir / "main.toml") +
                                 "): a file cannot include itself\n");
  }
  // A glob that also matches the main file (include = ["*.toml"] beside it) skips it.
  WriteFile(dir / "main.toml", std::string("include = [\"*.toml\"]\n[gateway]\nid = \"gw-1\"\n") + kSink);
  std::filesystem::remove(dir / "self-link.toml");
  WriteFile(dir / "more.toml", "[log]\nlevel = \"debug\"\n");
  ConfigErrors errors;
  auto cfg = LoadConfigFile(dir / "main.toml", &errors, FakeHost({}));
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->log_level, "debug");
}

TEST(ConfigFile, GatewayIdDefaultsToTheHostNameElseTheMachineIdHash) {
  TempDir dir;
  WriteFile(dir / "c.toml", std::string("[gateway]\ndata_dir = \"/tmp/ef\"\n") + kSink);
  WriteFile(dir / "no-gateway.toml", kSink);
  WriteFile(dir / "machine-id", "0123456789abcdef0123456789abcdef\n");
  ConfigErrors errors;
  for (const char* file : {"c.toml", "no-gateway.toml"}) {
    auto cfg = LoadConfigFile(dir / file, &errors, FakeHost({}, "edge-07.plant", dir / "machine-id"));
    ASSERT_TRUE(cfg.ok()) << file << ": " << errors.Join();
    EXPECT_EQ(cfg->gateway_id, "edge-07.plant");
  }
  // printf %s 0123456789abcdef0123456789abcdef | sha256sum | cut -c1-12
  for (const char* host : {"localhost", "", "bad host name"}) {
    auto cfg = LoadConfigFile(dir / "c.toml", &errors, FakeHost({}, host, dir / "machine-id"));
    ASSERT_TRUE(cfg.ok()) << errors.Join();
    EXPECT_EQ(cfg->gateway_id, "gw-3eb1bd439947") << host;
  }
  // Neither: the id is required, as before.
  EXPECT_FALSE(LoadConfigFile(dir / "c.toml", &errors, FakeHost({}, "localhost")).ok());
  EXPECT_EQ(errors.Join(), "gateway.id: is required\n");
  // The real machine: whatever it is, a valid id.
  auto cfg = LoadConfigFile(dir / "c.toml", &errors);
  if (cfg.ok()) {
    EXPECT_FALSE(cfg->gateway_id.empty());
  }
}

TEST(ConfigFile, TheDocumentedExampleIdIsRefused) {
  TempDir dir;
  WriteFile(dir / "c.toml", std::string("[gateway]\nid = \"gw-example-01\"\n") + kSink);
  ConfigErrors errors;
  ASSERT_FALSE(LoadConfigFile(dir / "c.toml", &errors, FakeHost({})).ok());
  ASSERT_EQ(errors.errors.size(), 1u) << errors.Join();
  EXPECT_EQ(errors.errors[0].rfind("gateway.id: \"gw-example-01\" is the documentation's example", 0), 0u)
      << errors.Join();
  // Also through a variable: the check is on the value that runs.
  WriteFile(dir / "c.toml", std::string("[gateway]\nid = \"${ID:-gw-example-01}\"\n") + kSink);
  EXPECT_FALSE(LoadConfigFile(dir / "c.toml", &errors, FakeHost({})).ok());
}

// The effective text is what the fleet code pins and stores: it must hold the expanded
// values, and parsing it again must not expand anything a second time.
TEST(ConfigFile, TheEffectiveTextIsExpandedOnce) {
  TempDir dir;
  WriteFile(dir / "c.toml", std::string("[gateway]\nid = \"gw-1\"\ndata_dir = \"/tmp/$${HOME}/${D}\"\n") + kSink);
  ConfigErrors errors;
  auto text = ReadConfigFile(dir / "c.toml", &errors, FakeHost({{"D", "x"}, {"HOME", "/root"}}));
  ASSERT_TRUE(text.ok()) << errors.Join();
  auto cfg = ParseConfig(*text, "effective", &errors);
  ASSERT_TRUE(cfg.ok()) << errors.Join();
  EXPECT_EQ(cfg->data_dir, "/tmp/${HOME}/x");
}

}  // namespace
}  // namespace edgeferry::agent
