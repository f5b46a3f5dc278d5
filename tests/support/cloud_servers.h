// Real servers for the sink tests, on free loopback ports, started and stopped by the
// test: kinesalite (Kinesis), s3rver (S3), a mosquitto with TLS and client
// certificates, and a scripted HTTP server for fault injection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace edgeferry::testing {

// Fails under CI, skips elsewhere, when node or the npm test servers are missing.
#define EDGEFERRY_REQUIRE_NODE_SERVERS()                                                          \
  do {                                                                                            \
    EDGEFERRY_REQUIRE_TOOL("node");                                                               \
    if (!::edgeferry::testing::NodeServersInstalled()) {                                          \
      if (::edgeferry::testing::UnderCi()) FAIL() << "tests/servers/node_modules missing (npm ci)"; \
      GTEST_SKIP() << "SKIPPED (developer machine): run scripts/install-deps.sh (npm ci in tests/servers)"; \
    }                                                                                             \
  } while (0)

bool NodeServersInstalled();

// A child process serving TCP on 127.0.0.1:port.
class Server {
 public:
  // `ready_text`: when set, Start() also waits for this text in the server's log.
  Server(std::vector<std::string> argv, int port, std::string log_path, std::string ready_text = "");
  ~Server();
  bool Start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void Stop();       // SIGKILL
  void Terminate();  // SIGTERM, waits for exit (a clean shutdown)
  int port() const { return port_; }
  std::string Log() const;

 protected:
  std::vector<std::string> argv_;
  int port_;
  std::string log_path_;
  std::string ready_text_;
  std::unique_ptr<ChildProcess> proc_;
};

class Kinesalite : public Server {
 public:
  Kinesalite(const TempDir& dir, std::vector<std::string> streams);
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Every record's Data (decoded) in the stream's one shard, oldest first.
  std::vector<std::string> ReadAll(const std::string& stream);
};

class S3rver : public Server {
 public:
  S3rver(const TempDir& dir, const std::string& bucket);
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> ListKeys(const std::string& bucket);
  std::string Get(const std::string& bucket, const std::string& key);
};

class ScriptedHttpServer : public Server {
 public:
  explicit ScriptedHttpServer(const TempDir& dir);
  std::string url(const std::string& path = "/ingest") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // The next answers, in order: e.g. {{"status",503},{"headers",{{"Retry-After","1"}}}} or {{"drop",true}}.
  void Script(const nlohmann::json& answers, const nlohmann::json& fallback = {{"status", 200}, {"body", "{}"}});
  std::vector<nlohmann::json> Requests() const;  // with "body" (decoded bytes) added
  std::string requests_path() const { return dir_ + "/requests.jsonl"; }

 private:
  std::string dir_;
};

struct TlsFiles {
  std::string ca, server_cert, server_key, client_cert, client_key;
};
// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made
// with the openssl command.
TlsFiles MakeTlsFiles(const std::string& dir);

// mosquitto with a TLS listener that requires a client certificate from the CA.
class TlsMosquitto : public Server {
 public:
  TlsMosquitto(const TempDir& dir, const TlsFiles& tls);
  std::string uri() const { return "ssl://127.0.0.1:" + std::to_string(port_); }
};

// Decompression for checking what sinks sent.
std::string Gunzip(const std::string& data);
std::string Unzstd(const std::string& data);
std::vector<std::string> Lines(const std::string& text);

}  // namespace edgeferry::testing
