#include "edgeferry/drivers/batch_encoding.h"

#include <zlib.h>
#include <zstd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "edgeferry/drivers/envelope.h"

namespace edgeferry::drivers {

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "none";
}

std::optional<Compression> ParseCompression(std::string_view name) {
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    if (CompressionName(c) == name) return c;
  }
  return std::nullopt;
}

Result<std::string> Compress(Compression c, std::string_view data, int level) {
  if (c == Compression::kNone) return std::string(data);
  if (c == Compression::kZstd) {
    std::string out(ZSTD_compressBound(data.size()), '\0');
    const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level ? level : 3);
    if (ZSTD_isError(n)) return Status::IOError(fmt::format("zstd: {}", ZSTD_getErrorName(n)));
    out.resize(n);
    return out;
  }
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, level ? level : Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::IOError("gzip: deflateInit2 failed");
  }
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Status::IOError(fmt::format("gzip: deflate returned {}", rc));
  return out;
}

std::string EncodeNdjson(std::string_view gateway_id, std::span<const StoredRecord> batch) {
  std::string out;
  for (const auto& r : batch) AppendEnvelope(gateway_id, r, &out);
  return out;
}

namespace {
constexpr std::string_view kFields[] = {"gateway_id", "source", "channel", "prefix", "seq",
                                        "first_seq",  "last_seq", "yyyy", "mm", "dd", "HH"};
}

std::string ExpandTemplate(std::string_view tmpl, const TemplateVars& v) {
  using namespace std::chrono;
  const sys_time<nanoseconds> tp{nanoseconds(v.ts_ns)};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const auto hour = duration_cast<hours>(tp - day).count();
  std::string out;
  size_t at = 0;
  while (at < tmpl.size()) {
    const size_t open = tmpl.find('{', at);
    const size_t close = open == std::string_view::npos ? open : tmpl.find('}', open);
    if (close == std::string_view::npos) {
      out.append(tmpl.substr(at));
      break;
    }
    out.append(tmpl.substr(at, open - at));
    const std::string_view name = tmpl.substr(open + 1, close - open - 1);
    if (name == "gateway_id") out.append(v.gateway_id);
    else if (name == "source") out.append(v.source);
    else if (name == "channel") out.append(v.channel);
    else if (name == "prefix") out.append(v.prefix);
    else if (name == "seq") out.append(std::to_string(v.seq));
    else if (name == "first_seq") out.append(fmt::format("{:020}", v.first_seq));
    else if (name == "last_seq") out.append(fmt::format("{:020}", v.last_seq));
    else if (name == "yyyy") out.append(fmt::format("{:04}", static_cast<int>(ymd.year())));
    else if (name == "mm") out.append(fmt::format("{:02}", static_cast<unsigned>(ymd.month())));
    else if (name == "dd") out.append(fmt::format("{:02}", static_cast<unsigned>(ymd.day())));
    else if (name == "HH") out.append(fmt::format("{:02}", hour));
    else out.append(tmpl.substr(open, close - open + 1));
    at = close + 1;
  }
  return out;
}

std::string UnknownTemplateField(std::string_view tmpl) {
  size_t at = 0;
  while ((at = tmpl.find('{', at)) != std::string_view::npos) {
    const size_t close = tmpl.find('}', at);
    if (close == std::string_view::npos) return std::string(tmpl.substr(at));
    const std::string_view name = tmpl.substr(at + 1, close - at - 1);
    if (std::find(std::begin(kFields), std::end(kFields), name) == std::end(kFields)) return std::string(name);
    at = close + 1;
  }
  return "";
}

}  // namespace edgeferry::drivers
