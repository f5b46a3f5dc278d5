// HTTP sink: POSTs each batch as NDJSON envelopes (envelope.h), optionally
// compressed (Content-Encoding: gzip or zstd), to one URL. Ack = any 2xx.
// 408, 429 and 5xx, and transport errors, are retried (honouring Retry-After); so are
// 401, 403 and 404 (credentials, permissions, URL: the link, not the records). Any other
// 4xx (413 included) is a refusal the forwarder bisects down to the records refused,
// which go to the dead letter queue with the status and the start of the body (sink.h). Response bodies are read up to
// 64 KiB (http_client.h); the URL is printed redacted (edgeferry/redact.h).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/http/http_client.h"
#include "edgeferry/drivers/sink.h"

namespace edgeferry::drivers::http {

struct HttpSinkConfig {
  std::string name;
  std::string gateway_id;
  std::string url;                                // http:// or https://
  std::map<std::string, std::string> headers;     // extra request headers
  std::string bearer_token_file;                  // "Authorization: Bearer <file content>"
  Compression compression = Compression::kGzip;
  TlsOptions tls;
  long timeout_ms = 30'000;
  BatchPolicy batch;
  DestinationLimits limits{4ull << 20, 16ull << 20, ""};  // config max_record_bytes, max_batch_bytes
};

class HttpSink final : public Sink {
 public:
  explicit HttpSink(HttpSinkConfig config);
  ~HttpSink() override;
  const std::string& name() const override { return cfg_.name; }
  BatchPolicy policy() const override { return cfg_.batch; }
  // Reads the bearer token file. Errors: IOError if it cannot be read.
  Status Start() override;
  Delivery Deliver(std::span<const StoredRecord> batch) override;
  DestinationLimits limits() const override;
  void Cancel() override;
  // Reads the bearer token file (when set), then resolves, connects and completes the
  // TLS handshake (HttpClient::ConnectOnly); no request is sent.
  ProbeResult Probe(int64_t timeout_ns) override;

 private:
  HttpSinkConfig cfg_;
  std::unique_ptr<HttpClient> client_;
  std::string token_;
};

}  // namespace edgeferry::drivers::http
