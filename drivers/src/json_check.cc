#include "edgeferry/drivers/json_check.h"

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace edgeferry::drivers {

namespace {

// nlohmann's messages quote the input ("last read: '...'"): keep them printable and short.
std::string Printable(std::string_view s) {
  std::string out;
  for (const char ch : s.substr(0, 160)) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(c >= 0x20 && c < 0x7f ? ch : '?');
  }
  if (s.size() > 160) out += "...";
  return out;
}

// Counts nesting and stops the parse past the bound. nlohmann's SAX parser keeps its own
// state on the heap (a vector), so neither side recurses on the input's depth. Not
// derived from json_sax_t: sax_parse is a template, so the callbacks inline.
class DepthBoundSax final {
 public:
  using json = nlohmann::json;
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit DepthBoundSax(size_t max_depth, JsonCheck* out) : max_depth_(max_depth), out_(out) {}

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(number_integer_t) { return true; }
  bool number_unsigned(number_unsigned_t) { return true; }
  bool number_float(number_float_t, const string_t&) { return true; }
  bool string(string_t&) { return true; }
  bool binary(binary_t&) { return true; }
  bool start_object(std::size_t) { return Enter(); }
  bool key(string_t&) { return true; }
  bool end_object() { return Leave(); }
  bool start_array(std::size_t) { return Enter(); }
  bool end_array() { return Leave(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::json::exception& e) {
    out_->verdict = JsonVerdict::kInvalid;
    out_->offset = position > 0 ? position - 1 : 0;
    // e.what(): "[json.exception.parse_error.101] parse error at line 1, column 8: <detail>"
    std::string_view what = e.what();
    if (const size_t at = what.find(": "); at != std::string_view::npos) what.remove_prefix(at + 2);
    out_->reason = fmt::format("invalid JSON at byte {}: {}", out_->offset, Printable(what));
    return false;
  }

 private:
  bool Enter() {
    if (++depth_ <= max_depth_) return true;
    out_->verdict = JsonVerdict::kTooDeep;
    out_->reason = fmt::format("nesting depth > {}", max_depth_);
    return false;
  }
  bool Leave() {
    --depth_;
    return true;
  }

  const size_t max_depth_;
  JsonCheck* const out_;
  size_t depth_ = 0;
};

}  // namespace

JsonCheck ValidateJson(std::string_view bytes, size_t max_depth) {
  JsonCheck check;
  // nlohmann's lexer takes '\0' for the end of input: everything after it would go unread.
  if (const void* nul = std::memchr(bytes.data(), '\0', bytes.size())) {
    check.verdict = JsonVerdict::kInvalid;
    check.offset = static_cast<size_t>(static_cast<const char*>(nul) - bytes.data());
    check.reason = fmt::format("NUL byte at {}", check.offset);
    return check;
  }
  // nlohmann skips a leading UTF-8 byte order mark; RFC 8259 §8.1 lets a parser ignore
  // it, but an inlined payload must be a JSON text that any consumer reads, so it is not.
  if (bytes.starts_with("\xEF\xBB\xBF")) {
    check.verdict = JsonVerdict::kInvalid;
    check.reason = "byte order mark at 0";
    return check;
  }
  DepthBoundSax sax(max_depth, &check);
  try {
    const bool ok = nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &sax, nlohmann::json::input_format_t::json,
                                              /*strict=*/true);
    if (!ok && check.ok()) {  // a callback said stop without saying why: cannot happen, stay safe
      check.verdict = JsonVerdict::kInvalid;
      check.reason = "invalid JSON";
    }
  } catch (const std::exception& e) {  // sax_parse reports through parse_error; belt and braces
    check.verdict = JsonVerdict::kInvalid;
    check.reason = "invalid JSON: " + Printable(e.what());
  }
  return check;
}

}  // namespace edgeferry::drivers
