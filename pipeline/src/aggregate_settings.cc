#include <fmt/format.h>

#include "edgeferry/settings/common_keys.h"
#include "settings_keys.h"

namespace edgeferry::pipeline {

ProcessorConfig ReadAggregate(settings::TableReader& r) {
  AggregateConfig a;
  a.window_ns = r.Duration("window", 60 * settings::kSec, settings::kSec, settings::kDay);
  std::vector<std::string> names;
  if (!settings::StringList(r, "fields", &names) && !r.Has("fields")) {
    r.Error("fields", "is required: a list of numeric fields");
  }
  for (const auto& n : names) {
    if (n == "window_start" || n == "window_end" || n == "records" || n == "first_ts" || n == "last_ts") {
      r.Error("fields", fmt::format("\"{}\" is a member of the window record itself; rename the field first", n));
    } else if (auto path = ParseFieldPath(n)) {
      a.fields.push_back(*path);
    } else {
      r.Error("fields", fmt::format("\"{}\" is not a field path (names joined by '.', at most 16 levels)", n));
    }
  }
  if (a.fields.size() > 32) r.Error("fields", "at most 32");
  return a;
}

}  // namespace edgeferry::pipeline
