#include <fmt/format.h>

#include "edgeferry/settings/common_keys.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

ProcessorConfig ReadParse(settings::TableReader& r) {
  using Format = ParseConfig::Format;
  ParseConfig p;
  const std::string format = r.Enum("format", "", {"csv", "kv", "regex", "nmea"});
  if (format.empty() && !r.Has("format")) r.Error("format", "is required: csv, kv, regex or nmea");
  p.format = format == "kv" ? Format::kKeyValue : format == "regex" ? Format::kRegex
           : format == "nmea" ? Format::kNmea : Format::kCsv;
  p.field = FieldAt(r, "field", false);
  const auto only_for = [&](const char* key, Format f, const char* name) {
    if (r.Has(key) && !format.empty() && p.format != f) r.Error(key, fmt::format("is for format = \"{}\"", name));
  };
  only_for("columns", Format::kCsv, "csv");
  only_for("separator", Format::kCsv, "csv");
  only_for("decimal_comma", Format::kCsv, "csv");
  only_for("kv_separator", Format::kKeyValue, "kv");
  only_for("pair_separator", Format::kKeyValue, "kv");
  only_for("pattern", Format::kRegex, "regex");
  if (p.format == Format::kCsv && !format.empty()) {
    if (!settings::StringList(r, "columns", &p.columns) && !r.Has("columns")) {
      r.Error("columns", "is required: the names of the row's cells, in order");
    }
    if (p.columns.size() > 1024) r.Error("columns", "at most 1024");
    for (size_t i = 0; i < p.columns.size(); ++i) {
      if (p.columns[i].empty()) r.Error(fmt::format("columns[{}]", i), "must not be empty");
    }
    p.separator = SeparatorAt(r, "separator", ',');
    p.decimal_comma = r.Bool("decimal_comma", false);
    if (p.decimal_comma && p.separator == ',') r.Error("decimal_comma", "needs a separator other than ','");
  } else if (p.format == Format::kKeyValue) {
    p.kv_separator = SeparatorAt(r, "kv_separator", '=');
    if (r.Has("pair_separator")) p.pair_separator = SeparatorAt(r, "pair_separator", ',');
    if (p.pair_separator == p.kv_separator) r.Error("pair_separator", "must differ from kv_separator");
  } else if (p.format == Format::kRegex) {
    p.pattern = r.String("pattern", "", /*required=*/true);
    if (r.Has("pattern")) {
      if (Status st = CheckParsePattern(p.pattern); !st.ok()) r.Error("pattern", st.message());
    }
  }
  return p;
}

}  // namespace edgeferry::pipeline
