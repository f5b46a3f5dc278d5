// Internal: keys several processor types share.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "edgeferry/pipeline/processor.h"
#include "edgeferry/settings/table_reader.h"

namespace edgeferry::pipeline {

// A JSON field path at `key` ("sensor.temp"); an error when it is not one.
std::optional<FieldPath> FieldAt(settings::TableReader& r, std::string_view key, bool required);

// A scalar TOML value as JSON (string, integer, float, bool), or null.
nlohmann::json Scalar(const toml::node& n);

// A one printable ASCII character (not '"') at `key`.
char SeparatorAt(settings::TableReader& r, std::string_view key, char fallback);

// Processor readers, one per type (src/<type>_settings.cc).
ProcessorConfig ReadFilter(settings::TableReader& r);
ProcessorConfig ReadDeadband(settings::TableReader& r);
ProcessorConfig ReadSample(settings::TableReader& r);
ProcessorConfig ReadAggregate(settings::TableReader& r);
ProcessorConfig ReadParse(settings::TableReader& r);
ProcessorConfig ReadSet(settings::TableReader& r);
ProcessorConfig ReadRename(settings::TableReader& r);
ProcessorConfig ReadSelect(settings::TableReader& r);
ProcessorConfig ReadDropFields(settings::TableReader& r);

}  // namespace edgeferry::pipeline
