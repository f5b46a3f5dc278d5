// The record envelope every sink emits: one JSON object per record, one per line
// (NDJSON). docs/envelope.md is the contract for downstream consumers.
//
//   {"gateway_id":"gw-01","seq":42,"ts":"2026-11-21T08:47:37.123456789Z",
//    "source":"plant","channel":"sensors/t1","content_type":"json","payload":{...}}
//
// payload is always the last member. When it is inline JSON (no payload_encoding
// member) the text between "payload": and the final } is the original bytes,
// verbatim. Otherwise payload_encoding is "text" (payload is a JSON string of the
// UTF-8 text) or "base64" (RFC 4648 base64 of the bytes).
#pragma once

#include <string>
#include <string_view>

#include "edgeferry/record.h"

namespace edgeferry::drivers {

enum class PayloadEncoding { kInlineJson, kText, kBase64 };

// How a payload will be encoded: inline when it is one valid JSON text (RFC 8259)
// without CR or LF bytes, text when it is valid UTF-8, base64 otherwise.
PayloadEncoding ChoosePayloadEncoding(std::string_view payload);

// True when `bytes` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates).
bool IsValidUtf8(std::string_view bytes);

// Appends one envelope line, ending in '\n', to *out. Thread-safe.
void AppendEnvelope(std::string_view gateway_id, const StoredRecord& record, std::string* out);

// Appends `text` as a JSON string literal (with quotes) to *out. `text` must be UTF-8.
void AppendJsonString(std::string_view text, std::string* out);

}  // namespace edgeferry::drivers
