#include "edgeferry/buffer/check.h"

#include <filesystem>

#include "salvage.h"
#include "sqlite.h"

namespace edgeferry::buffer {

uint64_t CheckReport::records_lost() const {
  uint64_t n = records_unreachable;
  for (const auto& b : bad_segments) n += b.count;
  return n;
}

Result<CheckReport> CheckStore(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound("no store at " + path);
  CheckReport report;
  report.path = path;
  if (std::filesystem::file_size(path, ec) == 0) {
    report.sqlite_problems.push_back("the database file is 0 bytes (truncated)");
    return report;
  }
  sql::Db db;
  if (Status st = db.Open(path, /*read_only=*/true); !st.ok()) {
    report.sqlite_problems.push_back(st.ToString());
    return report;
  }
  (void)db.Exec("PRAGMA busy_timeout=5000");
  // Reads a file shorter than its header says (truncated); the connection is read-only.
  (void)db.Exec("PRAGMA writable_schema=ON");
  // One snapshot: the counters and the rows agree even while an agent commits.
  (void)db.Exec("BEGIN");
  if (auto stmt = db.Prepare("PRAGMA quick_check(100)"); stmt.ok()) {
    Status st;
    while (stmt->Step(&st)) {
      if (stmt->Text(0) != "ok") report.sqlite_problems.emplace_back(stmt->Text(0));
    }
    if (!st.ok()) report.sqlite_problems.push_back(st.ToString());
  } else {
    report.sqlite_problems.push_back(stmt.status().ToString());
    return report;  // not a database SQLite can read at all
  }
  if (auto n = db.QueryInt("SELECT value FROM counters WHERE name='records'", -1); n.ok()) {
    report.records_expected = *n;
  }
  const auto dicts = LoadDictionaries(db, 3);
  const SegmentScan scan = ScanSegments(db);
  report.damaged_regions = scan.damaged_regions;
  report.first_error = scan.first_error;
  uint64_t described = 0;
  std::string blob;
  for (const auto& m : scan.segments) {
    described += m.count;
    if (Status st = ReadVerifiedBlob(db, m, dicts, &blob); !st.ok()) {
      report.bad_segments.push_back({m.first_seq, m.last_seq, m.count, st.ToString()});
      if (report.first_error.empty()) report.first_error = st.ToString();
      continue;
    }
    ++report.segments_ok;
    report.records_ok += m.count;
  }
  (void)db.Exec("COMMIT");
  if (report.records_expected > static_cast<int64_t>(described)) {
    report.records_unreachable = static_cast<uint64_t>(report.records_expected) - described;
  }
  return report;
}

}  // namespace edgeferry::buffer
