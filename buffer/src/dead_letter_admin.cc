#include "edgeferry/buffer/dead_letter_admin.h"

#include <fmt/format.h>

#include <filesystem>

#include "dead_letter_rows.h"
#include "edgeferry/buffer/segment_codec.h"
#include "edgeferry/clock.h"
#include "sqlite.h"

namespace edgeferry::buffer {

class DeadLetterAdmin::Impl {
 public:
  sql::Db db;

  // The selected ids: `ids`, or every dead letter when empty.
  Result<std::vector<DeadLetter>> Select(const std::vector<uint64_t>& ids) {
    if (ids.empty()) return QueryDeadLetters(db, 0, SIZE_MAX >> 1);
    std::vector<DeadLetter> out;
    for (uint64_t id : ids) {
      auto one = QueryDeadLetters(db, 0, 1, id);
      if (!one.ok()) return one.status();
      if (one->empty()) return Status::NotFound(fmt::format("no dead letter {}", id));
      out.push_back(std::move(one->front()));
    }
    return out;
  }
};

Result<std::unique_ptr<DeadLetterAdmin>> DeadLetterAdmin::Open(const std::string& path) {
  if (!std::filesystem::exists(path)) return Status::NotFound(fmt::format("no store at {}", path));
  auto impl = std::make_unique<Impl>();
  if (Status st = impl->db.Open(path); !st.ok()) return st;
  if (Status st = impl->db.Exec("PRAGMA busy_timeout=5000"); !st.ok()) return st;
  // The agent creates the replay table; an older store may not have it yet.
  if (Status st = impl->db.Exec(
          "CREATE TABLE IF NOT EXISTS replay(id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, seq INTEGER, "
          "queued_ns INTEGER NOT NULL, ts_ns INTEGER NOT NULL, source TEXT NOT NULL, channel TEXT NOT NULL, "
          "content_type INTEGER NOT NULL, payload BLOB NOT NULL, time BLOB)");
      !st.ok()) {
    return st;
  }
  if (Status st = AddTimeColumns(impl->db); !st.ok()) return st;
  return std::unique_ptr<DeadLetterAdmin>(new DeadLetterAdmin(std::move(impl)));
}

DeadLetterAdmin::DeadLetterAdmin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeadLetterAdmin::~DeadLetterAdmin() = default;

Result<std::vector<DeadLetter>> DeadLetterAdmin::List(uint64_t after_id, size_t limit) {
  return QueryDeadLetters(impl_->db, after_id, limit);
}

Result<DeadLetter> DeadLetterAdmin::Get(uint64_t id) {
  auto one = QueryDeadLetters(impl_->db, 0, 1, id);
  if (!one.ok()) return one.status();
  if (one->empty()) return Status::NotFound(fmt::format("no dead letter {}", id));
  return std::move(one->front());
}

Result<size_t> DeadLetterAdmin::Purge(const std::vector<uint64_t>& ids) {
  size_t n = 0;
  Status st = impl_->db.Transaction([&]() -> Status {
    auto selected = impl_->Select(ids);
    if (!selected.ok()) return selected.status();
    auto del = impl_->db.Prepare("DELETE FROM dead_letters WHERE id = ?1");
    if (!del.ok()) return del.status();
    for (const auto& d : *selected) {
      if (Status s = del->Bind(1, static_cast<int64_t>(d.id)).Exec(); !s.ok()) return s;
      ++n;
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return n;
}

Result<size_t> DeadLetterAdmin::Replay(const std::vector<uint64_t>& ids, const std::string& sink) {
  size_t n = 0;
  Status st = impl_->db.Transaction([&]() -> Status {
    auto selected = impl_->Select(ids);
    if (!selected.ok()) return selected.status();
    auto ins = impl_->db.Prepare(
        "INSERT INTO replay(sink,seq,queued_ns,ts_ns,source,channel,content_type,payload,time) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    auto del = impl_->db.Prepare("DELETE FROM dead_letters WHERE id = ?1");
    if (!ins.ok()) return ins.status();
    if (!del.ok()) return del.status();
    for (const auto& d : *selected) {
      // A sink's refusal goes back to that sink with its seq; a source's, to everyone anew.
      std::string target = sink;
      if (target.empty()) {
        target = d.stage.starts_with("sink:") && d.seq ? d.stage.substr(5) : std::string(kReplayToAllSinks);
      }
      ins->Bind(1, target);
      if (d.seq && target != kReplayToAllSinks) {
        ins->Bind(2, static_cast<int64_t>(*d.seq));
      } else {
        ins->BindNull(2);
      }
      Status s = ins->Bind(3, SystemClock().NowNs())
                     .Bind(4, d.record.ts_ns)
                     .Bind(5, d.record.source)
                     .Bind(6, d.record.channel)
                     .Bind(7, static_cast<int64_t>(d.record.content_type))
                     .BindBlob(8, d.record.payload)
                     .BindBlob(9, EncodeRecordTime(d.record))
                     .Exec();
      if (!s.ok()) return s;
      if (s = del->Bind(1, static_cast<int64_t>(d.id)).Exec(); !s.ok()) return s;
      ++n;
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return n;
}

Status DeadLetterAdmin::RequestMove(const std::string& sink, uint64_t seq) {
  return impl_->db.Transaction([&]() -> Status {
    auto cur = impl_->db.Prepare("SELECT acked_seq FROM cursors WHERE name = ?1");
    if (!cur.ok()) return cur.status();
    cur->Bind(1, sink);
    Status st;
    if (!cur->Step(&st)) {
      return st.ok() ? Status::NotFound(fmt::format("no sink \"{}\" in this store", sink)) : st;
    }
    const auto acked = static_cast<uint64_t>(cur->Int(0));
    if (seq <= acked) {
      return Status::InvalidArgument(fmt::format("seq {} is already delivered to sink {} (its cursor is at {})", seq,
                                                 sink, acked));
    }
    auto last = impl_->db.Prepare("SELECT COALESCE(MAX(last_seq), 0) FROM segments");
    if (!last.ok()) return last.status();
    if (!last->Step(&st)) return st;
    if (seq > static_cast<uint64_t>(last->Int(0))) {
      return Status::InvalidArgument(
          fmt::format("seq {} is not in the store (last written seq {})", seq, last->Int(0)));
    }
    auto ins = impl_->db.Prepare(
        "INSERT INTO replay(sink,seq,queued_ns,ts_ns,source,channel,content_type,payload) "
        "VALUES(?1,?2,?3,0,'','',0,x'')");
    if (!ins.ok()) return ins.status();
    return ins->Bind(1, std::string(kMoveRequestPrefix) + sink)
        .Bind(2, static_cast<int64_t>(seq))
        .Bind(3, SystemClock().NowNs())
        .Exec();
  });
}

}  // namespace edgeferry::buffer
