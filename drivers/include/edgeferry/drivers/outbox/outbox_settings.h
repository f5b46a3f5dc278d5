// The outbox sink as a configuration type (sink_settings.h explains the shape). Keys
// and defaults: docs/configuration.md, [sinks.<name>] type = "outbox".
#pragma once

#include <string_view>

#include "edgeferry/drivers/outbox/outbox_sink.h"
#include "edgeferry/drivers/sink_settings.h"

namespace edgeferry::drivers {

struct OutboxSinkType {
  static constexpr std::string_view kName = "outbox";
  // A batch sink: files gather up to 10,000 records, 4 MiB or 1 s.
  static constexpr BatchPolicy kDefaultBatch{10'000, 4ull << 20, 1'000'000'000};
  using Config = OutboxSinkConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx, const BatchPolicy& batch);
  static SinkPtr Make(const Config& config);
};

}  // namespace edgeferry::drivers
