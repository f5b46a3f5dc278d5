// The metrics/status endpoint against hostile local clients, over real loopback
// sockets: slow clients, oversized requests and connection floods must not keep a
// scrape from being answered promptly.
#include "edgeferry/agent/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace edgeferry::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Fd Connect(int port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the peer closes or `timeout` passes.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True when the server closed the connection within `timeout` (EOF or reset).
bool ClosedByPeer(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

std::string Get(int port, const std::string& path) {
  Fd fd = Connect(port);
  SendAll(fd.get(), "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  return ReadUntilClosed(fd.get(), 5s);
}

MetricsServer::Handlers TestHandlers() {
  return {.metrics = [] { return std::string("edgeferry_up 1\n"); },
          .health = [] { return std::string(); },
          .status = [] { return std::string(R"({"healthy":true})"); },
          .tap = {}};
}

TEST(MetricsServer, AnswersEachEndpoint) {
  MetricsServer server(TestHandlers());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  EXPECT_TRUE(Get(server.port(), "/healthz").starts_with("HTTP/1.1 200 OK")) << Get(server.port(), "/healthz");
  EXPECT_NE(Get(server.port(), "/metrics").find("edgeferry_up 1"), std::string::npos);
  EXPECT_NE(Get(server.port(), "/status").find(R"({"healthy":true})"), std::string::npos);
  EXPECT_TRUE(Get(server.port(), "/nope").starts_with("HTTP/1.1 404"));
}

// /tap serves payloads: only to a client on this machine, even when the endpoint
// listens on every interface for Prometheus.
TEST(MetricsServer, TapAnswersClientsOnThisMachineAndGetsTheQuery) {
  auto handlers = TestHandlers();
  std::string seen;
  handlers.tap = [&](std::string_view query) {
    seen = std::string(query);
    return std::pair<int, std::string>{200, "{\"entries\":[]}"};
  };
  MetricsServer server(handlers);
  ASSERT_TRUE(server.Start("0.0.0.0", 0).ok());
  const std::string local = Get(server.port(), "/tap?after=3&channel=a%2F%23");
  EXPECT_TRUE(local.starts_with("HTTP/1.1 200 OK")) << local;
  EXPECT_EQ(seen, "after=3&channel=a%2F%23");
  // Who may tap: decided on the addresses (another host cannot be had in a test).
  EXPECT_TRUE(TapClientAllowed("127.0.0.1", "127.0.0.1"));
  EXPECT_TRUE(TapClientAllowed("127.0.0.5", "192.0.2.2"));
  EXPECT_TRUE(TapClientAllowed("::1", "::1"));
  EXPECT_TRUE(TapClientAllowed("192.0.2.2", "192.0.2.2")) << "the gateway tapping its own LAN address";
  EXPECT_TRUE(TapClientAllowed("::ffff:192.0.2.2", "192.0.2.2"));
  EXPECT_TRUE(TapClientAllowed("::ffff:127.0.0.1", "::ffff:192.0.2.2"));
  EXPECT_FALSE(TapClientAllowed("192.0.2.7", "192.0.2.2")) << "another host on the LAN";
  EXPECT_FALSE(TapClientAllowed("::ffff:192.0.2.7", "::ffff:192.0.2.2"));
  EXPECT_FALSE(TapClientAllowed("fd00::7", "fd00::2"));
  EXPECT_FALSE(TapClientAllowed("not an address", "127.0.0.1"));
}

// Prometheus `params:` in a scrape config adds a query string; it must not change the route.
TEST(MetricsServer, AQueryStringDoesNotChangeTheRoute) {
  MetricsServer server(TestHandlers());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  const std::string metrics = Get(server.port(), "/metrics?x=1");
  EXPECT_TRUE(metrics.starts_with("HTTP/1.1 200 OK")) << metrics;
  EXPECT_NE(metrics.find("edgeferry_up 1"), std::string::npos) << metrics;
  const std::string health = Get(server.port(), "/healthz?probe=k8s&x=");
  EXPECT_TRUE(health.starts_with("HTTP/1.1 200 OK")) << health;
  const std::string status = Get(server.port(), "/status?");
  EXPECT_NE(status.find(R"({"healthy":true})"), std::string::npos) << status;
  EXPECT_TRUE(Get(server.port(), "/nope?x=1").starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(Get(server.port(), "/metricsx").starts_with("HTTP/1.1 404"));
}

// HEAD answers GET's status and headers (Content-Length included) without the body.
TEST(MetricsServer, HeadAnswersTheHeadersWithoutTheBody) {
  MetricsServer server(TestHandlers());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  Fd fd = Connect(server.port());
  ASSERT_TRUE(SendAll(fd.get(), "HEAD /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  const std::string res = ReadUntilClosed(fd.get(), 5s);
  EXPECT_TRUE(res.starts_with("HTTP/1.1 200 OK")) << res;
  EXPECT_NE(res.find("Content-Length: 15\r\n"), std::string::npos) << res;  // "edgeferry_up 1\n"
  EXPECT_TRUE(res.ends_with("\r\n\r\n")) << res;
}

// A POST with a body is a wrong method (405 naming the allowed ones), not a request
// too large (431), and the server does not read the body to say so.
TEST(MetricsServer, OtherMethodsGet405WithAllowAndTheBodyIsNotRead) {
  MetricsServer server(TestHandlers());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  {
    Fd fd = Connect(server.port());
    ASSERT_TRUE(SendAll(fd.get(), "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\nhello=world"));
    const std::string res = ReadUntilClosed(fd.get(), 5s);
    EXPECT_TRUE(res.starts_with("HTTP/1.1 405")) << res;
    EXPECT_NE(res.find("Allow: GET, HEAD\r\n"), std::string::npos) << res;
  }
  for (const char* method : {"PUT", "DELETE", "OPTIONS"}) {
    Fd fd = Connect(server.port());
    ASSERT_TRUE(SendAll(fd.get(), std::string(method) + " /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const std::string res = ReadUntilClosed(fd.get(), 5s);
    EXPECT_TRUE(res.starts_with("HTTP/1.1 405")) << method << ": " << res;
    EXPECT_NE(res.find("Allow: GET, HEAD\r\n"), std::string::npos) << method << ": " << res;
  }
  // A huge announced body: the answer comes at once and the connection closes without
  // the server waiting for (or reading) the gigabyte.
  Fd fd = Connect(server.port());
  const auto start = Clock::now();
  ASSERT_TRUE(SendAll(fd.get(), "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1073741824\r\n\r\n" +
                                    std::string(4096, 'a')));
  const std::string res = ReadUntilClosed(fd.get(), 5s);
  EXPECT_TRUE(res.starts_with("HTTP/1.1 405")) << res.substr(0, 200);
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_TRUE(Get(server.port(), "/healthz").starts_with("HTTP/1.1 200 OK"));
}

// The old server read one request at a time: one client sending a header line every
// few seconds kept /healthz unanswered and `edgeferry status` said NOT RUNNING.
TEST(MetricsServer, SlowClientsDoNotDelayAScrape) {
  MetricsServer server(TestHandlers());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  std::vector<Fd> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(Connect(server.port()));
    ASSERT_TRUE(SendAll(slow.back().get(), "GET /healthz HTTP/1.1\r\n"));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // one header line per connection per second
    for (int n = 0; !stop; ++n) {
      for (auto& fd : slow) SendAll(fd.get(), "X-" + std::to_string(n) + ": a\r\n");
      for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    const std::string res = Get(server.port(), "/healthz");
    const auto took = Clock::now() - start;
    EXPECT_TRUE(res.starts_with("HTTP/1.1 200 OK")) << res;
    EXPECT_LT(took, 1s) << "scrape " << i << " waited behind slow clients";
    std::this_thread::sleep_for(400ms);
  }
  stop = true;
  trickle.join();
}

TEST(MetricsServer, ARequestNotCompleteWithinTheTimeoutIsClosed) {
  MetricsServer server(TestHandlers(), {.request_timeout = 300ms, .max_request_bytes = 8192, .max_connections = 64});
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  Fd fd = Connect(server.port());
  const auto start = Clock::now();
  ASSERT_TRUE(SendAll(fd.get(), "GET /healthz HTTP/1.1\r\n"));
  std::thread trickle([&] {  // still sending, just too slowly
    for (int i = 0; i < 10; ++i) {
      if (!SendAll(fd.get(), "X: y\r\n")) return;
      std::this_thread::sleep_for(100ms);
    }
  });
  EXPECT_TRUE(ClosedByPeer(fd.get(), 2000ms));
  const auto took = Clock::now() - start;
  trickle.join();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms);
}

TEST(MetricsServer, ATenMegabyteHeaderIsRefusedEarly) {
  MetricsServer server(TestHandlers());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  Fd fd = Connect(server.port());
  const std::string big = "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(10 << 20, 'a') + "\r\n\r\n";
  size_t sent = 0;
  std::thread writer([&] {
    std::string_view rest = big;
    while (!rest.empty()) {
      const ssize_t n = ::send(fd.get(), rest.data(), std::min<size_t>(rest.size(), 65536), MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
      rest.remove_prefix(static_cast<size_t>(n));
    }
  });
  const std::string res = ReadUntilClosed(fd.get(), 5s);
  ::shutdown(fd.get(), SHUT_RDWR);
  writer.join();
  EXPECT_TRUE(res.empty() || res.starts_with("HTTP/1.1 431")) << res.substr(0, 200);
  EXPECT_LT(sent, big.size()) << "the server read the whole 10 MB header";
  EXPECT_TRUE(Get(server.port(), "/healthz").starts_with("HTTP/1.1 200 OK"));
}

TEST(MetricsServer, AConnectionFloodIsCappedAndANewScrapeIsServed) {
  constexpr size_t kCap = 8;
  MetricsServer server(TestHandlers(), {.request_timeout = 30s, .max_request_bytes = 8192, .max_connections = kCap});
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  std::vector<Fd> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(Connect(server.port()));
  const auto start = Clock::now();
  EXPECT_TRUE(Get(server.port(), "/healthz").starts_with("HTTP/1.1 200 OK"));
  EXPECT_LT(Clock::now() - start, 1s);
  size_t still_open = 0;
  for (auto& fd : idle) still_open += ClosedByPeer(fd.get(), 50ms) ? 0 : 1;
  EXPECT_LE(still_open, kCap) << "the server holds more connections than its cap";
}

TEST(MetricsServer, StopClosesOpenConnectionsPromptly) {
  auto server = std::make_unique<MetricsServer>(TestHandlers());
  ASSERT_TRUE(server->Start("127.0.0.1", 0).ok());
  Fd fd = Connect(server->port());
  SendAll(fd.get(), "GET /healthz HTTP/1.1\r\n");
  std::this_thread::sleep_for(50ms);
  const auto start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, 500ms);
  EXPECT_TRUE(ClosedByPeer(fd.get(), 500ms));
}

}  // namespace
}  // namespace edgeferry::agent
