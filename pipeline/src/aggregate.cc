#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "edgeferry/units.h"
#include "json_field.h"
#include "processors.h"

namespace edgeferry::pipeline {

namespace {

struct FieldStats {
  uint64_t count = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  double last = 0;

  void Add(double v) {
    ++count;
    min = std::min(min, v);
    max = std::max(max, v);
    sum += v;
    last = v;
  }
};

// One series' open window.
struct Window {
  int64_t start_ns = 0;     // ns since epoch
  int64_t deadline_mono_ns = 0;
  uint64_t records = 0;
  int64_t first_ts_ns = 0;
  int64_t last_ts_ns = 0;
  // Windows on event time (a record's event_ts) emit the window start as the event time
  // and the last record's receive time as ts: the two time lines stay apart.
  bool by_event = false;
  int64_t last_receive_ns = 0;
  // How its records' receive times were stamped: a window never mixes an unsynchronized
  // clock with a synchronized one, and one before the sync can still be re-based.
  TsSource ts_source = TsSource::kClock;
  std::string boot_id;
  int64_t wall_minus_boot_ns = 0;  // receive time - boot time, while kUnsynced
  std::vector<FieldStats> fields;  // as configured
};

// Times an aggregate takes: far from int64's ends, so a window's start and end never
// overflow (about 1824 to 2116; a record outside passes unaggregated).
constexpr int64_t kMaxAbsTsNs = int64_t{1} << 62;
bool InRange(int64_t ts_ns) { return ts_ns > -kMaxAbsTsNs && ts_ns < kMaxAbsTsNs; }

// Floor division: windows of records before 1970 start below their ts too. InRange(ts_ns).
int64_t WindowStart(int64_t ts_ns, int64_t window_ns) {
  int64_t q = ts_ns / window_ns;
  if (ts_ns % window_ns != 0 && ts_ns < 0) --q;
  return q * window_ns;
}

class Aggregate final : public Processor {
 public:
  explicit Aggregate(AggregateConfig c) : c_(std::move(c)) {}

  Result<Verdict> Process(Record& r, RecordJson& json, int64_t mono_ns) override {
    const nlohmann::json* doc = json.Get();
    if (doc == nullptr) return Verdict::kPass;
    std::vector<std::optional<double>> values;
    bool any = false;
    for (const auto& f : c_.fields) {
      values.push_back(FindNumber(*doc, f));
      any = any || values.back().has_value();
    }
    if (!any) return Verdict::kPass;  // not a reading this aggregate covers
    auto it = open_.find(r.channel);
    // The open window's time line decides: event time (a GPS fix's) if it opened on one,
    // else receive time. A record without event time in an event-time window (GGA between
    // RMCs) belongs to the fix time it follows; one with event time in a receive-time
    // window counts by its receive time. A new window takes the line of its first record.
    int64_t ts = r.event_ts_ns != 0 ? r.event_ts_ns : r.ts_ns;
    if (it != open_.end()) ts = it->second.by_event ? (r.event_ts_ns != 0 ? r.event_ts_ns : it->second.last_ts_ns) : r.ts_ns;
    if (!InRange(ts)) return Verdict::kPass;
    const int64_t start = WindowStart(ts, c_.window_ns);
    if (it != open_.end() && (it->second.start_ns != start || it->second.ts_source != r.ts_source ||
                              it->second.boot_id != r.boot_id)) {
      // A later window (or, after a clock step back, an earlier one): this one is over.
      closed_.push_back(Emit(it->first, it->second));
      open_.erase(it);
      it = open_.end();
    }
    if (it == open_.end()) {
      // Bounded, as the deadband: past it, new series pass unaggregated.
      if (open_.size() >= kMaxSeries) return Verdict::kPass;
      Window w;
      w.start_ns = start;
      // What was left of the window at its first record, in monotonic time.
      const int64_t left = start + c_.window_ns - ts;
      w.deadline_mono_ns = mono_ns + std::clamp<int64_t>(left, 0, c_.window_ns);
      w.first_ts_ns = w.last_ts_ns = ts;
      w.by_event = r.event_ts_ns != 0 && ts == r.event_ts_ns;
      w.ts_source = r.ts_source;
      if (r.ts_source == TsSource::kUnsynced) {
        w.boot_id = r.boot_id;
        w.wall_minus_boot_ns = static_cast<int64_t>(static_cast<uint64_t>(r.ts_ns) - static_cast<uint64_t>(r.boot_ns));
      }
      w.fields.resize(c_.fields.size());
      it = open_.emplace(r.channel, std::move(w)).first;
    }
    Window& w = it->second;
    ++w.records;
    w.first_ts_ns = std::min(w.first_ts_ns, ts);
    w.last_ts_ns = std::max(w.last_ts_ns, ts);
    w.last_receive_ns = std::max(w.last_receive_ns, r.ts_ns);
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i] && std::isfinite(*values[i])) w.fields[i].Add(*values[i]);
    }
    source_ = r.source;
    return Verdict::kDrop;  // absorbed
  }

  void Expire(int64_t mono_ns, std::vector<Record>* out) override {
    for (auto& r : closed_) out->push_back(std::move(r));
    closed_.clear();
    for (auto it = open_.begin(); it != open_.end();) {
      if (it->second.deadline_mono_ns > mono_ns) {
        ++it;
        continue;
      }
      out->push_back(Emit(it->first, it->second));
      it = open_.erase(it);
    }
  }

  // Open windows (and closed ones not yet handed on), with the monotonic time left.
  nlohmann::json SaveState(int64_t mono_ns) const override {
    nlohmann::json j = nlohmann::json::object();
    nlohmann::json windows = nlohmann::json::object();
    for (const auto& [series, w] : open_) windows[series] = Save(w, mono_ns);
    j["open"] = std::move(windows);
    nlohmann::json closed = nlohmann::json::array();
    for (const auto& r : closed_) {
      closed.push_back({{"channel", r.channel}, {"ts", r.ts_ns}, {"event_ts", r.event_ts_ns}, {"payload", r.payload},
                        {"ts_source", static_cast<int>(r.ts_source)}, {"boot_id", r.boot_id}, {"boot_ns", r.boot_ns}});
    }
    j["closed"] = std::move(closed);
    j["source"] = source_;
    return j;
  }

  void LoadState(const nlohmann::json& state, int64_t mono_ns) override {
    if (!state.is_object()) return;
    if (const auto it = state.find("source"); it != state.end() && it->is_string()) source_ = it->get<std::string>();
    if (const auto it = state.find("closed"); it != state.end() && it->is_array()) {
      for (const auto& c : *it) {
        if (!c.is_object() || !c.value("channel", nlohmann::json()).is_string() ||
            !c.value("payload", nlohmann::json()).is_string() || !c.value("ts", nlohmann::json()).is_number_integer()) {
          continue;
        }
        Record r;
        r.source = source_;
        r.channel = c["channel"].get<std::string>();
        r.ts_ns = c["ts"].get<int64_t>();
        if (const auto e = c.find("event_ts"); e != c.end() && e->is_number_integer()) r.event_ts_ns = e->get<int64_t>();
        LoadTime(c, &r.ts_source, &r.boot_id);
        if (const auto b = c.find("boot_ns"); b != c.end() && b->is_number_integer()) r.boot_ns = b->get<int64_t>();
        if (r.ts_source != TsSource::kUnsynced) r.boot_ns = 0;
        r.content_type = ContentType::kJson;
        r.payload = c["payload"].get<std::string>();
        if (!nlohmann::json::parse(r.payload, nullptr, false).is_object()) continue;  // not a window we made
        closed_.push_back(std::move(r));
      }
    }
    if (const auto it = state.find("open"); it != state.end() && it->is_object()) {
      for (const auto& [series, saved] : it->items()) {
        if (open_.size() >= kMaxSeries) break;
        if (auto w = Load(saved, mono_ns)) open_[series] = std::move(*w);
      }
    }
  }

 private:
  static constexpr size_t kMaxSeries = 10'000;

  Record Emit(const std::string& channel, const Window& w) const {
    nlohmann::json j = {{"window_start", Rfc3339(w.start_ns)},
                        {"window_end", Rfc3339(w.start_ns + c_.window_ns)},
                        {"records", w.records},
                        {"first_ts", Rfc3339(w.first_ts_ns)},
                        {"last_ts", Rfc3339(w.last_ts_ns)}};
    for (size_t i = 0; i < c_.fields.size(); ++i) {
      const FieldStats& f = w.fields[i];
      if (f.count == 0) continue;
      j[c_.fields[i].text] = {{"count", f.count}, {"min", f.min},   {"max", f.max},
                              {"mean", f.sum / static_cast<double>(f.count)}, {"sum", f.sum}, {"last", f.last}};
    }
    Record r;
    r.source = source_;
    r.channel = channel;
    r.ts_ns = w.by_event ? w.last_receive_ns : w.start_ns;
    r.event_ts_ns = w.by_event ? w.start_ns : 0;
    r.ts_source = w.ts_source;
    if (w.ts_source == TsSource::kUnsynced) {
      r.boot_id = w.boot_id;
      r.boot_ns = static_cast<int64_t>(static_cast<uint64_t>(r.ts_ns) - static_cast<uint64_t>(w.wall_minus_boot_ns));
    }
    SetPayload(r, j);
    return r;
  }

  nlohmann::json Save(const Window& w, int64_t mono_ns) const {
    nlohmann::json fields = nlohmann::json::array();
    for (const auto& f : w.fields) {
      fields.push_back(f.count == 0 ? nlohmann::json(nullptr)
                                    : nlohmann::json{f.count, f.min, f.max, f.sum, f.last});
    }
    nlohmann::json names = nlohmann::json::array();
    for (const auto& f : c_.fields) names.push_back(f.text);
    return {{"start", w.start_ns},       {"records", w.records}, {"first_ts", w.first_ts_ns},
            {"last_ts", w.last_ts_ns},   {"fields", fields},     {"names", names},
            {"by_event", w.by_event},    {"last_receive", w.last_receive_ns},
            {"ts_source", static_cast<int>(w.ts_source)}, {"boot_id", w.boot_id},
            {"wall_minus_boot", w.wall_minus_boot_ns},
            // Monotonic time does not survive a reboot: keep what was left instead.
            {"left_ns", std::max<int64_t>(0, w.deadline_mono_ns - mono_ns)}};
  }

  // ts_source and boot_id as Save wrote them; anything else reads as a synchronized clock.
  static void LoadTime(const nlohmann::json& j, TsSource* source, std::string* boot_id) {
    *source = TsSource::kClock;
    boot_id->clear();
    const auto s = j.find("ts_source");
    const auto b = j.find("boot_id");
    if (s == j.end() || !s->is_number_integer() || s->get<int64_t>() != static_cast<int>(TsSource::kUnsynced) ||
        b == j.end() || !b->is_string()) {
      return;
    }
    *source = TsSource::kUnsynced;
    *boot_id = b->get<std::string>().substr(0, 64);
  }

  // Anything malformed (an edited or truncated file) loses that window, nothing else.
  std::optional<Window> Load(const nlohmann::json& j, int64_t mono_ns) const {
    if (!j.is_object()) return std::nullopt;
    auto int_at = [&](const char* key) -> std::optional<int64_t> {
      const auto it = j.find(key);
      if (it == j.end() || !it->is_number_integer()) return std::nullopt;
      return it->get<int64_t>();
    };
    const auto start = int_at("start"), first = int_at("first_ts"), last = int_at("last_ts"), left = int_at("left_ns");
    const auto records = j.find("records");
    const auto fields = j.find("fields");
    const auto names = j.find("names");
    nlohmann::json want = nlohmann::json::array();
    for (const auto& f : c_.fields) want.push_back(f.text);
    if (!start || !first || !last || !left || records == j.end() || !records->is_number_unsigned() ||
        fields == j.end() || !fields->is_array() || fields->size() != c_.fields.size() || names == j.end() ||
        *names != want || !InRange(*start) || !InRange(*first) || !InRange(*last) ||
        WindowStart(*start, c_.window_ns) != *start) {
      return std::nullopt;  // a changed window length or field list starts afresh
    }
    Window w;
    w.start_ns = *start;
    w.first_ts_ns = *first;
    w.last_ts_ns = *last;
    w.records = records->get<uint64_t>();
    if (const auto e = j.find("by_event"); e != j.end() && e->is_boolean()) w.by_event = e->get<bool>();
    w.last_receive_ns = int_at("last_receive").value_or(0);
    LoadTime(j, &w.ts_source, &w.boot_id);
    w.wall_minus_boot_ns = int_at("wall_minus_boot").value_or(0);
    w.deadline_mono_ns = mono_ns + std::clamp<int64_t>(*left, 0, c_.window_ns);
    for (const auto& f : *fields) {
      FieldStats s;
      if (f.is_array() && f.size() == 5 && f[0].is_number_unsigned() &&
          std::all_of(f.begin() + 1, f.end(), [](const nlohmann::json& v) { return v.is_number(); })) {
        s.count = f[0].get<uint64_t>();
        s.min = f[1].get<double>();
        s.max = f[2].get<double>();
        s.sum = f[3].get<double>();
        s.last = f[4].get<double>();
      }
      w.fields.push_back(s);
    }
    return w;
  }

  const AggregateConfig c_;
  std::map<std::string, Window> open_;  // by channel
  std::vector<Record> closed_;          // closed by a later record, handed on at Expire
  std::string source_;                  // the records' source, for the windows emitted
};

}  // namespace

std::unique_ptr<Processor> MakeAggregate(AggregateConfig c) { return std::make_unique<Aggregate>(std::move(c)); }

}  // namespace edgeferry::pipeline
