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
// The sources' depth bound (drivers/json_check.h kMaxJsonDepth): nlohmann's dump
// recurses, so a deeper document (a replayed dead letter skips the sources' check)
// must never be parsed into one.
inline constexpr size_t kMaxPayloadDepth = 64;
// True when no array or object in `text` nests deeper than `max` (strings skipped,
// with their escapes). Linear; does not validate.
bool JsonDepthWithin(std::string_view text, size_t max);
// ns since the epoch as RFC 3339 UTC (units.h AppendRfc3339Ns), for JSON members.
std::string Rfc3339(int64_t ns);
// Serialises `doc` back into the record's payload (content type JSON).
void SetPayload(Record& r, const nlohmann::json& doc);

}  // namespace edgeferry::pipeline
