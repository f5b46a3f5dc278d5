#include "edgeferry/agent/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "edgeferry/units.h"

namespace edgeferry::agent {

namespace {
std::string Time(int64_t ns) {
  if (ns == 0) return "-";
  std::string s;
  AppendRfc3339Ns(ns, &s);
  return s.substr(0, 19) + "Z";
}
}  // namespace

std::string StoreStatsJson(const buffer::StoreStats& s) {
  nlohmann::json j;
  j["records"] = s.records;
  j["segments"] = s.segments;
  j["payload_bytes"] = s.payload_bytes;
  j["compressed_bytes"] = s.compressed_bytes;
  j["used_bytes"] = s.used_bytes;
  j["file_bytes"] = s.file_bytes;
  j["compression_ratio"] = s.compression_ratio;
  j["written_records"] = s.written_records;
  j["written_payload_bytes"] = s.written_payload_bytes;
  j["written_compressed_bytes"] = s.written_compressed_bytes;
  j["oldest_ts_ns"] = s.oldest_ts_ns;
  j["newest_ts_ns"] = s.newest_ts_ns;
  j["next_seq"] = s.next_seq;
  j["appended_total"] = s.appended_total;
  j["pending_records"] = s.pending_records;
  j["dropped"] = s.dropped;
  j["full"] = s.full;
  j["backpressure_waits"] = s.backpressure_waits;
  j["replay_queued"] = s.replay_queued;
  j["dead_letters"] = s.dead_letters;
  j["dead_letters_total"] = s.dead_letters_total;
  j["quarantined"] = s.quarantined;
  j["last_quarantine"] = s.last_quarantine;
  j["cursors"] = nlohmann::json::array();
  for (const auto& c : s.cursors) {
    j["cursors"].push_back({{"sink", c.name}, {"acked_seq", c.acked_seq}, {"backlog_records", c.backlog_records}});
  }
  return j.dump(2);
}

std::string StoreStatsText(const buffer::StoreStats& s) {
  uint64_t dropped = 0;
  std::string by_reason;
  for (const auto& [reason, n] : s.dropped) {
    dropped += n;
    if (n) by_reason += fmt::format(" {}={}", reason, n);
  }
  std::string out;
  out += fmt::format("records          {} in {} segments (next seq {})\n", s.records, s.segments, s.next_seq);
  out += fmt::format("payload          {}\n", FormatBytes(s.payload_bytes));
  out += fmt::format("on disk          {} compressed, {} pages in use, {} files\n",
                     FormatBytes(s.compressed_bytes), FormatBytes(s.used_bytes), FormatBytes(s.file_bytes));
  out += fmt::format("written ever     {} records, {} payload -> {} (ratio {:.1f}x)\n", s.written_records,
                     FormatBytes(s.written_payload_bytes), FormatBytes(s.written_compressed_bytes),
                     s.compression_ratio);
  out += fmt::format("event time       {} .. {}\n", Time(s.oldest_ts_ns), Time(s.newest_ts_ns));
  out += fmt::format("appended         {} ever\n", s.appended_total);
  out += fmt::format("dropped          {}{}\n", dropped, by_reason);
  out += fmt::format("dead letters     {} now, {} ever\n", s.dead_letters, s.dead_letters_total);
  if (s.quarantined) out += fmt::format("quarantined      {} (last: {})\n", s.quarantined, s.last_quarantine);
  for (const auto& c : s.cursors) {
    out += fmt::format("sink {:<12} acked seq {}, backlog {} records\n", c.name, c.acked_seq, c.backlog_records);
  }
  return out;
}

std::string AgentStatsLine(const AgentStats& s) {
  std::string line = fmt::format("stats: buffer records={} pending={} ratio={:.1f}x disk={}", s.buffer.records,
                                 s.buffer.pending_records, s.buffer.compression_ratio,
                                 FormatBytes(s.buffer.file_bytes));
  for (const auto& [name, src] : s.sources) {
    line += fmt::format(" | source {} {} in={} stored={} dlq={} reconnects={}", name,
                        src.connected ? "up" : "down", src.received, src.stored, src.dead_lettered, src.reconnects);
  }
  for (const auto& [name, snk] : s.sinks) {
    uint64_t backlog = 0;
    for (const auto& c : s.buffer.cursors) {
      if (c.name == name) backlog = c.backlog_records;
    }
    line += fmt::format(" | sink {} {} out={} backlog={} retries={}", name, SinkStateName(snk.state),
                        snk.delivered_records, backlog, snk.retries);
  }
  return line;
}

}  // namespace edgeferry::agent

namespace edgeferry::agent {

std::string AgentStatusText(const AgentStats& s) {
  std::string text = fmt::format("{} records buffered", s.buffer.records);
  for (const auto& [name, sink] : s.sinks) {
    uint64_t backlog = 0;
    for (const auto& c : s.buffer.cursors) {
      if (c.name == name) backlog = c.backlog_records;
    }
    text += fmt::format("; {} {} backlog {}", name, SinkStateName(sink.state), backlog);
  }
  return text;
}

}  // namespace edgeferry::agent
