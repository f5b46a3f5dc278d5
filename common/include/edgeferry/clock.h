// Clock: the one seam through which edgeferry reads time, so tests can control it.
#pragma once

#include <atomic>
#include <cstdint>

namespace edgeferry {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in ns since the Unix epoch (CLOCK_REALTIME). May jump (NTP).
  virtual int64_t NowNs() const = 0;
  // Monotonic time in ns (CLOCK_MONOTONIC), for intervals and timeouts.
  virtual int64_t MonoNs() const = 0;
};

// The real clock. Thread-safe; a process-wide instance, never destroyed.
Clock& SystemClock();

// A clock tests set by hand. Thread-safe (atomics).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ns) : now_ns_(now_ns), mono_ns_(0) {}
  int64_t NowNs() const override { return now_ns_.load(); }
  int64_t MonoNs() const override { return mono_ns_.load(); }
  // Moves both clocks forward by delta_ns.
  void AdvanceNs(int64_t delta_ns) {
    now_ns_ += delta_ns;
    mono_ns_ += delta_ns;
  }

 private:
  std::atomic<int64_t> now_ns_;
  std::atomic<int64_t> mono_ns_;
};

}  // namespace edgeferry
