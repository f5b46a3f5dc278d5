// Sink: delivers batches of stored records to one destination.
//
// The agent's forwarder (agent/forwarder.h) owns the loop: it reads a batch after
// the sink's cursor, calls Deliver, dead-letters what the sink rejects for good,
// and acks the cursor. A sink only knows its destination.
//
// Poison records (what the forwarder does so that one record cannot stall a sink):
//  - Size. A record's size is its envelope line (envelope.h) without the newline, in
//    bytes: what every sink sends (raw payloads are smaller, so the check is
//    conservative). A record larger than DestinationLimits::max_record_bytes is
//    dead-lettered with the reason before it is sent; a batch is cut so that the sum of
//    its records' sizes stays within max_batch_bytes (a batch always holds at least one
//    record).
//  - Refusal. A sink sets Delivery::refused when the destination was reached and
//    refused this batch in a way that may be caused by its content (HTTP 413, a Kinesis
//    ValidationException, a broker that drops the connection right after a PUBLISH of
//    the batch). The forwarder then bisects: it delivers the first half, then the
//    second, down to a single record. A single refused record is dead-lettered when the
//    refusal is Permanent (the destination said so), or when it is Unavailable and the
//    next stored record, delivered alone right after, is accepted (the link works, so
//    it is this record). Otherwise it is a dead link: retried with backoff for ever,
//    never dead-lettered. A transport failure (connect refused, timeout, DNS) is never
//    `refused`.
//  - By hand: `edgeferry dlq move --sink S --seq N` (buffer/dead_letter_admin.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "edgeferry/drivers/probe.h"
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

// What the destination accepts at most (config keys max_record_bytes and
// max_batch_bytes; defaults per sink type in docs/configuration.md). 0 = no limit.
struct DestinationLimits {
  uint64_t max_record_bytes = 0;  // one record's envelope line, bytes
  uint64_t max_batch_bytes = 0;   // sum of a batch's envelope lines, bytes
  std::string gateway_id;         // the envelope's gateway_id, to measure records exactly
  bool payload_only = false;      // the sink sends raw payloads: a record's size is its payload's
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
  // With a non-OK error: the destination was reached and refused the records after
  // acked_through in a way their content may cause (see "Refusal" above).
  bool refused = false;
  // Bytes this call put on the link or disk, whatever the outcome: request bodies after
  // compression (every attempt inside the call), MQTT payloads published, file bytes
  // written. What a metered link is billed for; 0 when nothing was sent.
  uint64_t wire_bytes = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual const std::string& name() const = 0;
  virtual BatchPolicy policy() const = 0;
  virtual DestinationLimits limits() const { return {}; }
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
  // Makes a Start or Deliver in progress, and every later one, return promptly
  // (Unavailable), so that shutdown is bounded. Thread-safe: called from the thread
  // that stops the forwarder. One-way: a cancelled sink is finished.
  virtual void Cancel() {}
  // Read-only check that the destination can be reached with these settings
  // (`edgeferry check --connect`), on a sink that was not started: resolves
  // credentials, connects (TLS handshake included) and at most makes a read-only call
  // (a CONNACK, HeadBucket, DescribeStreamSummary); sends no records, writes no file.
  // Returns within about `timeout_ns` (ns, > 0). Never throws. Thread-safe against
  // other instances. The default, for types without a probe, reports skipped.
  virtual ProbeResult Probe(int64_t timeout_ns) {
    (void)timeout_ns;
    return ProbeResult::Skipped();
  }
  // Every blocking network call of a sink is bounded by a timeout (connect, request,
  // acknowledgement); none may throw: a parser of a response reports Unavailable.
};

using SinkPtr = std::unique_ptr<Sink>;

}  // namespace edgeferry::drivers
