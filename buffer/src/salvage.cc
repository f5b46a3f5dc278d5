#include "salvage.h"

#include <fmt/format.h>

#include <cstdint>

namespace edgeferry::buffer {

namespace {

constexpr const char* kMetaColumns =
    "first_seq, last_seq, count, ts_min, ts_max, payload_bytes, encoded_bytes, sealed_ns, codec";
constexpr uint64_t kMaxKey = static_cast<uint64_t>(INT64_MAX);

SegmentMeta RowToMeta(const sql::Stmt& s) {
  SegmentMeta m;
  m.first_seq = static_cast<uint64_t>(s.Int(0));
  m.last_seq = static_cast<uint64_t>(s.Int(1));
  m.count = static_cast<uint32_t>(s.Int(2));
  m.ts_min = s.Int(3);
  m.ts_max = s.Int(4);
  m.payload_bytes = static_cast<uint64_t>(s.Int(5));
  m.encoded_bytes = static_cast<uint64_t>(s.Int(6));
  m.sealed_ns = s.Int(7);
  m.codec = static_cast<Codec>(s.Int(8));
  return m;
}

}  // namespace

SegmentScan ScanSegments(sql::Db& db) {
  SegmentScan scan;
  auto up = db.Prepare(fmt::format("SELECT {} FROM segments WHERE first_seq > ?1 ORDER BY first_seq LIMIT 1",
                                   kMetaColumns));
  auto down = db.Prepare(fmt::format(
      "SELECT {} FROM segments WHERE first_seq < ?1 AND first_seq > ?2 ORDER BY first_seq DESC LIMIT 1",
      kMetaColumns));
  if (!up.ok() || !down.ok()) {
    scan.damaged_regions = 1;
    scan.first_error = (up.ok() ? down.status() : up.status()).ToString();
    return scan;
  }
  std::map<uint64_t, SegmentMeta> found;
  auto note_error = [&](const Status& st) {
    if (scan.first_error.empty()) scan.first_error = st.ToString();
  };
  // Rows below `below` and above `floor`, read backwards until an error or a known row.
  auto read_down = [&](uint64_t below, uint64_t floor) {
    while (below > floor + 1) {
      Status st;
      if (!down->Bind(1, static_cast<int64_t>(below)).Bind(2, static_cast<int64_t>(floor)).Step(&st)) return;
      const SegmentMeta m = RowToMeta(*down);
      down->Reset();
      // A hostile or damaged schema (first_seq not an integer key) must not loop.
      if (m.first_seq >= below || !found.emplace(m.first_seq, m).second) return;
      below = m.first_seq;
    }
  };
  uint64_t after = 0;
  while (true) {
    Status st;
    if (up->Bind(1, static_cast<int64_t>(after)).Step(&st)) {
      const SegmentMeta m = RowToMeta(*up);
      up->Reset();
      if (m.first_seq <= after) {  // 1.5 > 1 to SQLite, 1 as an integer: the scan would spin
        ++scan.damaged_regions;
        note_error(Status::Corruption("segments: first_seq is not an increasing integer key"));
        break;
      }
      found.emplace(m.first_seq, m);
      after = m.first_seq;
      continue;
    }
    if (st.ok()) break;  // the end
    ++scan.damaged_regions;
    note_error(st);
    // A damaged page beyond `after`: find the next key SQLite can reach.
    bool resumed = false;
    for (uint64_t step = 1; step < kMaxKey - after; step *= 2) {
      Status ps;
      if (up->Bind(1, static_cast<int64_t>(after + step)).Step(&ps)) {
        const SegmentMeta m = RowToMeta(*up);
        up->Reset();
        if (m.first_seq <= after) break;
        read_down(m.first_seq, after);
        found.emplace(m.first_seq, m);
        after = m.first_seq;
        resumed = true;
        break;
      }
      if (ps.ok()) break;  // nothing beyond this key; what lies below it is read backwards
    }
    if (!resumed) {
      read_down(kMaxKey, after);
      break;
    }
  }
  scan.segments.reserve(found.size());
  for (auto& [first, m] : found) scan.segments.push_back(m);
  return scan;
}

std::map<uint32_t, std::unique_ptr<SegmentDictionary>> LoadDictionaries(sql::Db& db, int zstd_level) {
  std::map<uint32_t, std::unique_ptr<SegmentDictionary>> dicts;
  auto stmt = db.Prepare("SELECT bytes FROM dictionaries ORDER BY created_ns, id");
  if (!stmt.ok()) return dicts;
  Status st;
  while (stmt->Step(&st)) {
    auto d = SegmentDictionary::Load(std::string(stmt->Blob(0)), zstd_level);
    if (d.ok()) dicts[(*d)->id()] = std::move(d).value();
  }
  return dicts;
}

Status ReadVerifiedBlob(sql::Db& db, const SegmentMeta& meta,
                        const std::map<uint32_t, std::unique_ptr<SegmentDictionary>>& dicts, std::string* blob) {
  auto stmt = db.Prepare("SELECT blob FROM segments WHERE first_seq = ?1");
  if (!stmt.ok()) return stmt.status();
  Status st;
  if (!stmt->Bind(1, static_cast<int64_t>(meta.first_seq)).Step(&st)) {
    return st.ok() ? Status::Corruption("row vanished") : Status::Corruption("unreadable: " + st.ToString());
  }
  *blob = std::string(stmt->Blob(0));
  stmt->Reset();
  if (meta.count == 0 || meta.last_seq != meta.first_seq + meta.count - 1) {
    return Status::Corruption(fmt::format("inconsistent row: {}..{} with count {}", meta.first_seq,
                                          meta.last_seq, meta.count));
  }
  const SegmentDictionary* dict = nullptr;
  if (meta.codec == Codec::kZstdDict) {
    const auto it = dicts.find(SegmentDictionaryId(*blob));
    if (it != dicts.end()) dict = it->second.get();
  }
  std::vector<StoredRecord> records;
  return DecodeSegment(meta.codec, *blob, meta.first_seq, meta.count, &records, dict);
}

}  // namespace edgeferry::buffer
