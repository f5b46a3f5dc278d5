// Source: reads a sensor stream and hands each record to an Ingest.
//
// Sources push (MQTT, serial) on their own threads; none of them talks to a sink.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "edgeferry/clock.h"
#include "edgeferry/drivers/probe.h"
#include "edgeferry/record.h"
#include "edgeferry/status.h"
#include "edgeferry/redact.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry::drivers {

// Where a source delivers records: the agent's adapter around the buffer.
// Implementations are thread-safe; sources may call from any thread.
class Ingest {
 public:
  virtual ~Ingest() = default;
  // Stores the record durably per the buffer's durability mode; returns its seq, or
  // kDropped / kDeadLettered when the source's processors consumed it (nothing stored,
  // nothing to retry: acknowledge it). May block while the buffer applies
  // backpressure. Errors: Full (the buffer's reject_new policy refused it; already
  // counted), Cancelled (shutting down), IOError.
  virtual Result<uint64_t> Append(Record record) = 0;
  static constexpr uint64_t kDropped = 0;               // a filter, deadband or sample dropped it
  static constexpr uint64_t kDeadLettered = UINT64_MAX; // a processor failed on it: in the dead letter queue
  // Puts a record that can never be delivered into the dead letter queue with the
  // reason, e.g. "payload 300000 bytes > max_record_bytes 262144".
  virtual void DeadLetter(const Record& record, std::string_view reason) = 0;
};

// Counters and state of one source, for stats and metrics. Every record read ends as
// exactly one of stored, dead_lettered, rejected or dropped (by its processors), so
// once the source's Ingest calls have returned, received == stored + dead_lettered +
// rejected + dropped (a piece split off a frame, such as junk before an NMEA sentence,
// is a record of its own).
struct SourceStats {
  bool connected = false;       // link to the device or broker is up
  uint64_t received = 0;        // records read from the device or broker
  uint64_t stored = 0;          // records the buffer accepted
  uint64_t dead_lettered = 0;   // records sent to the dead letter queue
  uint64_t rejected = 0;        // records the buffer refused (Full, closed)
  uint64_t reconnects = 0;      // successful connections after the first
  uint64_t dropped = 0;         // records its processors dropped (filter, deadband, sample)
  std::string last_error;       // newest connection or ingest error, empty if none
  int64_t last_error_ns = 0;    // when last_error was set, wall clock ns since epoch; 0 = never
  int64_t last_receive_ns = 0;  // when the newest record was read, wall clock ns since epoch; 0 = never
  uint64_t unrouted = 0;        // stored records no sink's route selects (set by the agent)
};

// The counters behind SourceStats, for source implementations. Thread-safe.
class SourceCounters {
 public:
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> received{0}, stored{0}, dead_lettered{0}, rejected{0}, reconnects{0}, dropped{0};
  std::atomic<int64_t> last_receive_ns{0};
  // Counts one record read from the device or broker, now.
  void CountReceived() {
    received.fetch_add(1, std::memory_order_relaxed);
    last_receive_ns.store(SystemClock().NowNs(), std::memory_order_relaxed);
  }
  // `error` may quote a broker or device: kept printable (EscapeControlChars).
  void SetError(std::string error) EXCLUDES(mu_) {
    const int64_t now = SystemClock().NowNs();
    std::string printable = EscapeControlChars(error);
    MutexLock l(mu_);
    last_error_ = std::move(printable);
    last_error_ns_ = now;
  }
  std::string last_error() const EXCLUDES(mu_) {
    MutexLock l(mu_);
    return last_error_;
  }
  SourceStats Snapshot() const EXCLUDES(mu_) {
    SourceStats s;
    s.connected = connected;
    s.received = received;
    s.stored = stored;
    s.dead_lettered = dead_lettered;
    s.rejected = rejected;
    s.reconnects = reconnects;
    MutexLock l(mu_);
    s.last_error = last_error_;
    s.last_error_ns = last_error_ns_;
    s.last_receive_ns = last_receive_ns.load(std::memory_order_relaxed);
    s.dropped = dropped.load(std::memory_order_relaxed);
    return s;
  }
  // Counts the outcome of Ingest::Append.
  void CountAppend(const Result<uint64_t>& seq) {
    if (seq.ok() && *seq == Ingest::kDropped) {
      dropped.fetch_add(1, std::memory_order_relaxed);
    } else if (seq.ok() && *seq == Ingest::kDeadLettered) {
      dead_lettered.fetch_add(1, std::memory_order_relaxed);
    } else if (seq.ok()) {
      stored.fetch_add(1, std::memory_order_relaxed);
    } else {
      rejected.fetch_add(1, std::memory_order_relaxed);
      SetError(seq.status().ToString());
    }
  }

 private:
  mutable Mutex mu_;
  std::string last_error_ GUARDED_BY(mu_);
  int64_t last_error_ns_ GUARDED_BY(mu_) = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const std::string& name() const = 0;
  // Starts reading in the background and returns at once; an absent broker or
  // device is retried with backoff, never an error here. Errors: InvalidArgument
  // for settings the underlying library rejects.
  virtual Status Start() = 0;
  // Stops reading; blocks until no more Ingest calls will be made. Idempotent.
  virtual void Stop() = 0;
  // Thread-safe.
  virtual SourceStats Stats() const = 0;
  // Read-only check that the device or broker can be reached with these settings
  // (`edgeferry check --connect`), on a source that was not started: opens and closes
  // the device, or connects, waits for the broker's answer and disconnects, without
  // reading records or touching a running agent's session. Returns within about
  // `timeout_ns` (ns, > 0). Never throws. Thread-safe against other instances.
  // The default, for types without a probe, reports skipped.
  virtual ProbeResult Probe(int64_t timeout_ns) {
    (void)timeout_ns;
    return ProbeResult::Skipped();
  }
};

using SourcePtr = std::unique_ptr<Source>;

}  // namespace edgeferry::drivers
