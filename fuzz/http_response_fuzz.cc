// HTTP responses from a destination (HTTP, Kinesis and S3 sinks). The only response
// parser public today is Retry-After (delta-seconds or HTTP-date, RFC 9110 10.2.3),
// which the HTTP sink turns into a delay in ns: the value must be one the sink can
// use (no overflow to a negative or wrapped delay). The Kinesis PutRecords and S3
// error/UploadId parsers are inside the sinks' Send (see docs/testing.md, Fuzzing).
#include <climits>

#include "edgeferry/drivers/http/http_client.h"
#include "fuzz_check.h"

namespace http = edgeferry::drivers::http;
using edgeferry::fuzz::Excerpt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::HttpResponse resp;
  resp.status = 503;
  resp.headers["retry-after"] = std::string(reinterpret_cast<const char*>(data), size);
  const long secs = resp.RetryAfterSeconds();
  FUZZ_CHECK(secs >= 0, "negative Retry-After %ld", secs);
  FUZZ_CHECK(secs <= INT64_MAX / 1'000'000'000LL, "Retry-After \"%s\" = %ld s overflows the sink's delay in ns",
             Excerpt(resp.headers["retry-after"]).c_str(), secs);
  return 0;
}
