#include "edgeferry/drivers/sink_settings.h"

#include <fmt/format.h>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/settings/table_reader.h"

namespace edgeferry::drivers {

void CheckTemplate(settings::TableReader& r, std::string_view key, const std::string& tmpl) {
  if (const std::string bad = UnknownTemplateField(tmpl); !bad.empty()) {
    r.Error(key, fmt::format("unknown template field {{{}}} (known: gateway_id, source, channel, prefix, seq, "
                             "first_seq, last_seq, yyyy, mm, dd, HH)", bad));
  }
}

bool ReadPayloadMode(settings::TableReader& r) { return r.Enum("payload", "envelope", {"envelope", "raw"}) == "raw"; }

DestinationLimits ReadDestinationLimits(settings::TableReader& r, const DestinationLimits& d,
                                        uint64_t record_ceiling, uint64_t batch_ceiling) {
  DestinationLimits l = d;
  l.max_record_bytes = r.Bytes("max_record_bytes", d.max_record_bytes, 1, record_ceiling);
  l.max_batch_bytes = r.Bytes("max_batch_bytes", d.max_batch_bytes, 1, batch_ceiling);
  return l;
}

}  // namespace edgeferry::drivers
