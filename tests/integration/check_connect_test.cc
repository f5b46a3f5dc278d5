// `edgeferry check --connect`: every source and sink probed, read-only, against real
// brokers, devices and servers; exit 0 / 69 / 78; bounded by --timeout; --json.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "agent_process.h"
#include "cloud_servers.h"
#include "pseudo_terminal.h"

namespace edgeferry::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A loopback port that accepts TCP connections (the kernel completes the handshake into
// the backlog) and never says a word: a broker that hangs before its CONNACK.
class SilentPort {
 public:
  SilentPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::abort();
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Sets or unsets environment variables for one scope, restoring them after.
class ScopedEnv {
 public:
  void Set(const std::string& name, std::optional<std::string> value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// No AWS credentials anywhere: environment cleared, HOME an empty directory.
void ClearAwsCredentials(ScopedEnv& env, const std::string& home) {
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                        "AWS_SHARED_CREDENTIALS_FILE"}) {
    env.Set(v, std::nullopt);
  }
  env.Set("HOME", home);
}

std::string Config(const TempDir& dir, const std::string& body) {
  const std::string path = dir / "edgeferry.toml";
  WriteFile(path, "[gateway]\nid = \"gw-check\"\ndata_dir = \"" + dir.path() + "/data\"\n" + body);
  return path;
}

std::string MqttSource(const std::string& name, const std::string& uri) {
  return "[sources." + name + "]\ntype = \"mqtt\"\nuri = \"" + uri + "\"\ntopics = [\"t/#\"]\n";
}

// Runs `edgeferry check --connect ...`; returns the exit code, output and elapsed ms.
struct Outcome {
  int rc;
  std::string out;
  long ms;
};
Outcome CheckConnect(const std::string& config, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{EdgeferryBinary(), "check", "--connect", "-c", config};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Outcome o{};
  const auto t0 = Clock::now();
  o.rc = RunCommand(argv, &o.out);
  o.ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
  return o;
}

nlohmann::json ParseJson(const std::string& out) {
  const auto at = out.find('{');
  return at == std::string::npos ? nlohmann::json() : nlohmann::json::parse(out.substr(at), nullptr, false);
}

TEST(CheckConnect, AReachableBrokerIsOkAndARunningAgentOnItIsNotDisturbed) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const std::string body = MqttSource("plant", broker.uri()) + "[sinks.up]\ntype = \"mqtt\"\nuri = \"" + broker.uri() +
                           "\"\n[sinks.local]\ntype = \"outbox\"\n";
  // The agent runs with the same config, so the same client ids: a probe that connected
  // as the agent's id would take its session over (the broker drops the older one).
  AgentProcess agent(dir, "[gateway]\nid = \"gw-check\"\ndata_dir = \"@DATA@\"\n" + body);
  ASSERT_TRUE(agent.Start());
  TempDir check_dir;
  const Outcome o = CheckConnect(Config(check_dir, body));
  EXPECT_EQ(o.rc, 0) << o.out;
  EXPECT_NE(o.out.find("source mqtt plant: ok (connected to " + broker.uri() + " in "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("sink mqtt up: ok (connected to " + broker.uri() + " in "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("sink outbox local: ok ("), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("3 ok, 0 failed, 0 skipped"), std::string::npos) << o.out;
  // The probe created nothing: no outbox directory, no buffer.
  EXPECT_FALSE(std::filesystem::exists(check_dir / "data")) << "a probe must not create files";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(agent.Log().find("connection lost"), std::string::npos) << agent.LogTail(20);
  EXPECT_EQ(agent.Log().find("reconnect"), std::string::npos) << agent.LogTail(20);
  EXPECT_EQ(agent.Terminate(), 0);
}

TEST(CheckConnect, AClosedPortFailsWith69NamingTheSourceWithinTheTimeout) {
  RefusingPort closed;
  TempDir dir;
  const Outcome o = CheckConnect(
      Config(dir, MqttSource("plant", "tcp://127.0.0.1:" + std::to_string(closed.port())) +
                      "[sinks.local]\ntype = \"outbox\"\n"),
      {"--timeout", "2s"});
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("source mqtt plant: FAILED: tcp://127.0.0.1:" + std::to_string(closed.port())), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("sink outbox local: ok"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("1 ok, 1 failed, 0 skipped"), std::string::npos) << o.out;
  EXPECT_LT(o.ms, 2000 + 3000) << o.out;
}

TEST(CheckConnect, ABrokerThatNeverAnswersIsBoundedByTheTimeout) {
  SilentPort silent;
  TempDir dir;
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(silent.port());
  const Outcome o = CheckConnect(
      Config(dir, MqttSource("plant", uri) + "[sinks.up]\ntype = \"mqtt\"\nuri = \"" + uri + "\"\n"),
      {"--timeout", "1s"});
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("source mqtt plant: FAILED: " + uri + ": no CONNACK within 1000 ms"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("sink mqtt up: FAILED: " + uri + ": no CONNACK within 1000 ms"), std::string::npos) << o.out;
  // Probed at once, not one after the other; 2.5 s of slack for process start and teardown.
  EXPECT_GE(o.ms, 1000) << o.out;
  EXPECT_LT(o.ms, 1000 + 2500) << o.out;
}

TEST(CheckConnect, RefusedCredentialsAreNamedAndNeverPrinted) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("mosquitto_passwd");
  TempDir dir;
  std::string out;
  ASSERT_EQ(RunCommand({FindTool("mosquitto_passwd"), "-b", "-c", dir / "passwd", "alice", "right-password-1"}, &out), 0)
      << out;
  ::chmod((dir / "passwd").c_str(), 0600);
  MosquittoBroker broker("allow_anonymous false\npassword_file " + dir.path() + "/passwd\n");
  ASSERT_TRUE(broker.Start());
  WriteFile(dir / "good", "right-password-1");
  WriteFile(dir / "bad", "zq-wrong-password-7");
  ::chmod((dir / "good").c_str(), 0600);
  ::chmod((dir / "bad").c_str(), 0600);
  auto source = [&](const std::string& name, const std::string& file, const std::string& version) {
    return MqttSource(name, broker.uri()) + "username = \"alice\"\npassword_file = \"" + dir.path() + "/" + file +
           "\"\nmqtt_version = \"" + version + "\"\n";
  };
  const Outcome o = CheckConnect(
      Config(dir, source("good", "good", "3.1.1") + source("bad3", "bad", "3.1.1") + source("bad5", "bad", "5")));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("source mqtt good: ok"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("source mqtt bad3: FAILED: " + broker.uri() + ": refused: not authorized"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("source mqtt bad5: FAILED: " + broker.uri() + ": refused: not authorized"), std::string::npos)
      << o.out;
  EXPECT_EQ(o.out.find("right-password-1"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("zq-wrong-password-7"), std::string::npos) << o.out;
}

TEST(CheckConnect, MqttOverMutualTlsUsesTheConfiguredCertificates) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  EDGEFERRY_REQUIRE_TOOL("openssl");
  TempDir dir;
  const TlsFiles tls = MakeTlsFiles(dir.path());
  TlsMosquitto broker(dir, tls);
  ASSERT_TRUE(broker.Start());
  auto source = [&](const std::string& name, bool client_cert) {
    std::string s = MqttSource(name, broker.uri()) + "[sources." + name + ".tls]\nca_file = \"" + tls.ca + "\"\n";
    if (client_cert) s += "cert_file = \"" + tls.client_cert + "\"\nkey_file = \"" + tls.client_key + "\"\n";
    return s;
  };
  TempDir cfg_dir;
  const Outcome o = CheckConnect(Config(cfg_dir, source("mtls", true) + source("nocert", false)));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("source mqtt mtls: ok (connected to " + broker.uri()), std::string::npos) << o.out;
  // The broker requires a client certificate: the handshake fails without one.
  EXPECT_NE(o.out.find("source mqtt nocert: FAILED: " + broker.uri() + ": "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("the TLS handshake failed"), std::string::npos) << o.out;
}

TEST(CheckConnect, AKinesisSinkWithoutCredentialsFailsWith69NamingTheSinkAndWhereItLooked) {
  TempDir dir, home;
  ScopedEnv env;
  ClearAwsCredentials(env, home.path());
  const Outcome o = CheckConnect(Config(dir,
                                        "[sinks.cloud]\ntype = \"kinesis\"\nstream = \"telemetry\"\n"
                                        "endpoint = \"http://127.0.0.1:9\"\n[sinks.local]\ntype = \"outbox\"\n"));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("sink kinesis cloud: FAILED: no AWS credentials (looked in: AWS_ACCESS_KEY_ID/"
                       "AWS_SECRET_ACCESS_KEY not both set, and no file at " +
                       home.path() + "/.aws/credentials)"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("sink outbox local: ok"), std::string::npos) << o.out;
}

TEST(CheckConnect, KinesisAndS3AreCheckedWithReadOnlyCalls) {
  EDGEFERRY_REQUIRE_NODE_SERVERS();
  TempDir dir;
  Kinesalite kinesis(dir, {"telemetry"});
  ASSERT_TRUE(kinesis.Start());
  TempDir s3_dir;
  S3rver s3(s3_dir, "archive");
  ASSERT_TRUE(s3.Start());
  ScopedEnv env;
  env.Set("AWS_ACCESS_KEY_ID", "S3RVER");
  env.Set("AWS_SECRET_ACCESS_KEY", "S3RVER");
  env.Set("AWS_SESSION_TOKEN", std::nullopt);
  TempDir cfg_dir;
  const Outcome o = CheckConnect(Config(
      cfg_dir, "[sinks.stream]\ntype = \"kinesis\"\nstream = \"telemetry\"\nendpoint = \"" + kinesis.endpoint() +
                   "\"\n[sinks.nostream]\ntype = \"kinesis\"\nstream = \"missing\"\nendpoint = \"" + kinesis.endpoint() +
                   "\"\n[sinks.bucket]\ntype = \"s3\"\nbucket = \"archive\"\npath_style = true\nendpoint = \"" +
                   s3.endpoint() + "\"\n[sinks.nobucket]\ntype = \"s3\"\nbucket = \"missing\"\npath_style = true\n" +
                   "endpoint = \"" + s3.endpoint() + "\"\n"));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("sink kinesis stream: ok (stream telemetry ACTIVE at " + kinesis.endpoint()), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("sink kinesis nostream: FAILED: " + kinesis.endpoint() +
                       ": DescribeStreamSummary missing: HTTP 400 ResourceNotFoundException"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("sink s3 bucket: ok (bucket archive at " + s3.endpoint() + " answered HeadBucket"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("sink s3 nobucket: FAILED: bucket missing at " + s3.endpoint() + ": HeadBucket: HTTP 404"),
            std::string::npos)
      << o.out;
  // Read-only: nothing was written to the stream or the bucket.
  EXPECT_TRUE(kinesis.ReadAll("telemetry").empty());
  EXPECT_TRUE(s3.ListKeys("archive").empty());
  EXPECT_EQ(o.out.find("S3RVER"), std::string::npos) << "credentials printed: " << o.out;
}

TEST(CheckConnect, HttpSinkConnectsWithoutSendingARequest) {
  EDGEFERRY_REQUIRE_TOOL("python3");
  TempDir dir;
  ScriptedHttpServer server(dir);
  ASSERT_TRUE(server.Start());
  RefusingPort closed;
  TempDir cfg_dir;
  const Outcome o = CheckConnect(Config(cfg_dir, "[sinks.web]\ntype = \"http\"\nurl = \"" + server.url() +
                                                     "\"\n[sinks.down]\ntype = \"http\"\nurl = \"http://127.0.0.1:" +
                                                     std::to_string(closed.port()) + "/ingest\"\n"));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("sink http web: ok (connected to " + server.url() + " at 127.0.0.1:" +
                       std::to_string(server.port())),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("sink http down: FAILED: http://127.0.0.1:" + std::to_string(closed.port()) + "/ingest: "),
            std::string::npos)
      << o.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(server.Requests().empty()) << "the probe sent a request";
}

TEST(CheckConnect, SerialDevicesAreOpenedAndAMissingOneIsExplained) {
  TempDir dir;
  Pty pty(dir / "ttyGPS");
  const Outcome o = CheckConnect(Config(dir, "[sources.gps]\ntype = \"serial\"\ndevice = \"" + pty.path() +
                                                 "\"\n[sources.gone]\ntype = \"serial\"\ndevice = \"" + dir.path() +
                                                 "/ttyNONE\"\n"));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("source serial gps: ok (opened " + pty.path() + " (" + pty.slave_path() + ") at 9600 baud"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("source serial gone: FAILED: " + dir.path() +
                       "/ttyNONE: No such file or directory (is the device plugged in"),
            std::string::npos)
      << o.out;
}

TEST(CheckConnect, AnOutboxUnderAFileIsNotWritable) {
  TempDir dir;
  WriteFile(dir / "file", "");
  const Outcome o =
      CheckConnect(Config(dir, "[sinks.local]\ntype = \"outbox\"\ndir = \"" + dir.path() + "/file/outbox\"\n"));
  EXPECT_EQ(o.rc, 69) << o.out;
  EXPECT_NE(o.out.find("sink outbox local: FAILED: " + dir.path() + "/file: not a directory"), std::string::npos)
      << o.out;
}

TEST(CheckConnect, JsonListsEveryComponent) {
  RefusingPort closed;
  TempDir dir, home;
  ScopedEnv env;
  ClearAwsCredentials(env, home.path());
  const Outcome o = CheckConnect(
      Config(dir, MqttSource("plant", "tcp://127.0.0.1:" + std::to_string(closed.port())) +
                      "[sinks.local]\ntype = \"outbox\"\n[sinks.cloud]\ntype = \"kinesis\"\nstream = \"s\"\n"),
      {"--json", "--timeout", "3s"});
  EXPECT_EQ(o.rc, 69) << o.out;
  // Only the JSON document on stdout: no text report around it.
  EXPECT_EQ(o.out.find("OK (gateway"), std::string::npos) << o.out;
  const nlohmann::json j = ParseJson(o.out);
  ASSERT_TRUE(j.is_object()) << o.out;
  EXPECT_EQ(j["ok"], false);
  ASSERT_TRUE(j["components"].is_array());
  ASSERT_EQ(j["components"].size(), 3u) << j.dump(2);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& c : j["components"]) {
    for (const char* key : {"kind", "name", "type", "detail"}) EXPECT_TRUE(c[key].is_string()) << key << c.dump();
    for (const char* key : {"ok", "skipped"}) EXPECT_TRUE(c[key].is_boolean()) << key << c.dump();
    EXPECT_TRUE(c["ms"].is_number_integer()) << c.dump();
    by_name[c["name"]] = c;
  }
  EXPECT_EQ(by_name["plant"]["kind"], "source");
  EXPECT_EQ(by_name["plant"]["type"], "mqtt");
  EXPECT_EQ(by_name["plant"]["ok"], false);
  EXPECT_EQ(by_name["local"]["kind"], "sink");
  EXPECT_EQ(by_name["local"]["ok"], true);
  EXPECT_EQ(by_name["local"]["skipped"], false);
  EXPECT_EQ(by_name["cloud"]["ok"], false);
  EXPECT_NE(by_name["cloud"]["detail"].get<std::string>().find("no AWS credentials"), std::string::npos);
  // All ok: ok true, exit 0.
  TempDir ok_dir;
  const Outcome all_ok = CheckConnect(Config(ok_dir, "[sinks.local]\ntype = \"outbox\"\n"), {"--json"});
  EXPECT_EQ(all_ok.rc, 0) << all_ok.out;
  EXPECT_EQ(ParseJson(all_ok.out)["ok"], true) << all_ok.out;
}

TEST(CheckConnect, ABadConfigExits78BeforeProbingAnything) {
  TempDir dir;
  WriteFile(dir / "bad.toml", "[gateway]\nid = \"gw\"\n[sources.plant]\ntype = \"mqtt\"\ntopics = [\"a\"]\nqos = 3\n");
  for (const auto& extra : std::vector<std::vector<std::string>>{{}, {"--json"}}) {
    const Outcome o = CheckConnect(dir / "bad.toml", extra);
    EXPECT_EQ(o.rc, 78) << o.out;
    EXPECT_NE(o.out.find("sources.plant.qos: must be 0, 1 or 2 (got 3)"), std::string::npos) << o.out;
    EXPECT_EQ(o.out.find("source mqtt plant"), std::string::npos) << o.out;
  }
  // A --timeout that is not a duration is a usage error of the same kind.
  TempDir ok_dir;
  const Outcome o = CheckConnect(Config(ok_dir, ""), {"--timeout", "5"});
  EXPECT_EQ(o.rc, 78) << o.out;
  EXPECT_NE(o.out.find("--timeout 5: expected a duration"), std::string::npos) << o.out;
  // Without --connect, check stays a schema check: --json and --timeout need --connect.
  std::string out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--json", "-c", ok_dir / "edgeferry.toml"}, &out), 64) << out;
  EXPECT_NE(out.find("--json and --timeout go with --connect"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({EdgeferryBinary(), "check", "--timeout", "1s", "-c", ok_dir / "edgeferry.toml"}, &out), 64)
      << out;
}

}  // namespace
}  // namespace edgeferry::testing
