// Kinesis Data Streams sink: each batch is one PutRecords request (AWS API
// "Kinesis_20131202.PutRecords"), signed with Signature Version 4 by libcurl.
//
// Limits (AWS): 500 records and 5 MiB per request, 1 MiB per record (data plus
// partition key). A record over 1 MiB goes to the dead letter queue. PutRecords can
// fail per record (ProvisionedThroughputExceededException, InternalFailure): only the
// failed records are sent again, a few times within one delivery; records the stream
// accepted are remembered and never sent again, so the cursor acks exactly what was
// accepted. Request-level throttling, 5xx, auth and missing-stream errors are retried
// with backoff (they are configuration or capacity problems, not bad data); a
// ValidationException is a refusal the forwarder bisects down to the record (sink.h).
// Partition keys are cut to 256 bytes at a UTF-8 character boundary. Responses are read
// up to 1 MiB and parsed without throwing: any unexpected shape is a retryable error.
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <string>

#include "edgeferry/drivers/aws/credentials.h"
#include "edgeferry/drivers/http/http_client.h"
#include "edgeferry/drivers/sink.h"

namespace edgeferry::drivers::aws {

struct KinesisSinkConfig {
  std::string name;
  std::string gateway_id;
  std::string stream;
  std::string region = "us-east-1";
  std::string endpoint;                         // default https://kinesis.<region>.amazonaws.com
  std::string partition_key = "{gateway_id}";   // template (batch_encoding.h)
  bool raw_payload = false;                     // Data = the payload instead of the envelope
  std::string credentials_file, profile;        // override the usual lookup (credentials.h)
  http::TlsOptions tls;
  long timeout_ms = 30'000;
  int record_retries = 3;                       // extra sends of failed records per delivery
  BatchPolicy batch;                            // capped at 500 records, 5 MiB
  DestinationLimits limits{1ull << 20, 4ull << 20, ""};  // config max_record_bytes, max_batch_bytes
};

// `s` cut to at most `max_bytes` without splitting a UTF-8 character.
std::string TruncateUtf8(std::string s, size_t max_bytes);

class KinesisSink final : public Sink {
 public:
  explicit KinesisSink(KinesisSinkConfig config);
  ~KinesisSink() override;
  const std::string& name() const override { return cfg_.name; }
  BatchPolicy policy() const override;
  // Loads the credentials. Errors: NotFound / InvalidArgument from LoadCredentials.
  Status Start() override;
  // Never throws: anything unexpected is Unavailable.
  Delivery Deliver(std::span<const StoredRecord> batch) override;
  DestinationLimits limits() const override;
  void Cancel() override;
  // Loads the credentials (none is a failure naming where it looked), then calls
  // DescribeStreamSummary (read-only): ok when the stream answers; AccessDenied is ok too
  // (the key was accepted; a policy may grant PutRecords only), with a note.
  ProbeResult Probe(int64_t timeout_ns) override;

  static constexpr size_t kMaxRecordBytes = 1 << 20;
  static constexpr size_t kMaxRequestRecords = 500;
  static constexpr size_t kMaxRequestBytes = 5 << 20;

 private:
  KinesisSinkConfig cfg_;
  std::unique_ptr<http::HttpClient> client_;
  Credentials creds_;
  Delivery DeliverOnce(std::span<const StoredRecord> batch);
  std::set<uint64_t> accepted_ahead_;
  std::atomic<bool> cancelled_{false};  // seqs the stream accepted beyond the acked cursor
};

}  // namespace edgeferry::drivers::aws
