#include "agent_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

namespace edgeferry::testing {

std::string EdgeferryBinary() {
  const char* dir = std::getenv("EDGEFERRY_BIN");
  return std::string(dir ? dir : BinaryDir() + "/agent") + "/edgeferry";
}

bool AgentIsEmulated() {
  const char* dir = std::getenv("EDGEFERRY_BIN");
  return dir && std::string_view(dir).ends_with("/emulated");
}

// Under qemu (cross builds) EDGEFERRY_BIN holds wrappers for both executables.
std::string ReplayBinary() {
  const char* dir = std::getenv("EDGEFERRY_BIN");
  if (dir && std::filesystem::exists(std::string(dir) + "/edgeferry-replay")) return std::string(dir) + "/edgeferry-replay";
  return BinaryDir() + "/tools/replay/edgeferry-replay";
}

AgentProcess::AgentProcess(const TempDir& dir, std::string config, std::vector<std::string> env)
    : data_dir_(dir / "data"), config_path_(dir / "edgeferry.toml"), log_path_(dir / "edgeferry.log"),
      env_(std::move(env)) {
  config = std::regex_replace(config, std::regex("@DATA@"), data_dir_);
  WriteFile(config_path_, config);
}

AgentProcess::~AgentProcess() {
  if (proc_) proc_->Stop(SIGKILL, std::chrono::seconds(5));
}

bool AgentProcess::Start(int connected) {
  const std::string log_before = ReadFile(log_path_);
  const size_t running_before = std::count(log_before.begin(), log_before.end(), '\n');
  (void)running_before;
  const auto count = [&](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  // Text or JSON log format.
  const auto runs = [&](const std::string& text) {
    return count(text, " info: running") + count(text, R"("level":"info","msg":"running")");
  };
  const size_t runs_before = runs(log_before);
  const size_t conns_before = count(log_before, ": connected to ") + count(log_before, ": reconnected to ");
  proc_ = std::make_unique<ChildProcess>(std::vector<std::string>{EdgeferryBinary(), "run", "--config", config_path_},
                                         log_path_, env_);
  ++starts_;
  const bool ok = WaitUntil(
      [&] {
        const std::string log = ReadFile(log_path_);
        return runs(log) > runs_before &&
               count(log, ": connected to ") + count(log, ": reconnected to ") >= conns_before + connected;
      },
      std::chrono::seconds(60));
  if (!ok) {
    // The end of the log says why; CI output keeps only the head of a long failure message.
    const int rc = proc_->Wait(std::chrono::milliseconds(0));
    ADD_FAILURE() << "edgeferry did not start within 60 s (" << (rc == -1 ? "still running" : "exited with " + std::to_string(rc))
                  << "); the last lines of its log:\n" << LogTail(40);
  }
  return ok;
}

std::string AgentProcess::LogTail(size_t lines) const {
  const std::string log = Log();
  size_t at = log.size();
  for (size_t n = 0; at > 0 && n <= lines; --at) {
    if (log[at - 1] == '\n') ++n;
  }
  return log.substr(at == 0 ? 0 : at + 1);
}

void AgentProcess::Kill() {
  // A process blocked in fsync dies only when the fsync returns: wait for it, so the next
  // start never overlaps the killed one.
  if (proc_ && proc_->Stop(SIGKILL, std::chrono::seconds(60)) == -1) ADD_FAILURE() << "SIGKILL did not end edgeferry in 60 s";
  proc_.reset();
}

int AgentProcess::Terminate() {
  if (!proc_) return -1;
  const int rc = proc_->Stop(SIGTERM, std::chrono::seconds(30));
  proc_.reset();
  return rc;
}

std::string AgentProcess::Log() const { return ReadFile(log_path_); }

long AgentProcess::RssKib() const {
  if (!proc_) return 0;
  const std::string status = ReadFile("/proc/" + std::to_string(proc_->pid()) + "/status");
  const auto at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::strtol(status.c_str() + at + 6, nullptr, 10);
}

nlohmann::json AgentProcess::BufferStats() const {
  std::string out;
  const int rc = RunCommand({EdgeferryBinary(), "buffer", "stats", "--json", "--config", config_path_}, &out);
  EXPECT_EQ(rc, 0) << out;
  const auto at = out.find('{');
  return at == std::string::npos ? nlohmann::json() : nlohmann::json::parse(out.substr(at));
}

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  TempDir dir;
  ChildProcess p(argv, dir / "out.log");
  const int rc = p.Wait(std::chrono::seconds(60));
  *output = ReadFile(dir / "out.log");
  return rc;
}

std::vector<nlohmann::json> OutboxRecords(const std::string& dir) {
  std::vector<nlohmann::json> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& line : ReadOutboxLines(dir)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace edgeferry::testing
