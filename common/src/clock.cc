#include "edgeferry/clock.h"

#include "edgeferry/timebase.h"

#include <sys/timex.h>

#include <ctime>
#include <fstream>

namespace edgeferry {

namespace {
std::atomic<bool> trusted{false};  // TrustSystemClock

int64_t Read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string ReadBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id.size() == 36 ? id : std::string();
}

class RealClock final : public Clock {
 public:
  RealClock() : boot_id_(ReadBootId()) {}
  int64_t NowNs() const override { return Read(CLOCK_REALTIME); }
  int64_t MonoNs() const override { return Read(CLOCK_MONOTONIC); }
  int64_t BootNs() const override { return Read(CLOCK_BOOTTIME); }
  bool Synchronized() const override {
    if (trusted.load(std::memory_order_relaxed) || synced_once_.load(std::memory_order_relaxed)) return true;
    // adjtimex is a syscall; sources stamp every record, so the answer is cached for 1 s.
    const int64_t now = MonoNs();
    if (now - checked_mono_ns_.load(std::memory_order_relaxed) < 1'000'000'000 && checked_mono_ns_ != 0) {
      return synced_.load(std::memory_order_relaxed);
    }
    timex tx{};  // modes 0: read only
    const int state = adjtimex(&tx);
    // TIME_ERROR is also returned while unsynchronized; STA_UNSYNC is the flag NTP clears.
    const bool synced = state != -1 && (tx.status & STA_UNSYNC) == 0;
    synced_.store(synced, std::memory_order_relaxed);
    if (synced) synced_once_.store(true, std::memory_order_relaxed);
    checked_mono_ns_.store(now, std::memory_order_relaxed);
    return synced;
  }
  std::string BootId() const override { return boot_id_; }

 private:
  const std::string boot_id_;
  mutable std::atomic<int64_t> checked_mono_ns_{0};
  mutable std::atomic<bool> synced_{false};
  // The kernel sets STA_UNSYNC again when NTP stops answering for hours (an offline
  // site): the clock set once this boot is still far better than unplaced.
  mutable std::atomic<bool> synced_once_{false};
};
}  // namespace

void TrustSystemClock(bool t) { trusted.store(t); }

Clock& SystemClock() {
  static RealClock* clock = new RealClock();  // never destroyed: usable during static teardown
  return *clock;
}

}  // namespace edgeferry
