// HTTP responses from a destination (HTTP, Kinesis and S3 sinks). The only response
// parser public today is Retry-After (delta-seconds or HTTP-date, RFC 9110 10.2.3),
// which the HTTP sink turns into a delay in ns: the value must be within the cap (it
// was not: "99999999999999999999" gave LONG_MAX s and the sink's ns delay overflowed). The Kinesis PutRecords and S3
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
  FUZZ_CHECK(secs <= http::HttpResponse::kMaxRetryAfterSeconds, "Retry-After \"%s\" = %ld s is past the cap",
             Excerpt(resp.headers["retry-after"]).c_str(), secs);
  return 0;
}
