// Sink: delivers batches of stored records to one destination.
//
// The agent's forwarder (agent/forwarder.h) owns the loop: it reads a batch after
// the sink's cursor, calls Deliver, dead-letters what the sink rejects for good,
// and acks the cursor. A sink only knows its destination.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::drivers {

// How a sink seals batches: whichever limit is reached first. Batch and stream are
// one continuum: linger 0 sends each record as soon as it is stored.
struct BatchPolicy {
  size_t max_records = 1000;
  uint64_t max_bytes = 1ull << 20;  // sum of payload sizes, bytes
  int64_t linger_ns = 1'000'000'000;
};

// A record the destination refused for good, with the reason.
struct Rejection {
  uint64_t seq = 0;
  std::string reason;
};

struct Delivery {
  // Records up to and including this seq are delivered or listed in `rejected`;
  // 0 when nothing was. The forwarder acks the cursor to it.
  uint64_t acked_through = 0;
  std::vector<Rejection> rejected;
  // Non-OK when some records were not delivered and may be retried later
  // (Unavailable), or the whole batch is refused for good (Permanent).
  Status error;
  int64_t retry_after_ns = 0;  // server-requested delay (e.g. Retry-After), 0 = use backoff
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual const std::string& name() const = 0;
  virtual BatchPolicy policy() const = 0;
  // Prepares the destination (create a directory, open a connection). Called once
  // from the forwarder thread before the first Deliver. Errors are retried with backoff.
  virtual Status Start() = 0;
  // Delivers `batch` (non-empty, seq order) and reports what the destination
  // acknowledged. Called from the sink's forwarder thread only.
  virtual Delivery Deliver(std::span<const StoredRecord> batch) = 0;
  // The highest seq the destination is known to hold already (e.g. files an earlier
  // run wrote before it could persist its ack), so a restart does not duplicate
  // them; 0 when unknown. Called once, before the first Deliver.
  virtual uint64_t RecoverDeliveredSeq() { return 0; }
};

using SinkPtr = std::unique_ptr<Sink>;

}  // namespace edgeferry::drivers
