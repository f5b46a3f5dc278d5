// OfflineCover: how long the buffer can keep taking the current ingest with no sink
// acknowledging anything, before its cap policy (when_full) acts. What an operator
// asks before a planned outage, and what a "buffer filling" alert needs.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <optional>

namespace edgeferry::agent {

// Not thread-safe: the owner guards it (Agent holds it under its stats lock).
class OfflineCover {
 public:
  // The rate is measured over samples of up to this age (monotonic ns).
  static constexpr int64_t kWindowNs = 300'000'000'000;  // 5 min
  // No rate before two samples this far apart.
  static constexpr int64_t kMinSpanNs = 5'000'000'000;

  // Adds a sample: `mono_ns` monotonic ns; `appended_payload_bytes` payload bytes the
  // store took so far (StoreStats::appended_payload_bytes). A sample older or smaller
  // than the newest one (read before it, on another thread) is ignored.
  void Sample(int64_t mono_ns, uint64_t appended_payload_bytes);

  // Payload bytes per second over the window; nullopt until two samples span kMinSpanNs.
  std::optional<double> PayloadBytesPerSecond() const;

  // Seconds until `room_bytes` (StoreStats::room_bytes) fill at the current rate, each
  // payload byte taking `disk_bytes_per_payload_byte` (DiskBytesPerPayloadByte; 1 when
  // <= 0). +infinity when nothing comes in; nullopt while the rate is unknown.
  std::optional<double> CoverSeconds(uint64_t room_bytes, double disk_bytes_per_payload_byte) const;

  // What a payload byte costs in the store: 1/compression_ratio for the segment, times
  // the database's own overhead (pages in use per segment byte: page slack, index,
  // cursors, dead letters), measured once at least 64 KiB of segments are stored and
  // clamped to [1, 4]. 1 (uncompressed, no overhead) while nothing is known.
  static double DiskBytesPerPayloadByte(double compression_ratio, uint64_t used_bytes, uint64_t compressed_bytes);

 private:
  struct Point {
    int64_t mono_ns;
    uint64_t bytes;
  };
  std::deque<Point> samples_;
};

}  // namespace edgeferry::agent
