#include "edgeferry/record.h"

#include "edgeferry/clock.h"

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

std::string_view TsSourceName(TsSource s) {
  switch (s) {
    case TsSource::kClock: return "clock";
    case TsSource::kUnsynced: return "unsynced";
    case TsSource::kRebased: return "rebased";
  }
  return "clock";
}

void StampReceipt(const Clock& clock, Record* record) {
  record->ts_ns = clock.NowNs();
  if (clock.Synchronized()) {
    record->ts_source = TsSource::kClock;
    record->boot_ns = 0;
    record->boot_id.clear();
  } else {
    record->ts_source = TsSource::kUnsynced;
    record->boot_ns = clock.BootNs();
    record->boot_id = clock.BootId();
  }
}

std::optional<ContentType> ParseContentType(std::string_view name) {
  for (auto t : {ContentType::kBinary, ContentType::kJson, ContentType::kNmea, ContentType::kCsv,
                 ContentType::kText}) {
    if (ContentTypeName(t) == name) return t;
  }
  return std::nullopt;
}

}  // namespace edgeferry
