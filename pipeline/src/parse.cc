#include <fmt/format.h>
#include <re2/re2.h>

#include <charconv>
#include <cmath>

#include "edgeferry/formats/nmea.h"
#include "edgeferry/formats/text.h"
#include "edgeferry/units.h"
#include "edgeferry/utf8.h"
#include "json_field.h"
#include "processors.h"

namespace edgeferry::pipeline {

namespace {

constexpr size_t kMaxPatternBytes = 4096;
constexpr int kMaxGroups = 64;

RE2::Options PatternOptions() {
  RE2::Options o;
  o.set_log_errors(false);   // a bad pattern is reported by the config check, not on stderr
  o.set_max_mem(8 << 20);    // bounds the compiled program and the DFA cache
  return o;
}

// A cell as JSON: a number when it is one in RFC 8259's grammar (integers exactly,
// within int64/uint64), null when empty, else a string, which must be UTF-8.
Result<nlohmann::json> Typed(std::string_view cell, std::string_view name) {
  if (cell.empty()) return nlohmann::json(nullptr);
  if (formats::IsJsonNumber(cell)) {
    const char* b = cell.data();
    const char* e = b + cell.size();
    if (cell.find_first_of(".eE") == std::string_view::npos) {
      int64_t i = 0;
      if (auto [p, ec] = std::from_chars(b, e, i); ec == std::errc() && p == e) return nlohmann::json(i);
      uint64_t u = 0;
      if (auto [p, ec] = std::from_chars(b, e, u); ec == std::errc() && p == e) return nlohmann::json(u);
      return nlohmann::json(std::string(cell));  // wider than 64 bits (an ICCID): exact as text
    }
    double d = 0;
    if (auto [p, ec] = std::from_chars(b, e, d); ec == std::errc() && p == e && std::isfinite(d)) {
      return nlohmann::json(d);
    }
    // Out of a double's range ("1e999"): kept as the text it is.
  }
  if (!IsValidUtf8(cell)) return Status::InvalidArgument(fmt::format("{} is not valid UTF-8", name));
  return nlohmann::json(std::string(cell));
}

std::string TimeOfDay(int64_t ns) {
  const int64_t ms = ns / 1'000'000;
  return fmt::format("{:02}:{:02}:{:02}.{:03}", ms / 3'600'000, ms / 60'000 % 60, ms / 1000 % 60, ms % 1000);
}

// A device's trailing CR/LF is not part of the record's text.
std::string_view WithoutLineEnd(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

nlohmann::json Optional(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

class Parse final : public Processor {
 public:
  explicit Parse(ParseConfig c) : c_(std::move(c)) {
    if (c_.format == ParseConfig::Format::kRegex) {
      re_ = std::make_unique<RE2>(c_.pattern, PatternOptions());
      // Group index -> name; CheckParsePattern made sure it compiles and has names.
      names_.resize(static_cast<size_t>(std::max(0, re_->NumberOfCapturingGroups())) + 1);
      for (const auto& [name, index] : re_->NamedCapturingGroups()) names_[static_cast<size_t>(index)] = name;
    }
  }

  Result<Verdict> Process(Record& r, RecordJson& json, int64_t) override {
    std::string text;  // what is parsed
    const nlohmann::json* doc = json.Get();
    if (c_.field) {
      if (doc == nullptr || !doc->is_object()) {
        return Status::InvalidArgument(fmt::format("payload is not a JSON object (content type {}), so it has no {}",
                                                   ContentTypeName(r.content_type), c_.field->text));
      }
      const nlohmann::json* v = Find(*doc, *c_.field);
      if (v == nullptr || !v->is_string()) {
        return Status::InvalidArgument(fmt::format("{} is not a string member", c_.field->text));
      }
      text = v->get<std::string>();
    } else {
      if (doc != nullptr) {
        return Status::InvalidArgument("payload is JSON already; name the string member to parse with `field`");
      }
      text = r.payload;
    }
    Result<nlohmann::json> parsed = ParseText(text);
    if (!parsed.ok()) return parsed.status();
    if (parsed->is_null()) return Verdict::kPass;  // an NMEA sentence other than RMC/GGA
    if (c_.format == ParseConfig::Format::kNmea && r.event_ts_ns == 0) {
      // RMC's date and time: the record's event time, beside its receive time (docs/envelope.md "Time").
      r.event_ts_ns = formats::NmeaEventTimeNs(WithoutLineEnd(text)).value_or(0);
    }
    if (c_.field) {
      nlohmann::json* out = json.Mutable();
      nlohmann::json* at = out;
      for (const auto& part : c_.field->parts) at = &(*at)[part];
      *at = std::move(*parsed);
    } else {
      json.Replace(std::move(*parsed));
    }
    return Verdict::kPass;
  }

 private:
  Result<nlohmann::json> ParseText(std::string_view text) const {
    switch (c_.format) {
      case ParseConfig::Format::kCsv: return Csv(text);
      case ParseConfig::Format::kKeyValue: return KeyValues(text);
      case ParseConfig::Format::kRegex: return Regex(text);
      case ParseConfig::Format::kNmea: return Nmea(text);
    }
    return Status::InvalidArgument("unknown format");
  }

  Result<nlohmann::json> Csv(std::string_view text) const {
    // One row: a trailing line end is the device's, not a cell's.
    text = WithoutLineEnd(text);
    if (text.find_first_of("\r\n") != std::string_view::npos) {
      return Status::InvalidArgument("more than one line: the csv parser takes one row per record");
    }
    std::vector<std::string> cells = formats::SplitCsvRow(text, c_.separator, c_.columns.size());
    if (cells.size() != c_.columns.size()) {
      const std::string count = cells.size() > c_.columns.size() ? fmt::format("more than {}", c_.columns.size())
                                                                  : std::to_string(cells.size());
      return Status::InvalidArgument(fmt::format("row has {} fields, expected {} ({})", count, c_.columns.size(),
                                                 fmt::join(c_.columns, std::string(1, c_.separator))));
    }
    nlohmann::json out = nlohmann::json::object();
    for (size_t i = 0; i < cells.size(); ++i) {
      if (c_.decimal_comma && formats::IsJsonNumber(Dotted(cells[i]))) cells[i] = Dotted(cells[i]);
      auto v = Typed(cells[i], fmt::format("field {} ({})", i + 1, c_.columns[i]));
      if (!v.ok()) return v.status();
      out[c_.columns[i]] = std::move(*v);
    }
    return out;
  }

  static std::string Dotted(std::string cell) {
    for (auto& ch : cell) {
      if (ch == ',') ch = '.';
    }
    return cell;
  }

  Result<nlohmann::json> KeyValues(std::string_view text) const {
    text = WithoutLineEnd(text);
    auto pairs = formats::SplitKeyValues(text, c_.kv_separator, c_.pair_separator);
    if (!pairs.ok()) return pairs.status();
    if (pairs->empty()) return Status::InvalidArgument("no key=value pair");
    nlohmann::json out = nlohmann::json::object();
    for (const auto& kv : *pairs) {
      if (!IsValidUtf8(kv.key)) return Status::InvalidArgument("a key is not valid UTF-8");
      auto v = Typed(kv.value, kv.key.size() <= 64 ? "the value of \"" + kv.key + "\""
                                                   : fmt::format("the value of pair {}", out.size() + 1));
      if (!v.ok()) return v.status();
      out[kv.key] = std::move(*v);  // a repeated key: the last one wins, as in most kv readers
    }
    return out;
  }

  Result<nlohmann::json> Regex(std::string_view text) const {
    std::vector<re2::StringPiece> groups(names_.size());
    if (!re_->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::UNANCHORED, groups.data(),
                    static_cast<int>(groups.size()))) {
      return Status::InvalidArgument("does not match the pattern");
    }
    nlohmann::json out = nlohmann::json::object();
    for (size_t i = 1; i < groups.size(); ++i) {
      if (names_[i].empty()) continue;  // an unnamed group: structure, not a field
      if (groups[i].data() == nullptr) {
        out[names_[i]] = nullptr;  // an optional group that did not take part
        continue;
      }
      auto v = Typed(std::string_view(groups[i].data(), groups[i].size()), "group " + names_[i]);
      if (!v.ok()) return v.status();
      out[names_[i]] = std::move(*v);
    }
    return out;
  }

  static Result<nlohmann::json> Nmea(std::string_view text) {
    text = WithoutLineEnd(text);
    if (Status st = formats::ValidateNmeaSentence(text); !st.ok()) {
      return Status::InvalidArgument("not an NMEA 0183 sentence: " + st.message());
    }
    const std::string_view address = formats::NmeaAddress(text);
    const std::string talker(address.substr(0, 2));
    if (const auto rmc = formats::DecodeRmc(text)) {
      return nlohmann::json{{"sentence", "RMC"},          {"talker", talker},
                            {"time", Rfc3339(rmc->ts_ns)}, {"valid", rmc->valid},
                            {"lat", rmc->lat},             {"lon", rmc->lon},
                            {"speed_knots", Optional(rmc->speed_knots)},
                            {"course_deg", Optional(rmc->course_deg)}};
    }
    if (const auto gga = formats::DecodeGga(text)) {
      return nlohmann::json{{"sentence", "GGA"},
                            {"talker", talker},
                            {"time_of_day", TimeOfDay(gga->time_of_day_ns)},
                            {"lat", gga->lat},
                            {"lon", gga->lon},
                            {"quality", gga->quality},
                            {"satellites", gga->satellites ? nlohmann::json(*gga->satellites) : nlohmann::json(nullptr)},
                            {"hdop", Optional(gga->hdop)},
                            {"altitude_m", Optional(gga->altitude_m)}};
    }
    // RMC or GGA without a position: a receiver indoors or cold-starting sends these every
    // second. An expected state, not a bad record: the same object, without a fix.
    if (address.size() == 5 && address[0] != 'P' && address.substr(2) == "RMC") {
      const auto ts = formats::NmeaEventTimeNs(text);  // time and date may come before a fix
      return nlohmann::json{{"sentence", "RMC"},
                            {"talker", talker},
                            {"time", ts ? nlohmann::json(Rfc3339(*ts)) : nlohmann::json(nullptr)},
                            {"valid", false},
                            {"lat", nullptr},
                            {"lon", nullptr},
                            {"speed_knots", nullptr},
                            {"course_deg", nullptr}};
    }
    if (address.size() == 5 && address[0] != 'P' && address.substr(2) == "GGA") {
      return nlohmann::json{{"sentence", "GGA"}, {"talker", talker}, {"time_of_day", nullptr},
                            {"lat", nullptr},    {"lon", nullptr},     {"quality", 0},
                            {"satellites", nullptr}, {"hdop", nullptr}, {"altitude_m", nullptr}};
    }
    return nlohmann::json(nullptr);  // another sentence: passed on as it is
  }

  const ParseConfig c_;
  std::unique_ptr<RE2> re_;
  std::vector<std::string> names_;  // by group index; empty for unnamed groups
};

}  // namespace

Status CheckParsePattern(std::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) {
    return Status::InvalidArgument(fmt::format("over {} bytes", kMaxPatternBytes));
  }
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), PatternOptions());
  if (!re.ok()) return Status::InvalidArgument(re.error());
  if (re.NumberOfCapturingGroups() > kMaxGroups) {
    return Status::InvalidArgument(fmt::format("over {} groups", kMaxGroups));
  }
  if (re.NamedCapturingGroups().empty()) {
    return Status::InvalidArgument("no named group: name what to keep, e.g. (?P<temp>[0-9.]+)");
  }
  return Status::Ok();
}

std::unique_ptr<Processor> MakeParse(ParseConfig c) { return std::make_unique<Parse>(std::move(c)); }

}  // namespace edgeferry::pipeline
