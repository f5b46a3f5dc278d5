#include "edgeferry/drivers/envelope.h"

#include <cstring>

#include <openssl/evp.h>

#include "edgeferry/units.h"

namespace edgeferry::drivers {

namespace {
// In valid JSON a byte below 0x20 can only be whitespace between tokens (tab, CR, LF):
// none may reach the NDJSON line raw.
bool HasControlByte(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}
}  // namespace

PayloadEncoding ChoosePayloadEncoding(std::string_view payload, JsonCheck* check, size_t max_json_depth) {
  JsonCheck local;
  JsonCheck& c = check ? *check : local;
  c = ValidateJson(payload, max_json_depth);
  if (c.ok() && !HasControlByte(payload)) return PayloadEncoding::kInlineJson;
  return IsValidUtf8(payload) ? PayloadEncoding::kText : PayloadEncoding::kBase64;
}

void AppendJsonString(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool utf8 = IsValidUtf8(text);
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = begin + text.size();
  out->push_back('"');
  for (const auto* p = begin; p < end; ++p) {
    const unsigned char c = *p;
    const char ch = static_cast<char>(c);
    if (!utf8 && c >= 0x80) {
      // Keep what is well-formed, replace each ill-formed byte (as Python's errors="replace").
      const int len = Utf8SequenceLength(p, end);
      if (len == 0) {
        out->append("\\ufffd");
      } else {
        out->append(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
        p += len - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

uint64_t EnvelopeSizeBound(std::string_view gateway_id, const StoredRecord& r) {
  // Member names, seq, ts, ts_source, boot_ns, event_ts, content type, payload_encoding
  // and payload_note: < 420 bytes.
  constexpr uint64_t kFixed = 512;
  const uint64_t escaped = gateway_id.size() + r.record.source.size() + r.record.channel.size() +
                           r.record.boot_id.size() + r.record.payload.size();
  return kFixed + 6 * escaped;
}

void AppendEnvelope(std::string_view gateway_id, const StoredRecord& r, std::string* out, size_t max_json_depth) {
  out->append("{\"gateway_id\":");
  AppendJsonString(gateway_id, out);
  out->append(",\"seq\":");
  out->append(std::to_string(r.seq));
  out->append(",\"ts\":\"");
  AppendRfc3339Ns(r.record.ts_ns, out);
  out->append("\",\"ts_source\":\"");
  out->append(TsSourceName(r.record.ts_source));
  out->push_back('"');
  if (r.record.ts_source == TsSource::kUnsynced) {
    out->append(",\"boot_id\":");
    AppendJsonString(r.record.boot_id, out);
    out->append(",\"boot_ns\":");
    out->append(std::to_string(r.record.boot_ns));
  }
  if (r.record.event_ts_ns != 0) {
    out->append(",\"event_ts\":\"");
    AppendRfc3339Ns(r.record.event_ts_ns, out);
    out->push_back('"');
  }
  out->append(",\"source\":");
  AppendJsonString(r.record.source, out);
  out->append(",\"channel\":");
  // Channels (topics, device paths) come from outside: AppendJsonString replaces
  // ill-formed UTF-8 with U+FFFD, so the line stays valid JSON.
  AppendJsonString(r.record.channel, out);
  out->append(",\"content_type\":\"");
  out->append(ContentTypeName(r.record.content_type));
  out->push_back('"');
  const std::string_view payload = r.record.payload;
  // Every payload is validated here, kJson ones too: the line must be JSON whatever the
  // store holds (records from older versions, a damaged or hand-edited buffer).
  JsonCheck check;
  const PayloadEncoding encoding = ChoosePayloadEncoding(payload, &check, max_json_depth);
  if (encoding != PayloadEncoding::kInlineJson && check.verdict == JsonVerdict::kTooDeep) {
    out->append(",\"payload_note\":");
    AppendJsonString(check.reason, out);
  }
  switch (encoding) {
    case PayloadEncoding::kInlineJson:
      out->append(",\"payload\":");
      out->append(payload);
      break;
    case PayloadEncoding::kText:
      out->append(",\"payload_encoding\":\"text\",\"payload\":");
      AppendJsonString(payload, out);
      break;
    case PayloadEncoding::kBase64: {
      out->append(",\"payload_encoding\":\"base64\",\"payload\":\"");
      const size_t at = out->size();
      out->resize(at + 4 * ((payload.size() + 2) / 3) + 1);
      const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out->data() + at),
                                    reinterpret_cast<const unsigned char*>(payload.data()),
                                    static_cast<int>(payload.size()));
      out->resize(at + static_cast<size_t>(n));
      out->push_back('"');
      break;
    }
  }
  out->append("}\n");
}

}  // namespace edgeferry::drivers
