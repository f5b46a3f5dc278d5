// Frame parsers: turn one serial frame into a record's fields, or say why it cannot
// be one (the source then dead-letters the frame with that reason).
// Not thread-safe; one per source (the CSV parser remembers its header).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::drivers::serial {

struct ParsedFrame {
  bool skip = false;                   // not a record and nothing wrong (a CSV header line)
  Status error;                        // non-OK: dead-letter the frame; the message is the reason
  std::string channel;                 // empty: the source's channel (the device)
  ContentType content_type = ContentType::kBinary;
  std::string payload;
  std::optional<int64_t> event_ts_ns;  // ns since epoch, when the frame carries its own time
  std::string junk;                    // bytes before an NMEA sentence start, dead-lettered apart
};

class FrameParser {
 public:
  virtual ~FrameParser() = default;
  virtual ParsedFrame Parse(std::string_view frame) = 0;
  // Called when the device is (re)opened.
  virtual void Reset() {}
};

struct CsvOptions {
  std::vector<std::string> columns;  // names; empty = take them from a header line
  char separator = ',';
  bool decimal_comma = false;        // "21,5" is 21.5 (needs a separator other than ',')
};

// NMEA 0183: validates the checksum; channel = address field ("GPRMC"); event time
// from RMC and ZDA. Bytes before the last '$' or '!' of a frame are reported as junk,
// so a sentence glued to binary garbage is still stored.
std::unique_ptr<FrameParser> MakeNmeaParser();
// CSV row -> JSON object keyed by column name; numbers typed, empty cells null. With no
// configured columns the first line after each open (and any repeat of it) is the header.
// Errors (the row is dead-lettered): a field count other than the header's, a field or
// column name that is not valid UTF-8 (RFC 3629).
std::unique_ptr<FrameParser> MakeCsvParser(CsvOptions options);
// One JSON text (RFC 8259) per frame, validated by ValidateJson (every byte, depth <=
// kMaxJsonDepth); otherwise an error with the validator's reason.
std::unique_ptr<FrameParser> MakeJsonLinesParser();
// The frame bytes as they are (content type binary).
std::unique_ptr<FrameParser> MakeRawParser();

}  // namespace edgeferry::drivers::serial
