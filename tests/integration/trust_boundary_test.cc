// The running agent against what a local user or a careless umask can do: a slow
// client on the metrics endpoint (issue 12 item 12) and file modes (item 14).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "agent_process.h"

namespace edgeferry::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

std::string AgentConfig(const std::string& broker_uri, int metrics_port, const std::string& extra = "") {
  return R"(
[gateway]
id = "gw-trust"
data_dir = "@DATA@"
[metrics]
port = )" + std::to_string(metrics_port) + R"(
[buffer]
commit_interval = "50ms"
[sources.plant]
type = "mqtt"
uri = ")" + broker_uri + R"("
topics = ["plant/#"]
[sinks.local]
type = "outbox"
linger = "50ms"
)" + extra;
}

// Before: one client sending a header line every few seconds held the only request
// slot; `edgeferry status` timed out after 3 s and reported NOT RUNNING (exit 3).
TEST(MetricsEndpoint, StatusAndHealthzAnswerPromptlyWhileSlowClientsHoldConnections) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const int port = FreeLoopbackPort();
  AgentProcess agent(dir, AgentConfig(broker.uri(), port));
  ASSERT_TRUE(agent.Start());

  std::vector<int> slow;
  for (int i = 0; i < 6; ++i) {
    slow.push_back(ConnectLoopback(port));
    const std::string start = "GET /healthz HTTP/1.1\r\n";
    ASSERT_EQ(::send(slow.back(), start.data(), start.size(), MSG_NOSIGNAL), static_cast<ssize_t>(start.size()));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // one header byte per connection per second
    while (!stop) {
      for (int fd : slow) (void)::send(fd, "X", 1, MSG_NOSIGNAL);
      for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 3; ++i) {
    std::string out;
    const auto start = Clock::now();
    const int rc = RunCommand({EdgeferryBinary(), "status", "--config", agent.config_path()}, &out);
    const auto took = Clock::now() - start;
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("agent     running"), std::string::npos) << out;
    // The status command itself (config load, process start) is part of this.
    EXPECT_LT(took, 1500ms) << "status waited behind slow clients";
    const auto h0 = Clock::now();
    const int healthz = ConnectLoopback(port);
    const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)::send(healthz, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[64] = {};
    timeval tv{2, 0};
    setsockopt(healthz, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const ssize_t n = ::recv(healthz, buf, sizeof(buf) - 1, 0);
    ::close(healthz);
    EXPECT_GT(n, 0);
    EXPECT_TRUE(std::string(buf).starts_with("HTTP/1.1 200")) << buf;
    EXPECT_LT(Clock::now() - h0, 1s);
  }
  stop = true;
  trickle.join();
  for (int fd : slow) ::close(fd);
  EXPECT_EQ(agent.Terminate(), 0) << agent.Log();
}

// Restores the test process's umask on scope exit.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

// Every file under `root`, with its mode.
std::vector<std::pair<std::string, mode_t>> WalkModes(const std::string& root) {
  std::vector<std::pair<std::string, mode_t>> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0) out.emplace_back(e.path().string(), st.st_mode);
  }
  return out;
}

// Before: with umask 022 the outbox files (and buffer.db, -wal, -shm) were 0644.
TEST(FileModes, UnderUmask022NoFileTheAgentWritesIsWorldReadableAndDataIsOwnerOnly) {
  EDGEFERRY_REQUIRE_TOOL("mosquitto");
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start());
  TempDir dir;
  const std::string elsewhere = dir / "outbox-elsewhere";
  AgentProcess agent(dir, AgentConfig(broker.uri(), FreeLoopbackPort(),
                                      "[sinks.far]\ntype = \"outbox\"\nlinger = \"50ms\"\ndir = \"" + elsewhere +
                                          "\"\ncompression_level = 0\n"));
  {
    ScopedUmask permissive(022);  // the agent inherits it
    ASSERT_TRUE(agent.Start());
  }
  {
    mqtt::async_client pub(broker.uri(), "modes-pub");
    pub.connect()->wait();
    for (int i = 0; i < 20; ++i) pub.publish("plant/a", "{\"i\":" + std::to_string(i) + "}", 1, false)->wait();
    pub.disconnect()->wait();
  }
  ASSERT_TRUE(WaitUntil([&] { return ReadOutboxLines(agent.outbox()).size() == 20; }, 10s)) << agent.Log();
  ASSERT_TRUE(WaitUntil(
      [&] {
        size_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator(elsewhere)) n += e.path().extension() == ".ndjson";
        return n > 0;
      },
      10s));
  // Walk while running (the WAL and SHM exist now) and again after a clean stop.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      ASSERT_EQ(agent.Terminate(), 0) << agent.Log();
    }
    size_t files = 0;
    for (const auto& root : {agent.data_dir(), elsewhere}) {
      for (const auto& [path, mode] : WalkModes(root)) {
        EXPECT_EQ(mode & 0007, 0u) << path << " has world bits: " << std::oct << (mode & 0777);
        if (S_ISREG(mode)) {
          ++files;
          // Everything the agent writes there is data (records, state); config lives in /etc.
          const bool config = path.ends_with(".toml");
          EXPECT_EQ(mode & (config ? 0037 : 0077), 0u) << path << " is " << std::oct << (mode & 0777);
        }
      }
    }
    EXPECT_GE(files, 3u) << "buffer.db and both outboxes' files were walked";
  }
}

}  // namespace
}  // namespace edgeferry::testing
