#include "edgeferry/drivers/serial/serial_settings.h"

#include <fmt/format.h>

#include "edgeferry/settings/common_keys.h"

namespace edgeferry::drivers::serial {

using settings::kMs;
using settings::kSec;
using settings::TableReader;

namespace {

void ReadLineSettings(TableReader& r, SerialSourceConfig* c) {
  c->baud = r.Int<unsigned>("baud", 9600, 50, 4'000'000);
  c->data_bits = r.Int<unsigned>("data_bits", 8, 5, 8);
  const std::string parity = r.Enum("parity", "none", {"none", "even", "odd"});
  c->parity = parity == "even" ? Parity::kEven : parity == "odd" ? Parity::kOdd : Parity::kNone;
  if (const toml::node* n = r.Node("stop_bits")) {
    const std::string v = n->is_integer() ? std::to_string(*n->value<int64_t>()) : n->value_or(std::string());
    if (v == "1") {
      c->stop_bits = StopBits::kOne;
    } else if (v == "1.5") {
      c->stop_bits = StopBits::kOnePointFive;
    } else if (v == "2") {
      c->stop_bits = StopBits::kTwo;
    } else {
      r.Error("stop_bits", "must be 1, 2 or \"1.5\"");
    }
  }
  const std::string flow = r.Enum("flow_control", "none", {"none", "rts_cts", "xon_xoff"});
  c->flow_control = flow == "rts_cts"    ? FlowControl::kHardware
                    : flow == "xon_xoff" ? FlowControl::kSoftware
                                         : FlowControl::kNone;
}

void ReadFraming(TableReader& r, FramingConfig* f) {
  const std::string framing = r.Enum("framing", "line", {"line", "delimiter", "fixed"});
  f->max_frame_bytes = r.Bytes<size_t>("max_frame_bytes", 4096, 1, 16u << 20);
  f->delimiter = r.String("delimiter", "");
  f->frame_bytes = r.Int<size_t>("frame_bytes", 0, 0, 16u << 20);
  const std::string start_hex = r.String("frame_start", "");
  if (start_hex.size() % 2 != 0 || start_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    r.Error("frame_start", "must be hex bytes, e.g. \"aa55\"");
  } else {
    for (size_t i = 0; i < start_hex.size(); i += 2) {
      f->frame_start.push_back(static_cast<char>(std::stoi(start_hex.substr(i, 2), nullptr, 16)));
    }
  }
  if (framing == "delimiter") {
    f->mode = FramingConfig::Mode::kDelimiter;
    if (f->delimiter.empty()) r.Error("delimiter", "is required with framing = \"delimiter\"");
  } else if (framing == "fixed") {
    f->mode = FramingConfig::Mode::kFixed;
    if (f->frame_bytes == 0) r.Error("frame_bytes", "is required with framing = \"fixed\"");
    if (f->frame_start.size() > f->frame_bytes) r.Error("frame_start", "is longer than frame_bytes");
  } else {
    if (!f->delimiter.empty()) r.Error("delimiter", "needs framing = \"delimiter\"");
    if (f->frame_bytes) r.Error("frame_bytes", "needs framing = \"fixed\"");
  }
}

void ReadCsv(TableReader& r, const std::string& format, CsvOptions* csv) {
  if (const toml::node* n = r.Node("csv_columns")) {
    if (!n->is_array()) {
      r.Error("csv_columns", "must be a list of column names");
    } else {
      for (const auto& col : *n->as_array()) {
        if (!col.is_string()) {
          r.Error("csv_columns", "must be a list of column names");
          break;
        }
        csv->columns.push_back(*col.value<std::string>());
      }
    }
  }
  const std::string sep = r.String("csv_separator", ",");
  if (sep.size() != 1) r.Error("csv_separator", "must be one character");
  csv->separator = sep.empty() ? ',' : sep[0];
  csv->decimal_comma = r.Bool("csv_decimal_comma", false);
  if (csv->decimal_comma && csv->separator == ',') {
    r.Error("csv_decimal_comma", "needs a csv_separator other than \",\"");
  }
  if (format != "csv" && (r.Has("csv_columns") || r.Has("csv_separator") || r.Has("csv_decimal_comma"))) {
    r.Error("format", "csv_* keys need format = \"csv\"");
  }
}

}  // namespace

SerialSourceConfig SerialSourceType::Read(TableReader& r, const settings::Context& ctx) {
  SerialSourceConfig c;
  c.name = ctx.name;
  c.device = r.String("device", "", /*required=*/true);
  ReadLineSettings(r, &c);
  const std::string format = r.Enum("format", "nmea", {"nmea", "csv", "json", "raw"});
  c.format = format == "csv" ? Format::kCsv : format == "json" ? Format::kJson
             : format == "raw" ? Format::kRaw : Format::kNmea;
  ReadFraming(r, &c.framing);
  c.channel = r.String("channel", "");
  ReadCsv(r, format, &c.csv);
  c.reopen_min_ns = r.Duration("reopen_min", c.reopen_min_ns, 10 * kMs, 3600 * kSec);
  c.reopen_max_ns = r.Duration("reopen_max", c.reopen_max_ns, 10 * kMs, 3600 * kSec);
  if (c.reopen_max_ns < c.reopen_min_ns) r.Error("reopen_max", "must not be below reopen_min");
  return c;
}

SourcePtr SerialSourceType::Make(const Config& config, Ingest& ingest) {
  return std::make_unique<SerialSource>(config, ingest);
}

}  // namespace edgeferry::drivers::serial
