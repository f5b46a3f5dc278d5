#include "sqlite.h"

#include <fmt/format.h>

namespace edgeferry::buffer::sql {

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view text) {
  sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(int i, std::string_view bytes) {
  // SQLITE_STATIC: callers keep the bytes alive until Step/Exec returns.
  sqlite3_bind_blob(s_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

bool Stmt::Step(Status* status) {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    const int ext = sqlite3_extended_errcode(db_);
    std::string msg = fmt::format("{} ({})", sqlite3_errmsg(db_), ext);
    *status = (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? Status::Corruption(msg)
              : rc == SQLITE_FULL                           ? Status::Full(msg)
                                                            : Status::IOError(msg);
  }
  Reset();
  return false;
}

Status Stmt::Exec() {
  Status st;
  while (Step(&st)) {
  }
  return st;
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string_view Stmt::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)))
           : std::string_view();
}

std::string_view Stmt::Blob(int col) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)))
           : std::string_view();
}

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    Close();
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

Db::~Db() { Close(); }

void Db::Close() {
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status Db::Open(const std::string& path, bool read_only, const std::string& vfs) {
  Close();
  const int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    Status st = Error(rc, "open " + path);
    Close();
    return st;
  }
  sqlite3_extended_result_codes(db_, 1);
  return Status::Ok();
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Error(rc & 0xff, fmt::format("{}: {}", s.substr(0, 60), msg));
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return Error(rc, fmt::format("prepare '{}'", sql.substr(0, 60)));
  return Stmt(db_, s);
}

Status Db::Transaction(const std::function<Status()>& body) {
  if (Status st = Exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  Status st = body();
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) (void)Exec("ROLLBACK");
  return st;
}

Result<int64_t> Db::QueryInt(std::string_view sql, int64_t fallback) {
  auto stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  Status st;
  if (stmt->Step(&st)) {
    const int64_t v = stmt->IsNull(0) ? fallback : stmt->Int(0);
    stmt->Reset();
    return v;
  }
  if (!st.ok()) return st;
  return fallback;
}

Status Db::Error(int rc, std::string_view what) const {
  const std::string msg =
      fmt::format("{}: {}", what, db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(msg);
    case SQLITE_FULL:
      return Status::Full(msg);
    default:
      return Status::IOError(msg);
  }
}

}  // namespace edgeferry::buffer::sql
