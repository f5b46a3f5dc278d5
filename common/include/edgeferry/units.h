// Parsing and printing of the sizes and durations operators write in config files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgeferry {

// "4096", "512B", "64KiB", "16MiB", "1GiB" (binary units; "KB"/"MB"/"GB" decimal) -> bytes.
// nullopt on a malformed string or a value over 2^62.
std::optional<uint64_t> ParseBytes(std::string_view text);

// "250ms", "30s", "15m" (or "15min"), "6h", "7d", "0" -> nanoseconds.
// A bare number is rejected (units are required) except "0".
std::optional<int64_t> ParseDurationNs(std::string_view text);

// 1536 -> "1.5 KiB"; for logs and summaries.
std::string FormatBytes(uint64_t bytes);

// ns since the Unix epoch -> RFC 3339 UTC with 9 fractional digits,
// e.g. "2026-11-21T08:47:37.123456789Z". Appends to *out.
void AppendRfc3339Ns(int64_t ts_ns, std::string* out);

}  // namespace edgeferry
