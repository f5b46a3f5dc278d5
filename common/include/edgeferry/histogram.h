// Histogram: counts of observed durations in fixed buckets, in the shape Prometheus
// exposes (cumulative `le` buckets, _sum, _count), for delivery latencies.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace edgeferry {

// Not thread-safe: the owner guards it (a forwarder's stats lock).
struct Histogram {
  // Upper bounds in seconds, from a LAN round trip to a day offline.
  static constexpr std::array<double, 16> kBoundsSeconds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                            2.5,   5,    10,    30,   60,  300,  3600, 86400};
  // counts[i]: observations in (kBoundsSeconds[i-1], kBoundsSeconds[i]]; the last
  // entry counts those above every bound (+Inf).
  std::array<uint64_t, kBoundsSeconds.size() + 1> counts{};
  double sum_seconds = 0;
  uint64_t count = 0;

  // Records one duration in ns; a negative one (a clock stepped back) counts as 0.
  void ObserveNs(int64_t ns) {
    const double s = static_cast<double>(std::max<int64_t>(ns, 0)) / 1e9;
    const auto it = std::lower_bound(kBoundsSeconds.begin(), kBoundsSeconds.end(), s);
    ++counts[static_cast<size_t>(it - kBoundsSeconds.begin())];
    sum_seconds += s;
    ++count;
  }
};

}  // namespace edgeferry
