#include "edgeferry/drivers/aws/s3_sink.h"

#include <openssl/evp.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "edgeferry/redact.h"

namespace edgeferry::drivers::aws {

namespace {
std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < n; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string Between(const std::string& s, const std::string& open, const std::string& close) {
  const auto a = s.find(open);
  if (a == std::string::npos) return "";
  const auto b = s.find(close, a + open.size());
  return b == std::string::npos ? "" : s.substr(a + open.size(), b - a - open.size());
}

Status Describe(const http::HttpResponse& r, const std::string& what) {
  if (r.status == 0) return Status::Unavailable(fmt::format("{}: {}", what, r.error));
  const std::string code = Between(r.body, "<Code>", "</Code>");
  return Status::Unavailable(fmt::format("{}: HTTP {}{}", what, r.status, code.empty() ? "" : " " + code));
}
}  // namespace

S3Sink::S3Sink(S3SinkConfig config) : cfg_(std::move(config)), client_(std::make_unique<http::HttpClient>(cfg_.tls)) {
  if (cfg_.endpoint.empty()) cfg_.endpoint = fmt::format("https://s3.{}.amazonaws.com", cfg_.region);
  while (!cfg_.endpoint.empty() && cfg_.endpoint.back() == '/') cfg_.endpoint.pop_back();
  cfg_.part_size = std::max<uint64_t>(cfg_.part_size, 5ull << 20);
}
S3Sink::~S3Sink() = default;

Status S3Sink::Start() {
  auto c = LoadCredentials(cfg_.credentials_file, cfg_.profile);
  if (!c.ok()) return c.status();
  creds_ = std::move(c).value();
  return Status::Ok();
}

std::string S3Sink::Key(std::span<const StoredRecord> batch) const {
  std::string key = ExpandTemplate(cfg_.key_template, {cfg_.gateway_id, batch.front().record.source,
                                                       batch.front().record.channel, cfg_.prefix, batch.front().seq,
                                                       batch.front().seq, batch.back().seq, batch.front().record.ts_ns});
  if (cfg_.compression == Compression::kZstd) key += ".zst";
  if (cfg_.compression == Compression::kGzip) key += ".gz";
  while (!key.empty() && key.front() == '/') key.erase(0, 1);
  return key;
}

http::HttpResponse S3Sink::Request(const std::string& method, const std::string& key, const std::string& query,
                                   const std::string& body, std::vector<std::string> headers) {
  std::string path;  // stays empty for the bucket itself (HeadBucket) in path style
  for (size_t at = 0; !key.empty() && at <= key.size();) {
    const size_t slash = std::min(key.find('/', at), key.size());
    path += "/" + http::UrlEncode(key.substr(at, slash - at));
    at = slash + 1;
  }
  std::string url;
  if (cfg_.path_style) {
    url = cfg_.endpoint + "/" + http::UrlEncode(cfg_.bucket) + path;
  } else {
    const auto scheme = cfg_.endpoint.find("://");
    url = cfg_.endpoint.substr(0, scheme + 3) + cfg_.bucket + "." + cfg_.endpoint.substr(scheme + 3) +
          (path.empty() ? "/" : path);
  }
  // curl 7.88 signs the query as written: it must already be sorted, with "key=" forms.
  if (!query.empty()) url += "?" + query;
  http::HttpRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  req.timeout_ms = cfg_.timeout_ms;
  req.headers = std::move(headers);
  req.headers.push_back("x-amz-content-sha256: " + Sha256Hex(body));  // S3 requires it; curl 7.88 does not add it
  if (!creds_.session_token.empty()) req.headers.push_back("x-amz-security-token: " + creds_.session_token);
  req.aws_sigv4 = fmt::format("aws:amz:{}:s3", cfg_.region);
  req.aws_key_secret = creds_.access_key_id + ":" + creds_.secret_access_key;
  http::HttpResponse r = client_->Send(req);
  body_bytes_sent_ += r.body_bytes_sent;
  return r;
}

Status S3Sink::PutObject(const std::string& key, const std::string& body) {
  const auto r = Request("PUT", key, "", body, {"Content-Type: application/x-ndjson"});
  return r.status == 200 ? Status::Ok() : Describe(r, "PutObject " + key);
}

Status S3Sink::MultipartUpload(const std::string& key, const std::string& body) {
  auto r = Request("POST", key, "uploads=", "", {"Content-Type: application/x-ndjson"});
  const std::string upload_id = Between(r.body, "<UploadId>", "</UploadId>");
  if (r.status != 200 || upload_id.empty()) return Describe(r, "CreateMultipartUpload " + key);
  const std::string id_query = "uploadId=" + http::UrlEncode(upload_id);
  std::string complete = "<CompleteMultipartUpload>";
  int part = 1;
  for (size_t at = 0; at < body.size(); at += cfg_.part_size, ++part) {
    r = Request("PUT", key, fmt::format("partNumber={}&{}", part, id_query), body.substr(at, cfg_.part_size));
    const auto etag = r.headers.find("etag");
    if (r.status != 200 || etag == r.headers.end()) {
      const Status st = Describe(r, fmt::format("UploadPart {} of {}", part, key));
      (void)Request("DELETE", key, id_query, "");  // AbortMultipartUpload, best effort
      return st;
    }
    complete += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", part, etag->second);
  }
  complete += "</CompleteMultipartUpload>";
  r = Request("POST", key, id_query, complete, {"Content-Type: application/xml"});
  // CompleteMultipartUpload can report an error inside a 200 response.
  if (r.status != 200 || r.body.find("<Error>") != std::string::npos) {
    const Status st = Describe(r, "CompleteMultipartUpload " + key);
    (void)Request("DELETE", key, id_query, "");
    return st;
  }
  return Status::Ok();
}

ProbeResult S3Sink::Probe(int64_t timeout_ns) {
  try {
    auto c = LoadCredentials(cfg_.credentials_file, cfg_.profile);
    if (!c.ok()) return ProbeResult::Failed(c.status().message());
    // Request() signs with the sink's credentials and client; a probe uses its own.
    S3Sink probe(cfg_);
    probe.creds_ = std::move(c).value();
    probe.cfg_.timeout_ms = std::max<long>(1, static_cast<long>(timeout_ns / 1'000'000));
    const http::HttpResponse r = probe.Request("HEAD", "", "", "");
    const std::string where = fmt::format("bucket {} at {}", cfg_.bucket, RedactUrl(cfg_.endpoint));
    if (r.status == 200) return ProbeResult::Ok(where + " answered HeadBucket");
    if (r.status == 0) return ProbeResult::Failed(fmt::format("{}: {}", where, RedactUrlsIn(r.error)));
    if (r.status == 404) return ProbeResult::Failed(where + ": HeadBucket: HTTP 404: no such bucket");
    if (r.status == 403) {
      return ProbeResult::Failed(where + ": HeadBucket: HTTP 403: the credentials were refused, or their policy "
                                         "lacks s3:ListBucket on the bucket");
    }
    if (r.status == 301 || r.status == 400) {
      const auto region = r.headers.find("x-amz-bucket-region");
      if (region != r.headers.end() && region->second != cfg_.region) {
        return ProbeResult::Failed(fmt::format("{}: HeadBucket: HTTP {}: the bucket is in region {}, not {}", where,
                                               r.status, region->second, cfg_.region));
      }
    }
    return ProbeResult::Failed(fmt::format("{}: HeadBucket: HTTP {}", where, r.status));
  } catch (const std::exception& e) {
    return ProbeResult::Failed(std::string("HeadBucket: ") + e.what());
  }
}

void S3Sink::Cancel() { client_->Cancel(); }

DestinationLimits S3Sink::limits() const {
  DestinationLimits l = cfg_.limits;
  l.gateway_id = cfg_.gateway_id;
  return l;
}

Delivery S3Sink::Deliver(std::span<const StoredRecord> batch) {
  Delivery d;
  auto body = Compress(cfg_.compression, EncodeNdjson(cfg_.gateway_id, batch));
  if (!body.ok()) {
    d.error = Status::Unavailable(body.status().message());
    return d;
  }
  if (const uint64_t parts = (body->size() + cfg_.part_size - 1) / cfg_.part_size; parts > 10'000) {
    // S3 allows 10,000 parts per upload: a smaller batch fits (the forwarder bisects).
    d.error = Status::Permanent(fmt::format("batch of {} bytes needs {} parts (S3 allows 10,000)", body->size(), parts));
    d.refused = true;
    return d;
  }
  const std::string key = Key(batch);
  body_bytes_sent_ = 0;
  const Status st = body->size() > cfg_.multipart_threshold ? MultipartUpload(key, *body) : PutObject(key, *body);
  d.wire_bytes = body_bytes_sent_;
  if (!st.ok()) {
    d.error = st;
    return d;
  }
  d.acked_through = batch.back().seq;
  return d;
}

}  // namespace edgeferry::drivers::aws
