// Processor types as configuration: one [[sources.<name>.processors]] or
// [[sinks.<name>.processors]] table each. The list of processor types and their readers
// is src/processor_types.cc; each reader sits beside its processor
// (src/<type>_settings.cc). Keys: docs/configuration.md "Processors".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/pipeline/processor.h"
#include "edgeferry/settings/context.h"

namespace edgeferry::pipeline {

// Reads the keys of processor type `type` (all but `type` and, for types other than
// filter, the `channels` scope, which the caller reads); errors are recorded through
// `r`. nullopt when no processor type has that name.
std::optional<ProcessorConfig> ReadProcessorSettings(std::string_view type, settings::TableReader& r);

// "filter, set, rename, ...": for messages.
std::string KnownProcessorTypes();

// MQTT topic filters (MQTT 3.1.1 4.7) at `key`, each checked, appended to `out`.
void ReadTopicFilters(settings::TableReader& r, std::string_view key, std::vector<std::string>* out);

}  // namespace edgeferry::pipeline
