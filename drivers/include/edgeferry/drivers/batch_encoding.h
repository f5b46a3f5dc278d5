// What sinks share to turn a batch into bytes: NDJSON envelopes, compression, and
// templates for topics, object keys and partition keys.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::drivers {

enum class Compression { kNone, kGzip, kZstd };
std::string_view CompressionName(Compression c);  // "none", "gzip", "zstd"
std::optional<Compression> ParseCompression(std::string_view name);

// gzip (RFC 1952, zlib) or zstd (RFC 8878) at `level` (0 = the codec's default).
// kNone returns the input. Errors: IOError from the codec.
Result<std::string> Compress(Compression c, std::string_view data, int level = 0);

// The batch as envelope lines (envelope.h), each ending in '\n'.
std::string EncodeNdjson(std::string_view gateway_id, std::span<const StoredRecord> batch);

// Values a template may use. {gateway_id} {source} {channel} {seq} {first_seq}
// {last_seq} and, from `ts_ns` (UTC), {yyyy} {mm} {dd} {HH}. {prefix} is `prefix`.
struct TemplateVars {
  std::string_view gateway_id, source, channel, prefix;
  uint64_t seq = 0, first_seq = 0, last_seq = 0;
  int64_t ts_ns = 0;
};
// Replaces each {name}; an unknown name is kept as it is (config validation rejects it).
std::string ExpandTemplate(std::string_view tmpl, const TemplateVars& vars);
// The first unknown {name} in `tmpl`, or empty when all are known.
std::string UnknownTemplateField(std::string_view tmpl);

}  // namespace edgeferry::drivers
