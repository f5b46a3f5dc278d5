// The file outbox: the built-in default sink (no cloud account needed).
//
// Each batch becomes one file of envelope lines (NDJSON, envelope.h), compressed
// as one zstd frame, named by its seq range:
//   <dir>/<gateway_id>-<first_seq:020>-<last_seq:020>.ndjson.zst
// Written as ".<name>.tmp", fsynced, renamed, and the directory fsynced; the batch is
// acked only after the rename. A retry of the same batch rewrites the same name, and
// after a crash RecoverDeliveredSeq() reads the newest file name so that records
// already in the outbox are not written again.
#pragma once

#include <string>

#include "edgeferry/drivers/sink.h"

namespace edgeferry::drivers {

struct OutboxSinkConfig {
  std::string name;        // sink name, e.g. "local"
  std::string gateway_id;  // goes into every envelope and file name
  std::string dir;         // created if missing
  BatchPolicy batch;
  int zstd_level = 3;      // 0 = write plain .ndjson files
};

// Not thread-safe: used from its forwarder thread only (the Sink contract).
class OutboxSink final : public Sink {
 public:
  explicit OutboxSink(OutboxSinkConfig config);
  const std::string& name() const override { return config_.name; }
  BatchPolicy policy() const override { return config_.batch; }
  // Creates the directory and removes temp files a crash left behind.
  // Errors: IOError (retried by the forwarder).
  Status Start() override;
  // Errors in the Delivery: Unavailable for I/O errors, including a full disk.
  Delivery Deliver(std::span<const StoredRecord> batch) override;
  uint64_t RecoverDeliveredSeq() override;
  // The directory, or the nearest existing parent Start() would create it in, is a
  // directory this process may write in (access(2) W_OK|X_OK); creates nothing.
  ProbeResult Probe(int64_t timeout_ns) override;

  // The file name for a batch; public for tests and tools.
  std::string FileName(uint64_t first_seq, uint64_t last_seq) const;

 private:
  OutboxSinkConfig config_;
};

}  // namespace edgeferry::drivers
