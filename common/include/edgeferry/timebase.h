// Rebaser: gives records received before the wall clock was synchronized a real
// receive time once it is (issue 14, "trustworthy time"; docs/envelope.md "Time").
//
// A Raspberry Pi has no real-time clock: until NTP sets it, the wall clock reads 1970
// or fake-hwclock's last save, and every receive time is wrong by the same unknown
// offset. StampReceipt (record.h) marks such records kUnsynced with the boot id and the
// boot time (CLOCK_BOOTTIME, which no clock step moves). Once the clock is synchronized,
// within the same boot:
//   receive time = sync wall time - (boot time at sync - boot time at receipt)
// A record from another boot cannot be placed (boot time restarts at 0) and stays
// kUnsynced, with its boot id and boot time for a consumer that knows more.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "edgeferry/clock.h"
#include "edgeferry/record.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry {

class Rebaser {
 public:
  // `clock` is not owned and must outlive this.
  explicit Rebaser(const Clock& clock = SystemClock()) : clock_(clock), boot_id_(clock.BootId()) {}

  // Re-bases *r in place if it is kUnsynced, from this boot, and the clock is now
  // synchronized: sets ts_ns as above, ts_source kRebased, clears boot_id and boot_ns.
  // Returns whether it changed *r. The sync point is the first synchronized reading
  // this Rebaser takes and is kept for its life, so every record of a boot is placed
  // on one line even if the clock is stepped again later. Thread-safe.
  bool Rebase(Record* r);

  // The sync point (wall ns since epoch, boot ns), once taken.
  struct SyncPoint {
    int64_t wall_ns = 0;
    int64_t boot_ns = 0;
  };
  std::optional<SyncPoint> sync_point() const;

  // Whether *r's time is on this boot's time line: stamped by a synchronized clock (or
  // re-based), or unsynchronized in this boot. Thread-safe.
  bool OnThisBootsTimeLine(const Record& r) const {
    return r.ts_source != TsSource::kUnsynced || r.boot_id == boot_id_;
  }

 private:
  const Clock& clock_;
  const std::string boot_id_;
  mutable Mutex mu_;
  std::optional<SyncPoint> sync_ GUARDED_BY(mu_);
};

// The process's Rebaser over SystemClock(). Never destroyed.
Rebaser& SystemRebaser();

// [gateway] clock = "trusted": SystemClock().Synchronized() answers true whatever the
// kernel says (a VM or container whose host keeps time but whose kernel reports
// STA_UNSYNC). Thread-safe.
void TrustSystemClock(bool trusted);

}  // namespace edgeferry
