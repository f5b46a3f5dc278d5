// Line-oriented text formats a device or an API sends: CSV rows and key=value pairs,
// and which cells are numbers. Pure functions, thread-safe, linear in the input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/status.h"

namespace edgeferry::formats {

// Splits one CSV row (RFC 4180 quoting: a field in double quotes may hold the
// separator, and "" inside it is one quote). Spaces and tabs around each cell are
// trimmed. At least one cell; a quote left open runs to the end of the row. Stops at
// `max_cells` + 1 cells (a hostile row of separators costs no more): a row with more
// cells than the caller takes comes back with max_cells + 1.
std::vector<std::string> SplitCsvRow(std::string_view row, char separator, size_t max_cells = SIZE_MAX - 1);

// True when `text` is a number in RFC 8259's grammar ("-0.5", "12", "1e3"; not "+1",
// "01", ".5", "NaN" or "inf"): a cell that stays a JSON number.
bool IsJsonNumber(std::string_view text);

// IsJsonNumber, and within a double's range: "1e999" is in the grammar, but a JSON
// reader (nlohmann, most cloud parsers) refuses it as an overflow, so it must be text.
// An underflow ("1e-999") reads as 0 and stays a number.
bool IsJsonNumberInRange(std::string_view text);

struct KeyValue {
  std::string key, value;
};
// "temp=21.5 hum=40 site=\"line 1\"": pairs split at `pair_separator` (0 = any run of
// spaces and tabs), key and value at the first `kv_separator`; a value in double quotes
// may hold either separator, with \" and \\ escapes. Errors (InvalidArgument, naming byte
// offsets, never the payload's bytes): a pair without the separator, an empty key, an
// unterminated quote. At most `max_pairs` pairs.
Result<std::vector<KeyValue>> SplitKeyValues(std::string_view text, char kv_separator = '=',
                                             char pair_separator = 0, size_t max_pairs = 1024);

}  // namespace edgeferry::formats
