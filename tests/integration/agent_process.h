// Runs the edgeferry executable as a child process with a generated config.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace edgeferry::testing {

// Paths of the built executables.
std::string EdgeferryBinary();
std::string ReplayBinary();
// True when the agent runs under qemu-user (cross builds), which fakes most of
// /proc/self/stat for the emulated program.
bool AgentIsEmulated();

class AgentProcess {
 public:
  // `config` is TOML; "@DATA@" is replaced by this agent's data directory.
  AgentProcess(const TempDir& dir, std::string config, std::vector<std::string> env = {});
  ~AgentProcess();
  // Starts `edgeferry run` and waits until it logs "running" and `connected`
  // sources are connected. False (with the log in the failure) if it did not.
  bool Start(int connected = 1);
  void Kill();                  // SIGKILL, reaped
  int Terminate();              // SIGTERM; returns the exit code
  std::string Log() const;
  // The last `lines` lines of the log.
  std::string LogTail(size_t lines) const;
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  bool Running() { return proc_ && proc_->Running(); }  // false once it has exited (reaped)
  // Resident set size of the running agent, KiB (VmRSS); 0 if not running.
  long RssKib() const;
  const std::string& data_dir() const { return data_dir_; }
  const std::string& config_path() const { return config_path_; }
  // `edgeferry buffer stats --json` on this agent's config.
  nlohmann::json BufferStats() const;
  std::string outbox() const { return data_dir_ + "/outbox"; }

 private:
  std::string data_dir_, config_path_, log_path_;
  std::unique_ptr<ChildProcess> proc_;
  std::vector<std::string> env_;
  int starts_ = 0;
};

// Runs a command to completion; returns its exit code and output (stdout+stderr).
int RunCommand(const std::vector<std::string>& argv, std::string* output);

// The envelope lines of an outbox directory, parsed.
std::vector<nlohmann::json> OutboxRecords(const std::string& dir);

}  // namespace edgeferry::testing
