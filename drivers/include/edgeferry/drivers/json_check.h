// The one JSON validator for JSON that arrives from outside (MQTT payloads, serial
// lines, CSV cells, the envelope's inline decision). Spec: RFC 8259, with a nesting
// bound that RFC 8259 section 9 allows a parser to set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgeferry::drivers {

// Default nesting bound: arrays and objects deeper than this are refused. Common
// consumers fail far deeper (Python's json about 1,000 levels, nlohmann's DOM destructor
// recurses): 64 leaves every real sensor document inline.
inline constexpr size_t kMaxJsonDepth = 64;

enum class JsonVerdict : uint8_t {
  kValid,    // exactly one JSON text, every byte of the input, depth <= max_depth
  kInvalid,  // not JSON: syntax, NUL byte, invalid UTF-8, trailing bytes, empty/whitespace only
  kTooDeep,  // well-formed up to the point where nesting exceeded max_depth (rest not read)
};

struct JsonCheck {
  JsonVerdict verdict = JsonVerdict::kValid;
  size_t offset = 0;   // kInvalid: 0-based offset of the byte at which the input stopped being JSON
                       // (input size when it ended too early); else 0
  std::string reason;  // empty when valid; printable ASCII, <= ~200 bytes, safe for logs and dead letters
  bool ok() const { return verdict == JsonVerdict::kValid; }
};

// Validates `bytes` (all bytes.size() of them: an embedded NUL is an error, not an end)
// as one JSON text with at most `max_depth` nested arrays/objects. Strings must be
// valid UTF-8 (RFC 3629; lone surrogate escapes are refused). Iterative: attacker-chosen
// depth costs no stack. Pure, thread-safe, never throws; O(bytes.size()) time, memory
// bounded by the longest string in the input.
// Reasons: "NUL byte at N", "nesting depth > 64", "invalid JSON at byte N: ...".
JsonCheck ValidateJson(std::string_view bytes, size_t max_depth = kMaxJsonDepth);

}  // namespace edgeferry::drivers
