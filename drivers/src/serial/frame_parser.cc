#include "edgeferry/drivers/serial/frame_parser.h"

#include <fmt/format.h>

#include "edgeferry/drivers/envelope.h"
#include "edgeferry/drivers/json_check.h"
#include "edgeferry/formats/nmea.h"
#include "edgeferry/formats/text.h"

namespace edgeferry::drivers::serial {

namespace {

using formats::NmeaAddress;
using formats::NmeaEventTimeNs;
using formats::ValidateNmeaSentence;

ParsedFrame Fail(std::string reason) {
  ParsedFrame p;
  p.error = Status::InvalidArgument(reason);
  return p;
}

class NmeaParser final : public FrameParser {
 public:
  ParsedFrame Parse(std::string_view frame) override {
    const auto start = frame.find_last_of("$!");
    if (start == std::string_view::npos) {
      return Fail(fmt::format("no NMEA sentence start ($ or !) in {} bytes", frame.size()));
    }
    const std::string_view sentence = frame.substr(start);
    ParsedFrame p;
    p.junk = std::string(frame.substr(0, start));
    if (Status st = ValidateNmeaSentence(sentence); !st.ok()) {
      p.error = st;
      p.payload = std::string(sentence);
      return p;
    }
    p.channel = std::string(NmeaAddress(sentence));
    p.content_type = ContentType::kNmea;
    p.payload = std::string(sentence);
    p.event_ts_ns = NmeaEventTimeNs(sentence);
    return p;
  }
};

class CsvParser final : public FrameParser {
 public:
  explicit CsvParser(CsvOptions o) : opt_(std::move(o)), columns_(opt_.columns) {}

  void Reset() override {
    if (opt_.columns.empty()) {
      columns_.clear();
      header_line_.clear();
    }
  }

  ParsedFrame Parse(std::string_view frame) override {
    std::vector<std::string> cells = Split(frame);
    if (opt_.columns.empty() && (columns_.empty() || frame == header_line_)) {
      columns_ = std::move(cells);
      header_line_ = std::string(frame);
      ParsedFrame header;
      header.skip = true;
      return header;
    }
    if (cells.size() != columns_.size()) {
      return Fail(fmt::format("row has {} fields, expected {} ({})", cells.size(), columns_.size(),
                              fmt::join(columns_, std::string(1, opt_.separator))));
    }
    // A name or cell that is not UTF-8 cannot become a JSON string without losing bytes:
    // the row is dead-lettered whole (its bytes kept), never patched.
    for (size_t i = 0; i < cells.size(); ++i) {
      if (!IsValidUtf8(columns_[i])) return Fail(fmt::format("column {} name is not valid UTF-8", i + 1));
      if (!IsValidUtf8(cells[i])) {
        return Fail(fmt::format("field {} ({}) is not valid UTF-8", i + 1, columns_[i]));
      }
    }
    std::string json = "{";
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) json.push_back(',');
      AppendJsonString(columns_[i], &json);
      json.push_back(':');
      AppendValue(cells[i], &json);
    }
    json.push_back('}');
    ParsedFrame p;
    p.content_type = ContentType::kJson;
    p.payload = std::move(json);
    return p;
  }

 private:
  std::vector<std::string> Split(std::string_view line) const { return formats::SplitCsvRow(line, opt_.separator); }

  void AppendValue(std::string cell, std::string* out) const {
    if (cell.empty()) {
      out->append("null");
      return;
    }
    if (opt_.decimal_comma) {
      for (auto& c : cell) {
        if (c == ',') c = '.';
      }
    }
    // A JSON number (RFC 8259 grammar, within a double's range) stays a number, written
    // as the device wrote it; "1e999" would make the line unreadable, so it is text.
    if (formats::IsJsonNumberInRange(cell)) {
      out->append(cell);
    } else {
      AppendJsonString(cell, out);  // UTF-8: checked by Parse
    }
  }

  const CsvOptions opt_;
  std::vector<std::string> columns_;
  std::string header_line_;
};

class JsonLinesParser final : public FrameParser {
 public:
  ParsedFrame Parse(std::string_view frame) override {
    if (const JsonCheck check = ValidateJson(frame); !check.ok()) return Fail(check.reason);
    ParsedFrame p;
    p.content_type = ContentType::kJson;
    p.payload = std::string(frame);
    return p;
  }
};

class RawParser final : public FrameParser {
 public:
  ParsedFrame Parse(std::string_view frame) override {
    ParsedFrame p;
    p.content_type = ContentType::kBinary;
    p.payload = std::string(frame);
    return p;
  }
};

}  // namespace

std::unique_ptr<FrameParser> MakeNmeaParser() { return std::make_unique<NmeaParser>(); }
std::unique_ptr<FrameParser> MakeCsvParser(CsvOptions options) { return std::make_unique<CsvParser>(std::move(options)); }
std::unique_ptr<FrameParser> MakeJsonLinesParser() { return std::make_unique<JsonLinesParser>(); }
std::unique_ptr<FrameParser> MakeRawParser() { return std::make_unique<RawParser>(); }

}  // namespace edgeferry::drivers::serial
