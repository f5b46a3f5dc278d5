#include "edgeferry/agent/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "edgeferry/redact.h"
#include "edgeferry/units.h"

namespace edgeferry::agent {

namespace {
std::string Time(int64_t ns) {
  if (ns == 0) return "-";
  std::string s;
  AppendRfc3339Ns(ns, &s);
  return s.substr(0, 19) + "Z";
}

uint64_t BacklogOf(const buffer::StoreStats& b, const std::string& sink) {
  for (const auto& c : b.cursors) {
    if (c.name == sink) return c.backlog_records;
  }
  return 0;
}

int64_t OldestUnackedOf(const buffer::StoreStats& b, const std::string& sink) {
  for (const auto& c : b.cursors) {
    if (c.name == sink) return c.oldest_unacked_stored_ns;
  }
  return 0;
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
  j["dead_letters_pruned"] = s.dead_letters_pruned;
  j["quarantined"] = s.quarantined;
  j["last_quarantine"] = s.last_quarantine;
  j["cursors"] = nlohmann::json::array();
  for (const auto& c : s.cursors) {
    j["cursors"].push_back({{"sink", c.name}, {"acked_seq", c.acked_seq}, {"backlog_records", c.backlog_records}});
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
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
  out += fmt::format("received         {} .. {}\n", Time(s.oldest_ts_ns), Time(s.newest_ts_ns));
  out += fmt::format("appended         {} ever\n", s.appended_total);
  out += fmt::format("dropped          {}{}\n", dropped, by_reason);
  out += fmt::format("dead letters     {} now, {} ever, {} queued for replay{}\n", s.dead_letters, s.dead_letters_total,
                     s.replay_queued,
                     s.dead_letters_pruned ? fmt::format(", {} oldest pruned (dlq_max_bytes)", s.dead_letters_pruned) : "");
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
    const uint64_t backlog = BacklogOf(s.buffer, name);
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
    const uint64_t backlog = BacklogOf(s.buffer, name);
    text += fmt::format("; {} {} backlog {}", name, SinkStateName(sink.state), backlog);
  }
  return text;
}

}  // namespace edgeferry::agent

namespace edgeferry::agent {

namespace {
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// One metric family: HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string* out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    *out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Add(std::string_view labels, double value) { AddAs(name_, labels, value); }
  // A sample of a histogram's or summary's series (`suffix` "_bucket", "_sum", "_count").
  void AddAs(std::string_view name, std::string_view labels, double value) {
    const std::string v = std::isinf(value) ? (value > 0 ? "+Inf" : "-Inf") : std::isnan(value) ? "NaN" : fmt::format("{}", value);
    *out_ += labels.empty() ? fmt::format("{} {}\n", name, v) : fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
  void AddHistogram(std::string_view labels, const Histogram& h) {
    const std::string sep = labels.empty() ? "" : ",";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < Histogram::kBoundsSeconds.size(); ++i) {
      cumulative += h.counts[i];
      AddAs(name_ + "_bucket", fmt::format("{}{}le=\"{}\"", labels, sep, Histogram::kBoundsSeconds[i]),
            static_cast<double>(cumulative));
    }
    AddAs(name_ + "_bucket", fmt::format("{}{}le=\"+Inf\"", labels, sep), static_cast<double>(h.count));
    AddAs(name_ + "_sum", labels, h.sum_seconds);
    AddAs(name_ + "_count", labels, static_cast<double>(h.count));
  }

 private:
  std::string* out_;
  std::string name_;
};

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }
}  // namespace

std::string PrometheusText(const AgentStats& s, std::string_view version, std::string_view commit, int64_t now_ns) {
  std::string out;
  Family(&out, "edgeferry_build_info", "gauge", "edgeferry version and the git commit it was built from")
      .Add(fmt::format("version=\"{}\",commit=\"{}\"", Label(version), Label(commit)), 1);
  Family(&out, "edgeferry_config_version", "gauge", "Version of the configuration in force (a fleet push; 0 = the local file)")
      .Add("", static_cast<double>(s.config_version));
  const auto& b = s.buffer;
  Family(&out, "edgeferry_buffer_records", "gauge", "Records held in the buffer").Add("", static_cast<double>(b.records));
  Family(&out, "edgeferry_buffer_payload_bytes", "gauge", "Raw payload bytes held").Add("", static_cast<double>(b.payload_bytes));
  Family(&out, "edgeferry_buffer_compressed_bytes", "gauge", "Segment bytes on disk").Add("", static_cast<double>(b.compressed_bytes));
  Family(&out, "edgeferry_buffer_file_bytes", "gauge", "Database and WAL file bytes").Add("", static_cast<double>(b.file_bytes));
  Family(&out, "edgeferry_buffer_compression_ratio", "gauge", "Payload bytes per stored byte").Add("", b.compression_ratio);
  Family(&out, "edgeferry_buffer_appended_records_total", "counter", "Records ever appended").Add("", static_cast<double>(b.appended_total));
  Family dropped(&out, "edgeferry_buffer_dropped_records_total", "counter", "Records dropped, by reason");
  for (const auto& [reason, n] : b.dropped) dropped.Add(fmt::format("reason=\"{}\"", Label(reason)), static_cast<double>(n));
  Family(&out, "edgeferry_buffer_dead_letters", "gauge", "Entries in the dead letter queue").Add("", static_cast<double>(b.dead_letters));
  Family(&out, "edgeferry_buffer_dead_letters_pruned_total", "counter", "Oldest dead letters removed to keep the queue within dlq_max_bytes")
      .Add("", static_cast<double>(b.dead_letters_pruned));
  Family(&out, "edgeferry_buffer_quarantined_total", "counter", "Corrupt stores moved aside").Add("", static_cast<double>(b.quarantined));
  Family(&out, "edgeferry_buffer_full", "gauge", "1 while reject_new or backpressure holds new records at the cap or free-disk floor").Add("", b.full ? 1 : 0);
  Family(&out, "edgeferry_buffer_room_bytes", "gauge", "Bytes the buffer may still grow by before when_full acts (cap or free disk)")
      .Add("", static_cast<double>(b.room_bytes));
  Family(&out, "edgeferry_buffer_appended_payload_bytes_total", "counter", "Payload bytes appended since the agent started")
      .Add("", static_cast<double>(b.appended_payload_bytes));
  if (s.offline_cover_seconds) {
    Family(&out, "edgeferry_buffer_offline_cover_seconds", "gauge",
           "How long the buffer's room lasts at the ingest rate of the last 5 minutes with no sink acknowledging (+Inf: no ingest)")
        .Add("", *s.offline_cover_seconds);
  }
  Family src_up(&out, "edgeferry_source_connected", "gauge", "1 while the source's broker or device is connected");
  for (const auto& [name, src] : s.sources) src_up.Add(fmt::format("source=\"{}\"", Label(name)), src.connected ? 1 : 0);
  Family proc(&out, "edgeferry_processor_records_total", "counter",
              "Records through each processor of a source, by outcome: in, out (handed on), dropped (or absorbed into an "
              "aggregate), failed (dead-lettered), emitted (an aggregate's windows)");
  for (const auto& [name, stages] : s.processors) {
    for (size_t i = 0; i < stages.size(); ++i) {
      const auto& p = stages[i];
      for (const auto& [outcome, n] : {std::pair<const char*, uint64_t>{"in", p.in}, {"out", p.out}, {"dropped", p.dropped}, {"failed", p.failed}, {"emitted", p.emitted}}) {
        proc.Add(fmt::format("source=\"{}\",processor=\"{}:{}\",outcome=\"{}\"", Label(name), i, p.type, outcome),
                 static_cast<double>(n));
      }
    }
  }
  Family sink_proc(&out, "edgeferry_sink_processor_records_total", "counter",
                   "Records through each processor of a sink (after the buffer), by outcome: in, out (sent), dropped, "
                   "failed (dead-lettered); each record counted once however often it is sent");
  for (const auto& [name, snk] : s.sinks) {
    for (size_t i = 0; i < snk.processors.size(); ++i) {
      const auto& p = snk.processors[i];
      for (const auto& [outcome, n] : {std::pair<const char*, uint64_t>{"in", p.in}, {"out", p.out}, {"dropped", p.dropped}, {"failed", p.failed}}) {
        sink_proc.Add(fmt::format("sink=\"{}\",processor=\"{}:{}\",outcome=\"{}\"", Label(name), i, p.type, outcome),
                      static_cast<double>(n));
      }
    }
  }
  Family last_rx(&out, "edgeferry_source_last_receive_timestamp_seconds", "gauge",
                 "When the source last read a record, seconds since the epoch (0 = never since the agent started)");
  for (const auto& [name, src] : s.sources) last_rx.Add(fmt::format("source=\"{}\"", Label(name)), Seconds(src.last_receive_ns));
  struct SourceCounter {
    const char* name;
    const char* help;
    uint64_t drivers::SourceStats::*field;
  };
  for (const auto& c : {SourceCounter{"edgeferry_source_records_received_total", "Records read", &drivers::SourceStats::received},
                        SourceCounter{"edgeferry_source_records_stored_total", "Records the buffer accepted", &drivers::SourceStats::stored},
                        SourceCounter{"edgeferry_source_records_dead_lettered_total", "Records sent to the dead letter queue", &drivers::SourceStats::dead_lettered},
                        SourceCounter{"edgeferry_source_records_rejected_total", "Records the buffer refused", &drivers::SourceStats::rejected},
                        SourceCounter{"edgeferry_source_reconnects_total", "Reconnections after the first", &drivers::SourceStats::reconnects},
                        SourceCounter{"edgeferry_source_records_unrouted_total", "Records stored that no sink's route selects", &drivers::SourceStats::unrouted},
                        SourceCounter{"edgeferry_source_records_dropped_total", "Records the source's processors dropped (filter, deadband, sample)", &drivers::SourceStats::dropped}}) {
    Family f(&out, c.name, "counter", c.help);
    for (const auto& [name, src] : s.sources) f.Add(fmt::format("source=\"{}\"", Label(name)), static_cast<double>(src.*c.field));
  }
  struct SinkCounter {
    const char* name;
    const char* help;
    uint64_t SinkStats::*field;
  };
  for (const auto& c : {SinkCounter{"edgeferry_sink_records_delivered_total", "Records the destination accepted", &SinkStats::delivered_records},
                        SinkCounter{"edgeferry_sink_payload_bytes_total", "Payload bytes delivered", &SinkStats::payload_bytes},
                        SinkCounter{"edgeferry_sink_records_skipped_total", "Records the sink's route does not select: acked past, not sent", &SinkStats::skipped_records},
                        SinkCounter{"edgeferry_sink_records_dropped_total", "Records the sink's processors dropped: acked past, not sent", &SinkStats::dropped_records},
                        SinkCounter{"edgeferry_sink_wire_bytes_total", "Bytes sent to the destination after compression, retries included", &SinkStats::wire_bytes},
                        SinkCounter{"edgeferry_sink_records_dead_lettered_total", "Records refused for good", &SinkStats::dead_lettered},
                        SinkCounter{"edgeferry_sink_retries_total", "Failed deliveries that will be retried", &SinkStats::retries},
                        SinkCounter{"edgeferry_sink_oversize_records_total", "Records dead-lettered for exceeding the sink's max_record_bytes", &SinkStats::oversize_records},
                        SinkCounter{"edgeferry_sink_poison_records_total", "Records dead-lettered after bisecting a batch the destination refused", &SinkStats::poison_records},
                        SinkCounter{"edgeferry_sink_moved_records_total", "Records moved to the dead letter queue by hand (edgeferry dlq move)", &SinkStats::moved_records},
                        SinkCounter{"edgeferry_sink_exceptions_total", "Exceptions that escaped the sink and were caught by its forwarder", &SinkStats::sink_exceptions}}) {
    Family f(&out, c.name, "counter", c.help);
    for (const auto& [name, snk] : s.sinks) f.Add(fmt::format("sink=\"{}\"", Label(name)), static_cast<double>(snk.*c.field));
  }
  Family backlog(&out, "edgeferry_sink_backlog_records", "gauge", "Records buffered and not yet acknowledged by the sink");
  for (const auto& c : b.cursors) backlog.Add(fmt::format("sink=\"{}\"", Label(c.name)), static_cast<double>(c.backlog_records));
  Family age(&out, "edgeferry_sink_oldest_unacked_age_seconds", "gauge",
             "Seconds since the buffer took the oldest record the sink has not acknowledged (0 = none)");
  for (const auto& c : b.cursors) {
    const int64_t oldest = c.backlog_records > 0 ? c.oldest_unacked_stored_ns : 0;
    age.Add(fmt::format("sink=\"{}\"", Label(c.name)), oldest > 0 ? Seconds(std::max<int64_t>(0, now_ns - oldest)) : 0);
  }
  Family success(&out, "edgeferry_sink_last_success_timestamp_seconds", "gauge",
                 "When the destination last accepted records, seconds since the epoch (0 = never since the agent started)");
  for (const auto& [name, snk] : s.sinks) success.Add(fmt::format("sink=\"{}\"", Label(name)), Seconds(snk.last_success_ns));
  Family latency(&out, "edgeferry_sink_delivery_latency_seconds", "histogram",
                 "Per record delivered: acknowledgement time minus the record's receive time");
  for (const auto& [name, snk] : s.sinks) latency.AddHistogram(fmt::format("sink=\"{}\"", Label(name)), snk.latency);
  Family request(&out, "edgeferry_sink_request_duration_seconds", "histogram",
                 "Per delivery call (one request, publish run or file), whatever its outcome");
  for (const auto& [name, snk] : s.sinks) request.AddHistogram(fmt::format("sink=\"{}\"", Label(name)), snk.request_duration);
  Family state(&out, "edgeferry_sink_state", "gauge", "1 for the sink's current state");
  for (const auto& [name, snk] : s.sinks) {
    for (auto st : {SinkState::kStarting, SinkState::kOnline, SinkState::kBackingOff, SinkState::kFailing, SinkState::kStopped}) {
      state.Add(fmt::format("sink=\"{}\",state=\"{}\"", Label(name), SinkStateName(st)), snk.state == st ? 1 : 0);
    }
  }
  return out;
}

namespace {
std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

std::string ProcessMetricsText() {
  std::string out;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  // proc(5): the fields after the command name, which may hold spaces and parentheses.
  const std::string stat = ReadSmallFile("/proc/self/stat");
  const auto end_of_comm = stat.rfind(')');
  std::istringstream fields(end_of_comm == std::string::npos ? "" : stat.substr(end_of_comm + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
  // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  if (f.size() > 21 && tick > 0) {
    const auto at = [&](int field) { return std::strtod(f[static_cast<size_t>(field - 3)].c_str(), nullptr); };
    Family(&out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds")
        .Add("", (at(14) + at(15)) / tick);
    Family(&out, "process_virtual_memory_bytes", "gauge", "Virtual memory size, bytes").Add("", at(23));
    Family(&out, "process_resident_memory_bytes", "gauge", "Resident memory size, bytes")
        .Add("", at(24) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    // starttime is in ticks since boot; btime in /proc/stat is the boot time.
    const std::string proc_stat = ReadSmallFile("/proc/stat");
    if (const auto b = proc_stat.find("\nbtime "); b != std::string::npos) {
      const double boot = std::strtod(proc_stat.c_str() + b + 7, nullptr);
      Family(&out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, seconds")
          .Add("", boot + at(22) / tick);
    }
  }
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    // Less the descriptor the listing itself held open.
    Family(&out, "process_open_fds", "gauge", "Open file descriptors").Add("", static_cast<double>(fds > 0 ? fds - 1 : 0));
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    Family(&out, "process_max_fds", "gauge", "Maximum open file descriptors").Add("", static_cast<double>(lim.rlim_cur));
  }
  return out;
}

}  // namespace edgeferry::agent

namespace edgeferry::agent {

namespace {
nlohmann::json BufferJson(const buffer::StoreStats& b) {
  uint64_t dropped = 0;
  for (const auto& [reason, n] : b.dropped) dropped += n;
  return {{"records", b.records},
          {"payload_bytes", b.payload_bytes},
          {"file_bytes", b.file_bytes},
          {"compression_ratio", b.compression_ratio},
          {"oldest_ts_ns", b.oldest_ts_ns},
          {"dropped", dropped},
          {"dropped_by_reason", b.dropped},
          {"dead_letters", b.dead_letters},
          {"full", b.full},
          {"writable", b.writable},
          {"quarantined", b.quarantined},
          {"last_quarantine", b.last_quarantine}};
}


// Tolerant readers: a field that is missing or null (a NaN ratio serialises as null)
// renders as zero rather than failing the whole status.
template <typename T>
T Get(const nlohmann::json& j, const char* key, T fallback = T{}) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return fallback;
  }
}

// One line per reason; an older agent's document has only the joined "health" string.
// A source's or sink's processors as /status lists them.
nlohmann::json ProcessorsJson(const std::vector<pipeline::ProcessorStats>& stages) {
  auto list = nlohmann::json::array();
  for (const auto& st : stages) {
    list.push_back({{"type", st.type}, {"in", st.in}, {"out", st.out}, {"dropped", st.dropped}, {"failed", st.failed},
                    {"emitted", st.emitted}});
  }
  return list;
}

// "          processors: filter 10->8, aggregate 8->0 (+2 windows)" for a source's or
// sink's /status entry; empty when it has none.
std::string ProcessorChainLine(const nlohmann::json& entry) {
  const auto p = entry.find("processors");
  if (p == entry.end() || !p->is_array() || p->empty()) return "";
  std::string chain;
  for (const auto& st : *p) {
    chain += fmt::format("{}{} {}->{}", chain.empty() ? "" : ", ", Get<std::string>(st, "type", "?"),
                         Get<uint64_t>(st, "in"), Get<uint64_t>(st, "out"));
    if (const auto failed = Get<uint64_t>(st, "failed")) chain += fmt::format(" ({} failed)", failed);
    if (const auto emitted = Get<uint64_t>(st, "emitted")) chain += fmt::format(" (+{} windows)", emitted);
  }
  return fmt::format("          processors: {}\n", chain);
}

std::string HealthLines(const nlohmann::json& j) {
  std::string out;
  if (const auto r = j.find("health_reasons"); r != j.end() && r->is_array() && !r->empty()) {
    for (const auto& reason : *r) {
      if (reason.is_string()) out += fmt::format("          unhealthy: {}\n", reason.get<std::string>());
    }
    return out;
  }
  return fmt::format("          unhealthy: {}\n", Get<std::string>(j, "health", "?"));
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::clamp(seconds, 0.0, 1e12));
  if (s < 120) return fmt::format("{}s", s);
  if (s < 7200) return fmt::format("{}m", s / 60);
  if (s < 172800) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  return fmt::format("{}d{:02}h", s / 86400, s / 3600 % 24);
}

std::string Ago(int64_t then_ns, int64_t now_ns) {
  if (then_ns <= 0) return "-";
  return Duration(static_cast<double>(std::max<int64_t>(0, (now_ns - then_ns) / 1'000'000'000)));
}
}  // namespace

std::string AgentStatusJson(const AgentStats& s, const RunInfo& run) {
  nlohmann::json j;
  j["running"] = true;
  j["version"] = run.version;
  j["config"] = run.config_path;
  j["started_ns"] = run.started_ns;
  j["gateway_id"] = run.gateway_id;
  j["buffer_path"] = run.buffer_path;
  j["pid"] = run.pid;
  j["healthy"] = run.health.empty();
  j["health"] = fmt::format("{}", fmt::join(run.health, "; "));  // one line, as before
  j["health_reasons"] = run.health;
  j["config_version"] = s.config_version;
  j["fleet"] = run.fleet;
  j["buffer"] = BufferJson(s.buffer);
  j["buffer"]["room_bytes"] = s.buffer.room_bytes;
  // null while unknown; a finite cover only (no ingest: the rate is 0 and the cover null).
  j["buffer"]["ingest_payload_bytes_per_second"] =
      s.ingest_payload_bytes_per_second ? nlohmann::json(*s.ingest_payload_bytes_per_second) : nlohmann::json();
  j["buffer"]["offline_cover_seconds"] = s.offline_cover_seconds && std::isfinite(*s.offline_cover_seconds)
                                             ? nlohmann::json(*s.offline_cover_seconds)
                                             : nlohmann::json();
  j["sources"] = nlohmann::json::object();
  for (const auto& [name, src] : s.sources) {
    j["sources"][name] = {{"connected", src.connected},       {"received", src.received},
                          {"stored", src.stored},             {"dead_lettered", src.dead_lettered},
                          {"rejected", src.rejected},         {"reconnects", src.reconnects},
                          {"last_receive_ns", src.last_receive_ns},
                          {"unrouted", src.unrouted},
                          {"dropped", src.dropped},
                          {"last_error", src.last_error}};
    if (const auto p = s.processors.find(name); p != s.processors.end() && !p->second.empty()) {
      j["sources"][name]["processors"] = ProcessorsJson(p->second);
    }
    if (const auto w = s.source_windows.find(name); w != s.source_windows.end()) {
      j["sources"][name]["window_inputs"] = w->second.inputs;
      j["sources"][name]["window_dead_lettered"] = w->second.dead_lettered;
    }
  }
  j["sinks"] = nlohmann::json::object();
  for (const auto& [name, snk] : s.sinks) {
    j["sinks"][name] = {{"state", SinkStateName(snk.state)},
                        {"acked_seq", snk.acked_seq},
                        {"backlog", BacklogOf(s.buffer, name)},
                        {"oldest_unacked_ns", OldestUnackedOf(s.buffer, name)},
                        {"delivered", snk.delivered_records},
                        {"payload_bytes", snk.payload_bytes},
                        {"wire_bytes", snk.wire_bytes},
                        {"skipped", snk.skipped_records},
                        {"last_success_ns", snk.last_success_ns},
                        {"dead_lettered", snk.dead_lettered},
                        {"retries", snk.retries},
                        {"consecutive_failures", snk.consecutive_failures},
                        {"oversize_records", snk.oversize_records},
                        {"poison_records", snk.poison_records},
                        {"moved_records", snk.moved_records},
                        {"sink_exceptions", snk.sink_exceptions},
                        {"dropped", snk.dropped_records},
                        {"last_error", RedactUrlsIn(snk.last_error)}};
    if (!snk.processors.empty()) j["sinks"][name]["processors"] = ProcessorsJson(snk.processors);
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string OfflineStatusJson(const buffer::StoreStats& s) {
  nlohmann::json j;
  j["running"] = false;
  j["buffer"] = BufferJson(s);
  j["sources"] = nlohmann::json::object();
  j["sinks"] = nlohmann::json::object();
  for (const auto& c : s.cursors) j["sinks"][c.name] = {{"acked_seq", c.acked_seq}, {"backlog", c.backlog_records}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string StatusForPerson(std::string_view status_json, int64_t now_ns) {
  const auto j = nlohmann::json::parse(status_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("buffer")) return "edgeferry: the agent's status could not be read\n";
  std::string out;
  const bool running = Get<bool>(j, "running");
  if (running) {
    out += fmt::format("agent     running {} for {}, {}\n", Get<std::string>(j, "version", "?"),
                       Ago(Get<int64_t>(j, "started_ns"), now_ns), Get<bool>(j, "healthy") ? "healthy" : "UNHEALTHY");
    if (!Get<bool>(j, "healthy")) out += HealthLines(j);
    out += fmt::format("config    {}{}{}\n", Get<std::string>(j, "config", "?"),
                       Get<int64_t>(j, "config_version") ? fmt::format(", fleet version {} in force", Get<int64_t>(j, "config_version")) : "",
                       Get<std::string>(j, "fleet").empty() ? "" : " (last push: " + Get<std::string>(j, "fleet") + ")");
  } else {
    out += "agent     NOT RUNNING (what follows is the buffer on disk)\n";
  }
  const auto& b = j["buffer"];
  out += fmt::format("buffer    {} records, {} payload in {} on disk ({:.1f}x), oldest {} ago{}\n",
                     Get<uint64_t>(b, "records"), FormatBytes(Get<uint64_t>(b, "payload_bytes")),
                     FormatBytes(Get<uint64_t>(b, "file_bytes")), Get<double>(b, "compression_ratio"),
                     Ago(Get<int64_t>(b, "oldest_ts_ns"), now_ns), Get<bool>(b, "full") ? ", FULL" : "");
  std::string drops;
  if (const auto by = b.find("dropped_by_reason"); by != b.end() && by->is_object()) {
    for (const auto& [reason, n] : by->items()) {
      if (n.is_number_unsigned() && n.get<uint64_t>() > 0) drops += fmt::format(" {}={}", reason, n.get<uint64_t>());
    }
  }
  out += fmt::format("          dropped {}{}, dead letters {}", Get<uint64_t>(b, "dropped"), drops,
                     Get<uint64_t>(b, "dead_letters"));
  if (Get<uint64_t>(b, "quarantined") > 0) {
    out += fmt::format(", quarantined {} ({})", Get<uint64_t>(b, "quarantined"), Get<std::string>(b, "last_quarantine"));
  }
  out += "\n";
  if (running && b.contains("room_bytes")) {
    const auto rate = b.find("ingest_payload_bytes_per_second");
    const auto cover = b.find("offline_cover_seconds");
    std::string offline = "ingest rate not measured yet";
    if (cover != b.end() && cover->is_number()) {
      const double seconds = cover->get<double>();
      offline = fmt::format("covers {} offline at {}/s", seconds > 365.0 * 86400 ? "over a year" : Duration(seconds),
                            FormatBytes(static_cast<uint64_t>(Get<double>(b, "ingest_payload_bytes_per_second"))));
    } else if (rate != b.end() && rate->is_number()) {
      offline = "no ingest now";
    }
    out += fmt::format("          room {} before when_full acts; {}\n", FormatBytes(Get<uint64_t>(b, "room_bytes")), offline);
  }
  for (const auto& [name, src] : j["sources"].items()) {
    const uint64_t unrouted = Get<uint64_t>(src, "unrouted");
    const uint64_t dropped = Get<uint64_t>(src, "dropped");
    out += fmt::format("source    {:<14} {:<8} in {}, stored {}, {}dead-lettered {}, reconnects {}{}\n", name,
                       Get<bool>(src, "connected") ? "up" : "DOWN", Get<uint64_t>(src, "received"),
                       Get<uint64_t>(src, "stored"), dropped ? fmt::format("dropped {}, ", dropped) : "",
                       Get<uint64_t>(src, "dead_lettered"), Get<uint64_t>(src, "reconnects"),
                       unrouted ? fmt::format(" ({} selected by no sink)", unrouted) : "");
    out += ProcessorChainLine(src);
    if (const auto e = Get<std::string>(src, "last_error"); !e.empty()) {
      out += fmt::format("          last error: {}\n", EscapeControlChars(e));
    }
  }
  for (const auto& [name, snk] : j["sinks"].items()) {
    if (!running) {
      out += fmt::format("sink      {:<14} backlog {} (acked through seq {})\n", name, Get<uint64_t>(snk, "backlog"),
                         Get<uint64_t>(snk, "acked_seq"));
      continue;
    }
    const int64_t oldest = Get<int64_t>(snk, "oldest_unacked_ns");
    const int64_t success = Get<int64_t>(snk, "last_success_ns");
    out += fmt::format("sink      {:<14} {:<11} backlog {}{}, delivered {}, dead-lettered {}, retries {}{}\n", name,
                       Get<std::string>(snk, "state", "?"), Get<uint64_t>(snk, "backlog"),
                       oldest > 0 ? " (oldest stored " + Ago(oldest, now_ns) + " ago)" : "",
                       Get<uint64_t>(snk, "delivered"), Get<uint64_t>(snk, "dead_lettered"), Get<uint64_t>(snk, "retries"),
                       success > 0 ? ", last success " + Ago(success, now_ns) + " ago" : "");
    out += ProcessorChainLine(snk);
    if (const auto e = Get<std::string>(snk, "last_error"); !e.empty()) {
      out += fmt::format("          last error: {}\n", EscapeControlChars(RedactUrlsIn(e)));  // an older agent may not
    }
  }
  return out;
}

}  // namespace edgeferry::agent
