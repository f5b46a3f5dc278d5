#include "edgeferry/drivers/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace edgeferry::drivers::http {

namespace {
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodyBuffer {
  CURL* curl;
  std::string* body;
  size_t limit;
  bool truncated = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* b = static_cast<BodyBuffer*>(user);
  long status = 0;
  curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
  const size_t limit = status >= 300 ? std::min(b->limit, kMaxErrorBodyBytes) : b->limit;
  const size_t len = size * n;
  if (b->body->size() + len > limit) {
    b->body->append(data, limit - b->body->size());
    b->truncated = true;
    return 0;  // short: curl aborts the transfer (CURLE_WRITE_ERROR)
  }
  b->body->append(data, len);
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(user)->load() ? 1 : 0;  // non-zero aborts
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
    auto& headers = *static_cast<std::map<std::string, std::string>*>(user);
    // A server cannot grow this without bound (curl caps each line and the header block).
    if (headers.size() < 128 || headers.count(name)) headers[name] = value.substr(0, 8192);
  }
  return size * n;
}
}  // namespace

long HttpResponse::RetryAfterSeconds() const {
  const auto it = headers.find("retry-after");
  if (it == headers.end()) return 0;
  char* end = nullptr;
  const long secs = std::strtol(it->second.c_str(), &end, 10);
  if (end && *end == '\0') return std::clamp(secs, 0L, kMaxRetryAfterSeconds);
  const time_t when = curl_getdate(it->second.c_str(), nullptr);  // HTTP-date
  return when > 0 ? std::clamp(static_cast<long>(when - time(nullptr)), 0L, kMaxRetryAfterSeconds) : 0;
}

struct HttpClient::Impl {
  TlsOptions tls;
  CURL* curl = nullptr;
  std::atomic<bool> cancelled{false};
};

void HttpClient::Cancel() { impl_->cancelled = true; }

HttpClient::HttpClient(TlsOptions tls) : impl_(std::make_unique<Impl>()) {
  GlobalInit();
  impl_->tls = std::move(tls);
  impl_->curl = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
}

namespace {
// The client's TLS settings on one handle (both requests and connect-only probes).
void SetTlsOptions(CURL* c, const TlsOptions& tls) {
  if (!tls.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, tls.ca_file.c_str());
  if (!tls.cert_file.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, tls.cert_file.c_str());
  if (!tls.key_file.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, tls.key_file.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
}
}  // namespace

HttpResponse HttpClient::Send(const HttpRequest& req) {
  HttpResponse resp;
  if (impl_->cancelled) {
    resp.error = "cancelled";
    return resp;
  }
  CURL* c = impl_->curl;
  curl_easy_reset(c);  // keeps the connection cache
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  if (req.method == "POST" || req.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  }
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  // No 100-continue round trip; but not on signed requests: curl 7.88 lists this
  // removal entry as a signed header "expect" that is never sent, so AWS would
  // reject the signature (found by the botocore check in the sink tests).
  if (req.aws_sigv4.empty()) headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!req.aws_sigv4.empty()) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, req.aws_sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERPWD, req.aws_key_secret.c_str());
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(req.timeout_ms, 10'000L));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  BodyBuffer body{c, &resp.body, req.max_body_bytes};
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &impl_->cancelled);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp.headers);
  SetTlsOptions(c, impl_->tls);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(c);
  curl_off_t sent = 0;
  if (curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent > 0) {
    resp.body_bytes_sent = static_cast<uint64_t>(sent);
  }
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  } else if (body.truncated) {
    // The status line and headers arrived; the body was cut at the limit.
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    resp.body_truncated = true;
    resp.error = "response body larger than " + std::to_string(resp.body.size()) + " bytes; not read";
  } else {
    resp.error = rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled" : (error[0] ? error : curl_easy_strerror(rc));
  }
  curl_slist_free_all(headers);
  return resp;
}

std::string HttpClient::ConnectOnly(const std::string& url, long timeout_ms, std::string* peer) {
  CURL* c = curl_easy_init();
  if (!c) return "curl_easy_init failed";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  SetTlsOptions(c, impl_->tls);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(c);
  std::string result;
  if (rc == CURLE_OK) {
    char* ip = nullptr;
    long port = 0;
    curl_easy_getinfo(c, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(c, CURLINFO_PRIMARY_PORT, &port);
    const std::string host = ip ? ip : "";
    *peer = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  } else {
    result = error[0] ? error : curl_easy_strerror(rc);
  }
  curl_easy_cleanup(c);
  return result;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace edgeferry::drivers::http
