#include "edgeferry/drivers/envelope.h"

#include <cstring>

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "edgeferry/units.h"

namespace edgeferry::drivers {

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p < len) return false;
    for (int i = 1; i < len; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += len;
  }
  return true;
}

namespace {
// Two memchr scans: find_first_of("\r\n") calls memchr once per payload byte.
bool HasLineBreak(std::string_view s) {
  return std::memchr(s.data(), '\n', s.size()) != nullptr || std::memchr(s.data(), '\r', s.size()) != nullptr;
}
}  // namespace

PayloadEncoding ChoosePayloadEncoding(std::string_view payload) {
  if (!IsValidUtf8(payload)) return PayloadEncoding::kBase64;
  if (!payload.empty() && !HasLineBreak(payload) &&
      nlohmann::json::accept(payload)) {
    return PayloadEncoding::kInlineJson;
  }
  return PayloadEncoding::kText;
}

void AppendJsonString(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
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

void AppendEnvelope(std::string_view gateway_id, const StoredRecord& r, std::string* out) {
  out->append("{\"gateway_id\":");
  AppendJsonString(gateway_id, out);
  out->append(",\"seq\":");
  out->append(std::to_string(r.seq));
  out->append(",\"ts\":\"");
  AppendRfc3339Ns(r.record.ts_ns, out);
  out->append("\",\"source\":");
  AppendJsonString(r.record.source, out);
  out->append(",\"channel\":");
  // Channels (topics, device paths) come from outside: never trust them to be UTF-8.
  if (IsValidUtf8(r.record.channel)) {
    AppendJsonString(r.record.channel, out);
  } else {
    AppendJsonString("<invalid utf-8>", out);
  }
  out->append(",\"content_type\":\"");
  out->append(ContentTypeName(r.record.content_type));
  out->push_back('"');
  const std::string_view payload = r.record.payload;
  // kJson was validated where the record entered (record.h): only the NDJSON line
  // rule (no CR/LF inside) and UTF-8 are checked again, not the whole grammar.
  const PayloadEncoding encoding =
      r.record.content_type == ContentType::kJson && !payload.empty() &&
              !HasLineBreak(payload) && IsValidUtf8(payload)
          ? PayloadEncoding::kInlineJson
          : ChoosePayloadEncoding(payload);
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
