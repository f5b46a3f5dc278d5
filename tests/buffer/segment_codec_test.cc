#include "edgeferry/buffer/segment_codec.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <limits>

namespace edgeferry::buffer {
namespace {

std::vector<Record> Sample() {
  std::vector<Record> v;
  for (int i = 0; i < 50; ++i) {
    v.push_back(Record{1'700'000'000'000'000'000 + i * 1'000'000 - (i % 3) * 5'000'000, "plant",
                       "sensors/t" + std::to_string(i % 4), i % 2 ? ContentType::kJson : ContentType::kBinary,
                       i == 7 ? std::string("") : std::string("{\"t\":") + std::to_string(i) + "}"});
  }
  v.push_back(Record{-5, "", "", ContentType::kText, std::string("\0\xff binary", 9)});
  return v;
}

TEST(SegmentCodec, RoundTripsEveryFieldThroughZstdAndRaw) {
  const auto records = Sample();
  std::string encoded;
  int64_t prev = 0;
  for (const auto& r : records) EncodeRecord(r, &prev, &encoded);
  for (int level : {1, 3, 19}) {
    Codec codec;
    const std::string blob = CompressSegment(encoded, level, &codec);
    EXPECT_EQ(codec, Codec::kZstd);
    EXPECT_LT(blob.size(), encoded.size());
    std::vector<StoredRecord> out;
    ASSERT_TRUE(DecodeSegment(codec, blob, 100, static_cast<uint32_t>(records.size()), &out).ok());
    ASSERT_EQ(out.size(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(out[i].seq, 100 + i);
      EXPECT_EQ(out[i].record.ts_ns, records[i].ts_ns);
      EXPECT_EQ(out[i].record.source, records[i].source);
      EXPECT_EQ(out[i].record.channel, records[i].channel);
      EXPECT_EQ(out[i].record.content_type, records[i].content_type);
      EXPECT_EQ(out[i].record.payload, records[i].payload);
    }
  }
  std::vector<StoredRecord> raw_out;
  ASSERT_TRUE(DecodeSegment(Codec::kRaw, encoded, 1, static_cast<uint32_t>(records.size()), &raw_out).ok());
  EXPECT_EQ(raw_out.back().record.payload, records.back().payload);
}

TEST(SegmentCodec, IncompressibleDataIsStoredRaw) {
  std::string encoded;
  int64_t prev = 0;
  std::string noise;
  uint32_t x = 12345;
  for (int i = 0; i < 4000; ++i) noise.push_back(static_cast<char>((x = x * 1103515245 + 12345) >> 24));
  EncodeRecord(Record{1, "s", "c", ContentType::kBinary, noise}, &prev, &encoded);
  Codec codec;
  const std::string blob = CompressSegment(encoded, 3, &codec);
  EXPECT_EQ(codec, Codec::kRaw);
  EXPECT_EQ(blob, encoded);
}

TEST(SegmentCodec, DamageIsReportedAsCorruptionNeverACrash) {
  const auto records = Sample();
  std::string encoded;
  int64_t prev = 0;
  for (const auto& r : records) EncodeRecord(r, &prev, &encoded);
  Codec codec;
  const std::string blob = CompressSegment(encoded, 3, &codec);
  const auto n = static_cast<uint32_t>(records.size());
  std::vector<StoredRecord> out;
  // A flipped byte is caught (zstd content checksum) unless it sits in a frame header
  // field that does not change the content; then the records decode unchanged.
  int caught = 0;
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    out.clear();
    if (!DecodeSegment(codec, bad, 1, n, &out).ok()) {
      ++caught;
    } else {
      ASSERT_EQ(out.size(), records.size()) << i;
      for (size_t k = 0; k < out.size(); ++k) ASSERT_EQ(out[k].record.payload, records[k].payload) << i;
    }
  }
  EXPECT_GE(caught, static_cast<int>(blob.size()) - 4);
  for (size_t len = 0; len < blob.size(); len += 7) {
    out.clear();
    EXPECT_TRUE(DecodeSegment(codec, blob.substr(0, len), 1, n, &out).IsCorruption()) << len;
  }
  // Raw encoding: truncation, a count mismatch and trailing bytes are all caught.
  EXPECT_TRUE(DecodeSegment(Codec::kRaw, encoded.substr(0, encoded.size() - 1), 1, n, &out).IsCorruption());
  EXPECT_TRUE(DecodeSegment(Codec::kRaw, encoded, 1, n + 1, &out).IsCorruption());
  EXPECT_TRUE(DecodeSegment(Codec::kRaw, encoded, 1, n - 1, &out).IsCorruption());
  EXPECT_TRUE(DecodeSegment(static_cast<Codec>(9), encoded, 1, n, &out).IsCorruption());
}

// Sensor-like records that differ in their numbers, as a slow source sends them.
std::vector<std::string> SensorSamples(int n, int offset) {
  std::vector<std::string> out;
  for (int i = offset; i < offset + n; ++i) {
    Record r{1'700'000'000'000'000'000 + i * 1'000'000'000LL, "plant", "sensors/aq-0" + std::to_string(i % 4),
             ContentType::kJson,
             "{\"sensor\":\"aq-0" + std::to_string(i % 4) + "\",\"t\":" + std::to_string(15 + (i * 7) % 13) + "." +
                 std::to_string(i % 10) + ",\"rh\":" + std::to_string(40 + (i * 3) % 29) + ",\"co\":" +
                 std::to_string((i * 11) % 7) + "." + std::to_string((i * 13) % 10) + ",\"status\":\"ok\"}"};
    int64_t prev = 0;
    std::string one;
    EncodeRecord(r, &prev, &one);
    out.push_back(one);
  }
  return out;
}

TEST(SegmentCodec, ADictionarySegmentNeedsItsOwnDictionary) {
  auto dict = SegmentDictionary::Train(SensorSamples(1000, 0), 3);
  ASSERT_NE(dict, nullptr) << "a dictionary should win on small sensor segments";
  auto other = SegmentDictionary::Train(SensorSamples(1000, 5000), 3);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(dict->id(), other->id());
  std::vector<Record> records;
  std::string encoded;
  int64_t prev = 0;
  for (int i = 0; i < 3; ++i) {
    records.push_back(Record{1'700'000'000'000'000'000 + i, "plant", "sensors/aq-01", ContentType::kJson,
                             "{\"sensor\":\"aq-01\",\"t\":2" + std::to_string(i) + ".5,\"rh\":48,\"co\":1.2,\"status\":\"ok\"}"});
    EncodeRecord(records.back(), &prev, &encoded);
  }
  Codec plain_codec, dict_codec;
  const std::string plain = CompressSegment(encoded, 3, &plain_codec);
  const std::string blob = CompressSegment(encoded, 3, &dict_codec, dict.get());
  ASSERT_EQ(dict_codec, Codec::kZstdDict);
  EXPECT_LT(blob.size(), plain.size());
  EXPECT_EQ(SegmentDictionaryId(blob), dict->id());
  std::vector<StoredRecord> out;
  EXPECT_TRUE(DecodeSegment(dict_codec, blob, 1, 3, &out).IsCorruption());
  EXPECT_TRUE(DecodeSegment(dict_codec, blob, 1, 3, &out, other.get()).IsCorruption());
  out.clear();
  ASSERT_TRUE(DecodeSegment(dict_codec, blob, 1, 3, &out, dict.get()).ok());
  ASSERT_EQ(out.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i].record.payload, records[i].payload);
  // Stored and loaded again, it is the same dictionary.
  auto loaded = SegmentDictionary::Load(dict->bytes(), 3);
  ASSERT_TRUE(loaded.ok());
  out.clear();
  EXPECT_TRUE(DecodeSegment(dict_codec, blob, 1, 3, &out, loaded->get()).ok());
  EXPECT_TRUE(SegmentDictionary::Load("not a dictionary", 3).status().IsCorruption());
}

// Found by fuzz/segment_codec_fuzz: the ts delta overflowed int64 (undefined behaviour).
TEST(SegmentCodec, ExtremeTimestampsRoundTrip) {
  const int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
  std::vector<Record> records;
  for (int64_t ts : {kMax, kMin, int64_t{0}, kMax, int64_t{-1}, kMin}) {
    records.push_back(Record{ts, "s", "c", ContentType::kText, "x"});
  }
  std::string encoded;
  int64_t prev = 0;
  for (const auto& r : records) EncodeRecord(r, &prev, &encoded);
  std::vector<StoredRecord> out;
  ASSERT_TRUE(DecodeSegment(Codec::kRaw, encoded, 1, static_cast<uint32_t>(records.size()), &out).ok());
  ASSERT_EQ(out.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(out[i].record.ts_ns, records[i].ts_ns) << i;
}

// A damaged row: a zstd frame header that claims 4 GiB but holds one byte, and a record
// count of 4 billion. Both fail as Corruption without allocating what they claim.
TEST(SegmentCodec, DamagedSizesFailAsCorruptionWithoutAllocatingWhatTheyClaim) {
  // RFC 8878: magic, descriptor (8-byte content size), window byte, size 2^32, one raw last block of 1 byte.
  const std::string blob("\x28\xb5\x2f\xfd\xc0\x00\x00\x00\x00\x00\x01\x00\x00\x00\x09\x00\x00x", 18);
  std::vector<StoredRecord> out;
  const Status st = DecodeSegment(Codec::kZstd, blob, 1, 1, &out);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  std::string one;
  int64_t prev = 0;
  EncodeRecord(Record{1, "s", "c", ContentType::kText, "x"}, &prev, &one);
  out.clear();
  EXPECT_TRUE(DecodeSegment(Codec::kRaw, one, 1, 4'000'000'000u, &out).IsCorruption());
  EXPECT_LT(out.capacity(), 100u) << "reserved for the claimed count, not for what the blob holds";
}

// Found by a review: a crafted buffer.db row, 16 KiB of zstd RLE blocks that decode to
// 512 MiB, took `buffer check` (and salvage, and a sink's read) to 540 MB of RSS. A frame
// that claims more than any segment edgeferry writes is refused before it decodes.
TEST(SegmentCodec, AZstdBombIsRefusedBeforeItDecodes) {
  // RFC 8878: magic; descriptor 0xC0 (8-byte content size); window 128 KiB; 512 MiB;
  // then 4096 RLE blocks of 128 KiB of zeros (3-byte header + 1 byte each).
  std::string blob("\x28\xb5\x2f\xfd\xc0\x38", 6);
  const uint64_t claimed = 512ull << 20;
  for (int i = 0; i < 8; ++i) blob.push_back(static_cast<char>((claimed >> (8 * i)) & 0xff));
  for (int b = 0; b < 4096; ++b) {
    const uint32_t header = (131072u << 3) | (1u << 1) | (b == 4095 ? 1u : 0u);
    for (int i = 0; i < 3; ++i) blob.push_back(static_cast<char>((header >> (8 * i)) & 0xff));
    blob.push_back('\0');
  }
  struct rusage before {}, after {};
  getrusage(RUSAGE_SELF, &before);
  std::vector<StoredRecord> out;
  const Status st = DecodeSegment(Codec::kZstd, blob, 1, 1, &out);
  getrusage(RUSAGE_SELF, &after);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("bad zstd frame header"), std::string::npos) << st.ToString();
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB of peak RSS the decode added";
}

// Schema 3: event time and the unsynchronized clock's boot stamp round-trip; a record
// of schema 2 (a content type byte with no flags), built by hand here, still decodes.
TEST(SegmentCodec, TimeFieldsRoundTripAndSchemaTwoRecordsStillDecode) {
  std::vector<Record> records(3);
  records[0] = Record{1'800'000'000'000'000'000, "gps", "/dev/ttyUSB0", ContentType::kNmea, "$GPRMC,..."};
  records[0].event_ts_ns = 1'430'000'000'000'000'000;  // a receiver's 2015 clock: far behind ts
  records[1] = Record{12'000'000'000, "plant", "t", ContentType::kJson, "{}"};
  records[1].ts_source = TsSource::kUnsynced;
  records[1].boot_ns = -5'000'000'123;  // an aggregate window that starts before the boot
  records[1].boot_id = "11111111-1111-1111-1111-111111111111";
  records[2] = Record{1'800'000'000'000'000'007, "plant", "t", ContentType::kText, "x"};
  records[2].ts_source = TsSource::kRebased;
  std::string encoded;
  int64_t prev = 0;
  for (const auto& r : records) EncodeRecord(r, &prev, &encoded);
  std::vector<StoredRecord> out;
  ASSERT_TRUE(DecodeSegment(Codec::kRaw, encoded, 1, 3, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].record.ts_ns, records[i].ts_ns) << i;
    EXPECT_EQ(out[i].record.event_ts_ns, records[i].event_ts_ns) << i;
    EXPECT_EQ(out[i].record.ts_source, records[i].ts_source) << i;
    EXPECT_EQ(out[i].record.boot_ns, records[i].boot_ns) << i;
    EXPECT_EQ(out[i].record.boot_id, records[i].boot_id) << i;
    EXPECT_EQ(out[i].record.content_type, records[i].content_type) << i;
    EXPECT_EQ(out[i].record.payload, records[i].payload) << i;
  }

  // Schema 2, per FORMAT.md: zigzag ts delta 300 (0xd8 0x04), source "s", channel "c",
  // content type 1 (json), payload "{}".
  constexpr char kV2[] = "\xd8\x04\x01s\x01" "c\x01\x02{}";
  const std::string v2(kV2, sizeof(kV2) - 1);
  out.clear();
  ASSERT_TRUE(DecodeSegment(Codec::kRaw, v2, 7, 1, &out).ok());
  EXPECT_EQ(out[0].record.ts_ns, 300);
  EXPECT_EQ(out[0].record.event_ts_ns, 0);
  EXPECT_EQ(out[0].record.ts_source, TsSource::kClock);
  EXPECT_EQ(out[0].record.content_type, ContentType::kJson);
  EXPECT_EQ(out[0].record.payload, "{}");

  // The time bytes alone, as the dead_letters and replay tables keep them.
  for (const auto& r : records) {
    Record back{r.ts_ns, "", "", ContentType::kBinary, ""};
    ASSERT_TRUE(DecodeRecordTime(EncodeRecordTime(r), &back));
    EXPECT_EQ(back.event_ts_ns, r.event_ts_ns);
    EXPECT_EQ(back.ts_source, r.ts_source);
    EXPECT_EQ(back.boot_ns, r.boot_ns);
    EXPECT_EQ(back.boot_id, r.boot_id);
  }
  EXPECT_EQ(EncodeRecordTime(Record{5, "s", "c", ContentType::kJson, "{}"}), "") << "nothing to keep";
  Record junk;
  EXPECT_FALSE(DecodeRecordTime(std::string("\x40\x05", 2), &junk)) << "a boot stamp cut short";
  EXPECT_FALSE(DecodeRecordTime(std::string("\x01", 1), &junk)) << "a content type where flags belong";
  EXPECT_EQ(junk.ts_source, TsSource::kClock);

  // Unsynced and rebased at once is not a record edgeferry writes.
  constexpr char kBoth[] = "\xd8\x04\x01s\x01" "c\x61\x00\x00\x02{}";
  const std::string both(kBoth, sizeof(kBoth) - 1);
  out.clear();
  EXPECT_TRUE(DecodeSegment(Codec::kRaw, both, 7, 1, &out).IsCorruption());
}

}  // namespace
}  // namespace edgeferry::buffer
