// Taps: records as they pass a point of the running agent, for `edgeferry tap` (as
// `vector tap` does). Three points:
//   source:<name>  as the source read it, before its processors
//   stored:<name>  as its processors left it, once appended to the buffer (with its seq)
//   sink:<name>    as the sink sends it, after its route and processors
// Read-only and bounded, never a cost to delivery: while no client has polled for
// kIdleNs, Offer is one relaxed atomic load; while one has, a record is copied (payload
// cut to kMaxPayloadBytes) into a ring of kCapacity entries, the oldest overwritten, so
// a slow client misses records (Page::missed says how many) and nobody waits for it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgeferry/record.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry::agent {

enum class TapPoint { kSource, kStored, kSink };
// "source", "stored", "sink".
std::string_view TapPointName(TapPoint p);

struct TapEntry {
  uint64_t id = 0;          // increasing from 1 for the life of the process
  TapPoint point = TapPoint::kSource;
  std::string name;         // the source's name (kSource, kStored) or the sink's (kSink)
  int64_t at_ns = 0;        // wall clock when it passed, ns since epoch
  uint64_t seq = 0;         // the buffer's seq (kStored, kSink); 0 at kSource
  Record record;            // payload cut to kMaxPayloadBytes
  uint64_t payload_bytes = 0;  // the whole payload's size, bytes
};

// What a client asks for: every field optional (empty = any).
struct TapFilter {
  std::vector<TapPoint> points;
  std::string source;       // record.source, at any point
  std::string sink;         // only kSink entries of this sink
  std::string channel;      // an MQTT topic filter on record.channel
};

class TapHub {
 public:
  static constexpr size_t kCapacity = 1000;
  static constexpr size_t kMaxPayloadBytes = 4096;
  static constexpr int64_t kIdleNs = 5'000'000'000;

  // True while a client polls. Lock-free; call before building anything to Offer.
  bool Active() const { return active_.load(std::memory_order_relaxed); }
  // Copies `record` in when active. Thread-safe (every source and sink thread).
  void Offer(TapPoint point, std::string_view name, const Record& record, uint64_t seq = 0) EXCLUDES(mu_);
  // The entry Offer would make (payload cut to kMaxPayloadBytes, no id yet): for a caller
  // that must let go of the record before it knows the seq. Pure.
  static TapEntry Entry(TapPoint point, std::string_view name, const Record& record, uint64_t seq = 0);
  // Adds an entry made by Entry when active. Thread-safe.
  void Offer(TapEntry entry) EXCLUDES(mu_);

  struct Page {
    std::vector<TapEntry> entries;  // id > after, matching the filter, oldest first
    uint64_t next = 0;              // pass as `after` next time
    uint64_t missed = 0;            // entries after `after` already overwritten
  };
  // Entries after id `after` that match `filter`, at most `max`; activates the taps for
  // kIdleNs from `mono_ns`. Thread-safe.
  Page Poll(uint64_t after, const TapFilter& filter, size_t max, int64_t mono_ns) EXCLUDES(mu_);
  // Turns the taps off when no client polled for kIdleNs. The agent's main loop calls it.
  void Expire(int64_t mono_ns) EXCLUDES(mu_);

 private:
  std::atomic<bool> active_{false};
  mutable Mutex mu_;
  std::deque<TapEntry> ring_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  int64_t last_poll_ns_ GUARDED_BY(mu_) = 0;
};

// The answer to GET /tap?<query> (metrics_server.h): a JSON document
//   {"next": id, "missed": n, "entries": [{"id", "point", "name", "at", "ts", "seq",
//     "channel", "content_type", "payload", "payload_bytes"}, ...]}
// Query keys (percent-encoded): after (an id), point (source,stored,sink), source, sink,
// channel (an MQTT topic filter), max (1..1000, default 200). Returns the HTTP status
// (200, or 400 with {"error": reason} for a malformed query) and the body.
std::pair<int, std::string> TapAnswer(TapHub& hub, std::string_view query, int64_t mono_ns);

}  // namespace edgeferry::agent
