// HttpClient: one libcurl easy handle (keep-alive connection reuse), used by the
// HTTP, Kinesis and S3 sinks. Not thread-safe: one per sink, used from its forwarder
// thread (Cancel excepted). AWS Signature Version 4 is computed by libcurl (CURLOPT_AWS_SIGV4).
//
// Nothing from the server is buffered without bound: a response body is read up to
// HttpRequest::max_body_bytes (an error response, status >= 300, up to
// kMaxErrorBodyBytes); past that the transfer is aborted (the write callback returns
// short), HttpResponse::body_truncated is set and error says so. The whole request is
// bounded by timeout_ms, the connect phase by min(timeout_ms, 10 s).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edgeferry::drivers::http {

struct TlsOptions {
  std::string ca_file;    // PEM bundle; empty = the system store
  std::string cert_file;  // client certificate for mutual TLS
  std::string key_file;
  bool verify = true;     // verify the server's certificate and host name
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string aws_sigv4;             // e.g. "aws:amz:eu-west-1:kinesis"; empty = no signing
  std::string aws_key_secret;        // "ACCESS_KEY:SECRET" for aws_sigv4
  long timeout_ms = 30'000;
  size_t max_body_bytes = 64 * 1024;  // largest response body read, bytes
};

inline constexpr size_t kMaxErrorBodyBytes = 64 * 1024;

struct HttpResponse {
  long status = 0;                             // 0 when no response arrived
  std::string error;                           // transport error (curl), empty otherwise
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;                            // at most the request's limit
  bool body_truncated = false;                 // the server sent more; transfer aborted
  uint64_t body_bytes_sent = 0;                // request body bytes uploaded (0 when the connect failed)
  // Seconds from a Retry-After header (delta-seconds or HTTP-date), 0 if none, at most
  // kMaxRetryAfterSeconds: a server cannot park a sink for longer (or overflow its delay).
  long RetryAfterSeconds() const;
  static constexpr long kMaxRetryAfterSeconds = 86'400;
};

class HttpClient {
 public:
  explicit HttpClient(TlsOptions tls);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpResponse Send(const HttpRequest& request);
  // Resolves `url`'s host, connects and, for https, completes the TLS handshake with
  // this client's TlsOptions (certificate checked when verify), then closes; sends no
  // request (CURLOPT_CONNECT_ONLY). Bounded by timeout_ms. Returns "" on success, with
  // *peer = "ip:port" reached; else the error (curl's words, not redacted). Uses a
  // handle of its own: Send's connection cache is untouched. Never throws.
  std::string ConnectOnly(const std::string& url, long timeout_ms, std::string* peer);
  // Aborts a Send in progress (within ~1 s) and makes every later Send fail at once.
  // Thread-safe. One-way.
  void Cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// RFC 3986 percent-encoding of one path segment or query value.
std::string UrlEncode(std::string_view s);

}  // namespace edgeferry::drivers::http
