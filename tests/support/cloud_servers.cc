#include "cloud_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "edgeferry/drivers/http/http_client.h"

namespace edgeferry::testing {

namespace {
std::string ServersDir() { return SourceDir() + "/tests/servers"; }

edgeferry::drivers::http::HttpResponse Call(const std::string& method, const std::string& url,
                                            const std::string& body, std::vector<std::string> headers,
                                            const std::string& sigv4 = "", const std::string& creds = "") {
  edgeferry::drivers::http::HttpClient client({});
  edgeferry::drivers::http::HttpRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  req.headers = std::move(headers);
  req.aws_sigv4 = sigv4;
  req.aws_key_secret = creds;
  req.max_body_bytes = size_t{1} << 30;  // test servers are trusted; objects can be large
  return client.Send(req);
}

std::string Between(const std::string& s, size_t* at, const std::string& open, const std::string& close) {
  const auto a = s.find(open, *at);
  if (a == std::string::npos) return "";
  const auto b = s.find(close, a + open.size());
  *at = b + close.size();
  return s.substr(a + open.size(), b - a - open.size());
}

std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    const auto pos = kAlphabet.find(c);
    if (pos == std::string::npos) break;
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}
}  // namespace

bool NodeServersInstalled() {
  return std::filesystem::exists(ServersDir() + "/node_modules/kinesalite") &&
         std::filesystem::exists(ServersDir() + "/node_modules/s3rver");
}

Server::Server(std::vector<std::string> argv, int port, std::string log_path, std::string ready_text)
    : argv_(std::move(argv)), port_(port), log_path_(std::move(log_path)), ready_text_(std::move(ready_text)) {}
Server::~Server() { Stop(); }

bool Server::Start(std::chrono::milliseconds timeout) {
  proc_ = std::make_unique<ChildProcess>(argv_, log_path_);
  const bool ok = WaitUntil(
                      [&] {
                        const bool ready = LoopbackPortOpen(port_) &&
                                           (ready_text_.empty() || Log().find(ready_text_) != std::string::npos);
                        return ready || !proc_->Running();
                      },
                      timeout) &&
                  proc_->Running();
  if (!ok) ADD_FAILURE() << argv_[0] << " did not start:\n" << Log();
  return ok;
}

void Server::Stop() {
  if (proc_) proc_->Stop(SIGKILL, std::chrono::seconds(5));
  proc_.reset();
}

void Server::Terminate() {
  if (proc_) proc_->Stop(SIGTERM, std::chrono::seconds(10));
  proc_.reset();
}

std::string Server::Log() const { return ReadFile(log_path_); }

Kinesalite::Kinesalite(const TempDir& dir, std::vector<std::string> streams)
    : Server({FindTool("node"), ServersDir() + "/kinesalite-server.js"}, FreeLoopbackPort(), dir / "kinesalite.log",
             "kinesalite listening") {
  argv_.push_back(std::to_string(port_));
  for (auto& s : streams) argv_.push_back(s);
}

std::vector<std::string> Kinesalite::ReadAll(const std::string& stream) {
  auto kinesis = [&](const std::string& target, const nlohmann::json& body) {
    const auto r = Call("POST", endpoint() + "/", body.dump(),
                        {"Content-Type: application/x-amz-json-1.1", "X-Amz-Target: Kinesis_20131202." + target},
                        "aws:amz:us-east-1:kinesis", "AKID:SECRET");
    return nlohmann::json::parse(r.body, nullptr, false);
  };
  const auto shards = kinesis("DescribeStream", {{"StreamName", stream}});
  const std::string shard = shards["StreamDescription"]["Shards"][0]["ShardId"];
  std::string it = kinesis("GetShardIterator", {{"StreamName", stream}, {"ShardId", shard},
                                                 {"ShardIteratorType", "TRIM_HORIZON"}})["ShardIterator"];
  std::vector<std::string> out;
  for (int empty = 0; empty < 2 && !it.empty();) {
    const auto page = kinesis("GetRecords", {{"ShardIterator", it}, {"Limit", 10000}});
    if (!page.contains("Records")) break;
    for (const auto& r : page["Records"]) out.push_back(Base64Decode(r["Data"].get<std::string>()));
    empty = page["Records"].empty() ? empty + 1 : 0;
    it = page.value("NextShardIterator", "");
  }
  return out;
}

S3rver::S3rver(const TempDir& dir, const std::string& bucket)
    : Server({FindTool("node"), ServersDir() + "/node_modules/s3rver/bin/s3rver.js"}, FreeLoopbackPort(),
             dir / "s3rver.log") {
  std::filesystem::create_directories(dir / "s3data");
  argv_.insert(argv_.end(), {"-d", dir / "s3data", "-a", "127.0.0.1", "-p", std::to_string(port_),
                             "--configure-bucket", bucket, "--silent"});
}

std::vector<std::string> S3rver::ListKeys(const std::string& bucket) {
  std::vector<std::string> keys;
  std::string token;
  while (true) {
    std::string url = endpoint() + "/" + bucket + "?list-type=2";
    if (!token.empty()) url = endpoint() + "/" + bucket + "?continuation-token=" +
                              edgeferry::drivers::http::UrlEncode(token) + "&list-type=2";
    const auto r = Call("GET", url, "", {});  // s3rver serves anonymous reads
    size_t at = 0;
    for (std::string k; !(k = Between(r.body, &at, "<Key>", "</Key>")).empty();) keys.push_back(k);
    at = 0;
    token = Between(r.body, &at, "<NextContinuationToken>", "</NextContinuationToken>");
    if (token.empty()) break;
  }
  return keys;
}

std::string S3rver::Get(const std::string& bucket, const std::string& key) {
  return Call("GET", endpoint() + "/" + bucket + "/" + key, "", {}).body;
}

ScriptedHttpServer::ScriptedHttpServer(const TempDir& dir)
    : Server({FindTool("python3"), ServersDir() + "/http_server.py"}, FreeLoopbackPort(), dir / "http_server.log"),
      dir_(dir.path()) {
  argv_.insert(argv_.end(), {std::to_string(port_), dir_});
}

void ScriptedHttpServer::Script(const nlohmann::json& answers, const nlohmann::json& fallback) {
  const auto r = Call("POST", url("/_control"), nlohmann::json{{"script", answers}, {"default", fallback}}.dump(), {});
  EXPECT_EQ(r.status, 200) << r.error;
}

std::vector<nlohmann::json> ScriptedHttpServer::Requests() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(requests_path());
  std::string line;
  while (std::getline(in, line)) {
    // The server may be writing the last line right now: a partial line is not a request yet.
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) break;
    j["body"] = Base64Decode(j["body_b64"].get<std::string>());
    out.push_back(std::move(j));
  }
  return out;
}

TlsFiles MakeTlsFiles(const std::string& dir) {
  const std::string sh = "cd '" + dir + "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=edgeferry-test-ca -keyout ca.key -out ca.pem && "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr && "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem && "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=gateway-01 -keyout client.key -out client.csr && "
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem";
  const int rc = std::system((sh + " > openssl.log 2>&1").c_str());
  EXPECT_EQ(rc, 0) << ReadFile(dir + "/openssl.log");
  return {dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/client.pem", dir + "/client.key"};
}

TlsMosquitto::TlsMosquitto(const TempDir& dir, const TlsFiles& tls)
    : Server({FindTool("mosquitto"), "-c", dir / "mosquitto-tls.conf"}, FreeLoopbackPort(), dir / "mosquitto-tls.log") {
  WriteFile(dir / "mosquitto-tls.conf",
            "listener " + std::to_string(port_) + " 127.0.0.1\nallow_anonymous true\npersistence false\n" +
                (getuid() == 0 ? "user root\n" : "") + "cafile " + tls.ca + "\ncertfile " + tls.server_cert +
                "\nkeyfile " + tls.server_key + "\nrequire_certificate true\nmax_queued_messages 1000000\n");
}

std::string Gunzip(const std::string& data) {
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  std::string out;
  char buf[65536];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&z);
  EXPECT_EQ(rc, Z_STREAM_END) << "bad gzip";
  return out;
}

std::string Unzstd(const std::string& data) {
  const auto size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    ADD_FAILURE() << "not a zstd frame with a content size";
    return "";
  }
  std::string out(size, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
  EXPECT_FALSE(ZSTD_isError(n));
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

}  // namespace edgeferry::testing
