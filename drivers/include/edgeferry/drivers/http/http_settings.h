// The HTTP sink as a configuration type (sink_settings.h explains the shape), and the
// [<path>.tls] keys of every HTTPS client (HTTP, Kinesis, S3). Keys and defaults:
// docs/configuration.md, [sinks.<name>] type = "http".
#pragma once

#include <string_view>
#include <vector>

#include "edgeferry/drivers/http/http_client.h"
#include "edgeferry/drivers/http/http_sink.h"
#include "edgeferry/drivers/sink_settings.h"

namespace edgeferry::drivers::http {

struct HttpSinkType {
  static constexpr std::string_view kName = "http";
  static constexpr BatchPolicy kDefaultBatch{1000, 1ull << 20, 1'000'000'000};
  using Config = HttpSinkConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx, const BatchPolicy& batch);
  static SinkPtr Make(const Config& config);
  // Header values: an API key is often one (the bearer token stays in its file).
  static std::vector<std::string> Secrets(const Config& config) {
    std::vector<std::string> out;
    for (const auto& [name, value] : config.headers) out.push_back(value);
    return out;
  }
};

// [<r's path>.tls]: ca_file, cert_file, key_file, verify (all optional).
TlsOptions ReadHttpTls(settings::TableReader& r);

}  // namespace edgeferry::drivers::http
