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
// ValidationException refuses the batch for good.
#pragma once

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
};

class KinesisSink final : public Sink {
 public:
  explicit KinesisSink(KinesisSinkConfig config);
  ~KinesisSink() override;
  const std::string& name() const override { return cfg_.name; }
  BatchPolicy policy() const override;
  // Loads the credentials. Errors: NotFound / InvalidArgument from LoadCredentials.
  Status Start() override;
  Delivery Deliver(std::span<const StoredRecord> batch) override;

  static constexpr size_t kMaxRecordBytes = 1 << 20;
  static constexpr size_t kMaxRequestRecords = 500;
  static constexpr size_t kMaxRequestBytes = 5 << 20;

 private:
  KinesisSinkConfig cfg_;
  std::unique_ptr<http::HttpClient> client_;
  Credentials creds_;
  std::set<uint64_t> accepted_ahead_;  // seqs the stream accepted beyond the acked cursor
};

}  // namespace edgeferry::drivers::aws
