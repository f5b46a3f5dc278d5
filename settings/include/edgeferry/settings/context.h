// What a type's settings reader knows besides its own table. Small and free of toml++,
// so the headers that declare readers (drivers/*/..._settings.h) stay cheap to include.
#pragma once

#include <string>
#include <vector>

namespace edgeferry::settings {

// All problems found in a configuration, each "key.path: reason".
struct Errors {
  std::vector<std::string> errors;
  std::string Join() const;  // one per line, each ending in '\n'
};

class TableReader;  // table_reader.h

// The gateway settings every source and sink derives defaults from.
struct Context {
  std::string name;        // the table's name: [sources.<name>] or [sinks.<name>]
  std::string gateway_id;  // [gateway] id (client ids, envelopes, object keys)
  std::string data_dir;    // [gateway] data_dir (an outbox's default directory)
};

}  // namespace edgeferry::settings
