#include "edgeferry/clock.h"

#include <ctime>

namespace edgeferry {

namespace {
int64_t Read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class RealClock final : public Clock {
 public:
  int64_t NowNs() const override { return Read(CLOCK_REALTIME); }
  int64_t MonoNs() const override { return Read(CLOCK_MONOTONIC); }
};
}  // namespace

Clock& SystemClock() {
  static RealClock* clock = new RealClock();  // never destroyed: usable during static teardown
  return *clock;
}

}  // namespace edgeferry
