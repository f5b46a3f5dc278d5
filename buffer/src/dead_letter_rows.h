// Reading dead_letters rows; shared by Store and DeadLetterAdmin. Internal.
#pragma once

#include <optional>
#include <vector>

#include "edgeferry/buffer/store.h"
#include "sqlite.h"

namespace edgeferry::buffer {

// Rows with id > after_id (or only `id` when set), oldest first, at most `limit`.
Result<std::vector<DeadLetter>> QueryDeadLetters(sql::Db& db, uint64_t after_id, size_t limit,
                                                 std::optional<uint64_t> id = std::nullopt);

// Schema 3: the `time` column (EncodeRecordTime) of dead_letters and replay, added to an
// older store's tables. Both tables must exist.
Status AddTimeColumns(sql::Db& db);

}  // namespace edgeferry::buffer
