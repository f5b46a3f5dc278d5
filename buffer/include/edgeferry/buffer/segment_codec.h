// Segment encoding: how a run of consecutive records becomes one blob.
// The byte layout is specified in buffer/FORMAT.md ("Segment encoding").
//
// Pure functions, no shared state: thread-safe. Used by Store; public for
// benchmarks, fuzzing and tools that read a store offline.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::buffer {

enum class Codec : uint8_t {
  kRaw = 0,       // records encoding, uncompressed (used when zstd does not shrink it)
  kZstd = 1,      // records encoding in one zstd frame with content checksum
  kZstdDict = 2,  // as kZstd, compressed with a SegmentDictionary (its id in the frame header)
};

// A zstd dictionary for small segments, trained from a store's early records. Small
// segments (a slow source sealed every commit interval) compress 2x better with one:
// bench/run.sh measures it. Immutable once made: thread-safe.
class SegmentDictionary {
 public:
  // Trains a dictionary (at most `max_bytes`) from encoded records (`samples`, one
  // record each) and keeps it only if it wins: 4 KiB chunks of the samples must
  // compress at least 10% smaller with it. Returns null otherwise.
  static std::unique_ptr<SegmentDictionary> Train(const std::vector<std::string>& samples, int level,
                                                  size_t max_bytes = 16 << 10);
  // A dictionary as stored. Errors: Corruption when the bytes are not a zstd dictionary.
  static Result<std::unique_ptr<SegmentDictionary>> Load(std::string bytes, int level);
  ~SegmentDictionary();
  uint32_t id() const { return id_; }  // zstd dictionary ID, written in every frame it compresses
  const std::string& bytes() const { return bytes_; }

 private:
  friend std::string CompressSegment(std::string_view, int, Codec*, const SegmentDictionary*);
  friend Status DecodeSegment(Codec, std::string_view, uint64_t, uint32_t, std::vector<StoredRecord>*,
                              const SegmentDictionary*);
  SegmentDictionary() = default;
  std::string bytes_;
  uint32_t id_ = 0;
  void* cdict_ = nullptr;  // ZSTD_CDict
  void* ddict_ = nullptr;  // ZSTD_DDict
};

// The dictionary ID in a kZstdDict blob's frame header (0 if none or unreadable).
uint32_t SegmentDictionaryId(std::string_view blob);

// Appends the encoding of one record to *out (uncompressed; buffer/FORMAT.md "Segment
// encoding", with the time flags of schema 3). `prev_ts_ns` is the previous record's
// ts_ns in the segment (0 for the first) and is updated.
void EncodeRecord(const Record& record, int64_t* prev_ts_ns, std::string* out);

// A record's time members beyond ts_ns (event time, ts_source, boot stamp) in the
// segment encoding's form: the flag bits of the content type byte as one byte, then what
// they announce (FORMAT.md "Segment encoding"). For the tables that keep records outside
// segments (dead_letters, replay). "" when there is nothing to keep.
std::string EncodeRecordTime(const Record& record);
// Sets record's event_ts_ns, ts_source, boot_ns and boot_id from EncodeRecordTime's bytes
// (relative to record->ts_ns, so set that first); "" leaves a synchronized receipt.
// False when the bytes are malformed (then the members are left as a synchronized receipt).
bool DecodeRecordTime(std::string_view bytes, Record* record);

// Compresses an encoded run with zstd at `level`; returns the blob and sets *codec.
// With `dict` (not owned) the codec is kZstdDict. Falls back to kRaw when compression
// does not make it smaller.
std::string CompressSegment(std::string_view encoded, int level, Codec* codec,
                            const SegmentDictionary* dict = nullptr);

// Decodes a blob holding `count` records whose first seq is `first_seq`.
// kZstdDict needs the dictionary whose id() SegmentDictionaryId(blob) names.
// Errors: Corruption on a bad zstd frame, checksum mismatch, truncated or extra
// bytes, a record count that does not match, or a missing or wrong dictionary.
Status DecodeSegment(Codec codec, std::string_view blob, uint64_t first_seq, uint32_t count,
                     std::vector<StoredRecord>* out, const SegmentDictionary* dict = nullptr);

}  // namespace edgeferry::buffer
