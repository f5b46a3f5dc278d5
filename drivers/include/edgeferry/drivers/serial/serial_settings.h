// The serial source as a configuration type (sink_settings.h explains the shape). Keys
// and defaults: docs/configuration.md, [sources.<name>] type = "serial".
#pragma once

#include <string_view>

#include "edgeferry/drivers/serial/serial_source.h"
#include "edgeferry/drivers/sink_settings.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::drivers::serial {

struct SerialSourceType {
  static constexpr std::string_view kName = "serial";
  using Config = SerialSourceConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx);
  static SourcePtr Make(const Config& config, Ingest& ingest);
};

}  // namespace edgeferry::drivers::serial
