// Operator access to a store's dead letter queue (`edgeferry dlq ...`), safe beside a
// running agent: short SQLite transactions, no seq allocation, no background thread.
//
// Replay moves dead letters into the store's replay queue, which the running agent
// drains: a record a sink refused goes back to that sink (or another named one) with
// its original seq; a record refused at its source (it never had a seq) is appended
// again as a new record for every sink. Not thread-safe; one per command.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edgeferry/buffer/store.h"

namespace edgeferry::buffer {

class DeadLetterAdmin {
 public:
  // Errors: NotFound when there is no store at `path`; IOError / Corruption from SQLite.
  static Result<std::unique_ptr<DeadLetterAdmin>> Open(const std::string& path);
  ~DeadLetterAdmin();

  Result<std::vector<DeadLetter>> List(uint64_t after_id, size_t limit);
  // Errors: NotFound for an unknown id.
  Result<DeadLetter> Get(uint64_t id);
  // Deletes these dead letters (every one when `ids` is empty). Returns how many.
  Result<size_t> Purge(const std::vector<uint64_t>& ids);
  // Queues these dead letters (every one when `ids` is empty) for delivery, and removes
  // them from the dead letter queue, in one transaction. `sink` empty: back to the sink
  // that refused each one. Returns how many.
  Result<size_t> Replay(const std::vector<uint64_t>& ids, const std::string& sink);

 private:
  class Impl;
  explicit DeadLetterAdmin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::buffer
