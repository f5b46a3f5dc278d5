// The processor types: name -> settings reader. The running side is MakeProcessor
// (pipeline.cc), by the configuration's type.
#include <fmt/format.h>

#include "edgeferry/pipeline/processor_settings.h"
#include "edgeferry/pipeline/route.h"
#include "edgeferry/settings/common_keys.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

namespace {

struct ProcessorType {
  std::string_view name;
  ProcessorConfig (*read)(settings::TableReader&);
};

constexpr ProcessorType kProcessorTypes[] = {
    {"filter", ReadFilter},   {"set", ReadSet},           {"rename", ReadRename},
    {"drop_fields", ReadDropFields}, {"select", ReadSelect}, {"deadband", ReadDeadband},
    {"sample", ReadSample},   {"aggregate", ReadAggregate}, {"parse", ReadParse},
};

}  // namespace

std::optional<ProcessorConfig> ReadProcessorSettings(std::string_view type, settings::TableReader& r) {
  for (const auto& t : kProcessorTypes) {
    if (t.name == type) return t.read(r);
  }
  return std::nullopt;
}

std::string KnownProcessorTypes() {
  std::string out;
  for (const auto& t : kProcessorTypes) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

void ReadTopicFilters(settings::TableReader& r, std::string_view key, std::vector<std::string>* out) {
  if (!settings::StringList(r, key, out, " (leave it out to select everything)")) return;
  for (size_t i = 0; i < out->size(); ++i) {
    if (!TopicFilterValid((*out)[i])) {
      r.Error(fmt::format("{}[{}]", key, i),
              fmt::format("\"{}\" is not a valid topic filter ('+' and '#' only as whole levels, '#' last)", (*out)[i]));
    }
  }
}

std::optional<FieldPath> FieldAt(settings::TableReader& r, std::string_view key, bool required) {
  const std::string text = r.String(key, "", required);
  if (text.empty()) return std::nullopt;
  auto path = ParseFieldPath(text);
  if (!path) r.Error(key, fmt::format("\"{}\" is not a field path (names joined by '.', at most 16 levels)", text));
  return path;
}

nlohmann::json Scalar(const toml::node& n) {
  if (n.is_string()) return *n.value<std::string>();
  if (n.is_integer()) return *n.value<int64_t>();
  if (n.is_floating_point()) return *n.value<double>();
  if (n.is_boolean()) return *n.value<bool>();
  return nullptr;
}

char SeparatorAt(settings::TableReader& r, std::string_view key, char fallback) {
  const std::string s = r.String(key, std::string(1, fallback));
  if (s.size() != 1 || s[0] == '"' || static_cast<unsigned char>(s[0]) < 0x20 ||
      static_cast<unsigned char>(s[0]) > 0x7e) {
    r.Error(key, "must be one printable ASCII character other than '\"'");
    return fallback;
  }
  return s[0];
}

}  // namespace edgeferry::pipeline
