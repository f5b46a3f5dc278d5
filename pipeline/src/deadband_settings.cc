#include "edgeferry/settings/common_keys.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

ProcessorConfig ReadDeadband(settings::TableReader& r) {
  DeadbandConfig d;
  if (auto f = FieldAt(r, "field", true)) d.field = *f;
  d.absolute = settings::Number(r, "absolute", 0, 0);
  d.percent = settings::Number(r, "percent", 0, 0);
  d.heartbeat_ns = r.Duration("heartbeat", 0, 0, 30 * settings::kDay);
  return d;
}

}  // namespace edgeferry::pipeline
