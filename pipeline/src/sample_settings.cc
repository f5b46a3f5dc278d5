#include "edgeferry/settings/common_keys.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

ProcessorConfig ReadSample(settings::TableReader& r) {
  SampleConfig s;
  s.every = r.Int<uint64_t>("every", 0, 1, 1'000'000'000);
  s.interval_ns = r.Duration("interval", 0, settings::kMs, 30 * settings::kDay);
  if ((s.every > 0) == (s.interval_ns > 0)) r.Error("every", "set exactly one of every (1 in N) or interval");
  return s;
}

}  // namespace edgeferry::pipeline
