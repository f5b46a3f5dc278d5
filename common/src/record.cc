#include "edgeferry/record.h"

namespace edgeferry {

std::string_view ContentTypeName(ContentType t) {
  switch (t) {
    case ContentType::kBinary: return "binary";
    case ContentType::kJson: return "json";
    case ContentType::kNmea: return "nmea";
    case ContentType::kCsv: return "csv";
    case ContentType::kText: return "text";
  }
  return "binary";
}

std::optional<ContentType> ParseContentType(std::string_view name) {
  for (auto t : {ContentType::kBinary, ContentType::kJson, ContentType::kNmea, ContentType::kCsv,
                 ContentType::kText}) {
    if (ContentTypeName(t) == name) return t;
  }
  return std::nullopt;
}

}  // namespace edgeferry
