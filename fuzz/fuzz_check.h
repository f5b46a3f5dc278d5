// Helpers shared by the fuzz targets: invariant checks that abort (libFuzzer then
// saves the input as a crash reproducer) and a strict JSON check.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

// Aborts with the message when an invariant does not hold: a finding, not a crash.
#define FUZZ_CHECK(cond, ...)                                              \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d): ", #cond,       \
                   __FILE__, __LINE__);                                    \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fputc('\n', stderr);                                            \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

namespace edgeferry::fuzz {

// Nesting a consumer must be able to read: the bound for payloads (64) plus
// the envelope object itself. Python's json, simdjson and nlohmann all read this.
inline constexpr int kMaxJsonDepth = 65;

// Deepest [ / { nesting of a JSON text (strings skipped); the text must be valid.
inline int JsonDepth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// Why `text` is not one strict RFC 8259 JSON text, or empty when it is. nlohmann's
// lexer ends its input at a NUL byte, so a NUL is checked apart: no valid JSON text
// holds a raw NUL (not allowed in strings, not whitespace).
inline std::string StrictJsonError(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return "raw NUL byte";
  if (!nlohmann::json::accept(std::string(text))) return "nlohmann rejects it";
  if (JsonDepth(text) > kMaxJsonDepth) return "nested deeper than kMaxJsonDepth";
  return {};
}

// A printable excerpt of bytes for a failure message.
inline std::string Excerpt(std::string_view bytes, size_t max = 200) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

// Reads the fuzz input front to back: small numbers first, the rest as bytes.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(reinterpret_cast<const char*>(data)), n_(size) {}
  uint8_t Byte() {
    if (n_ == 0) return 0;
    --n_;
    return static_cast<uint8_t>(*p_++);
  }
  // Up to `max` bytes, ending at the first `stop` byte (consumed, not returned).
  std::string_view Until(char stop, size_t max) {
    size_t i = 0;
    while (i < n_ && i < max && p_[i] != stop) ++i;
    std::string_view s(p_, i);
    const size_t used = i < n_ && p_[i] == stop ? i + 1 : i;
    p_ += used;
    n_ -= used;
    return s;
  }
  std::string_view Take(size_t max) {
    const size_t k = std::min(max, n_);
    std::string_view s(p_, k);
    p_ += k;
    n_ -= k;
    return s;
  }
  std::string_view Rest() { return Take(n_); }
  size_t size() const { return n_; }

 private:
  const char* p_;
  size_t n_;
};

}  // namespace edgeferry::fuzz
