// Clock: the one seam through which edgeferry reads time, so tests can control it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "edgeferry/thread_annotations.h"

namespace edgeferry {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in ns since the Unix epoch (CLOCK_REALTIME). May jump (NTP).
  virtual int64_t NowNs() const = 0;
  // Monotonic time in ns (CLOCK_MONOTONIC), for intervals and timeouts.
  virtual int64_t MonoNs() const = 0;
  // Time since boot in ns, counting suspend (CLOCK_BOOTTIME): with BootId() it places a
  // moment on a timeline that no wall-clock step moves. Default: MonoNs().
  virtual int64_t BootNs() const { return MonoNs(); }
  // Whether the wall clock is synchronized (kernel: adjtimex(2) status without
  // STA_UNSYNC, which NTP/chrony/systemd-timesyncd clear once they set the clock). A
  // Raspberry Pi without an RTC boots unsynchronized, at 1970 or fake-hwclock's last save.
  virtual bool Synchronized() const { return true; }
  // The kernel's id of this boot (/proc/sys/kernel/random/boot_id, 36 characters), or
  // "" when unknown. Stable for the life of the process.
  virtual std::string BootId() const { return {}; }
};

// The real clock. Thread-safe; a process-wide instance, never destroyed. Synchronized()
// asks the kernel at most once per second, and once it has said yes stays yes for the
// life of the process (the kernel says no again after hours without an NTP answer, but
// the clock it set is still the best there is). adjtimex failing (a seccomp filter that
// denies it) reads as unsynchronized.
Clock& SystemClock();

// A clock tests set by hand. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ns) : now_ns_(now_ns), mono_ns_(0) {}
  int64_t NowNs() const override { return now_ns_.load(); }
  int64_t MonoNs() const override { return mono_ns_.load(); }
  bool Synchronized() const override { return synced_.load(); }
  std::string BootId() const override {
    MutexLock lock(mu_);
    return boot_id_;
  }
  // Moves both clocks forward by delta_ns.
  void AdvanceNs(int64_t delta_ns) {
    now_ns_ += delta_ns;
    mono_ns_ += delta_ns;
  }
  // Steps the wall clock only (what NTP does at its first sync).
  void SetWallNs(int64_t now_ns) { now_ns_ = now_ns; }
  void SetSynchronized(bool synced) { synced_ = synced; }
  // A reboot: a new boot id, boot time from 0, the wall clock where the hardware left it.
  void Reboot(std::string boot_id, int64_t wall_ns, bool synced) {
    MutexLock lock(mu_);
    boot_id_ = std::move(boot_id);
    now_ns_ = wall_ns;
    mono_ns_ = 0;
    synced_ = synced;
  }
  void SetBootId(std::string boot_id) {
    MutexLock lock(mu_);
    boot_id_ = std::move(boot_id);
  }

 private:
  std::atomic<int64_t> now_ns_;
  std::atomic<int64_t> mono_ns_;
  std::atomic<bool> synced_{true};
  mutable Mutex mu_;
  std::string boot_id_ GUARDED_BY(mu_) = "00000000-0000-0000-0000-000000000001";
};

}  // namespace edgeferry
