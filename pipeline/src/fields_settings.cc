#include <fmt/format.h>

#include "edgeferry/settings/common_keys.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

ProcessorConfig ReadSet(settings::TableReader& r) {
  FieldsConfig c;
  c.kind = FieldsConfig::Kind::kSet;
  if (const toml::table* t = r.Table("fields")) {
    for (const auto& [k, v] : *t) {
      nlohmann::json value = Scalar(v);
      if (value.is_null()) r.Error(fmt::format("fields.{}", k.str()), "must be a string, number or boolean");
      c.set[std::string(k.str())] = std::move(value);
    }
  }
  if (c.set.empty()) r.Error("fields", "is required: a table of name = value");
  return c;
}

ProcessorConfig ReadRename(settings::TableReader& r) {
  FieldsConfig c;
  c.kind = FieldsConfig::Kind::kRename;
  if (const toml::table* t = r.Table("fields")) {
    for (const auto& [k, v] : *t) {
      if (!v.is_string() || v.value<std::string>()->empty()) {
        r.Error(fmt::format("fields.{}", k.str()), "must be the new name (a string)");
      } else {
        c.rename[std::string(k.str())] = *v.value<std::string>();
      }
    }
  }
  if (c.rename.empty()) r.Error("fields", "is required: a table of old = \"new\"");
  return c;
}

namespace {
ProcessorConfig ReadNames(settings::TableReader& r, FieldsConfig::Kind kind) {
  FieldsConfig c;
  c.kind = kind;
  if (!settings::StringList(r, "fields", &c.names) && !r.Has("fields")) {
    r.Error("fields", "is required: a list of member names");
  }
  return c;
}
}  // namespace

ProcessorConfig ReadSelect(settings::TableReader& r) { return ReadNames(r, FieldsConfig::Kind::kSelect); }
ProcessorConfig ReadDropFields(settings::TableReader& r) { return ReadNames(r, FieldsConfig::Kind::kDrop); }

}  // namespace edgeferry::pipeline
