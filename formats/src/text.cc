#include "edgeferry/formats/text.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace edgeferry::formats {

namespace {
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

void Trim(std::string* s) {
  size_t b = 0, e = s->size();
  while (b < e && IsBlank((*s)[b])) ++b;
  while (e > b && IsBlank((*s)[e - 1])) --e;
  *s = s->substr(b, e - b);
}
}  // namespace

std::vector<std::string> SplitCsvRow(std::string_view row, char separator, size_t max_cells) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < row.size(); ++i) {
    const char c = row[i];
    if (c == '"') {
      if (quoted && i + 1 < row.size() && row[i + 1] == '"') {
        cells.back().push_back('"');
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == separator && !quoted) {
      if (cells.size() > max_cells) break;  // more than the caller takes: it refuses the row
      cells.emplace_back();
    } else {
      cells.back().push_back(c);
    }
  }
  for (auto& cell : cells) Trim(&cell);
  return cells;
}

bool IsJsonNumber(std::string_view t) {
  size_t i = 0;
  const auto digit = [&](size_t at) { return at < t.size() && t[at] >= '0' && t[at] <= '9'; };
  if (i < t.size() && t[i] == '-') ++i;
  if (!digit(i)) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == t.size();
}

bool IsJsonNumberInRange(std::string_view t) {
  if (!IsJsonNumber(t)) return false;
  // strtod, as JSON readers use it: HUGE_VAL on overflow, 0 or a denormal on underflow.
  // The agent never calls setlocale, so the decimal point is '.'.
  const std::string copy(t);
  return std::isfinite(std::strtod(copy.c_str(), nullptr));
}

Result<std::vector<KeyValue>> SplitKeyValues(std::string_view text, char kv_separator, char pair_separator,
                                             size_t max_pairs) {
  std::vector<KeyValue> out;
  const auto is_pair_end = [&](char c) { return pair_separator == 0 ? IsBlank(c) : c == pair_separator; };
  size_t i = 0;
  while (true) {
    while (i < text.size() && (IsBlank(text[i]) || (pair_separator != 0 && text[i] == pair_separator))) ++i;
    if (i >= text.size()) break;
    if (out.size() == max_pairs) return Status::InvalidArgument(fmt::format("more than {} key=value pairs", max_pairs));
    KeyValue kv;
    const size_t pair_at = i;
    // Reasons name byte offsets, never the bytes: a payload is not trusted to be UTF-8
    // (or short), and a reason ends up in status and the dead letter queue.
    while (i < text.size() && text[i] != kv_separator && !is_pair_end(text[i])) kv.key.push_back(text[i++]);
    if (i >= text.size() || text[i] != kv_separator) {
      return Status::InvalidArgument(fmt::format("the pair at byte {} has no '{}'", pair_at, kv_separator));
    }
    if (kv.key.empty()) return Status::InvalidArgument(fmt::format("a pair has an empty key (at byte {})", i));
    ++i;  // the separator
    if (i < text.size() && text[i] == '"') {
      const size_t quote_at = i;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        const char c = text[i++];
        if (c == '\\' && i < text.size() && (text[i] == '"' || text[i] == '\\')) {
          kv.value.push_back(text[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          kv.value.push_back(c);
        }
      }
      if (!closed) return Status::InvalidArgument(fmt::format("the quote at byte {} is not closed", quote_at));
      if (i < text.size() && !is_pair_end(text[i])) {
        return Status::InvalidArgument(fmt::format("text right after the quoted value at byte {}", quote_at));
      }
    } else {
      while (i < text.size() && !is_pair_end(text[i])) kv.value.push_back(text[i++]);
      if (pair_separator != 0) Trim(&kv.value);
    }
    if (pair_separator != 0) Trim(&kv.key);
    out.push_back(std::move(kv));
  }
  return out;
}

}  // namespace edgeferry::formats
