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

// Hand-moves (`edgeferry dlq move`) travel through the replay queue as rows whose sink
// is this prefix + the sink's name (':' cannot occur in a sink name), seq the record's
// seq and an empty payload. The sink's forwarder dead-letters the record when it reaches it.
inline constexpr std::string_view kMoveRequestPrefix = "move:";

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
  // Asks the agent to move the buffered record `seq` of `sink` to the dead letter queue
  // (stage "sink:<sink>") when that sink's forwarder reaches it, instead of sending it:
  // how an operator unblocks a sink stuck on one record. Takes effect within about a
  // second in a running agent, or at its next start. Errors: NotFound for a sink with no
  // cursor in this store; InvalidArgument when `seq` is already delivered to it
  // (at or below its cursor) or beyond the last seq the store has written.
  Status RequestMove(const std::string& sink, uint64_t seq);

 private:
  class Impl;
  explicit DeadLetterAdmin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::buffer
