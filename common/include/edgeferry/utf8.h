// UTF-8 validity (RFC 3629): what may become a JSON string without losing bytes.
// Pure functions, thread-safe.
#pragma once

#include <string_view>

namespace edgeferry {

// Length in bytes (1-4) of the well-formed UTF-8 sequence starting at `p` (no
// overlongs, no surrogates, <= U+10FFFF, not past `end`), or 0 when the bytes there
// are not one. Requires p < end.
int Utf8SequenceLength(const unsigned char* p, const unsigned char* end);

// True when `bytes` is well-formed UTF-8 throughout.
bool IsValidUtf8(std::string_view bytes);

}  // namespace edgeferry
