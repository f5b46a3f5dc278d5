#include "edgeferry/drivers/http/http_settings.h"

#include <fmt/format.h>

#include <algorithm>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/redact.h"
#include "edgeferry/settings/common_keys.h"

namespace edgeferry::drivers::http {

using settings::kMs;
using settings::kSec;
using settings::TableReader;

namespace {

bool HasControl(std::string_view t) {
  return std::any_of(t.begin(), t.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void ReadHeaders(TableReader& r, std::map<std::string, std::string>* out) {
  const toml::table* headers = r.Table("headers");
  if (!headers) return;
  for (const auto& [k, v] : *headers) {
    const std::string key = "headers." + std::string(k.str());
    if (!v.is_string()) {
      r.Error(key, "must be a string");
    } else if (k.str().empty() || HasControl(k.str()) || k.str().find(':') != std::string_view::npos ||
               HasControl(*v.value<std::string>())) {
      // A CR or LF would add headers (or a request) of the writer's choosing (RFC 9110).
      r.Error(key, "names and values may not contain control characters or ':' in the name");
    } else {
      (*out)[std::string(k.str())] = *v.value<std::string>();
    }
  }
}

}  // namespace

TlsOptions ReadHttpTls(TableReader& r) {
  TlsOptions tls;
  TableReader tr(r.Table("tls"), r.Key("tls"), r.errors());
  settings::ReadTlsFiles(tr, &tls);
  return tls;
}

HttpSinkConfig HttpSinkType::Read(TableReader& r, const settings::Context& ctx, const BatchPolicy& batch) {
  HttpSinkConfig h;
  h.name = ctx.name;
  h.gateway_id = ctx.gateway_id;
  h.batch = batch;
  h.url = r.String("url", "", /*required=*/true);
  if (!h.url.empty() && !h.url.starts_with("http://") && !h.url.starts_with("https://")) {
    r.Error("url", fmt::format("must start with http:// or https:// (got \"{}\")", RedactUrl(h.url)));
  } else if (const std::string problem = settings::AuthorityProblem(h.url, /*allow_userinfo=*/true); !problem.empty()) {
    r.Error("url", problem);
  }
  ReadHeaders(r, &h.headers);
  h.bearer_token_file = r.String("bearer_token_file", "");
  settings::CheckReadable(r, "bearer_token_file", h.bearer_token_file);
  h.compression = *ParseCompression(r.Enum("compression", "gzip", {"none", "gzip", "zstd"}));
  h.timeout_ms = r.Duration("timeout", 30 * kSec, 100 * kMs, 3600 * kSec) / kMs;
  h.tls = ReadHttpTls(r);
  h.limits = ReadDestinationLimits(r, h.limits, 4ull << 30, 4ull << 30);
  return h;
}

SinkPtr HttpSinkType::Make(const Config& config) { return std::make_unique<HttpSink>(config); }

}  // namespace edgeferry::drivers::http
