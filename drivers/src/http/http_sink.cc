#include "edgeferry/drivers/http/http_sink.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include "edgeferry/redact.h"
#include <sstream>

namespace edgeferry::drivers::http {

HttpSink::HttpSink(HttpSinkConfig config) : cfg_(std::move(config)), client_(std::make_unique<HttpClient>(cfg_.tls)) {}
HttpSink::~HttpSink() = default;

Status HttpSink::Start() {
  if (cfg_.bearer_token_file.empty()) return Status::Ok();
  std::ifstream in(cfg_.bearer_token_file);
  if (!in) return Status::IOError(fmt::format("cannot read bearer_token_file {}", cfg_.bearer_token_file));
  std::stringstream ss;
  ss << in.rdbuf();
  token_ = ss.str();
  while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r')) token_.pop_back();
  return Status::Ok();
}

ProbeResult HttpSink::Probe(int64_t timeout_ns) {
  if (!cfg_.bearer_token_file.empty() && ::access(cfg_.bearer_token_file.c_str(), R_OK) != 0) {
    return ProbeResult::Failed(
        fmt::format("cannot read bearer_token_file {}: {}", cfg_.bearer_token_file, std::strerror(errno)));
  }
  const long timeout_ms = std::max<long>(1, static_cast<long>(timeout_ns / 1'000'000));
  std::string peer;
  const std::string error = client_->ConnectOnly(cfg_.url, timeout_ms, &peer);
  if (!error.empty()) return ProbeResult::Failed(fmt::format("{}: {}", RedactUrl(cfg_.url), RedactUrlsIn(error)));
  return ProbeResult::Ok(fmt::format("connected to {} at {}{}", RedactUrl(cfg_.url), peer,
                                     cfg_.url.starts_with("https:") ? ", TLS handshake done" : ""));
}

void HttpSink::Cancel() { client_->Cancel(); }

DestinationLimits HttpSink::limits() const {
  DestinationLimits l = cfg_.limits;
  l.gateway_id = cfg_.gateway_id;
  return l;
}

Delivery HttpSink::Deliver(std::span<const StoredRecord> batch) {
  Delivery d;
  auto body = Compress(cfg_.compression, EncodeNdjson(cfg_.gateway_id, batch));
  if (!body.ok()) {
    d.error = Status::Unavailable(body.status().message());
    return d;
  }
  HttpRequest req;
  req.url = cfg_.url;
  req.body = std::move(body).value();
  req.timeout_ms = cfg_.timeout_ms;
  req.headers.push_back("Content-Type: application/x-ndjson");
  if (cfg_.compression != Compression::kNone) {
    req.headers.push_back(fmt::format("Content-Encoding: {}", CompressionName(cfg_.compression)));
  }
  if (!token_.empty()) req.headers.push_back("Authorization: Bearer " + token_);
  for (const auto& [k, v] : cfg_.headers) req.headers.push_back(k + ": " + v);
  req.headers.push_back(fmt::format("X-Edgeferry-Batch: {}-{}", batch.front().seq, batch.back().seq));
  const HttpResponse resp = client_->Send(req);
  d.wire_bytes = resp.body_bytes_sent;
  if (resp.status >= 200 && resp.status < 300) {
    d.acked_through = batch.back().seq;
    return d;
  }
  const std::string excerpt = RedactUrlsIn(resp.body.substr(0, 200));
  if (resp.status == 0) {
    d.error = Status::Unavailable(fmt::format("{}: {}", RedactUrl(cfg_.url), RedactUrlsIn(resp.error)));
  } else if (resp.status == 413) {
    // Payload Too Large: the content, not the link. Bisected down to the record (sink.h).
    d.error = Status::Permanent(fmt::format("HTTP 413: {}", excerpt));
    d.refused = true;
  } else if (resp.status == 408 || resp.status == 429 || resp.status >= 500) {
    d.error = Status::Unavailable(fmt::format("HTTP {}: {}", resp.status, excerpt));
    d.retry_after_ns = resp.RetryAfterSeconds() * 1'000'000'000LL;
  } else if (resp.status == 401 || resp.status == 403 || resp.status == 404) {
    // Credentials, permissions or the URL: about the link, not the records (an expired
    // token must not dead-letter the backlog). Retried, and the sink shows failing.
    d.error = Status::Unavailable(fmt::format("HTTP {}: {}", resp.status, excerpt));
  } else {
    // Other 4xx refuse content: bisected down to the records refused (sink.h).
    d.error = Status::Permanent(fmt::format("HTTP {}: {}", resp.status, excerpt));
    d.refused = true;
  }
  return d;
}

}  // namespace edgeferry::drivers::http
