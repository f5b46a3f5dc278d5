// The agent's Ingest adapter in miniature, for driver tests: sources write into a real
// buffer::Store; dead letters go to its queue under `stage`.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "edgeferry/buffer/store.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::testing {

class StoreIngest final : public drivers::Ingest {
 public:
  StoreIngest(buffer::Store& store, std::string stage) : store_(store), stage_(std::move(stage)) {}
  Result<uint64_t> Append(Record record) override { return store_.Append(std::move(record)); }
  void DeadLetter(const Record& record, std::string_view reason) override {
    EXPECT_TRUE(store_.AddDeadLetter(record, stage_, reason).ok());
  }

 private:
  buffer::Store& store_;
  const std::string stage_;
};

}  // namespace edgeferry::testing
