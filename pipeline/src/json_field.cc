#include "json_field.h"

#include "edgeferry/units.h"

namespace edgeferry::pipeline {

std::optional<FieldPath> ParseFieldPath(std::string_view text) {
  FieldPath p;
  p.text = std::string(text);
  size_t at = 0;
  while (true) {
    const size_t dot = text.find('.', at);
    const std::string_view part = text.substr(at, dot == std::string_view::npos ? std::string_view::npos : dot - at);
    if (part.empty() || p.parts.size() == 16) return std::nullopt;
    p.parts.emplace_back(part);
    if (dot == std::string_view::npos) return p;
    at = dot + 1;
  }
}

const nlohmann::json* Find(const nlohmann::json& doc, const FieldPath& path) {
  const nlohmann::json* at = &doc;
  for (const auto& part : path.parts) {
    if (!at->is_object()) return nullptr;
    const auto it = at->find(part);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::optional<double> FindNumber(const nlohmann::json& doc, const FieldPath& path) {
  const nlohmann::json* v = Find(doc, path);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

void SetPayload(Record& r, const nlohmann::json& doc) {
  // Invalid UTF-8 inside strings was already in the payload: kept as replacement characters.
  r.payload = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.content_type = ContentType::kJson;
}

std::string Rfc3339(int64_t ns) {
  std::string s;
  AppendRfc3339Ns(ns, &s);
  return s;
}

bool JsonDepthWithin(std::string_view text, size_t max) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace edgeferry::pipeline
