#include "edgeferry/repeat_limiter.h"

namespace edgeferry {

RepeatLimiter::RepeatLimiter(uint32_t burst, int64_t window_ns, const Clock& clock)
    : burst_(burst < 1 ? 1 : burst), window_ns_(window_ns < 1 ? 1 : window_ns), clock_(clock) {}

bool RepeatLimiter::Allow(std::string_view key) {
  const int64_t now = clock_.MonoNs();
  MutexLock l(mu_);
  auto it = windows_.find(key);
  if (it == windows_.end()) it = windows_.emplace(std::string(key), Window{now, 0}).first;
  Window& w = it->second;
  // An ended window with nothing held back has nothing to report: start a new one.
  if (now - w.start_ns >= window_ns_ && w.count <= burst_) w = Window{now, 0};
  return ++w.count <= burst_;
}

std::vector<RepeatLimiter::Summary> RepeatLimiter::Take(bool only_ended) {
  const int64_t now = clock_.MonoNs();
  std::vector<Summary> out;
  MutexLock l(mu_);
  for (auto it = windows_.begin(); it != windows_.end();) {
    const bool ended = now - it->second.start_ns >= window_ns_;
    if (!ended && only_ended) {
      ++it;
      continue;
    }
    if (it->second.count > burst_) out.push_back({it->first, it->second.count - burst_, window_ns_});
    it = windows_.erase(it);
  }
  return out;
}

std::vector<RepeatLimiter::Summary> RepeatLimiter::TakeEnded() { return Take(true); }
std::vector<RepeatLimiter::Summary> RepeatLimiter::TakeAll() { return Take(false); }

RepeatLimiter& LogRepeats() {
  static RepeatLimiter limiter;
  return limiter;
}

}  // namespace edgeferry
