// Internal: bounds on nesting checked before parsing (fleet pushes, local files).
#pragma once

#include <string_view>

namespace edgeferry::agent {

// JSON: brackets and braces outside strings, at most `limit` deep. Never recurses.
bool JsonWithinDepth(std::string_view s, int limit);
// TOML: a value's depth is the components of its [table] header plus, for the key and
// each enclosing inline table or array, the key's components or one level; at most
// `limit`. Overestimates a little; never recurses.
bool TomlWithinDepth(std::string_view s, int limit);

}  // namespace edgeferry::agent
