// Source: reads a sensor stream and hands each record to an Ingest.
//
// Sources push (MQTT, serial) on their own threads; none of them talks to a sink.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "edgeferry/record.h"
#include "edgeferry/status.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry::drivers {

// Where a source delivers records: the agent's adapter around the buffer.
// Implementations are thread-safe; sources may call from any thread.
class Ingest {
 public:
  virtual ~Ingest() = default;
  // Stores the record durably per the buffer's durability mode; returns its seq.
  // May block while the buffer applies backpressure. Errors: Full (the buffer's
  // reject_new policy refused it; already counted), Cancelled (shutting down), IOError.
  virtual Result<uint64_t> Append(Record record) = 0;
  // Puts a record that can never be delivered into the dead letter queue with the
  // reason, e.g. "payload 300000 bytes > max_record_bytes 262144".
  virtual void DeadLetter(const Record& record, std::string_view reason) = 0;
};

// Counters and state of one source, for stats and metrics.
struct SourceStats {
  bool connected = false;       // link to the device or broker is up
  uint64_t received = 0;        // records read from the device or broker
  uint64_t stored = 0;          // records the buffer accepted
  uint64_t dead_lettered = 0;   // records sent to the dead letter queue
  uint64_t rejected = 0;        // records the buffer refused (Full, closed)
  uint64_t reconnects = 0;      // successful connections after the first
  std::string last_error;       // newest connection or ingest error, empty if none
};

// The counters behind SourceStats, for source implementations. Thread-safe.
class SourceCounters {
 public:
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> received{0}, stored{0}, dead_lettered{0}, rejected{0}, reconnects{0};
  void SetError(std::string error) EXCLUDES(mu_) {
    MutexLock l(mu_);
    last_error_ = std::move(error);
  }
  std::string last_error() const EXCLUDES(mu_) {
    MutexLock l(mu_);
    return last_error_;
  }
  SourceStats Snapshot() const {
    return SourceStats{connected, received, stored, dead_lettered, rejected, reconnects, last_error()};
  }
  // Counts the outcome of Ingest::Append.
  void CountAppend(const Result<uint64_t>& seq) {
    if (seq.ok()) {
      stored.fetch_add(1, std::memory_order_relaxed);
    } else {
      rejected.fetch_add(1, std::memory_order_relaxed);
      SetError(seq.status().ToString());
    }
  }

 private:
  mutable Mutex mu_;
  std::string last_error_ GUARDED_BY(mu_);
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
};

using SourcePtr = std::unique_ptr<Source>;

}  // namespace edgeferry::drivers
