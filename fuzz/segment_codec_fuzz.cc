// Segment codec. Mode 0: an arbitrary blob (a damaged store row) must decode or fail
// with Corruption, never crash, hang or allocate what the blob cannot hold. Mode 1:
// records built from the input must survive encode -> compress -> decode exactly.
#include <vector>

#include "edgeferry/buffer/segment_codec.h"
#include "fuzz_check.h"

namespace buffer = edgeferry::buffer;
using edgeferry::fuzz::Input;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t mode = in.Byte();
  if (mode % 2 == 0) {
    const auto codec = static_cast<buffer::Codec>(in.Byte() % 4);  // 3 is not a codec
    uint32_t count = in.Byte();
    if (mode & 2) count |= static_cast<uint32_t>(in.Byte()) << 24;  // what a damaged row can say
    const uint64_t first_seq = 1 + in.Byte();
    std::vector<edgeferry::StoredRecord> out;
    const edgeferry::Status st = buffer::DecodeSegment(codec, in.Rest(), first_seq, count, &out);
    if (st.ok()) {
      FUZZ_CHECK(out.size() == count, "decoded %zu records, the row says %u", out.size(), count);
      for (size_t i = 0; i < out.size(); ++i) {
        FUZZ_CHECK(out[i].seq == first_seq + i, "record %zu has seq %llu", i,
                   static_cast<unsigned long long>(out[i].seq));
        FUZZ_CHECK(static_cast<uint8_t>(out[i].record.content_type) <= 4, "unknown content type decoded");
        FUZZ_CHECK(static_cast<uint8_t>(out[i].record.ts_source) <= 2, "unknown ts_source decoded");
        FUZZ_CHECK(out[i].record.ts_source == edgeferry::TsSource::kUnsynced || out[i].record.boot_id.empty(),
                   "a boot id without the unsynced flag");
      }
    } else {
      FUZZ_CHECK(st.IsCorruption(), "a bad blob is not reported as Corruption: %s",
                 st.message().c_str());
    }
    return 0;
  }
  // Round trip.
  std::vector<edgeferry::Record> records;
  const int level = (mode >> 1) % 4 == 0 ? 0 : 1;  // 0: keep it raw when small
  while (in.size() > 0 && records.size() < 64) {
    edgeferry::Record r;
    r.ts_ns = 0;
    for (int i = 0; i < 8; ++i) r.ts_ns = static_cast<int64_t>(static_cast<uint64_t>(r.ts_ns) << 8 | in.Byte());
    r.content_type = static_cast<edgeferry::ContentType>(in.Byte() % 5);
    // Time (schema 3): an event time, and how the receive time was stamped.
    const uint8_t time = in.Byte();
    if (time & 1) {
      for (int i = 0; i < 8; ++i) {
        r.event_ts_ns = static_cast<int64_t>(static_cast<uint64_t>(r.event_ts_ns) << 8 | in.Byte());
      }
    }
    r.ts_source = static_cast<edgeferry::TsSource>((time >> 1) % 3);
    if (r.ts_source == edgeferry::TsSource::kUnsynced) {
      for (int i = 0; i < 8; ++i) r.boot_ns = static_cast<int64_t>(static_cast<uint64_t>(r.boot_ns) << 8 | in.Byte());
      r.boot_id = std::string(in.Until('\n', 64));
    }
    r.source = std::string(in.Until('\n', 32));
    r.channel = std::string(in.Until('\n', 256));
    r.payload = std::string(in.Until('\n', 4096));
    records.push_back(std::move(r));
  }
  std::string encoded;
  int64_t prev_ts = 0;
  for (const auto& r : records) buffer::EncodeRecord(r, &prev_ts, &encoded);
  buffer::Codec codec;
  const std::string blob = level == 0 ? encoded : buffer::CompressSegment(encoded, level, &codec);
  if (level == 0) codec = buffer::Codec::kRaw;
  std::vector<edgeferry::StoredRecord> out;
  const edgeferry::Status st =
      buffer::DecodeSegment(codec, blob, 1000, static_cast<uint32_t>(records.size()), &out);
  FUZZ_CHECK(st.ok(), "a segment we encoded does not decode: %s", st.message().c_str());
  FUZZ_CHECK(out.size() == records.size(), "round trip changed the record count");
  for (size_t i = 0; i < out.size(); ++i) {
    const auto& a = records[i];
    const auto& b = out[i].record;
    FUZZ_CHECK(out[i].seq == 1000 + i && a.ts_ns == b.ts_ns && a.source == b.source && a.channel == b.channel &&
                   a.content_type == b.content_type && a.payload == b.payload && a.event_ts_ns == b.event_ts_ns &&
                   a.ts_source == b.ts_source && a.boot_ns == b.boot_ns && a.boot_id == b.boot_id,
               "record %zu changed in the round trip", i);
  }
  return 0;
}
