#include "test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace edgeferry::testing {

namespace fs = std::filesystem;

namespace {
// spdlog's default logger exists before any test starts a thread. It is created on first
// use inside a function-local static of the (uninstrumented) spdlog library, so two
// threads' first log lines would look like a race to ThreadSanitizer.
[[maybe_unused]] const bool kDefaultLoggerCreated = [] { return spdlog::default_logger_raw() != nullptr; }();
}  // namespace

std::string SourceDir() { return EDGEFERRY_SOURCE_DIR; }
std::string BinaryDir() { return EDGEFERRY_BINARY_DIR; }

bool UnderCi() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string FindTool(const std::string& tool) {
  if (tool.find('/') != std::string::npos) return access(tool.c_str(), X_OK) == 0 ? tool : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    for (const std::string& d : {dir, std::string("/usr/sbin"), std::string("/sbin")}) {
      const std::string candidate = d + "/" + tool;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/edgeferry-test-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  if (!p) std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

RefusingPort::RefusingPort() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("RefusingPort: cannot bind a loopback socket");
  }
  port_ = ntohs(addr.sin_port);
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) close(fd_);
}

bool LoopbackPortOpen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path,
                           std::vector<std::string> extra_env)
    : log_path_(std::move(log_path)) {
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    for (auto& e : extra_env) putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (Running()) Stop(SIGKILL, std::chrono::milliseconds(5000));
}

bool ChildProcess::Running() {
  if (pid_ <= 0 || status_ != -1) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (!WaitUntil([&] { return !Running(); }, timeout)) return -1;
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

int ChildProcess::Stop(int sig, std::chrono::milliseconds timeout) {
  if (Running()) kill(pid_, sig);
  return Wait(timeout);
}

std::string ChildProcess::Log() const { return ReadFile(log_path_); }

MosquittoBroker::MosquittoBroker(std::string extra_conf) : port_(FreeLoopbackPort()), extra_conf_(std::move(extra_conf)) {}

MosquittoBroker::~MosquittoBroker() { Kill(); }

bool MosquittoBroker::Start() {
  const std::string conf = dir_ / "mosquitto.conf";
  // Running as root, mosquitto would switch to the mosquitto user; stay as we are.
  WriteFile(conf, "listener " + std::to_string(port_) + " 127.0.0.1\nallow_anonymous true\n" +
                      "persistence false\nuser " + (getuid() == 0 ? "root" : "") + "\n" +
                      "max_queued_messages 1000000\nmax_inflight_messages 100\n" + extra_conf_);
  std::string mosquitto = FindTool("mosquitto");
  proc_ = std::make_unique<ChildProcess>(std::vector<std::string>{mosquitto, "-c", conf},
                                         dir_ / "mosquitto.log");
  return WaitUntil([&] { return LoopbackPortOpen(port_); }, std::chrono::milliseconds(5000));
}

void MosquittoBroker::Kill() {
  if (proc_) proc_->Stop(SIGKILL, std::chrono::milliseconds(5000));
  proc_.reset();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> ReadGzipLines(const std::string& path) {
  std::vector<std::string> lines;
  FILE* p = popen(("zcat '" + path + "'").c_str(), "r");
  if (!p) return lines;
  std::string cur;
  int c;
  while ((c = fgetc(p)) != EOF) {
    if (c == '\n') {
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(c));
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  pclose(p);
  return lines;
}

std::vector<std::string> ReadOutboxLines(const std::string& dir) {
  std::vector<std::string> files;
  // Not there yet: the outbox sink creates it with its first file.
  std::error_code missing;
  if (!fs::is_directory(dir, missing)) return {};
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 11 && name.ends_with(".ndjson.zst") && name[0] != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> lines;
  for (const auto& f : files) {
    const std::string blob = ReadFile(f);
    const auto size = ZSTD_getFrameContentSize(blob.data(), blob.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
      ADD_FAILURE() << "not a zstd frame with size: " << f;
      continue;
    }
    std::string text(size, '\0');
    const size_t n = ZSTD_decompress(text.data(), text.size(), blob.data(), blob.size());
    if (ZSTD_isError(n)) {
      ADD_FAILURE() << "bad zstd file " << f << ": " << ZSTD_getErrorName(n);
      continue;
    }
    std::stringstream ss(text);
    std::string line;
    while (std::getline(ss, line)) lines.push_back(line);
  }
  return lines;
}

}  // namespace edgeferry::testing

namespace edgeferry::testing {

std::string PythonEnvelopeCheck(const std::string& lines, const std::optional<std::string>& payload) {
  TempDir dir;
  const std::string lines_file = dir / "lines", payload_file = dir / "payload";
  WriteFile(lines_file, lines);
  std::string cmd = "python3 " + SourceDir() + "/tests/support/check_envelope.py " + lines_file;
  if (payload) {
    WriteFile(payload_file, *payload);
    cmd += " " + payload_file;
  }
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

}  // namespace edgeferry::testing
