#include "edgeferry/agent/tap.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include <nlohmann/json.hpp>

#include "edgeferry/clock.h"
#include "edgeferry/pipeline/route.h"
#include "edgeferry/units.h"

namespace edgeferry::agent {

std::string_view TapPointName(TapPoint p) {
  switch (p) {
    case TapPoint::kSource: return "source";
    case TapPoint::kStored: return "stored";
    case TapPoint::kSink: return "sink";
  }
  return "?";
}

void TapHub::Offer(TapPoint point, std::string_view name, const Record& record, uint64_t seq) {
  if (!Active()) return;
  Offer(Entry(point, name, record, seq));  // copied outside the lock
}

TapEntry TapHub::Entry(TapPoint point, std::string_view name, const Record& record, uint64_t seq) {
  TapEntry e;
  e.point = point;
  e.name = std::string(name);
  e.at_ns = SystemClock().NowNs();
  e.seq = seq;
  e.payload_bytes = record.payload.size();
  e.record.ts_ns = record.ts_ns;
  e.record.event_ts_ns = record.event_ts_ns;
  e.record.ts_source = record.ts_source;
  e.record.source = record.source;
  e.record.channel = record.channel;
  e.record.content_type = record.content_type;
  e.record.payload = record.payload.substr(0, kMaxPayloadBytes);
  return e;
}

void TapHub::Offer(TapEntry e) {
  if (!Active()) return;
  MutexLock l(mu_);
  e.id = next_id_++;
  ring_.push_back(std::move(e));
  if (ring_.size() > kCapacity) ring_.pop_front();
}

TapHub::Page TapHub::Poll(uint64_t after, const TapFilter& filter, size_t max, int64_t mono_ns) {
  Page page;
  MutexLock l(mu_);
  last_poll_ns_ = mono_ns;
  active_.store(true, std::memory_order_relaxed);
  // An id this hub never gave out: the agent was restarted by a reload. Start over.
  if (after >= next_id_) after = 0;
  const uint64_t oldest = ring_.empty() ? next_id_ : ring_.front().id;
  // Ids after `after` that were overwritten before this poll (none on the first poll).
  if (after > 0 && after + 1 < oldest) page.missed = oldest - after - 1;
  page.next = std::max(after, next_id_ - 1);
  for (const auto& e : ring_) {
    if (e.id <= after) continue;
    if (page.entries.size() == max) {
      page.next = page.entries.back().id;  // the rest on the next poll
      break;
    }
    if (!filter.points.empty() && std::find(filter.points.begin(), filter.points.end(), e.point) == filter.points.end()) {
      continue;
    }
    if (!filter.source.empty() && e.record.source != filter.source) continue;
    if (!filter.sink.empty() && (e.point != TapPoint::kSink || e.name != filter.sink)) continue;
    if (!filter.channel.empty() && !pipeline::TopicMatches(filter.channel, e.record.channel)) continue;
    page.entries.push_back(e);
  }
  return page;
}

void TapHub::Expire(int64_t mono_ns) {
  MutexLock l(mu_);
  if (active_.load(std::memory_order_relaxed) && mono_ns - last_poll_ns_ >= kIdleNs) {
    active_.store(false, std::memory_order_relaxed);
    ring_.clear();  // what nobody watches is not kept
  }
}

namespace {

// %XX decoded; nullopt for a bad escape. '+' stays '+' (a topic filter's wildcard).
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    const auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::pair<int, std::string> BadQuery(const std::string& why) {
  return {400, nlohmann::json{{"error", why}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

std::string Rfc3339(int64_t ns) {
  std::string s;
  AppendRfc3339Ns(ns, &s);
  return s;
}

}  // namespace

std::pair<int, std::string> TapAnswer(TapHub& hub, std::string_view query, int64_t mono_ns) {
  if (query.size() > 4096) return BadQuery("query over 4096 bytes");
  TapFilter filter;
  uint64_t after = 0;
  size_t max = 200;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const auto value = PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return BadQuery(fmt::format("{}: a bad percent escape", key));
    auto number = [&](uint64_t lo, uint64_t hi) -> std::optional<uint64_t> {
      uint64_t v = 0;
      const auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), v);
      if (ec != std::errc() || p != value->data() + value->size() || v < lo || v > hi) return std::nullopt;
      return v;
    };
    if (key == "after") {
      const auto v = number(0, UINT64_MAX);
      if (!v) return BadQuery("after: must be an entry id");
      after = *v;
    } else if (key == "max") {
      const auto v = number(1, TapHub::kCapacity);
      if (!v) return BadQuery(fmt::format("max: must be 1 to {}", TapHub::kCapacity));
      max = *v;
    } else if (key == "point") {
      std::string_view rest = *value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view p = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (p == "source") {
          filter.points.push_back(TapPoint::kSource);
        } else if (p == "stored") {
          filter.points.push_back(TapPoint::kStored);
        } else if (p == "sink") {
          filter.points.push_back(TapPoint::kSink);
        } else {
          return BadQuery(fmt::format("point: \"{}\" is not source, stored or sink", p));
        }
      }
    } else if (key == "source") {
      filter.source = *value;
    } else if (key == "sink") {
      filter.sink = *value;
    } else if (key == "channel") {
      if (!pipeline::TopicFilterValid(*value)) return BadQuery("channel: not an MQTT topic filter");
      filter.channel = *value;
    } else {
      return BadQuery(fmt::format("unknown key \"{}\" (after, point, source, sink, channel, max)", key));
    }
  }
  const TapHub::Page page = hub.Poll(after, filter, max, mono_ns);
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : page.entries) {
    entries.push_back({{"id", e.id},
                       {"point", TapPointName(e.point)},
                       {"name", e.name},
                       {"at", Rfc3339(e.at_ns)},
                       {"ts", Rfc3339(e.record.ts_ns)},
                       {"ts_source", TsSourceName(e.record.ts_source)},
                       {"event_ts", e.record.event_ts_ns != 0 ? nlohmann::json(Rfc3339(e.record.event_ts_ns))
                                                              : nlohmann::json(nullptr)},
                       {"seq", e.seq},
                       {"source", e.record.source},
                       {"channel", e.record.channel},
                       {"content_type", ContentTypeName(e.record.content_type)},
                       {"payload", e.record.payload},
                       {"payload_bytes", e.payload_bytes}});
  }
  nlohmann::json j = {{"next", page.next}, {"missed", page.missed}, {"entries", std::move(entries)}};
  // Payloads are bytes: what is not UTF-8 is shown as U+FFFD, never an exception.
  return {200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

}  // namespace edgeferry::agent
