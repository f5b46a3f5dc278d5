// Reading a damaged store row by row, tolerating SQLite errors: what `edgeferry buffer
// check` reports and what a quarantine salvages (FORMAT.md "Corruption, salvage and
// check"). Internal to buffer/. Not thread-safe: one caller per Db.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgeferry/buffer/segment_codec.h"
#include "sqlite.h"

namespace edgeferry::buffer {

// A segments row without its blob.
struct SegmentMeta {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint32_t count = 0;
  int64_t ts_min = 0;
  int64_t ts_max = 0;
  uint64_t payload_bytes = 0;
  uint64_t encoded_bytes = 0;
  int64_t sealed_ns = 0;
  Codec codec = Codec::kRaw;
};

struct SegmentScan {
  std::vector<SegmentMeta> segments;  // every row SQLite could reach, in first_seq order
  uint64_t damaged_regions = 0;       // places where reading the table failed
  std::string first_error;
};

// Walks the segments table by key, one row per query. Where a damaged page stops a
// query, probes keys further on (doubling the step) and reads backwards from the first
// readable one, so rows on both sides of a damaged page are found.
SegmentScan ScanSegments(sql::Db& db);

// The dictionaries that can be read and loaded, by id. Unreadable rows are skipped.
std::map<uint32_t, std::unique_ptr<SegmentDictionary>> LoadDictionaries(sql::Db& db, int zstd_level);

// Reads one segment's blob into *blob and checks that it decodes (zstd checksum,
// lengths, record count). Corruption with the reason otherwise.
Status ReadVerifiedBlob(sql::Db& db, const SegmentMeta& meta,
                        const std::map<uint32_t, std::unique_ptr<SegmentDictionary>>& dicts, std::string* blob);

}  // namespace edgeferry::buffer
