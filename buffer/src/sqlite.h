// Thin RAII wrappers over the SQLite C API, internal to buffer/.
// Not thread-safe: the Store serialises all use of one Db under its mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "edgeferry/status.h"

namespace edgeferry::buffer::sql {

class Db;

class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view text);
  Stmt& BindBlob(int i, std::string_view bytes);
  Stmt& BindNull(int i);
  // SQLITE_ROW -> true; SQLITE_DONE -> false (and resets); errors -> *status.
  bool Step(Status* status);
  // Runs to completion, then resets.
  Status Exec();
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view Text(int col) const;
  std::string_view Blob(int col) const;

 private:
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  Db() = default;
  Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Db& operator=(Db&& o) noexcept;
  ~Db();

  Status Open(const std::string& path, bool read_only = false, const std::string& vfs = "");
  void Close();
  bool is_open() const { return db_ != nullptr; }
  Status Exec(std::string_view sql);
  Result<Stmt> Prepare(std::string_view sql);
  // BEGIN IMMEDIATE; body(); COMMIT, or ROLLBACK when body or the commit fails.
  Status Transaction(const std::function<Status()>& body);
  // First column of the first row as an integer; `fallback` when there is no row.
  Result<int64_t> QueryInt(std::string_view sql, int64_t fallback = 0);
  // A Status for a SQLite result code, with the database's message: SQLITE_CORRUPT and
  // SQLITE_NOTADB -> Corruption, SQLITE_FULL -> Full, others -> IOError.
  Status Error(int rc, std::string_view what) const;
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace edgeferry::buffer::sql
