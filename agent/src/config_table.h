// Internal: validation of an already parsed TOML table, for fleet pushes (TOML or JSON
// documents become a table first, then meet the same validator as the file).
#pragma once

#include <toml++/toml.h>

#include "edgeferry/agent/config.h"

namespace edgeferry::agent {

Result<AgentConfig> ParseConfigTable(const toml::table& root, ConfigErrors* errors);

}  // namespace edgeferry::agent
