// The record envelope every sink emits: one JSON object per record, one per line
// (NDJSON). docs/envelope.md is the contract for downstream consumers.
//
//   {"gateway_id":"gw-01","seq":42,"ts":"2026-11-21T08:47:37.123456789Z",
//    "source":"plant","channel":"sensors/t1","content_type":"json","payload":{...}}
//
// payload is always the last member. When it is inline JSON (no payload_encoding
// member) the text between "payload": and the final } is the original bytes,
// verbatim. Otherwise payload_encoding is "text" (payload is a JSON string of the
// UTF-8 text) or "base64" (RFC 4648 base64 of the bytes), and payload_note says why
// a JSON payload was not inlined when the reason is its nesting depth.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "edgeferry/drivers/json_check.h"
#include "edgeferry/record.h"
#include "edgeferry/utf8.h"

namespace edgeferry::drivers {

enum class PayloadEncoding { kInlineJson, kText, kBase64 };

// How a payload will be encoded: inline when ValidateJson(payload, max_json_depth)
// accepts it and it has no byte below 0x20 (JSON whitespace tab/CR/LF would break the
// line rule), text when it is valid UTF-8, base64 otherwise. *check (optional) receives
// the validator's verdict. Pure, thread-safe.
PayloadEncoding ChoosePayloadEncoding(std::string_view payload, JsonCheck* check = nullptr,
                                      size_t max_json_depth = kMaxJsonDepth);

// IsValidUtf8 (RFC 3629) lives in common (edgeferry/utf8.h); named here as before.
using edgeferry::IsValidUtf8;

// An upper bound, in bytes, of the line AppendEnvelope writes for `record` (without the
// '\n'), computed without encoding: every input byte becomes at most 6 output bytes
// (\u00XX), plus the fixed members. Lets a sink's size limit skip the encoding for
// records far below it. Pure, thread-safe, O(1).
uint64_t EnvelopeSizeBound(std::string_view gateway_id, const StoredRecord& record);

// Appends one envelope line to *out: whatever the bytes of gateway_id, record (any
// content_type, payload, source, channel) and max_json_depth, the appended text is one
// valid JSON object (RFC 8259, UTF-8) followed by '\n', with no other byte below 0x20.
// The record's payload is validated again here (content_type kJson is not trusted).
// Pure, thread-safe, never throws except std::bad_alloc.
void AppendEnvelope(std::string_view gateway_id, const StoredRecord& record, std::string* out,
                    size_t max_json_depth = kMaxJsonDepth);

// Appends `text` as a JSON string literal (with quotes, control bytes escaped) to *out.
// Ill-formed UTF-8 bytes become U+FFFD (escaped as \ufffd), so the result is always
// valid JSON; callers that must not lose bytes check IsValidUtf8 first.
void AppendJsonString(std::string_view text, std::string* out);

}  // namespace edgeferry::drivers
