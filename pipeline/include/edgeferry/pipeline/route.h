// Route: which records a sink receives. By source name and by channel, the channel
// matched with MQTT topic filter semantics (MQTT 3.1.1 section 4.7: levels split at
// '/', '+' matches one level, '#' as the last level matches the rest, including the
// parent level; a channel starting with '$' is not matched by a leading wildcard).
// A sink's forwarder skips the records its route does not select: they are acked
// past, never delivered, and counted (SinkStats::skipped_records).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edgeferry/record.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry::pipeline {

struct Route {
  std::vector<std::string> sources;   // source names; empty = every source
  std::vector<std::string> channels;  // topic filters; empty = every channel

  bool SelectsAll() const { return sources.empty() && channels.empty(); }
  // True when `r` comes from one of `sources` and its channel matches one of `channels`.
  bool Selects(const Record& r) const;
};

// MQTT 3.1.1 section 4.7.1: '#' only as the whole last level, '+' only as a whole
// level, 1 to 65,535 bytes.
bool TopicFilterValid(std::string_view filter);
// Whether `topic` matches `filter` (a valid filter).
bool TopicMatches(std::string_view filter, std::string_view topic);

// The routes of every sink, for counting records no sink selects at ingest.
// Thread-safe: Set from the agent's thread, AnySelects from every source's.
class RouteTable {
 public:
  void Set(std::vector<Route> routes) EXCLUDES(mu_);
  // False when no sink's route selects `r` (or there are no sinks).
  bool AnySelects(const Record& r) const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::shared_ptr<const std::vector<Route>> routes_ GUARDED_BY(mu_) = std::make_shared<std::vector<Route>>();
  std::atomic<bool> some_route_selects_all_{false};  // set with routes_
};

}  // namespace edgeferry::pipeline
