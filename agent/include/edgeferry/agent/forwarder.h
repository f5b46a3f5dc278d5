// Forwarder: the delivery loop of one sink, shared by every sink type.
//
//   wait for records after the cursor -> linger until the batch policy seals a
//   batch -> Sink::Deliver -> dead-letter what the sink rejected for good ->
//   ack the cursor to what the destination accepted -> repeat.
// Retryable failures back off exponentially with full jitter; the cursor does not
// move, so the same records are sent again (at-least-once). One thread per sink:
// a slow or dead sink never blocks sources or other sinks.
//
// Drain control (DrainPolicy): a token bucket on records/s and bytes/s; a random delay
// before the first delivery so a fleet restarting together does not stampede; and
// live-first order: when the backlog exceeds one batch, records newer than that moment
// go first and the backlog drains behind them. The cursor then stays at the backlog's
// progress, so a crash re-sends the live records delivered ahead of it (each keeps its
// seq; consumers order and deduplicate by seq). Dead letters an operator replays
// (`edgeferry dlq replay`) are delivered between batches, at most a check per second.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "edgeferry/agent/config.h"
#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/sink.h"

namespace edgeferry::agent {

// kFailing: kFailingAfter or more consecutive failed attempts (an operator should look).
enum class SinkState { kStarting, kOnline, kBackingOff, kFailing, kStopped };
inline constexpr uint64_t kFailingAfter = 5;
std::string_view SinkStateName(SinkState s);

struct SinkStats {
  SinkState state = SinkState::kStarting;
  uint64_t acked_seq = 0;          // cursor position
  uint64_t delivered_records = 0;  // accepted by the destination
  uint64_t delivered_batches = 0;
  uint64_t payload_bytes = 0;      // payload bytes of delivered records
  uint64_t dead_lettered = 0;      // rejected for good, now in the dead letter queue
  uint64_t retries = 0;            // failed attempts that will be retried
  uint64_t consecutive_failures = 0;
  std::string last_error;
};

class Forwarder {
 public:
  // `store` and `sink` are not owned and must outlive the forwarder.
  Forwarder(buffer::Store& store, drivers::Sink& sink, RetryPolicy retry, DrainPolicy drain = {});
  ~Forwarder();
  // Opens the sink's cursor and starts the delivery thread. Errors: from the store.
  Status Start();
  // Asks the loop to stop after the delivery in progress, and joins it. Idempotent.
  void Stop();
  // Thread-safe.
  SinkStats Stats() const;

 private:
  void Run();
  struct Outcome {
    uint64_t through = 0;                // delivered or dead-lettered up to this seq
    std::optional<int64_t> retry_after;  // set on failure: delay before a retry (0 = backoff)
  };
  // Delivers one batch (seq order), dead-letters what the sink refused, counts.
  Outcome Deliver(std::vector<StoredRecord>& batch);
  // Delivers dead letters replayed for this sink; false when there were none.
  bool DeliverReplay(const std::function<int64_t()>& backoff);
  // Waits up to `ns` or until Stop(); returns false when stopping.
  bool Sleep(int64_t ns);
  void SetState(SinkState s, const std::string& error = {});

  buffer::Store& store_;
  drivers::Sink& sink_;
  const RetryPolicy retry_;
  const DrainPolicy drain_;
  const std::string stage_;  // "sink:<name>" in dead letters
  std::thread thread_;
  uint64_t pos_ = 0;         // last seq handed to the sink and acked
  int attempt_ = 0;          // consecutive failures

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  SinkStats stats_;
};

}  // namespace edgeferry::agent
