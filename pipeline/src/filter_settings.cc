#include <fmt/format.h>

#include "edgeferry/pipeline/processor_settings.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

ProcessorConfig ReadFilter(settings::TableReader& r) {
  FilterConfig f;
  f.drop = r.Enum("action", "keep", {"keep", "drop"}) == "drop";
  ReadTopicFilters(r, "channels", &f.channels);
  if (r.Has("content_type")) {
    f.content_type = ParseContentType(r.Enum("content_type", "json", {"json", "nmea", "csv", "text", "binary"}));
  }
  f.field = FieldAt(r, "field", false);
  const std::string op = r.Enum("op", "exists", {"exists", "==", "!=", "<", "<=", ">", ">="});
  using Op = FilterConfig::Op;
  f.op = op == "==" ? Op::kEq : op == "!=" ? Op::kNe : op == "<" ? Op::kLt : op == "<=" ? Op::kLe
       : op == ">" ? Op::kGt : op == ">=" ? Op::kGe : Op::kExists;
  if (const toml::node* v = r.Node("value")) {
    f.value = Scalar(*v);
    if (f.value.is_null()) r.Error("value", "must be a string, number or boolean");
  } else if (f.op != Op::kExists) {
    r.Error("value", fmt::format("is required with op = \"{}\"", op));
  }
  if (r.Has("op") && !f.field) r.Error("op", "needs a field");
  return f;
}

}  // namespace edgeferry::pipeline
