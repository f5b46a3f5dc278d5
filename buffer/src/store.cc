// Store: see store.h for the contract and FORMAT.md for the on-disk layout.
//
// Concurrency: one mutex (mu_) guards all state and the one SQLite connection.
// Appends only touch memory; a background flusher thread seals, compresses
// (outside the lock) and commits segments, persists cursors, deletes what every
// cursor has passed and enforces the cap and TTL.
#include "edgeferry/buffer/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "edgeferry/buffer/segment_codec.h"
#include "edgeferry/repeat_limiter.h"
#include "edgeferry/thread_annotations.h"
#include "edgeferry/units.h"
#include "dead_letter_rows.h"
#include "salvage.h"
#include "sqlite.h"

namespace edgeferry::buffer {

namespace fs = std::filesystem;

namespace {

// 2: the dictionaries table and segment codec 2 (kZstdDict). Older edgeferry refuses a
// schema-2 store instead of taking codec 2 for corruption.
// 3: a record's content type byte carries time flags (FORMAT.md "Segment encoding").
constexpr int64_t kSchemaVersion = 3;
// Zstd dictionary for small segments: trained once from this many early records (or
// bytes), used for segments up to kDictMaxSegmentBytes (larger ones gain nothing).
// Only small records are sampled: they are what a dictionary helps, and training on a
// few big ones would hold up the commit thread.
constexpr size_t kDictTrainRecords = 1000;
constexpr size_t kDictTrainBytes = 192 << 10;
constexpr size_t kDictSampleMaxBytes = 1024;
constexpr uint64_t kDictMaxSegmentBytes = 64 << 10;
// Seqs are reserved this far ahead of use and the reservation is persisted, so a
// crash never lets a seq that a sink may have seen be handed out again.
constexpr uint64_t kSeqReserve = 1ull << 20;
// In-memory accounting per record (vector slot, string headers), bytes.
constexpr uint64_t kRecordOverhead = 96;
constexpr size_t kDecodedCacheSegments = 4;
// Per-row overhead added to a blob's size when estimating page use, bytes.
constexpr uint64_t kRowOverhead = 64;

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}
int64_t SaturatingSub(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_sub_overflow(a, b, &r) ? (b < 0 ? INT64_MAX : INT64_MIN) : r;
}

// A row of unsynced_seals: segments first..last were sealed while the wall clock was
// unsynchronized (FORMAT.md "Retention", TTL).
struct SealRun {
  uint64_t first = 0, last = 0;
  std::string boot;
  int64_t wall_minus_boot = 0;
  std::optional<int64_t> shift, floor;
};

// A segment's sealed_ns on the clock's present time line. One sealed in this boot while
// unsynchronized is brought over through boot time, which no step moves (shift: the
// offset's change since; kept once the clock is synchronized). One of an earlier boot
// cannot be placed, but was sealed before this boot began, so it counts from that
// moment (floor: never too old, at most this boot's uptime too young). `offset_now`:
// wall minus boot time now, i.e. this boot's start on the present line.
int64_t PresentSealedNs(const std::vector<SealRun>& runs, uint64_t first_seq, int64_t sealed_ns,
                        int64_t offset_now, const std::string& boot) {
  for (const SealRun& r : runs) {  // a few rows: one per boot and clock step
    if (first_seq < r.first || first_seq > r.last) continue;
    if (r.shift) return SaturatingAdd(sealed_ns, *r.shift);
    if (r.floor) return *r.floor;
    if (r.boot == boot && !boot.empty()) return SaturatingAdd(sealed_ns, SaturatingSub(offset_now, r.wall_minus_boot));
    return offset_now;
  }
  return sealed_ns;
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments(
  first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, count INTEGER NOT NULL,
  ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL, payload_bytes INTEGER NOT NULL,
  encoded_bytes INTEGER NOT NULL, sealed_ns INTEGER NOT NULL, codec INTEGER NOT NULL,
  blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cursors(
  name TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL, updated_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters(
  name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay(
  id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, seq INTEGER, queued_ns INTEGER NOT NULL,
  ts_ns INTEGER NOT NULL, source TEXT NOT NULL, channel TEXT NOT NULL, content_type INTEGER NOT NULL,
  payload BLOB NOT NULL, time BLOB);
CREATE TABLE IF NOT EXISTS dictionaries(
  id INTEGER PRIMARY KEY, created_ns INTEGER NOT NULL, trained_records INTEGER NOT NULL,
  bytes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters(
  id INTEGER PRIMARY KEY AUTOINCREMENT, dead_ns INTEGER NOT NULL, seq INTEGER,
  stage TEXT NOT NULL, reason TEXT NOT NULL, ts_ns INTEGER NOT NULL, source TEXT NOT NULL,
  channel TEXT NOT NULL, content_type INTEGER NOT NULL, payload BLOB NOT NULL, time BLOB);
CREATE TABLE IF NOT EXISTS unsynced_seals(
  first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, boot_id TEXT NOT NULL,
  wall_minus_boot_ns INTEGER NOT NULL, shift_ns INTEGER, floor_ns INTEGER);
)sql";

// Counter names persisted in the counters table.
constexpr const char* kCounterNames[] = {
    "records",       "payload_bytes",  "compressed_bytes", "segments",        "appended_total",
    "dropped.cap",   "dropped.ttl",    "dropped.reject_new", "dropped.corrupt", "dropped.disk_full",
    "dlq_total",     "written.records", "written.payload_bytes", "written.compressed_bytes",
    "backpressure_waits", "full", "dropped.unreadable", "salvaged", "dlq_pruned",
};

// What a dead letter row costs, roughly: the page space its variable fields take (the
// same sum AddDeadLetterLocked adds up for a new row).
#define EDGEFERRY_DEAD_LETTER_ROW_BYTES "length(payload) + length(reason) + length(source) + length(channel) + 64"
constexpr const char* kDeadLetterBytesSql =
    "SELECT coalesce(sum(" EDGEFERRY_DEAD_LETTER_ROW_BYTES "), 0) FROM dead_letters";
constexpr const char* kDeadLetterRowsBytesSql =
    "SELECT id, " EDGEFERRY_DEAD_LETTER_ROW_BYTES " FROM dead_letters ORDER BY id";
#undef EDGEFERRY_DEAD_LETTER_ROW_BYTES

uint64_t EstimateEncoded(const Record& r) {
  return r.payload.size() + r.source.size() + r.channel.size() + 16;
}

// A run of records not yet committed. Immutable once sealed, so the flusher can
// encode it without the lock while readers still see it.
struct MemSegment {
  uint64_t first_seq = 0;
  std::vector<StoredRecord> records;
  uint64_t encoded_estimate = 0;
  uint64_t payload_bytes = 0;
  int64_t opened_mono_ns = 0;
  bool sealed = false;
  // The flusher is encoding it without the lock: DropOldestPending must not take it,
  // or the commit would write (and the flusher pop) records already counted as dropped.
  bool in_flight = false;
  uint64_t last_seq() const { return first_seq + records.size() - 1; }
};

struct CursorState {
  uint64_t acked = 0;
  uint64_t persisted = 0;
};

struct SidecarState {
  uint64_t seq_ceiling = 0;
  uint64_t quarantined = 0;
  std::string last_quarantine;  // "<path>: <reason>" of the newest quarantine
};

// The "<db>.seq" sidecar: survives quarantine of the database so seq never goes back.
SidecarState ReadSidecar(const std::string& path) {
  SidecarState s;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    const uint64_t v = std::strtoull(line.c_str() + eq + 1, nullptr, 10);
    if (key == "seq_ceiling") s.seq_ceiling = v;
    if (key == "quarantined") s.quarantined = v;
    if (key == "last_quarantine") s.last_quarantine = line.substr(eq + 1);
  }
  return s;
}

Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(tmp + ": " + std::strerror(errno));
  const bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IOError(path + ": " + std::strerror(ok ? errno : saved));
  }
  return Status::Ok();
}

// The seq floor from the wall clock: microseconds since the epoch (FORMAT.md "Seq").
uint64_t ClockSeqFloor(int64_t now_ns) { return now_ns > 0 ? static_cast<uint64_t>(now_ns / 1000) : 0; }

Status WriteSeqFloor(const std::string& path, uint64_t ceiling) {
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  return WriteFileAtomically(
      path, fmt::format("# edgeferry seq floor: seqs below this may have been handed out; do not edit\n"
                        "seq_ceiling={}\n", ceiling));
}

Status WriteSidecar(const std::string& path, const SidecarState& s) {
  return WriteFileAtomically(
      path, fmt::format("# edgeferry store sidecar; do not edit\nseq_ceiling={}\nquarantined={}\nlast_quarantine={}\n",
                        s.seq_ceiling, s.quarantined, s.last_quarantine));
}

std::string UtcStamp(int64_t ns) {
  std::string s;
  AppendRfc3339Ns(ns, &s);  // 2026-11-21T08:47:37.123456789Z
  std::string out;
  for (char c : s.substr(0, 19)) {
    if (c != '-' && c != ':') out.push_back(c);
  }
  return out + "Z";
}

// Store files hold every record: 0600 whatever the umask. SQLite creates -wal and -shm
// with the database file's mode, so creating that one 0600 first covers them.
constexpr mode_t kDataFileMode = 0600;

Status CreatePrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kDataFileMode);
  if (fd < 0) return errno == EEXIST ? Status::Ok() : Status::IOError(path + ": " + std::strerror(errno));
  const bool ok = ::fchmod(fd, kDataFileMode) == 0;
  const int saved = errno;
  ::close(fd);
  return ok ? Status::Ok() : Status::IOError(path + ": chmod: " + std::strerror(saved));
}

// Files created by an older edgeferry (or under another umask) are made private too.
void MakePrivate(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) != kDataFileMode) {
    if (::chmod(path.c_str(), kDataFileMode) != 0) {
      spdlog::warn("buffer: cannot make {} private (0600): {}", path, std::strerror(errno));
    }
  }
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

class Store::Impl {
 public:
  explicit Impl(StoreOptions o) : opt_(std::move(o)), clock_(*opt_.clock) {}
  ~Impl() { (void)Close(); }

  Status Open();
  Result<uint64_t> Append(Record record, bool wait = true);
  Status Flush();
  Status Close();
  Result<uint64_t> OpenCursor(std::string_view name);
  Status DropCursor(std::string_view name);
  std::vector<std::string> CursorNames() const;
  Status ReadAfter(uint64_t after_seq, const ReadLimits& limits, std::vector<StoredRecord>* out);
  Status Ack(std::string_view name, uint64_t seq);
  bool WaitForRecords(uint64_t after_seq, int64_t timeout_ns);
  uint64_t LastSeq() const {
    Lock lock(mu_);
    return next_seq_ - 1;
  }
  Status AddDeadLetter(const Record& record, std::string_view stage, std::string_view reason,
                       std::optional<uint64_t> seq);
  Result<std::vector<DeadLetter>> ListDeadLetters(uint64_t after_id, size_t limit);
  StoreStats Stats();
  Result<std::vector<ReplayItem>> PeekReplay(std::string_view sink, size_t limit);
  Status FinishReplay(const std::vector<uint64_t>& ids);

 private:
  using Lock = MutexLock;

  // Lock discipline: mu_ guards every member below it except the dictionary state
  // (dict_mu_, taken after mu_ or alone) and the flusher thread handle. REQUIRES(mu_)
  // functions run with it held; WriteSealed releases it while it encodes. Open runs its
  // whole body under mu_ (before the flusher starts). The one SQLite connection is used
  // only under mu_.
  Status OpenDatabase(bool* corrupt) REQUIRES(mu_);
  Status OpenReadOnly() REQUIRES(mu_);
  Status RefuseIfReadOnly() const {
    return opt_.read_only ? Status::InvalidArgument("store opened read-only") : Status::Ok();
  }
  // Moves the store aside; *moved_to is the quarantined database's path.
  Status Quarantine(const std::string& reason, std::string* moved_to) REQUIRES(mu_);
  // Copies every intact segment (same seqs), the cursors, dictionaries, dead letters
  // and lifetime counters of a quarantined database into the fresh store.
  Status Salvage(const std::string& quarantined) REQUIRES(mu_);  // at Open, before the flusher starts
  Status LoadState() REQUIRES(mu_);
  Status ExtendSeqReservation(uint64_t new_ceiling) REQUIRES(mu_);
  void SealOpenSegment() REQUIRES(mu_);
  void FlusherLoop() EXCLUDES(mu_);
  // Encodes and compresses the sealed segments with mu_ released (they are immutable and
  // marked in flight, so DropOldestPending leaves them), then commits them under mu_.
  Status WriteSealed() REQUIRES(mu_);
  Status Maintain() REQUIRES(mu_);
  Status PersistCursors() REQUIRES(mu_);   // inside a transaction
  Status PersistCounters() REQUIRES(mu_);  // inside a transaction
  Status DeleteSegmentsUpTo(uint64_t last_seq, const char* drop_reason) REQUIRES(mu_);
  // Segments sealed while the wall clock was unsynchronized (FORMAT.md "Retention", TTL).
  template <typename Batch, typename EncodedList>
  Status NoteUnsyncedSeal(const Batch& batch, const EncodedList& encoded, int64_t sealed_ns) REQUIRES(mu_);
  // Inside a transaction. `drop_all_stored`: the batch itself is over the cap, so every
  // stored (older) segment goes, whatever room its deletion would make.
  Status EnforceCap(uint64_t incoming_bytes, bool drop_all_stored = false) REQUIRES(mu_);
  Status TrimToCap() REQUIRES(mu_);                          // inside a transaction
  uint64_t EffectiveCap(bool* at_floor) REQUIRES(mu_);
  void DropOldestPending() REQUIRES(mu_);
  Status EnforceTtl() REQUIRES(mu_);
  Result<std::vector<SealRun>> LoadSealRuns() REQUIRES(mu_);
  Result<uint64_t> UsedBytes() REQUIRES(mu_);
  uint64_t MinCursor() const REQUIRES(mu_);
  uint64_t OldestSeq() REQUIRES(mu_);
  // `body` runs with mu_ held; lambdas say so with mu_.AssertHeld() (the analysis does
  // not follow std::function).
  Status Transaction(const std::function<Status()>& body) REQUIRES(mu_);
  Result<std::shared_ptr<const std::vector<StoredRecord>>> DecodedSegment(
      uint64_t first_seq, uint32_t count, Codec codec, std::string_view blob) REQUIRES(mu_);
  // The dictionary for a segment of `raw_bytes`, training one from `samples` first when
  // enough have been gathered. Called without mu_ (from WriteSealed); uses dict_mu_.
  const SegmentDictionary* DictionaryFor(uint64_t raw_bytes, std::vector<std::string>* samples)
      EXCLUDES(dict_mu_);
  Status SaveDictionary() REQUIRES(mu_);  // inside a transaction
  Status AddDeadLetterLocked(const Record& record, std::string_view stage, std::string_view reason,
                             std::optional<uint64_t> seq, int64_t dead_ns) REQUIRES(mu_);
  int64_t TickNs() const {
    return std::clamp<int64_t>(opt_.commit_interval_ns, 10'000'000, 1'000'000'000);
  }

  const StoreOptions opt_;
  Clock& clock_;
  const std::string sidecar_path_ = opt_.path + ".seq";

  mutable Mutex mu_;
  CondVar flusher_cv_;  // wakes the flusher
  CondVar durable_cv_;  // durable_seq_ advanced, or space freed
  CondVar data_cv_;     // new records readable
  std::multiset<uint64_t> read_waiters_ GUARDED_BY(mu_);  // after_seq of each WaitForRecords in progress
  std::thread flusher_;  // started by Open, joined by Close (outside mu_)
  bool open_ GUARDED_BY(mu_) = false;
  bool closing_ GUARDED_BY(mu_) = false;

  sql::Db db_ GUARDED_BY(mu_);
  uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  uint64_t seq_ceiling_ GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ GUARDED_BY(mu_) = 0;   // every seq <= this is committed (or needed no commit)
  uint64_t write_errors_ GUARDED_BY(mu_) = 0;  // bumped on each failed commit, so waiters can give up
  Status last_write_error_ GUARDED_BY(mu_);
  bool full_ GUARDED_BY(mu_) = false;             // kRejectNew / kBackpressure: at the cap or the floor
  bool commits_failing_ GUARDED_BY(mu_) = false;  // the last commit failed for a full file system
  // Open and sealed segments not yet committed. Sealed ones are immutable: the flusher
  // reads the records of those it marked in_flight without mu_.
  std::deque<std::shared_ptr<MemSegment>> mem_ GUARDED_BY(mu_);
  uint64_t pending_bytes_ GUARDED_BY(mu_) = 0;
  std::map<std::string, CursorState, std::less<>> cursors_ GUARDED_BY(mu_);
  std::map<std::string, int64_t> counters_ GUARDED_BY(mu_);
  uint64_t appended_payload_bytes_ GUARDED_BY(mu_) = 0;  // since this open; for rates only
  // Dead letter bytes (kDeadLetterBytesSql) since the last exact count; over-counts after
  // a purge by another process, which the next exact count corrects.
  uint64_t dlq_bytes_estimate_ GUARDED_BY(mu_) = 0;
  Status PruneDeadLettersToBytes() REQUIRES(mu_);
  SidecarState sidecar_ GUARDED_BY(mu_);
  int64_t last_checkpoint_mono_ GUARDED_BY(mu_) = 0;
  bool uncheckpointed_ GUARDED_BY(mu_) = false;
  // Small LRU of decoded committed segments, shared by all readers.
  std::list<std::pair<uint64_t, std::shared_ptr<const std::vector<StoredRecord>>>> decoded_ GUARDED_BY(mu_);
  // Zstd dictionaries by id (stored ones), the one new segments use, and one trained but
  // not yet committed (saved in the same transaction as the first segments using it).
  // dict_mu_ is taken after mu_ (or alone, by the flusher while it encodes).
  Mutex dict_mu_ ACQUIRED_AFTER(mu_);
  std::map<uint32_t, std::unique_ptr<SegmentDictionary>> dicts_ GUARDED_BY(dict_mu_);
  const SegmentDictionary* active_dict_ GUARDED_BY(dict_mu_) = nullptr;
  std::unique_ptr<SegmentDictionary> unsaved_dict_ GUARDED_BY(dict_mu_);
  std::vector<std::string> dict_samples_ GUARDED_BY(dict_mu_);
  size_t dict_sample_bytes_ GUARDED_BY(dict_mu_) = 0;
  std::atomic<bool> dict_settled_{false};  // trained (or tried): gather no more samples
};

// ---------------------------------------------------------------- open / close

Status Store::Impl::OpenDatabase(bool* corrupt) {
  *corrupt = false;
  if (Status c = CreatePrivateFile(opt_.path); !c.ok()) return c;
  for (const char* suffix : {"", "-wal", "-shm"}) MakePrivate(opt_.path + suffix);
  MakePrivate(sidecar_path_);
  Status st = db_.Open(opt_.path, false, opt_.sqlite_vfs);
  // The DLQ commands may write from another process: wait for their short transactions.
  if (st.ok()) st = db_.Exec("PRAGMA busy_timeout=5000");
  if (st.ok()) st = db_.Exec("PRAGMA journal_mode=WAL");
  if (st.ok() && opt_.integrity_check == IntegrityCheck::kQuick) {
    auto stmt = db_.Prepare("PRAGMA quick_check");
    st = stmt.status();
    if (st.ok()) {
      std::string problems;
      while (stmt->Step(&st)) {
        if (stmt->Text(0) != "ok" && problems.size() < 300) {
          problems += std::string(stmt->Text(0)) + "; ";
        }
      }
      if (st.ok() && !problems.empty()) st = Status::Corruption("quick_check: " + problems);
    }
  }
  if (st.ok()) st = db_.Exec(kSchema);
  if (st.ok()) {
    auto version = db_.QueryInt("SELECT value FROM meta WHERE key='schema_version'", 0);
    if (!version.ok()) {
      st = version.status();
    } else if (*version > kSchemaVersion) {
      db_.Close();
      return Status::InvalidArgument(fmt::format(
          "{}: written by a newer edgeferry (schema {} > {})", opt_.path, *version, kSchemaVersion));
    }
  }
  if (st.ok()) st = AddTimeColumns(db_);  // schema 3, after the version check: a newer store is left as it is
  if (!st.ok()) {
    db_.Close();
    *corrupt = st.IsCorruption();
    return st;
  }
  const char* sync = opt_.durability == Durability::kSync ? "FULL" : "NORMAL";
  // NORMAL in WAL mode: commits are not fsynced; a checkpoint syncs them. FULL
  // fsyncs the WAL at every commit. Either way the file is never left corrupt.
  if (Status ps = db_.Exec(fmt::format("PRAGMA synchronous={};", sync)); !ps.ok()) return ps;
  return db_.Exec(fmt::format(
      "PRAGMA cache_size=-1024;"         // 1 MiB page cache: memory stays small
      "PRAGMA temp_store=MEMORY;"
      "PRAGMA journal_size_limit=4194304;"
      "PRAGMA wal_autocheckpoint=256;"    // checkpoint every ~1 MiB of WAL: small disks stay usable
      "INSERT OR IGNORE INTO meta(key,value) VALUES('schema_version',{0});"
      "UPDATE meta SET value={0} WHERE key='schema_version' AND value<{0};"
      "INSERT OR IGNORE INTO meta(key,value) VALUES('created_ns',{1});",
      kSchemaVersion, clock_.NowNs()));
}

Status Store::Impl::Quarantine(const std::string& reason, std::string* moved_to) {
  const fs::path db(opt_.path);
  const fs::path dir = db.parent_path().empty() ? fs::path(".") : db.parent_path();
  std::error_code ec;
  fs::create_directories(dir / "quarantine", ec);
  if (ec) return Status::IOError(fmt::format("create {}: {}", (dir / "quarantine").string(), ec.message()));
  fs::permissions(dir / "quarantine", fs::perms::owner_all, ec);
  const std::string stamp = UtcStamp(clock_.NowNs());
  const fs::path target = dir / "quarantine" / (db.filename().string() + "." + stamp);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path from = opt_.path + suffix;
    if (!fs::exists(from, ec)) continue;
    fs::rename(from, target.string() + suffix, ec);
    if (ec) return Status::IOError(fmt::format("quarantine {}: {}", from.string(), ec.message()));
    MakePrivate(target.string() + suffix);
  }
  sidecar_.quarantined += 1;
  std::string one_line = reason;
  for (auto& c : one_line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  sidecar_.last_quarantine = target.string() + ": " + one_line;
  *moved_to = target.string();
  spdlog::error("buffer: corrupt store quarantined to {} ({}); starting a fresh store",
                target.string(), reason);
  return WriteSidecar(sidecar_path_, sidecar_);
}

Status Store::Impl::Salvage(const std::string& quarantined) {
  sql::Db old;
  if (Status st = old.Open(quarantined, /*read_only=*/true); !st.ok()) {
    spdlog::error("buffer: nothing salvaged from {}: {}", quarantined, st.ToString());
    return Status::Ok();
  }
  (void)old.Exec("PRAGMA busy_timeout=1000");
  // Lets SQLite read a file shorter than its header says (truncated); the connection is
  // read-only, so nothing is written.
  (void)old.Exec("PRAGMA writable_schema=ON");
  // Each part is read on its own: a damaged one does not stop the others.
  std::map<std::string, int64_t> old_counters;
  if (auto stmt = old.Prepare("SELECT name, value FROM counters"); stmt.ok()) {
    Status st;
    while (stmt->Step(&st)) old_counters[std::string(stmt->Text(0))] = stmt->Int(1);
  }
  if (auto stmt = old.Prepare("SELECT name, acked_seq FROM cursors"); stmt.ok()) {
    Status st;
    while (stmt->Step(&st)) {
      auto& c = cursors_[std::string(stmt->Text(0))];
      c.acked = std::max(c.acked, static_cast<uint64_t>(stmt->Int(1)));
      c.persisted = UINT64_MAX;  // written with the first salvage commit
    }
  }
  auto old_ceiling = old.QueryInt("SELECT value FROM meta WHERE key='seq_ceiling'", 0);
  auto old_dicts = LoadDictionaries(old, opt_.zstd_level);
  const SegmentScan scan = ScanSegments(old);
  const uint64_t min_cursor = MinCursor();
  const bool have_cursors = !cursors_.empty();

  uint64_t salvaged = 0, salvaged_segments = 0, corrupt = 0, acked = 0, seen = 0, max_last = 0;
  size_t next = 0;
  Status st;
  // Commits of at most ~8 MiB: the WAL of a big salvage stays small.
  while (st.ok() && next <= scan.segments.size()) {
    st = Transaction([&]() -> Status {
      mu_.AssertHeld();
      if (next == 0) {
        // Dictionaries first: salvaged codec-2 segments need them.
        auto ins = db_.Prepare("INSERT OR IGNORE INTO dictionaries(id,created_ns,trained_records,bytes) VALUES(?1,?2,?3,?4)");
        if (!ins.ok()) return ins.status();
        MutexLock dl(dict_mu_);
        for (auto& [id, d] : old_dicts) {
          if (dicts_.count(id)) continue;
          if (Status s = ins->Bind(1, static_cast<int64_t>(id)).Bind(2, clock_.NowNs())
                             .Bind(3, static_cast<int64_t>(kDictTrainRecords)).BindBlob(4, d->bytes()).Exec();
              !s.ok()) {
            return s;
          }
          active_dict_ = d.get();
          dicts_[id] = std::move(d);
        }
        if (active_dict_) dict_settled_ = true;
      }
      auto insert = db_.Prepare(
          "INSERT INTO segments(first_seq,last_seq,count,ts_min,ts_max,payload_bytes,encoded_bytes,"
          "sealed_ns,codec,blob) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
      if (!insert.ok()) return insert.status();
      uint64_t bytes = 0;
      std::string blob;
      for (; next < scan.segments.size() && bytes < (8u << 20); ++next) {
        const SegmentMeta& m = scan.segments[next];
        seen += m.count;
        max_last = std::max(max_last, m.last_seq);
        if (have_cursors && min_cursor >= m.last_seq) {
          acked += m.count;  // every sink has it: nothing to deliver
          continue;
        }
        Status v;
        {
          MutexLock dl(dict_mu_);
          v = ReadVerifiedBlob(old, m, dicts_, &blob);
        }
        if (!v.ok()) {
          spdlog::error("buffer: salvage: segment {}..{} ({} records) lost: {}", m.first_seq, m.last_seq, m.count,
                        v.ToString());
          corrupt += m.count;
          continue;
        }
        Status s = insert->Bind(1, static_cast<int64_t>(m.first_seq))
                       .Bind(2, static_cast<int64_t>(m.last_seq))
                       .Bind(3, static_cast<int64_t>(m.count))
                       .Bind(4, m.ts_min)
                       .Bind(5, m.ts_max)
                       .Bind(6, static_cast<int64_t>(m.payload_bytes))
                       .Bind(7, static_cast<int64_t>(m.encoded_bytes))
                       .Bind(8, m.sealed_ns)
                       .Bind(9, static_cast<int64_t>(m.codec))
                       .BindBlob(10, blob)
                       .Exec();
        if (!s.ok()) return s;
        bytes += blob.size();
        salvaged += m.count;
        ++salvaged_segments;
        counters_["records"] += m.count;
        counters_["payload_bytes"] += static_cast<int64_t>(m.payload_bytes);
        counters_["compressed_bytes"] += static_cast<int64_t>(blob.size());
        counters_["segments"] += 1;
      }
      if (next == scan.segments.size()) ++next;  // the last pass also writes cursors and counters
      if (Status s = PersistCursors(); !s.ok()) return s;
      return PersistCounters();
    });
  }
  if (!st.ok()) return st;

  // Runs of seals made before the clock was synchronized (a schema-3 copy): without them
  // a salvaged 1970 seal would expire at the first sync. Rows of lost segments are pruned
  // by the next maintenance pass.
  if (auto stmt = old.Prepare("SELECT first_seq, last_seq, boot_id, wall_minus_boot_ns, shift_ns, floor_ns "
                              "FROM unsynced_seals");
      stmt.ok()) {
    st = Transaction([&]() -> Status {
      mu_.AssertHeld();
      auto ins = db_.Prepare("INSERT OR IGNORE INTO unsynced_seals VALUES(?1,?2,?3,?4,?5,?6)");
      if (!ins.ok()) return ins.status();
      Status rs;
      while (stmt->Step(&rs)) {
        ins->Bind(1, stmt->Int(0)).Bind(2, stmt->Int(1)).Bind(3, stmt->Text(2)).Bind(4, stmt->Int(3));
        if (stmt->IsNull(4)) ins->BindNull(5); else ins->Bind(5, stmt->Int(4));
        if (stmt->IsNull(5)) ins->BindNull(6); else ins->Bind(6, stmt->Int(5));
        if (Status s = ins->Exec(); !s.ok()) return s;
      }
      return Status::Ok();  // a damaged table: what was read is kept
    });
    if (!st.ok()) return st;
  }

  // Dead letters, as far as they can be read.
  uint64_t dead_letters = 0;
  if (auto rows = QueryDeadLetters(old, 0, opt_.dlq_max_records); rows.ok()) {
    st = Transaction([&]() -> Status {
      mu_.AssertHeld();
      for (const auto& d : *rows) {
        if (Status s = AddDeadLetterLocked(d.record, d.stage, d.reason, d.seq, d.dead_ns); !s.ok()) return s;
        ++dead_letters;
      }
      return Status::Ok();
    });
    if (!st.ok()) return st;
    counters_["dlq_total"] -= static_cast<int64_t>(dead_letters);  // copies; the old total carries over below
  }
  // Lifetime counters carry over; what is stored now was recounted above.
  for (const char* name : {"appended_total", "written.records", "written.payload_bytes", "written.compressed_bytes",
                           "dropped.cap", "dropped.ttl", "dropped.reject_new", "dropped.corrupt",
                           "dropped.disk_full", "dropped.unreadable", "dlq_total", "backpressure_waits", "salvaged"}) {
    if (auto it = old_counters.find(name); it != old_counters.end()) counters_[name] += it->second;
  }
  // Records the old counters say were stored but no readable row describes.
  const auto old_records = old_counters.find("records");
  const uint64_t unreadable =
      old_records != old_counters.end() && old_records->second > static_cast<int64_t>(seen)
          ? static_cast<uint64_t>(old_records->second) - seen
          : 0;
  counters_["dropped.corrupt"] += static_cast<int64_t>(corrupt);
  counters_["dropped.unreadable"] += static_cast<int64_t>(unreadable);
  counters_["salvaged"] += static_cast<int64_t>(salvaged);
  // Seq stays above everything the old store handed out, even without a sidecar.
  uint64_t floor = max_last + 1;
  if (old_ceiling.ok()) floor = std::max(floor, static_cast<uint64_t>(*old_ceiling));
  st = Transaction([&]() -> Status {
    mu_.AssertHeld();
    if (floor > next_seq_) {
      next_seq_ = floor;
      durable_seq_ = next_seq_ - 1;
      if (Status s = ExtendSeqReservation(next_seq_ + kSeqReserve); !s.ok()) return s;
    }
    return PersistCounters();
  });
  if (!st.ok()) return st;
  spdlog::warn("buffer: salvaged {} records ({} segments) from {}; lost {} in damaged segments, {} unreadable{}; "
               "{} already delivered everywhere; {} dead letters; {} cursors",
               salvaged, salvaged_segments, quarantined, corrupt, unreadable,
               old_records == old_counters.end() ? " (the old counters are unreadable: unknown)" : "", acked,
               dead_letters, cursors_.size());
  return Status::Ok();
}

Status Store::Impl::OpenReadOnly() {
  if (!fs::exists(opt_.path)) return Status::NotFound(fmt::format("no store at {}", opt_.path));
  sidecar_ = ReadSidecar(sidecar_path_);
  if (Status st = db_.Open(opt_.path, /*read_only=*/true, opt_.sqlite_vfs); !st.ok()) return st;
  (void)db_.Exec("PRAGMA busy_timeout=5000");
  auto version = db_.QueryInt("SELECT value FROM meta WHERE key='schema_version'", 0);
  if (!version.ok()) return version.status();
  if (*version < 1 || *version > kSchemaVersion) {
    return Status::InvalidArgument(fmt::format("{}: not an edgeferry store of schema {}", opt_.path, kSchemaVersion));
  }
  if (Status st = LoadState(); !st.ok()) return st;
  open_ = true;
  return Status::Ok();
}

Status Store::Impl::Open() {
  if (opt_.path.empty()) return Status::InvalidArgument("buffer path is empty");
  Lock lock(mu_);  // nothing else runs yet; held so the analysis can check the helpers
  if (opt_.read_only) return OpenReadOnly();
  if (opt_.segment_max_records == 0 || opt_.segment_max_bytes == 0 || opt_.max_bytes == 0) {
    return Status::InvalidArgument("segment and store limits must be > 0");
  }
  sidecar_ = ReadSidecar(sidecar_path_);
  bool corrupt = false;
  Status st;
  // SQLite takes a 0-byte file for a new empty database; ours never is one (the schema
  // is written before Open returns), so it was truncated: quarantine it, loudly.
  std::error_code fec;
  if (fs::is_regular_file(opt_.path, fec) && FileSize(opt_.path) == 0) {
    st = Status::Corruption(fmt::format("{} is 0 bytes (truncated)", opt_.path));
    corrupt = true;
  } else {
    st = OpenDatabase(&corrupt);
  }
  std::string quarantined;
  if (!st.ok() && corrupt) {
    if (Status q = Quarantine(st.message(), &quarantined); !q.ok()) return q;
    st = OpenDatabase(&corrupt);
  }
  if (!st.ok()) return st;
  if (st = LoadState(); !st.ok()) return st;
  if (!quarantined.empty()) {
    if (st = Salvage(quarantined); !st.ok()) return st;
  }
  if (auto b = db_.QueryInt(kDeadLetterBytesSql, 0); b.ok()) dlq_bytes_estimate_ = static_cast<uint64_t>(*b);
  open_ = true;
  last_checkpoint_mono_ = clock_.MonoNs();
  flusher_ = std::thread([this] { FlusherLoop(); });
  return Status::Ok();
}

Status Store::Impl::LoadState() {
  {
    MutexLock dl(dict_mu_);
    auto stmt = db_.Prepare("SELECT bytes FROM dictionaries ORDER BY created_ns, id");
    if (!stmt.ok()) return stmt.status();
    Status st;
    while (stmt->Step(&st)) {
      auto d = SegmentDictionary::Load(std::string(stmt->Blob(0)), opt_.zstd_level);
      if (!d.ok()) return d.status();
      active_dict_ = d->get();
      dicts_[(*d)->id()] = std::move(d).value();
    }
    if (!st.ok()) return st;
    dict_settled_ = active_dict_ != nullptr || !opt_.zstd_dictionary;
  }
  for (const char* name : kCounterNames) counters_[name] = 0;
  {
    auto stmt = db_.Prepare("SELECT name, value FROM counters");
    if (!stmt.ok()) return stmt.status();
    Status st;
    while (stmt->Step(&st)) counters_[std::string(stmt->Text(0))] = stmt->Int(1);
    if (!st.ok()) return st;
  }
  {
    auto stmt = db_.Prepare("SELECT name, acked_seq FROM cursors");
    if (!stmt.ok()) return stmt.status();
    Status st;
    while (stmt->Step(&st)) {
      const auto acked = static_cast<uint64_t>(stmt->Int(1));
      cursors_[std::string(stmt->Text(0))] = CursorState{acked, acked};
    }
    if (!st.ok()) return st;
  }
  auto ceiling = db_.QueryInt("SELECT value FROM meta WHERE key='seq_ceiling'", 0);
  auto last = db_.QueryInt("SELECT last_seq FROM segments ORDER BY first_seq DESC LIMIT 1", 0);
  if (!ceiling.ok()) return ceiling.status();
  if (!last.ok()) return last.status();
  // Floors that survive losing the database and the sidecar (FORMAT.md "Seq").
  uint64_t floor = 1;
  if (!opt_.seq_floor_path.empty()) floor = std::max(floor, ReadSidecar(opt_.seq_floor_path).seq_ceiling);
  if (opt_.seq_floor_from_clock) floor = std::max(floor, ClockSeqFloor(clock_.NowNs()));
  next_seq_ = std::max({static_cast<uint64_t>(*ceiling), sidecar_.seq_ceiling,
                        static_cast<uint64_t>(*last) + 1, floor});
  durable_seq_ = next_seq_ - 1;
  counters_["quarantined"] = static_cast<int64_t>(sidecar_.quarantined);
  if (opt_.read_only) return Status::Ok();
  return ExtendSeqReservation(next_seq_ + kSeqReserve);
}

Status Store::Impl::ExtendSeqReservation(uint64_t new_ceiling) {
  // Sidecar first: it must never be below a ceiling the database has promised.
  sidecar_.seq_ceiling = new_ceiling;
  if (Status st = WriteSidecar(sidecar_path_, sidecar_); !st.ok()) return st;
  if (!opt_.seq_floor_path.empty()) {
    if (Status st = WriteSeqFloor(opt_.seq_floor_path, new_ceiling); !st.ok()) return st;
  }
  auto stmt = db_.Prepare("INSERT OR REPLACE INTO meta(key,value) VALUES('seq_ceiling',?1)");
  if (!stmt.ok()) return stmt.status();
  if (Status st = stmt->Bind(1, static_cast<int64_t>(new_ceiling)).Exec(); !st.ok()) return st;
  seq_ceiling_ = new_ceiling;
  return Status::Ok();
}

Status Store::Impl::Close() {
  if (opt_.read_only) {
    Lock lock(mu_);
    db_.Close();
    open_ = false;
    return Status::Ok();
  }
  {
    Lock lock(mu_);
    if (!open_) return Status::Ok();
    closing_ = true;
    SealOpenSegment();
  }
  flusher_cv_.NotifyAll();
  data_cv_.NotifyAll();
  durable_cv_.NotifyAll();
  if (flusher_.joinable()) flusher_.join();  // writes what is sealed before it exits
  Lock lock(mu_);
  Status st = Transaction([&] {
    mu_.AssertHeld();
    if (Status s = PersistCursors(); !s.ok()) return s;
    return PersistCounters();
  });
  if (st.ok() && mem_.empty()) {
    // Clean shutdown: nothing beyond next_seq_ was handed out, so no gap on restart.
    sidecar_.seq_ceiling = next_seq_;
    st = WriteSidecar(sidecar_path_, sidecar_);
    if (st.ok() && !opt_.seq_floor_path.empty()) st = WriteSeqFloor(opt_.seq_floor_path, next_seq_);
    if (st.ok()) {
      auto stmt = db_.Prepare("INSERT OR REPLACE INTO meta(key,value) VALUES('seq_ceiling',?1)");
      st = stmt.ok() ? stmt->Bind(1, static_cast<int64_t>(next_seq_)).Exec() : stmt.status();
    }
  }
  if (Status c = db_.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); st.ok() && !c.ok()) st = c;
  if (!mem_.empty()) {
    spdlog::error("buffer: {} records could not be committed at close: {}",
                  mem_.size(), last_write_error_.ToString());
  }
  db_.Close();
  open_ = false;
  return st;
}

// ---------------------------------------------------------------- append / flush

Result<uint64_t> Store::Impl::Append(Record record, bool wait) {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  if (!open_ || closing_) return Status::Cancelled("store is closed");
  if (full_ && opt_.when_full == FullPolicy::kRejectNew) {
    counters_["dropped.reject_new"] += 1;
    return Status::Full(fmt::format("buffer at its cap of {} or its free-disk floor (when_full = reject_new)",
                                    FormatBytes(opt_.max_bytes)));
  }
  const bool over_pending = pending_bytes_ >= opt_.max_pending_bytes &&
                            !(commits_failing_ && opt_.when_full == FullPolicy::kDropOldest);
  if (!wait && ((full_ && opt_.when_full == FullPolicy::kBackpressure) || over_pending)) {
    return Status::Unavailable("the buffer would make this append wait (at its cap, or too much uncommitted)");
  }
  if (full_ && opt_.when_full == FullPolicy::kBackpressure) {
    counters_["backpressure_waits"] += 1;
    durable_cv_.Wait(lock, [&] {
      mu_.AssertHeld();
      return !full_ || closing_;
    });
  }
  // Too much uncommitted: wait for the disk (backpressure). But when the file system is
  // full, drop_oldest keeps its promise to accept: the oldest waiting records go.
  while (pending_bytes_ >= opt_.max_pending_bytes && !closing_) {
    if (commits_failing_ && opt_.when_full == FullPolicy::kDropOldest && mem_.size() > 1 &&
        mem_.front()->sealed && !mem_.front()->in_flight) {
      DropOldestPending();
      continue;
    }
    if (!wait) return Status::Unavailable("the buffer would make this append wait (too much uncommitted)");
    durable_cv_.Wait(lock);
  }
  if (closing_) return Status::Cancelled("store is closed");
  if (next_seq_ >= seq_ceiling_) {
    if (Status st = ExtendSeqReservation(next_seq_ + kSeqReserve); !st.ok()) return st;
  }
  if (mem_.empty() || mem_.back()->sealed) {
    auto seg = std::make_shared<MemSegment>();
    seg->first_seq = next_seq_;
    seg->opened_mono_ns = clock_.MonoNs();
    mem_.push_back(std::move(seg));
  }
  MemSegment& seg = *mem_.back();
  const uint64_t seq = next_seq_++;
  const uint64_t estimate = EstimateEncoded(record);
  seg.encoded_estimate += estimate;
  seg.payload_bytes += record.payload.size();
  pending_bytes_ += estimate + kRecordOverhead;
  seg.records.push_back(StoredRecord{seq, std::move(record)});
  counters_["appended_total"] += 1;
  appended_payload_bytes_ += seg.records.back().record.payload.size();
  const bool seal_now = opt_.durability == Durability::kSync ||
                        seg.records.size() >= opt_.segment_max_records ||
                        seg.encoded_estimate >= opt_.segment_max_bytes;
  if (seal_now) SealOpenSegment();
  // Wake readers only when one waits for this seq: a notify per record would wake a
  // lingering forwarder for every message.
  if (!read_waiters_.empty() && seq > *read_waiters_.begin()) data_cv_.NotifyAll();
  if (seal_now || seg.records.size() == 1) flusher_cv_.NotifyOne();
  if (opt_.durability == Durability::kSync && wait) {
    const uint64_t errors = write_errors_;
    durable_cv_.Wait(lock, [&] {
      mu_.AssertHeld();
      return durable_seq_ >= seq || write_errors_ != errors || !open_;
    });
    if (durable_seq_ < seq) {
      return Status::IOError("record " + std::to_string(seq) + " stored in memory but not yet durable: " +
                             last_write_error_.ToString());
    }
  }
  return seq;
}

void Store::Impl::DropOldestPending() {
  const MemSegment& seg = *mem_.front();
  counters_["dropped.disk_full"] += static_cast<int64_t>(seg.records.size());
  pending_bytes_ -= std::min(pending_bytes_, seg.encoded_estimate + kRecordOverhead * seg.records.size());
  durable_seq_ = std::max(durable_seq_, seg.last_seq());  // nothing to wait for any more
  mem_.pop_front();
}

void Store::Impl::SealOpenSegment() {
  if (!mem_.empty() && !mem_.back()->sealed) mem_.back()->sealed = true;
}

Status Store::Impl::Flush() {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  if (!open_) return Status::Cancelled("store is closed");
  SealOpenSegment();
  const uint64_t target = next_seq_ - 1;
  const uint64_t errors = write_errors_;
  flusher_cv_.NotifyOne();
  // A full file system fails at once instead of waiting for the next retry.
  durable_cv_.Wait(lock, [&] {
    mu_.AssertHeld();
    return durable_seq_ >= target || write_errors_ != errors || commits_failing_ || !open_;
  });
  return durable_seq_ >= target ? Status::Ok() : last_write_error_;
}

// ---------------------------------------------------------------- flusher

void Store::Impl::FlusherLoop() {
  Lock lock(mu_);
  int64_t next_maintenance = clock_.MonoNs() + TickNs();
  int64_t retry_after = 0;
  bool final_attempt_made = false;
  while (true) {
    int64_t now = clock_.MonoNs();
    if (closing_ && !final_attempt_made) {
      retry_after = 0;  // one more try at close, whatever the backoff says
      final_attempt_made = true;
    }
    if (!mem_.empty() && !mem_.back()->sealed &&
        now - mem_.back()->opened_mono_ns >= opt_.commit_interval_ns) {
      SealOpenSegment();
    }
    // Maintenance (acks, TTL, and the WAL checkpoint that bounds what a power cut loses)
    // runs when due even while sealed segments keep coming: a flusher that always has
    // a batch to write (a slow board, a fast source) must not starve it.
    if (now >= next_maintenance && !closing_) {
      if (Status st = Maintain(); !st.ok()) spdlog::warn("buffer: maintenance: {}", st.ToString());
      next_maintenance = clock_.MonoNs() + TickNs();
      continue;
    }
    const bool have_sealed = !mem_.empty() && mem_.front()->sealed;
    if (have_sealed && now >= retry_after) {
      if (Status st = WriteSealed(); !st.ok()) {
        ++write_errors_;
        last_write_error_ = st;
        durable_cv_.NotifyAll();
        spdlog::error("buffer: commit failed, retrying in 1 s: {}", st.ToString());
        retry_after = clock_.MonoNs() + 1'000'000'000;
      }
      continue;
    }
    if (closing_ && (!have_sealed || now < retry_after)) break;
    int64_t wake = next_maintenance;
    if (!mem_.empty() && !mem_.back()->sealed) {
      wake = std::min(wake, mem_.back()->opened_mono_ns + opt_.commit_interval_ns);
    }
    if (have_sealed) wake = std::min(wake, retry_after);
    flusher_cv_.WaitFor(lock, std::chrono::nanoseconds(std::max<int64_t>(wake - now, 100'000)));
  }
}

Status Store::Impl::WriteSealed() {
  std::vector<std::shared_ptr<MemSegment>> batch;
  for (const auto& seg : mem_) {
    if (!seg->sealed) break;
    batch.push_back(seg);
  }
  // Segments every cursor has already acked (a live stream) need no disk write.
  const bool have_cursors = !cursors_.empty();
  const uint64_t min_cursor = MinCursor();
  struct Encoded {
    std::string blob;
    Codec codec = Codec::kRaw;
    uint64_t encoded_bytes = 0;
    int64_t ts_min = INT64_MAX;
    int64_t ts_max = INT64_MIN;
    bool skip = false;
    bool over_cap = false;  // drop_oldest: older than what fits in the cap
  };
  std::vector<Encoded> encoded(batch.size());
  for (const auto& seg : batch) seg->in_flight = true;
  mu_.unlock();  // sealed segments are immutable: encode and compress without the lock
  if (opt_.test_hook_encoding) opt_.test_hook_encoding();
  for (size_t i = 0; i < batch.size(); ++i) {
    const MemSegment& seg = *batch[i];
    Encoded& e = encoded[i];
    e.skip = have_cursors && min_cursor >= seg.last_seq();
    if (e.skip) continue;
    std::string raw;
    raw.reserve(seg.encoded_estimate);
    int64_t prev_ts = 0;
    std::vector<std::string> samples;
    const bool gather = !dict_settled_;  // racy read is fine: DictionaryFor rechecks
    for (const auto& r : seg.records) {
      const size_t before = raw.size();
      EncodeRecord(r.record, &prev_ts, &raw);
      if (gather && raw.size() - before <= kDictSampleMaxBytes) samples.emplace_back(raw, before);
      e.ts_min = std::min(e.ts_min, r.record.ts_ns);
      e.ts_max = std::max(e.ts_max, r.record.ts_ns);
    }
    e.encoded_bytes = raw.size();
    e.blob = CompressSegment(raw, opt_.zstd_level, &e.codec, DictionaryFor(raw.size(), &samples));
  }
  mu_.lock();
  // The lock is held from here to the end: the batch is still the front of mem_
  // (only DropOldestPending pops elsewhere, and it skips in-flight segments).
  for (const auto& seg : batch) seg->in_flight = false;

  // drop_oldest: a batch larger than the cap (a slow flusher behind a fast source) keeps
  // only its newest segments that fit; the older ones are counted as dropped, never written.
  bool at_floor = false;
  const uint64_t cap = EffectiveCap(&at_floor);
  // Oldest first, never a hole: once a segment does not fit, the older ones of the batch
  // go too (a smaller older one would fit where a bigger newer one did not), and so does
  // everything stored, which is older still.
  uint64_t incoming = 0;
  bool batch_over_cap = false;
  for (size_t i = batch.size(); i-- > 0;) {
    Encoded& e = encoded[i];
    if (e.skip) continue;
    const uint64_t bytes = e.blob.size() + kRowOverhead;
    if (opt_.when_full == FullPolicy::kDropOldest && (batch_over_cap || incoming + bytes > cap)) {
      e.over_cap = batch_over_cap = true;
      continue;
    }
    incoming += bytes;
  }
  const uint64_t last = batch.back()->last_seq();
  auto baseline = counters_;  // a failed transaction's counter changes are rolled back to this
  auto commit = [&] {
    mu_.AssertHeld();
    return Transaction([&]() -> Status {
    mu_.AssertHeld();
    if (Status s = EnforceCap(incoming, batch_over_cap); !s.ok()) return s;
    if (Status s = SaveDictionary(); !s.ok()) return s;
    auto insert = db_.Prepare(
        "INSERT INTO segments(first_seq,last_seq,count,ts_min,ts_max,payload_bytes,encoded_bytes,"
        "sealed_ns,codec,blob) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
    if (!insert.ok()) return insert.status();
    const int64_t now = clock_.NowNs();
    for (size_t i = 0; i < batch.size(); ++i) {
      const MemSegment& seg = *batch[i];
      const Encoded& e = encoded[i];
      if (e.skip) continue;
      if (e.over_cap) {
        counters_[at_floor ? "dropped.disk_full" : "dropped.cap"] += static_cast<int64_t>(seg.records.size());
        spdlog::warn("buffer: dropped {} records (seq {}..{}) before writing them: {}", seg.records.size(),
                     seg.first_seq, seg.last_seq(), at_floor ? "disk_full" : "cap");
        continue;
      }
      Status s = insert->Bind(1, static_cast<int64_t>(seg.first_seq))
                     .Bind(2, static_cast<int64_t>(seg.last_seq()))
                     .Bind(3, static_cast<int64_t>(seg.records.size()))
                     .Bind(4, e.ts_min)
                     .Bind(5, e.ts_max)
                     .Bind(6, static_cast<int64_t>(seg.payload_bytes))
                     .Bind(7, static_cast<int64_t>(e.encoded_bytes))
                     .Bind(8, now)
                     .Bind(9, static_cast<int64_t>(e.codec))
                     .BindBlob(10, e.blob)
                     .Exec();
      if (!s.ok()) return s;
      counters_["records"] += static_cast<int64_t>(seg.records.size());
      counters_["payload_bytes"] += static_cast<int64_t>(seg.payload_bytes);
      counters_["compressed_bytes"] += static_cast<int64_t>(e.blob.size());
      counters_["segments"] += 1;
      counters_["written.records"] += static_cast<int64_t>(seg.records.size());
      counters_["written.payload_bytes"] += static_cast<int64_t>(seg.payload_bytes);
      counters_["written.compressed_bytes"] += static_cast<int64_t>(e.blob.size());
    }
    if (Status s = NoteUnsyncedSeal(batch, encoded, now); !s.ok()) return s;
    if (next_seq_ + kSeqReserve / 2 > seq_ceiling_) {
      if (Status s = ExtendSeqReservation(next_seq_ + kSeqReserve); !s.ok()) return s;
    }
    if (Status s = PersistCursors(); !s.ok()) return s;
    if (Status s = TrimToCap(); !s.ok()) return s;
    return PersistCounters();
  }); };
  Status st = commit();
  if (st.IsFull()) {
    // The file system is full (the free-space floor exists to prevent this). In WAL mode
    // every write needs free bytes for the WAL, deletions included: give back the WAL and
    // try once more; else keep the records in memory and retry later.
    counters_ = baseline;
    (void)db_.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    st = commit();
  }
  if (!st.ok()) {
    counters_ = baseline;
    if (st.IsFull()) {
      if (!commits_failing_) spdlog::error("buffer: file system full; records wait in memory: {}", st.ToString());
      commits_failing_ = true;
      if (opt_.when_full != FullPolicy::kDropOldest) full_ = true;
      durable_cv_.NotifyAll();  // drop_oldest appends may now drop instead of waiting
    }
    return st;
  }
  if (commits_failing_) spdlog::info("buffer: commits succeed again");
  commits_failing_ = false;
  {
    MutexLock dl(dict_mu_);
    if (unsaved_dict_) {
      const uint32_t id = unsaved_dict_->id();
      dicts_[id] = std::move(unsaved_dict_);
    }
  }
  // Pop by identity: a segment leaves memory only because this commit wrote it.
  for (const auto& seg : batch) {
    if (mem_.empty() || mem_.front() != seg) {
      spdlog::critical("buffer: segment {}..{} committed but no longer first in memory", seg->first_seq,
                       seg->last_seq());
      break;
    }
    pending_bytes_ -= std::min(pending_bytes_, seg->encoded_estimate + kRecordOverhead * seg->records.size());
    mem_.pop_front();
  }
  durable_seq_ = std::max(durable_seq_, last);
  uncheckpointed_ = true;
  durable_cv_.NotifyAll();
  return Status::Ok();
}

Status Store::Impl::Transaction(const std::function<Status()>& body) { return db_.Transaction(body); }

const SegmentDictionary* Store::Impl::DictionaryFor(uint64_t raw_bytes, std::vector<std::string>* samples) {
  MutexLock dl(dict_mu_);
  if (!dict_settled_) {
    for (auto& s : *samples) {
      dict_sample_bytes_ += s.size();
      dict_samples_.push_back(std::move(s));
    }
    if (dict_samples_.size() >= kDictTrainRecords || dict_sample_bytes_ >= kDictTrainBytes) {
      dict_settled_ = true;
      auto trained = SegmentDictionary::Train(dict_samples_, opt_.zstd_level);
      if (trained) {
        spdlog::info("buffer: trained a {} B zstd dictionary (id {}) from {} records for small segments",
                     trained->bytes().size(), trained->id(), dict_samples_.size());
        active_dict_ = trained.get();
        unsaved_dict_ = std::move(trained);
      } else {
        spdlog::info("buffer: a zstd dictionary would not shrink these records by 10%; none used");
      }
      dict_samples_ = {};
      dict_sample_bytes_ = 0;
    }
  }
  return raw_bytes <= kDictMaxSegmentBytes ? active_dict_ : nullptr;
}

Status Store::Impl::SaveDictionary() {
  MutexLock dl(dict_mu_);
  if (!unsaved_dict_) return Status::Ok();
  auto stmt = db_.Prepare("INSERT OR IGNORE INTO dictionaries(id,created_ns,trained_records,bytes) VALUES(?1,?2,?3,?4)");
  if (!stmt.ok()) return stmt.status();
  return stmt->Bind(1, static_cast<int64_t>(unsaved_dict_->id()))
      .Bind(2, clock_.NowNs())
      .Bind(3, static_cast<int64_t>(kDictTrainRecords))
      .BindBlob(4, unsaved_dict_->bytes())
      .Exec();
}

Status Store::Impl::PersistCursors() {
  auto stmt = db_.Prepare("INSERT OR REPLACE INTO cursors(name,acked_seq,updated_ns) VALUES(?1,?2,?3)");
  if (!stmt.ok()) return stmt.status();
  for (auto& [name, c] : cursors_) {
    if (c.acked == c.persisted) continue;
    if (Status st = stmt->Bind(1, name).Bind(2, static_cast<int64_t>(c.acked)).Bind(3, clock_.NowNs()).Exec();
        !st.ok()) {
      return st;
    }
    c.persisted = c.acked;
  }
  return Status::Ok();
}

Status Store::Impl::PersistCounters() {
  counters_["full"] = full_ ? 1 : 0;  // so `buffer stats` beside the agent can see it
  auto stmt = db_.Prepare("INSERT OR REPLACE INTO counters(name,value) VALUES(?1,?2)");
  if (!stmt.ok()) return stmt.status();
  for (const auto& [name, value] : counters_) {
    if (Status st = stmt->Bind(1, name).Bind(2, value).Exec(); !st.ok()) return st;
  }
  return Status::Ok();
}

uint64_t Store::Impl::MinCursor() const {
  uint64_t m = UINT64_MAX;
  for (const auto& [name, c] : cursors_) m = std::min(m, c.acked);
  return cursors_.empty() ? 0 : m;
}

Result<uint64_t> Store::Impl::UsedBytes() {
  auto pages = db_.QueryInt("PRAGMA page_count");
  auto free_pages = db_.QueryInt("PRAGMA freelist_count");
  auto page_size = db_.QueryInt("PRAGMA page_size");
  if (!pages.ok()) return pages.status();
  if (!free_pages.ok()) return free_pages.status();
  if (!page_size.ok()) return page_size.status();
  return static_cast<uint64_t>((*pages - *free_pages) * *page_size);
}

Status Store::Impl::DeleteSegmentsUpTo(uint64_t last_seq, const char* drop_reason) {
  auto sums = db_.Prepare(
      "SELECT count(*), coalesce(sum(count),0), coalesce(sum(payload_bytes),0), "
      "coalesce(sum(length(blob)),0) FROM segments WHERE first_seq <= ?1 AND last_seq <= ?1");
  if (!sums.ok()) return sums.status();
  Status st;
  sums->Bind(1, static_cast<int64_t>(last_seq));
  if (!sums->Step(&st)) return st;
  const int64_t segments = sums->Int(0), records = sums->Int(1), payload = sums->Int(2),
                blob = sums->Int(3);
  sums->Reset();
  if (segments == 0) return Status::Ok();
  auto del = db_.Prepare("DELETE FROM segments WHERE first_seq <= ?1 AND last_seq <= ?1");
  if (!del.ok()) return del.status();
  if (st = del->Bind(1, static_cast<int64_t>(last_seq)).Exec(); !st.ok()) return st;
  counters_["segments"] -= segments;
  counters_["records"] -= records;
  counters_["payload_bytes"] -= payload;
  counters_["compressed_bytes"] -= blob;
  if (drop_reason) {
    counters_[std::string("dropped.") + drop_reason] += records;
    // A store at its cap drops a segment per commit: a few lines per reason, then the
    // agent's tick logs how many more (the totals are in Stats().dropped).
    if (LogRepeats().Allow(fmt::format("buffer: dropped records ({})", drop_reason))) {
      spdlog::warn("buffer: dropped {} records ({} segments) up to seq {}: {}", records, segments,
                   last_seq, drop_reason);
    }
  }
  decoded_.remove_if([&](const auto& e) { return e.first <= last_seq; });
  return Status::Ok();
}

uint64_t Store::Impl::EffectiveCap(bool* at_floor) {
  *at_floor = false;
  if (opt_.min_free_bytes == 0) return opt_.max_bytes;
  const std::string dir = fs::path(opt_.path).parent_path().empty() ? "." : fs::path(opt_.path).parent_path().string();
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return opt_.max_bytes;
  const uint64_t free_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  if (free_bytes >= opt_.min_free_bytes) return opt_.max_bytes;
  // Below the floor: the file may not grow; freed pages inside it are still reused.
  *at_floor = true;
  auto pages = db_.QueryInt("PRAGMA page_count");
  auto page_size = db_.QueryInt("PRAGMA page_size");
  if (!pages.ok() || !page_size.ok()) return opt_.max_bytes;
  return std::min<uint64_t>(opt_.max_bytes, static_cast<uint64_t>(*pages * *page_size));
}

Status Store::Impl::EnforceCap(uint64_t incoming_bytes, bool drop_all_stored) {
  auto used = UsedBytes();
  if (!used.ok()) return used.status();
  uint64_t estimate = *used;
  bool at_floor = false;
  const uint64_t cap = EffectiveCap(&at_floor);
  if (drop_all_stored && opt_.when_full == FullPolicy::kDropOldest) {
    auto newest = db_.Prepare("SELECT max(last_seq) FROM segments");
    if (!newest.ok()) return newest.status();
    Status st;
    const uint64_t drop_to = newest->Step(&st) ? static_cast<uint64_t>(newest->Int(0)) : 0;
    newest->Reset();
    if (!st.ok()) return st;
    return drop_to ? DeleteSegmentsUpTo(drop_to, at_floor ? "disk_full" : "cap") : Status::Ok();
  }
  if (estimate + incoming_bytes <= cap) {
    full_ = false;
    return Status::Ok();
  }
  if (opt_.when_full != FullPolicy::kDropOldest) {
    // What is already accepted is still written; new appends are refused or wait.
    if (!full_) {
      spdlog::warn("buffer: {}; {} new records", at_floor ? fmt::format("free disk space below the floor of {}",
                                                                          FormatBytes(opt_.min_free_bytes))
                                                          : fmt::format("at its cap of {}", FormatBytes(opt_.max_bytes)),
                   opt_.when_full == FullPolicy::kRejectNew ? "rejecting" : "holding back (backpressure)");
    }
    full_ = true;
    return Status::Ok();
  }
  // kDropOldest: delete oldest segments until the new ones fit.
  auto oldest = db_.Prepare("SELECT last_seq, length(blob) FROM segments ORDER BY first_seq LIMIT 64");
  if (!oldest.ok()) return oldest.status();
  uint64_t drop_to = 0;
  Status st;
  while (estimate + incoming_bytes > cap && oldest->Step(&st)) {
    drop_to = static_cast<uint64_t>(oldest->Int(0));
    const uint64_t freed = static_cast<uint64_t>(oldest->Int(1)) + kRowOverhead;
    estimate -= std::min(estimate, freed);
  }
  oldest->Reset();
  if (!st.ok()) return st;
  return drop_to ? DeleteSegmentsUpTo(drop_to, at_floor ? "disk_full" : "cap") : Status::Ok();
}

// The cap as measured, not estimated: after a commit's inserts, pages in use (what
// Stats().used_bytes reports) are at most the cap. Blobs take whole overflow pages and
// rows share b-tree pages, so EnforceCap's estimate alone can be off by a few pages per
// segment; this deletes the oldest segments (the new ones too, if they alone exceed it)
// until the measure fits. No-op unless drop_oldest.
Status Store::Impl::TrimToCap() {
  if (opt_.when_full != FullPolicy::kDropOldest) return Status::Ok();
  bool at_floor = false;
  const uint64_t cap = EffectiveCap(&at_floor);
  auto oldest = db_.Prepare("SELECT last_seq, length(blob) FROM segments ORDER BY first_seq LIMIT 64");
  if (!oldest.ok()) return oldest.status();
  while (true) {
    auto used = UsedBytes();
    if (!used.ok()) return used.status();
    if (*used <= cap) return Status::Ok();
    uint64_t excess = *used - cap, drop_to = 0;
    Status st;
    while (excess > 0 && oldest->Step(&st)) {
      drop_to = static_cast<uint64_t>(oldest->Int(0));
      excess -= std::min(excess, static_cast<uint64_t>(oldest->Int(1)) + kRowOverhead);
    }
    oldest->Reset();
    if (!st.ok()) return st;
    if (drop_to == 0) return Status::Ok();  // no segments left: the rest is schema, cursors, dead letters
    if (st = DeleteSegmentsUpTo(drop_to, at_floor ? "disk_full" : "cap"); !st.ok()) return st;
  }
}

template <typename Batch, typename EncodedList>
Status Store::Impl::NoteUnsyncedSeal(const Batch& batch, const EncodedList& encoded, int64_t sealed_ns) {
  if (clock_.Synchronized()) return Status::Ok();
  uint64_t first = 0, last = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (encoded[i].skip || encoded[i].over_cap) continue;
    if (first == 0) first = batch[i]->first_seq;
    last = batch[i]->last_seq();
  }
  if (first == 0) return Status::Ok();
  // While unsynchronized the wall clock runs at a fixed offset from boot time: one row per
  // boot and offset covers every segment sealed on it.
  const std::string boot = clock_.BootId();
  const int64_t wall_minus_boot = sealed_ns - clock_.BootNs();
  auto open_run = db_.Prepare(
      "SELECT first_seq, boot_id, wall_minus_boot_ns FROM unsynced_seals WHERE shift_ns IS NULL AND floor_ns IS NULL "
      "ORDER BY first_seq DESC LIMIT 1");
  if (!open_run.ok()) return open_run.status();
  Status st;
  std::optional<int64_t> extend;
  if (open_run->Step(&st) && open_run->Text(1) == boot &&
      std::abs(open_run->Int(2) - wall_minus_boot) < 1'000'000'000) {
    extend = open_run->Int(0);
  }
  open_run->Reset();
  if (!st.ok()) return st;
  auto write = extend ? db_.Prepare("UPDATE unsynced_seals SET last_seq = ?2 WHERE first_seq = ?1")
                      : db_.Prepare("INSERT OR REPLACE INTO unsynced_seals(first_seq,last_seq,boot_id,wall_minus_boot_ns) "
                                    "VALUES(?1,?2,?3,?4)");
  if (!write.ok()) return write.status();
  write->Bind(1, extend ? *extend : static_cast<int64_t>(first)).Bind(2, static_cast<int64_t>(last));
  if (!extend) write->Bind(3, boot).Bind(4, wall_minus_boot);
  return write->Exec();
}

Result<std::vector<SealRun>> Store::Impl::LoadSealRuns() {
  std::vector<SealRun> runs;
  auto stmt = db_.Prepare(
      "SELECT first_seq, last_seq, boot_id, wall_minus_boot_ns, shift_ns, floor_ns FROM unsynced_seals "
      "ORDER BY first_seq");
  if (!stmt.ok()) return stmt.status();
  Status st;
  while (stmt->Step(&st)) {
    SealRun r;
    r.first = static_cast<uint64_t>(stmt->Int(0));
    r.last = static_cast<uint64_t>(stmt->Int(1));
    r.boot = std::string(stmt->Text(2));
    r.wall_minus_boot = stmt->Int(3);
    if (!stmt->IsNull(4)) r.shift = stmt->Int(4);
    if (!stmt->IsNull(5)) r.floor = stmt->Int(5);
    runs.push_back(std::move(r));
  }
  if (!st.ok()) return st;
  return runs;
}

Status Store::Impl::EnforceTtl() {
  if (opt_.ttl_ns <= 0) return Status::Ok();
  // Segments sealed while the clock was unsynchronized have a sealed_ns on another time
  // line (1970, or fake-hwclock's last save): PresentSealedNs moves them onto this one,
  // and at the sync the move is written down for good.
  auto loaded = LoadSealRuns();
  if (!loaded.ok()) return loaded.status();
  std::vector<SealRun>& runs = *loaded;
  const bool synced = clock_.Synchronized();
  const int64_t now = clock_.NowNs();
  const std::string boot = clock_.BootId();
  const int64_t offset_now = now - clock_.BootNs();  // this boot's start on the present line
  if (synced && std::any_of(runs.begin(), runs.end(), [](const SealRun& r) { return !r.shift && !r.floor; })) {
    Status placed = Transaction([&]() -> Status {
      mu_.AssertHeld();
      for (SealRun& r : runs) {
        if (r.shift || r.floor) continue;
        if (r.boot == boot && !boot.empty()) {
          r.shift = SaturatingSub(offset_now, r.wall_minus_boot);
        } else {
          r.floor = offset_now;  // this boot's start, on the synchronized line
        }
        auto up = db_.Prepare("UPDATE unsynced_seals SET shift_ns = ?2, floor_ns = ?3 WHERE first_seq = ?1");
        if (!up.ok()) return up.status();
        up->Bind(1, static_cast<int64_t>(r.first));
        if (r.shift) up->Bind(2, *r.shift); else up->BindNull(2);
        if (r.floor) up->Bind(3, *r.floor); else up->BindNull(3);
        if (Status s = up->Exec(); !s.ok()) return s;
        spdlog::info("buffer: segments {}..{} sealed before the clock was synchronized: {}", r.first, r.last,
                     r.shift ? fmt::format("re-based by {:.3f} s", static_cast<double>(*r.shift) / 1e9)
                             : std::string("from an earlier boot, their TTL counts from this boot's start"));
      }
      return Status::Ok();
    });
    if (!placed.ok()) return placed;
  }
  // Oldest first, stopping at the first unexpired segment: a clock that jumped
  // backwards cannot make newer segments look expired.
  const int64_t cutoff = now - opt_.ttl_ns;
  auto stmt = db_.Prepare("SELECT first_seq, last_seq, sealed_ns FROM segments ORDER BY first_seq LIMIT 256");
  if (!stmt.ok()) return stmt.status();
  uint64_t drop_to = 0;
  Status st;
  while (stmt->Step(&st)) {
    const int64_t sealed =
        PresentSealedNs(runs, static_cast<uint64_t>(stmt->Int(0)), stmt->Int(2), offset_now, boot);
    if (sealed >= cutoff) break;
    drop_to = static_cast<uint64_t>(stmt->Int(1));
  }
  stmt->Reset();
  if (!st.ok() || drop_to == 0) return st;
  return Transaction([&] {
    mu_.AssertHeld();
    if (Status s = DeleteSegmentsUpTo(drop_to, "ttl"); !s.ok()) return s;
    return PersistCounters();
  });
}

Status Store::Impl::Maintain() {
  if (commits_failing_) return Status::Ok();  // nothing can be written; the flusher retries
  Status st = Transaction([&]() -> Status {
    mu_.AssertHeld();
    if (!cursors_.empty()) {
      if (Status s = DeleteSegmentsUpTo(MinCursor(), nullptr); !s.ok()) return s;
    }
    if (Status s = PersistCursors(); !s.ok()) return s;
    // unsynced_seals rows whose segments are all gone (acked, TTL, cap): a few rows at most.
    if (Status s = db_.Exec("DELETE FROM unsynced_seals WHERE last_seq < "
                            "coalesce((SELECT min(first_seq) FROM segments), 1 << 62)");
        !s.ok()) {
      return s;
    }
    auto max_id = db_.QueryInt("SELECT max(id) FROM dead_letters", 0);
    if (!max_id.ok()) return max_id.status();
    if (*max_id > static_cast<int64_t>(opt_.dlq_max_records)) {
      auto prune = db_.Prepare("DELETE FROM dead_letters WHERE id <= ?1");
      if (!prune.ok()) return prune.status();
      if (Status s = prune->Bind(1, *max_id - static_cast<int64_t>(opt_.dlq_max_records)).Exec(); !s.ok()) {
        return s;
      }
    }
    if (Status s = PruneDeadLettersToBytes(); !s.ok()) return s;
    return PersistCounters();
  });
  if (!st.ok()) return st;
  if (st = EnforceTtl(); !st.ok()) return st;
  if (full_) {
    auto used = UsedBytes();
    bool at_floor = false;
    const uint64_t cap = EffectiveCap(&at_floor);
    // Hysteresis: some room for a segment, so appends do not flap at the limit.
    if (used.ok() && *used + std::min<uint64_t>(opt_.segment_max_bytes, cap / 8) < cap) {
      full_ = false;
      spdlog::info("buffer: space again; accepting new records");
    }
  }
  const int64_t now = clock_.MonoNs();
  if (opt_.durability == Durability::kNormal && uncheckpointed_ &&
      now - last_checkpoint_mono_ >= opt_.sync_interval_ns) {
    // Syncs the WAL, then copies it into the database: bounds what a power cut loses.
    st = db_.Exec("PRAGMA wal_checkpoint(PASSIVE)");
    last_checkpoint_mono_ = now;
    uncheckpointed_ = false;
  }
  durable_cv_.NotifyAll();
  return st;
}

// ---------------------------------------------------------------- cursors and reads

uint64_t Store::Impl::OldestSeq() {
  auto first = db_.QueryInt("SELECT first_seq FROM segments ORDER BY first_seq LIMIT 1", 0);
  if (first.ok() && *first > 0) return static_cast<uint64_t>(*first);
  return mem_.empty() ? next_seq_ : mem_.front()->first_seq;
}

Result<uint64_t> Store::Impl::OpenCursor(std::string_view name) {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  if (!open_) return Status::Cancelled("store is closed");
  if (auto it = cursors_.find(name); it != cursors_.end()) return it->second.acked;
  const uint64_t start = OldestSeq() - 1;
  // Persisted with a zero "persisted" mark so the next commit writes it.
  cursors_[std::string(name)] = CursorState{start, UINT64_MAX};
  Status st = Transaction([&] {
    mu_.AssertHeld();
    return PersistCursors();
  });
  if (!st.ok()) return st;
  return start;
}

Status Store::Impl::DropCursor(std::string_view name) {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  auto it = cursors_.find(name);
  if (it == cursors_.end()) return Status::NotFound(fmt::format("no cursor '{}'", name));
  cursors_.erase(it);
  auto stmt = db_.Prepare("DELETE FROM cursors WHERE name = ?1");
  if (!stmt.ok()) return stmt.status();
  return stmt->Bind(1, name).Exec();
}

std::vector<std::string> Store::Impl::CursorNames() const {
  Lock lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, c] : cursors_) names.push_back(name);
  return names;
}

Status Store::Impl::Ack(std::string_view name, uint64_t seq) {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  if (!open_) return Status::Cancelled("store is closed");
  auto it = cursors_.find(name);
  if (it == cursors_.end()) return Status::NotFound(fmt::format("no cursor '{}'", name));
  if (seq <= it->second.acked) return Status::Ok();
  it->second.acked = std::min(seq, next_seq_ - 1);
  if (opt_.durability == Durability::kSync) return Transaction([&] {
    mu_.AssertHeld();
    return PersistCursors();
  });
  return Status::Ok();
}

Result<std::shared_ptr<const std::vector<StoredRecord>>> Store::Impl::DecodedSegment(
    uint64_t first_seq, uint32_t count, Codec codec, std::string_view blob) {
  for (auto it = decoded_.begin(); it != decoded_.end(); ++it) {
    if (it->first == first_seq) {
      decoded_.splice(decoded_.begin(), decoded_, it);
      return it->second;
    }
  }
  auto records = std::make_shared<std::vector<StoredRecord>>();
  const SegmentDictionary* dict = nullptr;
  if (codec == Codec::kZstdDict) {
    MutexLock dl(dict_mu_);
    const auto it = dicts_.find(SegmentDictionaryId(blob));
    if (it != dicts_.end()) dict = it->second.get();
  }
  if (Status st = DecodeSegment(codec, blob, first_seq, count, records.get(), dict); !st.ok()) return st;
  decoded_.emplace_front(first_seq, records);
  if (decoded_.size() > kDecodedCacheSegments) decoded_.pop_back();
  return std::shared_ptr<const std::vector<StoredRecord>>(std::move(records));
}

Status Store::Impl::ReadAfter(uint64_t after_seq, const ReadLimits& limits,
                              std::vector<StoredRecord>* out) {
  out->clear();
  Lock lock(mu_);
  if (!open_) return Status::Cancelled("store is closed");
  uint64_t bytes = 0;
  // Returns false once the limits are reached.
  auto take = [&](const StoredRecord& r) {
    if (r.seq <= after_seq) return true;
    if (out->size() >= limits.max_records ||
        (!out->empty() && bytes + r.record.payload.size() > limits.max_bytes)) {
      return false;
    }
    bytes += r.record.payload.size();
    out->push_back(r);
    return true;
  };
  bool more = true;
  const uint64_t mem_first = mem_.empty() ? next_seq_ : mem_.front()->first_seq;
  if (after_seq + 1 < mem_first) {
    auto stmt = db_.Prepare(
        "SELECT first_seq, last_seq, count, codec, blob FROM segments WHERE first_seq >= "
        "coalesce((SELECT max(first_seq) FROM segments WHERE first_seq <= ?1), 0) "
        "ORDER BY first_seq");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, static_cast<int64_t>(after_seq + 1));
    Status st;
    std::vector<uint64_t> corrupt;
    while (more && stmt->Step(&st)) {
      const auto first = static_cast<uint64_t>(stmt->Int(0));
      const auto last = static_cast<uint64_t>(stmt->Int(1));
      if (last <= after_seq) continue;
      auto seg = DecodedSegment(first, static_cast<uint32_t>(stmt->Int(2)),
                                static_cast<Codec>(stmt->Int(3)), stmt->Blob(4));
      if (!seg.ok()) {
        spdlog::error("buffer: segment {}..{} unreadable, dropping it: {}", first, last,
                      seg.status().ToString());
        corrupt.push_back(first);
        continue;
      }
      for (const auto& r : **seg) {
        if (!(more = take(r))) break;
      }
    }
    stmt->Reset();
    if (!st.ok()) return st;
    for (uint64_t first : opt_.read_only ? std::vector<uint64_t>{} : corrupt) {
      Status s = Transaction([&]() -> Status {
        mu_.AssertHeld();
        auto info = db_.Prepare("SELECT count, payload_bytes, length(blob) FROM segments WHERE first_seq=?1");
        if (!info.ok()) return info.status();
        Status is;
        if (!info->Bind(1, static_cast<int64_t>(first)).Step(&is)) return is;
        counters_["records"] -= info->Int(0);
        counters_["payload_bytes"] -= info->Int(1);
        counters_["compressed_bytes"] -= info->Int(2);
        counters_["segments"] -= 1;
        counters_["dropped.corrupt"] += info->Int(0);
        info->Reset();
        auto del = db_.Prepare("DELETE FROM segments WHERE first_seq=?1");
        if (!del.ok()) return del.status();
        if (Status d = del->Bind(1, static_cast<int64_t>(first)).Exec(); !d.ok()) return d;
        return PersistCounters();
      });
      if (!s.ok()) spdlog::error("buffer: could not drop corrupt segment {}: {}", first, s.ToString());
    }
  }
  for (const auto& seg : mem_) {
    if (!more) break;
    if (seg->last_seq() <= after_seq) continue;
    for (const auto& r : seg->records) {
      if (!(more = take(r))) break;
    }
  }
  return Status::Ok();
}

bool Store::Impl::WaitForRecords(uint64_t after_seq, int64_t timeout_ns) {
  Lock lock(mu_);
  if (next_seq_ - 1 > after_seq) return true;
  const auto waiter = read_waiters_.insert(after_seq);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns);
  while (!(next_seq_ - 1 > after_seq || closing_ || !open_)) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) break;
    data_cv_.WaitFor(lock, left);
  }
  read_waiters_.erase(waiter);
  return next_seq_ - 1 > after_seq;
}

// ---------------------------------------------------------------- dead letters

Status Store::Impl::AddDeadLetter(const Record& record, std::string_view stage,
                                  std::string_view reason, std::optional<uint64_t> seq) {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  if (!open_) return Status::Cancelled("store is closed");
  return AddDeadLetterLocked(record, stage, reason, seq, clock_.NowNs());
}

Status Store::Impl::AddDeadLetterLocked(const Record& record, std::string_view stage, std::string_view reason,
                                        std::optional<uint64_t> seq, int64_t dead_ns) {
  auto stmt = db_.Prepare(
      "INSERT INTO dead_letters(dead_ns,seq,stage,reason,ts_ns,source,channel,content_type,payload,time) "
      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, dead_ns);
  if (seq) {
    stmt->Bind(2, static_cast<int64_t>(*seq));
  } else {
    stmt->BindNull(2);
  }
  std::string why(reason);
  std::string_view payload = record.payload;
  if (payload.size() > opt_.dlq_max_payload_bytes) {
    payload = payload.substr(0, opt_.dlq_max_payload_bytes);
    why += fmt::format(" (payload truncated to {} of {} bytes)", payload.size(), record.payload.size());
  }
  Status st = stmt->Bind(3, stage)
                  .Bind(4, why)
                  .Bind(5, record.ts_ns)
                  .Bind(6, record.source)
                  .Bind(7, record.channel)
                  .Bind(8, static_cast<int64_t>(record.content_type))
                  .BindBlob(9, payload)
                  .BindBlob(10, EncodeRecordTime(record))
                  .Exec();
  if (st.ok()) {
    counters_["dlq_total"] += 1;
    dlq_bytes_estimate_ += payload.size() + why.size() + record.source.size() + record.channel.size() + 64;
  }
  return st;
}

// The dead letter queue's own bound (dlq_max_bytes), so that junk a source refuses can
// never make the cap policy drop records still to deliver: the oldest dead letters go
// first, down to 90% of the bound.
Status Store::Impl::PruneDeadLettersToBytes() {
  if (opt_.dlq_max_bytes == 0 || dlq_bytes_estimate_ <= opt_.dlq_max_bytes) return Status::Ok();
  auto exact = db_.QueryInt(kDeadLetterBytesSql, 0);
  if (!exact.ok()) return exact.status();
  dlq_bytes_estimate_ = static_cast<uint64_t>(*exact);
  if (dlq_bytes_estimate_ <= opt_.dlq_max_bytes) return Status::Ok();
  const uint64_t excess = dlq_bytes_estimate_ - opt_.dlq_max_bytes / 10 * 9;
  auto rows = db_.Prepare(kDeadLetterRowsBytesSql);
  if (!rows.ok()) return rows.status();
  int64_t cut = 0;
  uint64_t freed = 0, pruned = 0;
  Status st;
  while (freed < excess && rows->Step(&st)) {
    cut = rows->Int(0);
    freed += static_cast<uint64_t>(rows->Int(1));
    ++pruned;
  }
  if (!st.ok()) return st;
  auto del = db_.Prepare("DELETE FROM dead_letters WHERE id <= ?1");
  if (!del.ok()) return del.status();
  if (Status s = del->Bind(1, cut).Exec(); !s.ok()) return s;
  dlq_bytes_estimate_ -= std::min(dlq_bytes_estimate_, freed);
  counters_["dlq_pruned"] += static_cast<int64_t>(pruned);
  if (LogRepeats().Allow("buffer: dead letters pruned")) {
    spdlog::warn("buffer: dead letter queue over dlq_max_bytes ({}): pruned the oldest {} ({})",
                 FormatBytes(opt_.dlq_max_bytes), pruned, FormatBytes(freed));
  }
  return Status::Ok();
}

Result<std::vector<DeadLetter>> Store::Impl::ListDeadLetters(uint64_t after_id, size_t limit) {
  Lock lock(mu_);
  if (!open_) return Status::Cancelled("store is closed");
  return QueryDeadLetters(db_, after_id, limit);
}

// ---------------------------------------------------------------- replay queue

Result<std::vector<ReplayItem>> Store::Impl::PeekReplay(std::string_view sink, size_t limit) {
  Lock lock(mu_);
  if (!open_) return Status::Cancelled("store is closed");
  auto stmt = db_.Prepare(
      "SELECT id, seq, ts_ns, source, channel, content_type, payload, time FROM replay WHERE sink = ?1 ORDER BY id "
      "LIMIT ?2");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, sink).Bind(2, static_cast<int64_t>(limit));
  std::vector<ReplayItem> out;
  Status st;
  while (stmt->Step(&st)) {
    ReplayItem it;
    it.id = static_cast<uint64_t>(stmt->Int(0));
    it.record.seq = stmt->IsNull(1) ? 0 : static_cast<uint64_t>(stmt->Int(1));
    it.record.record.ts_ns = stmt->Int(2);
    it.record.record.source = stmt->Text(3);
    it.record.record.channel = stmt->Text(4);
    it.record.record.content_type = static_cast<ContentType>(stmt->Int(5));
    it.record.record.payload = stmt->Blob(6);
    // Malformed time bytes (a hand-edited row) leave a synchronized receipt: the record still goes.
    (void)DecodeRecordTime(stmt->IsNull(7) ? std::string_view() : stmt->Blob(7), &it.record.record);
    out.push_back(std::move(it));
  }
  if (!st.ok()) return st;
  return out;
}

Status Store::Impl::FinishReplay(const std::vector<uint64_t>& ids) {
  Lock lock(mu_);
  if (Status ro = RefuseIfReadOnly(); !ro.ok()) return ro;
  return Transaction([&]() -> Status {
    mu_.AssertHeld();
    auto del = db_.Prepare("DELETE FROM replay WHERE id = ?1");
    if (!del.ok()) return del.status();
    for (uint64_t id : ids) {
      if (Status st = del->Bind(1, static_cast<int64_t>(id)).Exec(); !st.ok()) return st;
    }
    return Status::Ok();
  });
}

// ---------------------------------------------------------------- stats

StoreStats Store::Impl::Stats() {
  Lock lock(mu_);
  StoreStats s;
  s.next_seq = next_seq_;
  {
    MutexLock dl(dict_mu_);
    s.dictionaries = dicts_.size();
  }
  s.quarantined = sidecar_.quarantined;
  s.last_quarantine = sidecar_.last_quarantine;
  auto c = [&](const char* name) {
    mu_.AssertHeld();
    return static_cast<uint64_t>(std::max<int64_t>(counters_[name], 0));
  };
  s.appended_total = c("appended_total");
  s.dead_letters_total = c("dlq_total");
  s.dead_letters_pruned = c("dlq_pruned");
  s.salvaged_records = c("salvaged");
  for (const char* reason : {"cap", "ttl", "reject_new", "corrupt", "disk_full", "unreadable"}) {
    s.dropped[reason] = c((std::string("dropped.") + reason).c_str());
  }
  s.full = opt_.read_only ? counters_["full"] != 0 : full_;
  s.writable = !commits_failing_;
  s.backpressure_waits = c("backpressure_waits");
  s.written_records = c("written.records");
  s.written_payload_bytes = c("written.payload_bytes");
  s.written_compressed_bytes = c("written.compressed_bytes");
  s.segments = c("segments");
  s.records = c("records");
  s.payload_bytes = c("payload_bytes");
  s.compressed_bytes = c("compressed_bytes");
  s.compression_ratio = s.written_compressed_bytes ? static_cast<double>(s.written_payload_bytes) /
                                                        static_cast<double>(s.written_compressed_bytes)
                                                  : 0.0;
  for (const auto& seg : mem_) {
    s.pending_records += seg->records.size();
    s.payload_bytes += seg->payload_bytes;
  }
  s.records += s.pending_records;
  s.file_bytes = FileSize(opt_.path) + FileSize(opt_.path + "-wal");
  if (!open_) return s;
  if (auto used = UsedBytes(); used.ok()) s.used_bytes = *used;
  s.appended_payload_bytes = appended_payload_bytes_;
  {
    bool at_floor = false;
    const uint64_t cap = EffectiveCap(&at_floor);
    s.room_bytes = cap > s.used_bytes ? cap - s.used_bytes : 0;
    // The file system may fill before the cap does (other files, a cap over its size).
    const std::string dir = fs::path(opt_.path).parent_path().empty() ? "." : fs::path(opt_.path).parent_path().string();
    struct statvfs v {};
    if (!at_floor && ::statvfs(dir.c_str(), &v) == 0) {
      const uint64_t free_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
      const uint64_t usable = free_bytes > opt_.min_free_bytes ? free_bytes - opt_.min_free_bytes : 0;
      s.room_bytes = std::min(s.room_bytes, usable);
    }
  }
  if (auto n = db_.QueryInt("SELECT count(*) FROM dead_letters"); n.ok()) s.dead_letters = static_cast<uint64_t>(*n);
  if (auto n = db_.QueryInt("SELECT count(*) FROM replay"); n.ok()) s.replay_queued = static_cast<uint64_t>(*n);
  if (auto t = db_.QueryInt("SELECT ts_min FROM segments ORDER BY first_seq LIMIT 1"); t.ok()) s.oldest_ts_ns = *t;
  if (auto t = db_.QueryInt("SELECT ts_max FROM segments ORDER BY first_seq DESC LIMIT 1"); t.ok()) s.newest_ts_ns = *t;
  if (!mem_.empty()) {
    if (s.oldest_ts_ns == 0) s.oldest_ts_ns = mem_.front()->records.front().record.ts_ns;
    for (const auto& seg : mem_) {
      for (const auto& r : seg->records) s.newest_ts_ns = std::max(s.newest_ts_ns, r.record.ts_ns);
    }
  }
  auto backlog = db_.Prepare(
      "SELECT coalesce(sum(CASE WHEN first_seq > ?1 THEN count ELSE last_seq - ?1 END), 0) "
      "FROM segments WHERE last_seq > ?1");
  // The segment holding acked + 1, or the first one after it: at most two rows visited
  // (the max(first_seq) lookup and the scan use the first_seq key).
  auto oldest = db_.Prepare(
      "SELECT sealed_ns, first_seq FROM segments WHERE first_seq >= "
      "coalesce((SELECT max(first_seq) FROM segments WHERE first_seq <= ?1 + 1), 0) "
      "AND last_seq > ?1 ORDER BY first_seq LIMIT 1");
  const int64_t wall_now = clock_.NowNs(), mono_now = clock_.MonoNs();
  // A seal from before the clock's sync is 56 years old on its face: the lag is by true time.
  auto runs = LoadSealRuns();
  const std::string boot = clock_.BootId();
  const int64_t offset_now = wall_now - clock_.BootNs();
  for (const auto& [name, cur] : cursors_) {
    CursorStats cs{name, cur.acked, 0, 0};
    Status st;
    if (backlog.ok() && backlog->Bind(1, static_cast<int64_t>(cur.acked)).Step(&st)) {
      cs.backlog_records = static_cast<uint64_t>(backlog->Int(0));
      backlog->Reset();
    }
    if (oldest.ok() && oldest->Bind(1, static_cast<int64_t>(cur.acked)).Step(&st)) {
      cs.oldest_unacked_stored_ns =
          runs.ok() ? PresentSealedNs(*runs, static_cast<uint64_t>(oldest->Int(1)), oldest->Int(0), offset_now, boot)
                    : oldest->Int(0);
    }
    if (oldest.ok()) oldest->Reset();
    for (const auto& seg : mem_) {
      if (seg->last_seq() <= cur.acked) continue;
      cs.backlog_records += seg->last_seq() - std::max(cur.acked, seg->first_seq - 1);
      if (cs.oldest_unacked_stored_ns == 0) cs.oldest_unacked_stored_ns = wall_now - (mono_now - seg->opened_mono_ns);
    }
    s.cursors.push_back(std::move(cs));
  }
  return s;
}

// ---------------------------------------------------------------- Store

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (Status st = impl->Open(); !st.ok()) return st;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;
Result<uint64_t> Store::Append(Record record) { return impl_->Append(std::move(record)); }
Result<uint64_t> Store::AppendNoWait(Record record) { return impl_->Append(std::move(record), /*wait=*/false); }
Status Store::Flush() { return impl_->Flush(); }
Status Store::Close() { return impl_->Close(); }
Result<uint64_t> Store::OpenCursor(std::string_view name) { return impl_->OpenCursor(name); }
Status Store::DropCursor(std::string_view name) { return impl_->DropCursor(name); }
std::vector<std::string> Store::CursorNames() const { return impl_->CursorNames(); }
Status Store::ReadAfter(uint64_t after_seq, const ReadLimits& limits, std::vector<StoredRecord>* out) {
  return impl_->ReadAfter(after_seq, limits, out);
}
Status Store::Ack(std::string_view name, uint64_t seq) { return impl_->Ack(name, seq); }
uint64_t Store::LastSeq() const { return impl_->LastSeq(); }
bool Store::WaitForRecords(uint64_t after_seq, int64_t timeout_ns) {
  return impl_->WaitForRecords(after_seq, timeout_ns);
}
Status Store::AddDeadLetter(const Record& record, std::string_view stage, std::string_view reason,
                            std::optional<uint64_t> seq) {
  return impl_->AddDeadLetter(record, stage, reason, seq);
}
Result<std::vector<DeadLetter>> Store::ListDeadLetters(uint64_t after_id, size_t limit) {
  return impl_->ListDeadLetters(after_id, limit);
}
StoreStats Store::Stats() { return impl_->Stats(); }
Result<std::vector<ReplayItem>> Store::PeekReplay(std::string_view sink, size_t limit) {
  return impl_->PeekReplay(sink, limit);
}
Status Store::FinishReplay(const std::vector<uint64_t>& ids) { return impl_->FinishReplay(ids); }
Result<size_t> Store::AppendReplayedToAll(size_t limit) {
  auto items = PeekReplay(kReplayToAllSinks, limit);
  if (!items.ok()) return items.status();
  std::vector<uint64_t> done;
  for (auto& it : *items) {
    auto seq = Append(std::move(it.record.record));
    if (!seq.ok()) break;  // full or closing: the rest stays queued
    done.push_back(it.id);
  }
  if (Status st = FinishReplay(done); !st.ok()) return st;
  return done.size();
}

}  // namespace edgeferry::buffer
