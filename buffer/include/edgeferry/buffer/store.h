// The durable buffer: every record goes here before any sink sees it.
//
// A Store is one SQLite database in WAL mode holding zstd-compressed segments
// (runs of consecutive records), per-sink cursors, counters and a dead letter
// queue. buffer/FORMAT.md describes the tables, the segment encoding and exactly
// what a crash or power cut can lose in each durability mode.
//
// Thread-safety: every public member function of Store is thread-safe. Appends
// from several sources, reads and acks from several sinks may run concurrently.
//
// Memory: bounded by StoreOptions::max_pending_bytes (records appended but not yet
// committed) plus a small cache of decoded segments; it does not grow with the
// backlog, and Open() reads neither the segments nor the records.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/clock.h"
#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::buffer {

// What Append does when the store has reached StoreOptions::max_bytes.
enum class FullPolicy {
  kDropOldest,    // delete the oldest segments (even if unacked) and count them as dropped "cap"
  kRejectNew,     // refuse new records with Status::Full and count them as dropped "reject_new"
  kBackpressure,  // Append waits until acks or the TTL free space; nothing is dropped. An MQTT
                  // source then stops reading, and its broker queues (QoS >= 1, persistent session)
};

enum class Durability {
  // Appends go to an in-memory open segment, sealed and committed at least every
  // commit_interval. A SIGKILL loses at most the records appended in the last
  // commit_interval; a power cut additionally loses commits not yet synced, at
  // most sync_interval old. See FORMAT.md "Durability".
  kNormal,
  // Append returns only after its record is committed and fsynced
  // (SQLite synchronous=FULL). Concurrent appenders share one commit.
  kSync,
};

enum class IntegrityCheck {
  kQuick,  // PRAGMA quick_check at Open (reads every page once; O(file size))
  kNone,   // only the header and schema are checked at Open
};

struct StoreOptions {
  std::string path;                            // database file; its directory must exist
  uint64_t max_bytes = 1ull << 30;             // cap on database pages in use, bytes
  // Free-disk floor, bytes: while the file system holding the store has less free space,
  // the database file does not grow (when_full applies as at the cap). 0 = off.
  uint64_t min_free_bytes = 0;
  FullPolicy when_full = FullPolicy::kDropOldest;
  int64_t ttl_ns = 0;                          // drop segments sealed longer ago than this; 0 = off
  Durability durability = Durability::kNormal;
  int64_t commit_interval_ns = 250'000'000;    // kNormal: max age of the open segment, ns
  int64_t sync_interval_ns = 1'000'000'000;    // kNormal: WAL checkpoint (fsync) at most this often, ns
  uint32_t segment_max_records = 8192;         // seal the open segment at this many records
  uint64_t segment_max_bytes = 1ull << 20;     // ... or at this many encoded (uncompressed) bytes
  int zstd_level = 3;                          // 1 (fast) .. 19 (small)
  // Train a zstd dictionary from the first ~1,000 records and use it for segments up to
  // 64 KiB (a slow source's segments, sealed every commit interval, are small).
  bool zstd_dictionary = true;
  IntegrityCheck integrity_check = IntegrityCheck::kQuick;
  uint64_t dlq_max_records = 100'000;          // oldest dead letters pruned beyond this
  uint64_t dlq_max_payload_bytes = 1ull << 20; // dead-lettered payloads are truncated to this
  // Bytes the dead letter queue may hold (payloads, reasons, names); the oldest are
  // pruned beyond it, so refused junk cannot crowd out records still to deliver under
  // the cap. 0 = no byte bound (dlq_max_records only).
  uint64_t dlq_max_bytes = 64ull << 20;
  uint64_t max_pending_bytes = 16ull << 20;    // appends wait (backpressure) while more is uncommitted
  Clock* clock = &SystemClock();               // not owned; must outlive the Store
  // Inspect only (e.g. `edgeferry buffer stats` beside a running agent): no
  // writes, no background thread, no integrity check, no quarantine. Stats(),
  // ReadAfter() and ListDeadLetters() work; writes return InvalidArgument.
  // Shows what is committed. Open fails with NotFound when there is no store.
  bool read_only = false;
  // Seq floors that survive losing the database and its "<path>.seq" sidecar (FORMAT.md
  // "Seq"): a copy of the seq reservation in this file (the agent: <data_dir>/seq_floor;
  // written 0600, its directory created), and/or seq >= the wall clock in microseconds
  // since the epoch at Open. Off in the library so unit tests see seq 1, 2, ...; the
  // agent turns both on.
  std::string seq_floor_path;
  bool seq_floor_from_clock = false;
  // SQLite VFS name; empty = the default. Tests use it to model power cuts.
  std::string sqlite_vfs;
  // Tests only (fault injection): called on the flusher thread, without the store's lock,
  // each time it starts encoding a batch of sealed segments. Empty in production.
  std::function<void()> test_hook_encoding;
};

// A dead letter put back for delivery (`edgeferry dlq replay`).
struct ReplayItem {
  uint64_t id = 0;               // replay queue id
  StoredRecord record;           // seq = the record's original seq, 0 if it never had one
};

// A sink name in the replay queue meaning "append again as a new record, for every sink".
inline constexpr std::string_view kReplayToAllSinks = "*";

// Limits for one read. A read returns at least one record when any is available,
// even if that record alone exceeds max_bytes.
struct ReadLimits {
  size_t max_records = 500;
  uint64_t max_bytes = 4ull << 20;  // sum of payload sizes, bytes
};

struct CursorStats {
  std::string name;
  uint64_t acked_seq = 0;        // highest seq the sink acknowledged (0 = none)
  uint64_t backlog_records = 0;  // records stored with seq > acked_seq
  // When the first record with seq > acked_seq was stored, wall clock ns since epoch; 0 =
  // none. The time its segment was committed (or, not yet committed, opened): an upper
  // bound on when edgeferry received it, late by at most about commit_interval when
  // commits succeed. The record's own ts (event time, maybe a device's wrong clock) is
  // not used.
  int64_t oldest_unacked_stored_ns = 0;
};

// A point-in-time view for operators and metrics.
struct StoreStats {
  uint64_t records = 0;            // records stored (committed and in memory)
  uint64_t segments = 0;           // committed segments
  uint64_t payload_bytes = 0;      // raw payload bytes of the stored records
  uint64_t compressed_bytes = 0;   // committed segment blobs, bytes
  uint64_t used_bytes = 0;         // database pages in use, bytes (what max_bytes caps)
  uint64_t file_bytes = 0;         // database file + WAL on disk, bytes
  double compression_ratio = 0;    // written_payload_bytes / written_compressed_bytes (lifetime)
  uint64_t written_records = 0;    // records ever committed to disk (a live stream acked before its
                                   // commit is never written: written_records <= appended_total)
  uint64_t written_payload_bytes = 0;     // their payload bytes
  uint64_t written_compressed_bytes = 0;  // the segment blobs written for them
  int64_t oldest_ts_ns = 0;        // event time of the oldest stored record (0 if empty)
  int64_t newest_ts_ns = 0;        // event time of the newest stored record (0 if empty)
  uint64_t next_seq = 0;           // seq the next append will get (read-only: an upper bound)
  uint64_t appended_total = 0;     // records ever appended to this store
  uint64_t appended_payload_bytes = 0;  // payload bytes appended since this Store was opened
  // Bytes the store may still grow by before when_full acts: the lesser of the cap (or the
  // file's size below the free-disk floor) minus used_bytes, and the file system's free
  // space above min_free_bytes.
  uint64_t room_bytes = 0;
  uint64_t pending_records = 0;    // appended, not yet committed
  std::map<std::string, uint64_t> dropped;  // records dropped, by reason: cap, ttl, reject_new, corrupt
                                            // (a segment that fails its checksum or decode), disk_full
                                            // (the free-disk floor or a full file system), unreadable
                                            // (in database pages a quarantine could not read)
  bool full = false;               // at the cap or the free-disk floor (reject_new / backpressure)
  uint64_t dictionaries = 0;       // zstd dictionaries stored for small segments
  bool writable = true;            // the last commit did not fail (a full file system fails it)
  uint64_t backpressure_waits = 0; // appends that waited for space (when_full = backpressure)
  uint64_t replay_queued = 0;      // dead letters queued for replay, not yet delivered
  uint64_t dead_letters = 0;       // entries now in the dead letter queue
  uint64_t dead_letters_total = 0; // entries ever added
  uint64_t dead_letters_pruned = 0; // oldest entries removed by dlq_max_bytes, ever
  uint64_t quarantined = 0;        // corrupt databases moved aside at open, ever
  std::string last_quarantine;     // path and reason of the newest one
  uint64_t salvaged_records = 0;   // records copied back from quarantined databases, ever
  std::vector<CursorStats> cursors;
};

// One dead letter: a record that can never be delivered, and why.
struct DeadLetter {
  uint64_t id = 0;                 // increasing, assigned by the store
  int64_t dead_ns = 0;             // when it was dead-lettered, ns since epoch
  std::optional<uint64_t> seq;     // the record's seq if it had been stored
  std::string stage;               // where: "source:<name>" or "sink:<name>"
  std::string reason;              // human-readable, e.g. "payload 300000 bytes > max_record_bytes 262144"
  Record record;                   // payload possibly truncated to dlq_max_payload_bytes
};

class Store {
 public:
  // Opens or creates the store at options.path. A database that fails its
  // integrity check, is not a database, is 0 bytes, or cannot be opened is moved to
  // <dir>/quarantine/ and a fresh store is created; every intact segment of the old one
  // is salvaged into it with its seqs, and its cursors, dictionaries and dead letters
  // as far as they can be read (what cannot be read is counted in Stats().dropped).
  // Seq continues above every seq the old store handed out (kept in the "<path>.seq"
  // sidecar and StoreOptions::seq_floor_path). Files are created 0600. Errors: IOError when
  // no store can be created at all (directory missing or unwritable);
  // InvalidArgument for bad options or a store written by a newer edgeferry.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);

  // Closes as Close() does.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends one record and returns its seq. The record is readable at once.
  // kNormal: returns without I/O unless more than max_pending_bytes wait to be
  // committed, in which case it waits (backpressure). kSync: returns once durable.
  // Errors: Full (kRejectNew and the store is at max_bytes; the record is counted
  // as dropped "reject_new"), Cancelled (store closed), IOError.
  Result<uint64_t> Append(Record record);
  // As Append, but never waits: Unavailable (nothing counted) where Append would wait
  // for room (kBackpressure at the cap, or over max_pending_bytes uncommitted), and in
  // kSync it returns before the fsync (the record is committed with the next commit).
  // For records the agent makes itself (an aggregate's windows), which no source waits
  // to acknowledge, from a thread that must not block (the agent's main loop).
  Result<uint64_t> AppendNoWait(Record record);

  // Seals the open segment and commits everything appended so far. Blocks until done.
  Status Flush();

  // Flushes, persists cursors, checkpoints the WAL and stops the background
  // thread. Idempotent. Later calls other than Stats() return Cancelled.
  Status Close();

  // ---- cursors (one per sink) ----
  // Creates the cursor if missing, positioned before the oldest stored record so a
  // new sink receives the whole backlog. Returns the cursor's acked seq.
  Result<uint64_t> OpenCursor(std::string_view name);
  // Removes a cursor; segments it alone held back become deletable.
  Status DropCursor(std::string_view name);
  std::vector<std::string> CursorNames() const;

  // Copies up to `limits` records with seq > after_seq, in seq order, into *out
  // (cleared first). Empty *out means nothing is available yet. A segment that
  // fails to decode is skipped, deleted and counted as dropped "corrupt".
  Status ReadAfter(uint64_t after_seq, const ReadLimits& limits, std::vector<StoredRecord>* out);

  // Marks every record with seq <= seq as delivered by sink `name`. Acks never move a
  // cursor backwards. Persisted with the next commit (kNormal) or before
  // returning (kSync); segments every cursor has passed are then deleted.
  // Errors: NotFound for an unknown cursor.
  Status Ack(std::string_view name, uint64_t seq);

  // The seq of the newest appended record (0 if none yet).
  uint64_t LastSeq() const;

  // Waits until a record with seq > after_seq is readable, the timeout passes,
  // or the store closes. Returns true when a record is readable.
  bool WaitForRecords(uint64_t after_seq, int64_t timeout_ns);

  // ---- dead letter queue ----
  // Stores `record` with the reason; `seq` if the record had been stored.
  Status AddDeadLetter(const Record& record, std::string_view stage, std::string_view reason,
                       std::optional<uint64_t> seq = std::nullopt);
  // Up to `limit` dead letters with id > after_id, oldest first.
  Result<std::vector<DeadLetter>> ListDeadLetters(uint64_t after_id, size_t limit);

  // ---- replay queue (filled by DeadLetterAdmin::Replay, possibly from another process) ----
  // Up to `limit` queued items for `sink`, oldest first. They stay queued until FinishReplay.
  Result<std::vector<ReplayItem>> PeekReplay(std::string_view sink, size_t limit);
  Status FinishReplay(const std::vector<uint64_t>& ids);
  // Appends the items queued for kReplayToAllSinks as new records; returns how many.
  Result<size_t> AppendReplayedToAll(size_t limit);

  StoreStats Stats();

 private:
  class Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::buffer
