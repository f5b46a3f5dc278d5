// Internal helpers: JSON object payloads and dotted field paths.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "edgeferry/pipeline/processor.h"

namespace edgeferry::pipeline {

// The member at `path`, or null when a level is missing or not an object.
const nlohmann::json* Find(const nlohmann::json& doc, const FieldPath& path);
// The member at `path` as a number, or nullopt.
std::optional<double> FindNumber(const nlohmann::json& doc, const FieldPath& path);
// Serialises `doc` back into the record's payload (content type JSON).
void SetPayload(Record& r, const nlohmann::json& doc);

}  // namespace edgeferry::pipeline
