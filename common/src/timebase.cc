#include "edgeferry/timebase.h"

namespace edgeferry {

bool Rebaser::Rebase(Record* r) {
  if (r->ts_source != TsSource::kUnsynced || r->boot_id.empty() || r->boot_id != boot_id_) return false;
  SyncPoint p;
  {
    MutexLock lock(mu_);
    if (!sync_) {
      if (!clock_.Synchronized()) return false;
      sync_ = SyncPoint{clock_.NowNs(), clock_.BootNs()};
    }
    p = *sync_;
  }
  // A boot time ahead of the sync point is a record stamped after it while the kernel
  // still said unsynchronized (the 1 s cache): the same line holds. A boot time from a
  // damaged buffer that overflows is left unplaced.
  int64_t since = 0, ts = 0;
  if (__builtin_sub_overflow(p.boot_ns, r->boot_ns, &since) || __builtin_sub_overflow(p.wall_ns, since, &ts)) {
    return false;
  }
  r->ts_ns = ts;
  r->ts_source = TsSource::kRebased;
  r->boot_ns = 0;
  r->boot_id.clear();
  return true;
}

std::optional<Rebaser::SyncPoint> Rebaser::sync_point() const {
  MutexLock lock(mu_);
  return sync_;
}

Rebaser& SystemRebaser() {
  static Rebaser* rebaser = new Rebaser(SystemClock());
  return *rebaser;
}

}  // namespace edgeferry
