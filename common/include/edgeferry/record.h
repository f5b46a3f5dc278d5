// Record: one reading or message, the unit that flows source -> buffer -> sink.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgeferry {

// What the payload bytes are. Sources set it from their configuration or by
// detection; the buffer stores it; sinks use it to encode the envelope.
enum class ContentType : uint8_t {
  kBinary = 0,
  kJson = 1,   // one JSON text (RFC 8259) by ValidateJson where the record entered; the envelope checks again
  kNmea = 2,   // NMEA 0183 sentence, without the trailing CR LF
  kCsv = 3,
  kText = 4,
};

// "json", "nmea", "csv", "text", "binary".
std::string_view ContentTypeName(ContentType t);
// Inverse of ContentTypeName; nullopt for an unknown name.
std::optional<ContentType> ParseContentType(std::string_view name);

// A record as a source hands it to the buffer (no seq yet). Owns its bytes.
struct Record {
  int64_t ts_ns = 0;         // ns since the Unix epoch: event time if the payload has one, else receive time
  std::string source;        // configured source name, e.g. "plant"
  std::string channel;       // MQTT topic, serial port, register block
  ContentType content_type = ContentType::kBinary;
  std::string payload;       // opaque bytes
};

// A record as the buffer returns it: the buffer-assigned seq (strictly increasing for
// the life of the store, across restarts and quarantines; gaps are possible after a
// crash, never reuse) plus the record.
struct StoredRecord {
  uint64_t seq = 0;
  Record record;
};

}  // namespace edgeferry
