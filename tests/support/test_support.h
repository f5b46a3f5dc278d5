// Helpers shared by edgeferry's tests: temp dirs, free ports, child processes,
// and REQUIRE_TOOL, which fails under CI=true and skips (saying so) elsewhere.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace edgeferry::testing {

// The repository root and the build tree (set by CMake).
std::string SourceDir();
std::string BinaryDir();

// True when the CI environment variable is "true" (set by .ci/run and most CI systems).
bool UnderCi();

// Full path of `tool` on PATH (or an absolute path that exists); empty if missing.
std::string FindTool(const std::string& tool);

// Use at the top of a test that needs an external program. Under CI a missing tool
// fails the test; on a developer machine the test is skipped with the reason.
#define EDGEFERRY_REQUIRE_TOOL(tool)                                                   \
  do {                                                                                 \
    if (::edgeferry::testing::FindTool(tool).empty()) {                                \
      if (::edgeferry::testing::UnderCi()) FAIL() << "required tool missing: " << tool; \
      GTEST_SKIP() << "SKIPPED (developer machine): required tool missing: " << tool;  \
    }                                                                                  \
  } while (0)

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();
// A TCP port on 127.0.0.1 that refuses connections for as long as this object lives: the
// socket is bound but never listens, so no other test's server can take the port (a
// port that was merely free a moment ago can be, under parallel ctest).
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};
// True when something accepts TCP connections on 127.0.0.1:port.
bool LoopbackPortOpen(int port);

// Polls `condition` every 10 ms until it is true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A child process with stdout+stderr captured to a file.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path,
               std::vector<std::string> extra_env = {});
  ~ChildProcess();  // SIGKILLs if still running
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` and waits up to `timeout` for exit; returns the exit status
  // (as from waitpid) or -1 on timeout.
  int Stop(int sig, std::chrono::milliseconds timeout);
  // Waits for exit; returns the exit code, 128+signal, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// A private mosquitto broker on a free loopback port, for one test or suite.
class MosquittoBroker {
 public:
  // Does not start it. `extra_conf`: more mosquitto.conf lines (e.g. "max_packet_size 131072\n").
  explicit MosquittoBroker(std::string extra_conf = "");
  ~MosquittoBroker();
  // Starts mosquitto (on the same port after a Stop()); false if it did not come up.
  bool Start();
  // SIGKILLs it (a crash, not a clean stop).
  void Kill();
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir dir_;
  int port_;
  std::string extra_conf_;
  std::unique_ptr<ChildProcess> proc_;
};

// Reads a whole file; empty on error.
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content);
// Lines of the gzip-compressed file at `path` (via zcat).
std::vector<std::string> ReadGzipLines(const std::string& path);
// The lines of a text file, without line ends.
std::vector<std::string> ReadLines(const std::string& path);
// Runs tests/support/check_envelope.py (Python's json module, an independent parser) on
// the envelope lines in `lines`, comparing each line's payload with `payload` when given.
// Returns its stdout: one JSON summary per line (see the script). Needs python3.
std::string PythonEnvelopeCheck(const std::string& lines, const std::optional<std::string>& payload = std::nullopt);
// Decompresses every *.ndjson.zst file in `dir` (sorted by name) and returns the lines.
std::vector<std::string> ReadOutboxLines(const std::string& dir);

}  // namespace edgeferry::testing
