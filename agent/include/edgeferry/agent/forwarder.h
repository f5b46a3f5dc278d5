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
//
// Poison records (sink.h, "Poison records"): records over the sink's max_record_bytes
// are dead-lettered before sending; batches over max_batch_bytes are cut; a batch the
// destination refuses is bisected down to the record it refuses; records an operator
// moved by hand (`edgeferry dlq move`) are dead-lettered when the forwarder reaches them.
// Anything a sink throws is caught here (counted in SinkStats::sink_exceptions, logged,
// retried with backoff): a sink can never take the agent down.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "edgeferry/agent/config.h"
#include "edgeferry/agent/tap.h"
#include "edgeferry/pipeline/processor.h"
#include "edgeferry/pipeline/route.h"
#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/sink.h"
#include "edgeferry/histogram.h"
#include "edgeferry/timebase.h"

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
  uint64_t oversize_records = 0;   // dead-lettered for exceeding max_record_bytes
  uint64_t poison_records = 0;     // dead-lettered after bisecting a refused batch
  uint64_t moved_records = 0;      // dead-lettered by hand (edgeferry dlq move)
  uint64_t sink_exceptions = 0;    // exceptions that escaped the sink, caught here
  uint64_t skipped_records = 0;    // not selected by the sink's route: acked past, never sent (each counted once)
  uint64_t dropped_records = 0;    // dropped by the sink's processors: acked past, never sent
  std::vector<pipeline::ProcessorStats> processors;  // the sink's processors, each record counted once
  uint64_t wire_bytes = 0;         // bytes sent, after compression, retries included (Delivery::wire_bytes)
  int64_t last_success_ns = 0;     // wall clock ns since epoch of the last call the destination accepted records; 0 = never
  // Per record delivered: its ack time minus its ts_ns (the source's receive time, or the
  // event time a payload carries, so a device clock's offset shows here).
  Histogram latency;
  // Per sink call (Sink::Deliver), whatever its outcome: how long the destination took.
  Histogram request_duration;
  std::string last_error;
};

class Forwarder {
 public:
  // `store` and `sink` are not owned and must outlive the forwarder.
  // `route`: the records this sink receives (route.h); the default selects every one.
  // `processors`: stateless ones (Pipeline::Stateless), run in order on what the route
  // selects before each delivery; what they drop is acked past, what they fail on is
  // dead-lettered with the reason.
  // `tap`: where `edgeferry tap` sees what the sink sends (not owned; null = none).
  // `rebaser`: re-bases records received before the clock was synchronized, before
  // the route, the processors and the sink see them (not owned; null = SystemRebaser()).
  Forwarder(buffer::Store& store, drivers::Sink& sink, RetryPolicy retry, DrainPolicy drain = {}, Route route = {},
            const std::vector<pipeline::ProcessorConfig>& processors = {}, TapHub* tap = nullptr,
            Rebaser* rebaser = nullptr);
  ~Forwarder();
  // Opens the sink's cursor and starts the delivery thread. Errors: from the store.
  Status Start();
  // Stops the loop and joins it: cancels the sink (Sink::Cancel), so a delivery in
  // progress returns within about a second. Idempotent.
  void Stop();
  // Thread-safe.
  SinkStats Stats() const;

 private:
  void Run();
  struct Outcome {
    uint64_t through = 0;                // delivered or dead-lettered up to this seq
    std::optional<int64_t> retry_after;  // set on failure: delay before a retry (0 = backoff)
  };
  // Delivers one batch (seq order): dead-letters moved and oversize records, cuts the
  // batch to max_batch_bytes, bisects refusals, dead-letters what the sink refused, counts.
  Outcome Deliver(std::vector<StoredRecord>& batch);
  // Sink::Deliver behind a catch of everything.
  drivers::Delivery CallSink(std::span<const StoredRecord> batch);
  // One sink call for `batch`, bisecting a refusal (sink.h).
  Outcome DeliverBisecting(std::span<const StoredRecord> batch);
  // True when the record after `seq` in the store, delivered alone, is accepted.
  bool LinkWorksAfter(uint64_t seq);
  // `r` as the buffer holds it, not as this sink's processors left it: what a dead
  // letter keeps, since a replay runs the processors again.
  const Record& AsStored(const StoredRecord& r) const;
  // Dead-letters one record (AsStored); false if the store could not take it.
  bool DeadLetter(const StoredRecord& r, const std::string& reason);
  // Counts the outcome of one sink call for `batch`.
  Outcome Account(std::span<const StoredRecord> batch, drivers::Delivery& d);
  // The route and the processors on `batch` (seq order), in place: unselected and
  // dropped records removed and counted, failed ones dead-lettered and removed. Returns
  // the seq through which every record read (through `read_through`) is accounted for:
  // less when a dead letter could not be written (the batch then ends before it).
  // `counted_through`: the read stream's mark (backlog or live-first) of records
  // counted once already; advanced here.
  // `dead_letter_failed`: set when a record could not be dead-lettered (the loop backs off).
  uint64_t Select(std::vector<StoredRecord>& batch, uint64_t read_through, uint64_t& counted_through,
                  bool* dead_letter_failed);
  // The route and processors on one record, uncounted: whether the sink would send it.
  bool WouldSend(StoredRecord& r);
  // Loads hand-moves queued by `edgeferry dlq move` for this sink.
  void LoadMoves();
  // Delivers dead letters replayed for this sink; false when there were none.
  bool DeliverReplay(const std::function<int64_t()>& backoff);
  // Waits up to `ns` or until Stop(); returns false when stopping.
  bool Sleep(int64_t ns);
  void SetState(SinkState s, const std::string& error = {});

  buffer::Store& store_;
  drivers::Sink& sink_;
  const RetryPolicy retry_;
  const DrainPolicy drain_;
  const Route route_;
  pipeline::Pipeline processors_;  // the delivery thread's; stats copied into stats_
  TapHub* const tap_;
  Rebaser& rebaser_;
  // The records of the batch in hand as the buffer holds them, when the sink has
  // processors: dead letters keep these (a replay runs the processors again).
  std::unordered_map<uint64_t, Record> originals_;
  uint64_t counted_through_ = 0;       // records up to here were counted (skipped, processors) once
  uint64_t live_counted_through_ = 0;  // the same for the records sent ahead of a backlog (live_first)
  const std::string stage_;  // "sink:<name>" in dead letters
  const std::string repeat_key_;  // its dead-letter log lines, limited by LogRepeats()
  std::thread thread_;
  uint64_t pos_ = 0;         // last seq handed to the sink and acked
  int attempt_ = 0;          // consecutive failures
  std::map<uint64_t, uint64_t> moves_;  // seq -> replay-queue id of a hand-move request

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  SinkStats stats_;
};

}  // namespace edgeferry::agent
