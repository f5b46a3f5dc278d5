// Bounds how often one kind of message is logged, so a source that dead-letters every
// input (a CSV header mismatch, a wrong baud rate) writes a few lines and a count instead
// of thousands of lines a second into the journal.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/clock.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry {

// Per key (e.g. "source plant: dead-lettered records"), the first `burst` occurrences
// of each window of `window_ns` are let through; the rest are counted, and the count is
// handed back once after the window has ended. Keys are expected to be few (one per
// source or sink); an entry is removed when its window has ended and been reported.
// Thread-safe.
class RepeatLimiter {
 public:
  struct Summary {
    std::string key;
    uint64_t held_back = 0;  // occurrences not let through in the window
    int64_t window_ns = 0;   // the window's length, ns
  };

  // burst: occurrences let through per window (>= 1); window_ns: > 0. `clock` (MonoNs)
  // must outlive the limiter.
  explicit RepeatLimiter(uint32_t burst = 5, int64_t window_ns = 10'000'000'000, const Clock& clock = SystemClock());

  // True when this occurrence of `key` should be logged.
  bool Allow(std::string_view key) EXCLUDES(mu_);

  // The keys whose window has ended with occurrences held back, each once; their entries
  // are removed, so the next occurrence starts a new window.
  std::vector<Summary> TakeEnded() EXCLUDES(mu_);

  // Every key with occurrences held back, ended or not (at shutdown).
  std::vector<Summary> TakeAll() EXCLUDES(mu_);

 private:
  struct Window {
    int64_t start_ns = 0;
    uint64_t count = 0;  // occurrences in this window, let through or not
  };
  std::vector<Summary> Take(bool only_ended) EXCLUDES(mu_);

  const uint32_t burst_;
  const int64_t window_ns_;
  const Clock& clock_;
  Mutex mu_;
  std::map<std::string, Window, std::less<>> windows_ GUARDED_BY(mu_);
};

// The process's limiter for log messages (burst 5 per 10 s). The agent's tick logs its
// summaries ("... and N more like this in the last 10 s").
RepeatLimiter& LogRepeats();

}  // namespace edgeferry
