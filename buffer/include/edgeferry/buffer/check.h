// `edgeferry buffer check`: how damaged a store is, read without writing.
//
// Opens the database read-only (safe beside a running agent: WAL readers do not block
// its writer), runs SQLite's PRAGMA quick_check, then reads every segment row by row
// (tolerating damaged pages, as a salvage does) and decodes each one (zstd checksum,
// lengths, record count). Thread-safe: no shared state. FORMAT.md "Corruption, salvage
// and check" describes what a damaged store loses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgeferry/status.h"

namespace edgeferry::buffer {

struct CheckReport {
  std::string path;
  std::vector<std::string> sqlite_problems;  // quick_check lines other than "ok" (at most 100)
  uint64_t segments_ok = 0;                  // rows read and decoded
  uint64_t records_ok = 0;                   // records in them
  struct BadSegment {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    uint64_t count = 0;
    std::string reason;
  };
  std::vector<BadSegment> bad_segments;      // rows read whose blob is unreadable or does not decode
  uint64_t damaged_regions = 0;              // places where SQLite could not read the segments table
  int64_t records_expected = -1;             // what the store's counters say it holds (-1: unreadable)
  uint64_t records_unreachable = 0;          // records_expected - what readable rows describe, if known
  std::string first_error;                   // the first read error, for the operator

  uint64_t records_lost() const;             // in bad segments plus unreachable
  bool clean() const {
    return sqlite_problems.empty() && bad_segments.empty() && damaged_regions == 0 && records_unreachable == 0;
  }
};

// Checks the store at `path` (the database file; its -wal is read too). Errors:
// NotFound when there is no file; the report itself describes damage (Corruption is
// never returned for a damaged store that SQLite can open at all; a file that is not a
// database at all is reported in sqlite_problems).
Result<CheckReport> CheckStore(const std::string& path);

}  // namespace edgeferry::buffer
