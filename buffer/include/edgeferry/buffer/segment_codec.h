// Segment encoding: how a run of consecutive records becomes one blob.
// The byte layout is specified in buffer/FORMAT.md ("Segment encoding").
//
// Pure functions, no shared state: thread-safe. Used by Store; public for
// benchmarks, fuzzing and tools that read a store offline.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::buffer {

enum class Codec : uint8_t {
  kRaw = 0,   // records encoding, uncompressed (used when zstd does not shrink it)
  kZstd = 1,  // records encoding in one zstd frame with content checksum
};

// Appends the encoding of one record to *out (uncompressed). `prev_ts_ns` is the
// previous record's ts_ns in the segment (0 for the first) and is updated.
void EncodeRecord(const Record& record, int64_t* prev_ts_ns, std::string* out);

// Compresses an encoded run with zstd at `level`; returns the blob and sets *codec.
// Falls back to kRaw when compression does not make it smaller.
std::string CompressSegment(std::string_view encoded, int level, Codec* codec);

// Decodes a blob holding `count` records whose first seq is `first_seq`.
// Errors: Corruption on a bad zstd frame, checksum mismatch, truncated or extra
// bytes, or a record count that does not match.
Status DecodeSegment(Codec codec, std::string_view blob, uint64_t first_seq, uint32_t count,
                     std::vector<StoredRecord>* out);

}  // namespace edgeferry::buffer
