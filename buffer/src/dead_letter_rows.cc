#include "dead_letter_rows.h"

#include <fmt/format.h>

#include "edgeferry/buffer/segment_codec.h"

namespace edgeferry::buffer {

Result<std::vector<DeadLetter>> QueryDeadLetters(sql::Db& db, uint64_t after_id, size_t limit,
                                                 std::optional<uint64_t> id) {
  // A store of schema 2 opened read-only (a quarantined copy being salvaged) has no time column.
  auto has_time = db.QueryInt("SELECT count(*) FROM pragma_table_info('dead_letters') WHERE name = 'time'", 0);
  if (!has_time.ok()) return has_time.status();
  auto stmt = db.Prepare(fmt::format(
      "SELECT id,dead_ns,seq,stage,reason,ts_ns,source,channel,content_type,payload,{} FROM dead_letters "
      "WHERE id > ?1 AND (?3 IS NULL OR id = ?3) ORDER BY id LIMIT ?2",
      *has_time > 0 ? "time" : "NULL"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, static_cast<int64_t>(after_id)).Bind(2, static_cast<int64_t>(limit));
  if (id) {
    stmt->Bind(3, static_cast<int64_t>(*id));
  } else {
    stmt->BindNull(3);
  }
  std::vector<DeadLetter> out;
  Status st;
  while (stmt->Step(&st)) {
    DeadLetter d;
    d.id = static_cast<uint64_t>(stmt->Int(0));
    d.dead_ns = stmt->Int(1);
    if (!stmt->IsNull(2)) d.seq = static_cast<uint64_t>(stmt->Int(2));
    d.stage = stmt->Text(3);
    d.reason = stmt->Text(4);
    d.record.ts_ns = stmt->Int(5);
    d.record.source = stmt->Text(6);
    d.record.channel = stmt->Text(7);
    d.record.content_type = static_cast<ContentType>(stmt->Int(8));
    d.record.payload = stmt->Blob(9);
    (void)DecodeRecordTime(stmt->IsNull(10) ? std::string_view() : stmt->Blob(10), &d.record);
    out.push_back(std::move(d));
  }
  if (!st.ok()) return st;
  return out;
}

Status AddTimeColumns(sql::Db& db) {
  auto missing = [&](const char* table) -> Result<bool> {
    auto has = db.QueryInt(fmt::format("SELECT count(*) FROM pragma_table_info('{}') WHERE name = 'time'", table), 0);
    if (!has.ok()) return has.status();
    return *has == 0;
  };
  for (const char* table : {"dead_letters", "replay"}) {
    auto need = missing(table);
    if (!need.ok()) return need.status();
    if (!*need) continue;
    // The agent and `edgeferry dlq` may open an old store at once: look again under the
    // write lock, so only one of them adds the column.
    if (Status st = db.Exec("BEGIN IMMEDIATE"); !st.ok()) return st;
    need = missing(table);
    Status st = need.ok() ? Status::Ok() : need.status();
    if (st.ok() && *need) st = db.Exec(fmt::format("ALTER TABLE {} ADD COLUMN time BLOB", table));
    if (!st.ok()) {
      (void)db.Exec("ROLLBACK");
      return st;
    }
    if (Status c = db.Exec("COMMIT"); !c.ok()) return c;
  }
  return Status::Ok();
}

}  // namespace edgeferry::buffer
