// S3 sink: each batch becomes one object of NDJSON envelopes, compressed (zstd or
// gzip), uploaded with PutObject, or with a multipart upload (CreateMultipartUpload,
// UploadPart, CompleteMultipartUpload) when larger than multipart_threshold. Signed
// with Signature Version 4 (libcurl) with an x-amz-content-sha256 payload hash.
//
// The key comes from a template, by default
//   {prefix}/{yyyy}/{mm}/{dd}/{HH}/{gateway_id}-{first_seq}-{last_seq}.ndjson.zst
// with the time of the batch's first record, so a retried upload of the same batch
// writes the same key (idempotent). Works with S3-compatible stores (MinIO, Ceph,
// s3rver) through `endpoint` and path-style addressing. Every S3 error is retried
// with backoff (a missing bucket or denied access is fixed by an operator, not by
// dropping data).
#pragma once

#include <memory>
#include <string>

#include "edgeferry/drivers/aws/credentials.h"
#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/http/http_client.h"
#include "edgeferry/drivers/sink.h"

namespace edgeferry::drivers::aws {

struct S3SinkConfig {
  std::string name;
  std::string gateway_id;
  std::string bucket;
  std::string region = "us-east-1";
  std::string endpoint;            // default https://s3.<region>.amazonaws.com
  bool path_style = false;         // endpoint/bucket/key instead of bucket.endpoint/key
  std::string prefix = "edgeferry";
  std::string key_template = "{prefix}/{yyyy}/{mm}/{dd}/{HH}/{gateway_id}-{first_seq}-{last_seq}.ndjson";
  Compression compression = Compression::kZstd;  // adds .zst / .gz to the key
  uint64_t multipart_threshold = 16ull << 20;    // bytes (compressed)
  uint64_t part_size = 8ull << 20;               // bytes, >= 5 MiB (S3's minimum)
  std::string credentials_file, profile;
  http::TlsOptions tls;
  long timeout_ms = 120'000;
  BatchPolicy batch;
  // S3: 5 GiB per object in one PUT, 10,000 parts per multipart upload. A record is one
  // object at most; a batch's uncompressed size is capped at 10,000 parts (config
  // max_batch_bytes; default part_size * 10,000, at most 5 TiB).
  DestinationLimits limits{5ull << 30, (8ull << 20) * 10'000, ""};
};

class S3Sink final : public Sink {
 public:
  explicit S3Sink(S3SinkConfig config);
  ~S3Sink() override;
  const std::string& name() const override { return cfg_.name; }
  BatchPolicy policy() const override { return cfg_.batch; }
  Status Start() override;
  Delivery Deliver(std::span<const StoredRecord> batch) override;
  DestinationLimits limits() const override;
  void Cancel() override;
  // Loads the credentials (none is a failure naming where it looked), then HeadBucket
  // (read-only). A 403 cannot say why (a HEAD answer has no body): bad credentials, or a
  // policy without s3:ListBucket on the bucket; it is reported as a failure saying both.
  ProbeResult Probe(int64_t timeout_ns) override;
  // The object key for a batch (public for tests).
  std::string Key(std::span<const StoredRecord> batch) const;

 private:
  // Sends one signed request to `key` with `query` (already sorted, "k=v&k2=v2").
  http::HttpResponse Request(const std::string& method, const std::string& key, const std::string& query,
                             const std::string& body, std::vector<std::string> headers = {});
  Status PutObject(const std::string& key, const std::string& body);
  Status MultipartUpload(const std::string& key, const std::string& body);

  S3SinkConfig cfg_;
  std::unique_ptr<http::HttpClient> client_;
  Credentials creds_;
  uint64_t body_bytes_sent_ = 0;  // by Request, for Delivery::wire_bytes; forwarder thread only
};

}  // namespace edgeferry::drivers::aws
