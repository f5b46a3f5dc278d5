#include "edgeferry/agent/offline_cover.h"

#include <algorithm>

namespace edgeferry::agent {

void OfflineCover::Sample(int64_t mono_ns, uint64_t appended_payload_bytes) {
  // Stats() calls on several threads read the store before taking the lock: a reading
  // older than the newest one is dropped.
  if (!samples_.empty() && (appended_payload_bytes < samples_.back().bytes || mono_ns < samples_.back().mono_ns)) {
    return;
  }
  samples_.push_back({mono_ns, appended_payload_bytes});
  // Keep the newest sample older than the window too, so the window stays covered.
  while (samples_.size() > 2 && samples_[1].mono_ns <= mono_ns - kWindowNs) samples_.pop_front();
}

std::optional<double> OfflineCover::PayloadBytesPerSecond() const {
  if (samples_.size() < 2) return std::nullopt;
  const Point& first = samples_.front();
  const Point& last = samples_.back();
  const int64_t span = last.mono_ns - first.mono_ns;
  if (span < kMinSpanNs) return std::nullopt;
  return static_cast<double>(last.bytes - first.bytes) * 1e9 / static_cast<double>(span);
}

double OfflineCover::DiskBytesPerPayloadByte(double compression_ratio, uint64_t used_bytes,
                                             uint64_t compressed_bytes) {
  if (compression_ratio <= 0) return 1.0;
  double overhead = 1.0;
  if (compressed_bytes >= (64u << 10)) {
    overhead = std::clamp(static_cast<double>(used_bytes) / static_cast<double>(compressed_bytes), 1.0, 4.0);
  }
  return overhead / compression_ratio;
}

std::optional<double> OfflineCover::CoverSeconds(uint64_t room_bytes, double disk_bytes_per_payload_byte) const {
  const auto rate = PayloadBytesPerSecond();
  if (!rate) return std::nullopt;
  const double disk_rate = *rate * (disk_bytes_per_payload_byte > 0 ? disk_bytes_per_payload_byte : 1.0);
  if (disk_rate <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(room_bytes) / disk_rate;
}

}  // namespace edgeferry::agent
