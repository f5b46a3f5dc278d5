// Processors: what happens to a record between its source and the buffer, in the
// order configured ([[sources.<name>.processors]], docs/configuration.md). What a
// processor drops or reduces never costs flash or a metered link.
//
// A processor sees one record at a time and either hands it on (possibly changed),
// drops it (a filter that does not select it, a deadband within its band, a sample
// that skips it) or fails on it (a reshape of a payload that is not a JSON object):
// the record is then dead-lettered with the reason and the pipeline goes on.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgeferry/record.h"
#include "edgeferry/status.h"

namespace edgeferry::pipeline {

// A JSON field by dotted path ("sensor.temp"): object members only, at most 16 levels.
struct FieldPath {
  std::vector<std::string> parts;
  std::string text;  // as configured, for messages
};
// Parses "a.b.c"; nullopt when empty, over 16 levels or with an empty level.
std::optional<FieldPath> ParseFieldPath(std::string_view text);

// ---- configurations (read from TOML by the agent's config reader)

// Keeps (or drops, with drop = true) the records that match every condition given.
struct FilterConfig {
  bool drop = false;
  std::vector<std::string> channels;          // MQTT topic filters; empty = any channel
  std::optional<ContentType> content_type;    // empty = any
  std::optional<FieldPath> field;             // with op (and value but for "exists")
  enum class Op { kExists, kEq, kNe, kLt, kLe, kGt, kGe } op = Op::kExists;
  nlohmann::json value;                       // a number, string or bool
};

// JSON object payloads: add or overwrite members (set), rename them, remove them
// (drop_fields), or keep only the ones named (select). Top-level members only.
struct FieldsConfig {
  enum class Kind { kSet, kRename, kDrop, kSelect } kind = Kind::kSet;
  std::map<std::string, nlohmann::json> set;       // name -> value (kSet)
  std::map<std::string, std::string> rename;       // old -> new (kRename)
  std::vector<std::string> names;                  // kDrop, kSelect
  // Only records on these channels (MQTT topic filters) pass through this processor;
  // the others skip it unchanged. Empty = every record.
  std::vector<std::string> scope = {};
};

// Report by exception per series (channel + field): a record is handed on when its
// value moved more than `absolute` or more than `percent` of the last value handed on
// (either, when both are set), or when `heartbeat_ns` passed since that one. Records
// without the field as a number pass unchanged.
struct DeadbandConfig {
  FieldPath field;
  double absolute = 0;       // in the field's unit; 0 = not used
  double percent = 0;        // of |last value|; 0 = not used
  int64_t heartbeat_ns = 0;  // 0 = none
  // Only records on these channels (MQTT topic filters) pass through this processor;
  // the others skip it unchanged. Empty = every record.
  std::vector<std::string> scope = {};
};

// Per channel: one record in `every`, or the first record of each `interval_ns`.
struct SampleConfig {
  uint64_t every = 0;
  int64_t interval_ns = 0;
  // Only records on these channels (MQTT topic filters) pass through this processor;
  // the others skip it unchanged. Empty = every record.
  std::vector<std::string> scope = {};
};

// Tumbling windows per series (channel). A record with at least one of `fields` as a
// number is absorbed into the window [start, start + window_ns) its ts_ns falls in
// (start a multiple of window_ns since the epoch); other records pass unchanged. A
// window is emitted as one JSON record on the same channel, ts_ns = its start:
//   {"window_start": RFC 3339, "window_end": RFC 3339, "records": n,
//    "first_ts": RFC 3339, "last_ts": RFC 3339,
//    "<field>": {"count", "min", "max", "mean", "sum", "last"}, ...}
// when a record of a later window arrives on its series, or when as much monotonic
// time as was left of the window at its first record has passed (so a live stream's
// window closes at its end, and a replay of old data is not held back for ever).
// A record older than its series' open window starts a window of its own.
struct AggregateConfig {
  int64_t window_ns = 60'000'000'000;
  std::vector<FieldPath> fields;  // 1..32
  // Only records on these channels (MQTT topic filters) pass through this processor;
  // the others skip it unchanged. Empty = every record.
  std::vector<std::string> scope = {};
};

// Turns text into a JSON object: the payload (any content type but JSON), or with
// `field` a string member of a JSON object payload, which the object then replaces.
// Cells, values and groups that are numbers in RFC 8259's grammar become JSON numbers,
// empty ones null, the rest strings (which must be UTF-8; integers beyond 64 bits stay
// strings, exact). A record that does not
// parse is dead-lettered with the reason.
//   csv:   one row, cells named by `columns` (a header line in the payload is not
//          read: a row's meaning must not depend on which message came first);
//   kv:    key=value pairs (formats::SplitKeyValues), keys as they are;
//   regex: RE2 syntax (linear time: no backtracking blow-up on hostile input), the
//          named groups (?P<name>...) of the first match; no match is an error;
//   nmea:  an NMEA 0183 sentence, checksum checked: RMC -> {"sentence": "RMC",
//          "talker", "time" (RFC 3339 UTC), "valid", "lat", "lon", "speed_knots",
//          "course_deg"}, GGA -> {"sentence": "GGA", "talker", "time_of_day"
//          ("hh:mm:ss.sss" UTC, GGA has no date), "lat", "lon", "quality",
//          "satellites", "hdop", "altitude_m"}; degrees, south and west negative.
//          An RMC or GGA without a position (no fix) gives the same members, null, with
//          "valid": false or "quality": 0. Other sentences (GSV, GSA, ...) pass unchanged.
struct ParseConfig {
  enum class Format { kCsv, kKeyValue, kRegex, kNmea } format = Format::kCsv;
  std::optional<FieldPath> field;     // parse this string member instead of the payload
  std::vector<std::string> columns;   // csv: 1..1024 names
  char separator = ',';               // csv
  bool decimal_comma = false;         // csv: "21,5" is 21.5 (needs another separator)
  char kv_separator = '=';            // kv
  char pair_separator = 0;            // kv: 0 = spaces and tabs
  std::string pattern;                // regex: at least one named group, at most 64
  // Only records on these channels (MQTT topic filters) pass through this processor;
  // the others skip it unchanged. Empty = every record.
  std::vector<std::string> scope = {};
};
// Checks a regex pattern as the parse processor will compile it: OK, or
// InvalidArgument with RE2's reason (or "no named group", "over 64 groups", "over 4 KiB").
Status CheckParsePattern(std::string_view pattern);

using ProcessorConfig =
    std::variant<FilterConfig, FieldsConfig, DeadbandConfig, SampleConfig, AggregateConfig, ParseConfig>;

// "filter", "set", "rename", "drop_fields", "select", "deadband", "sample", "aggregate",
// "parse".
std::string ProcessorTypeName(const ProcessorConfig& c);
// The channels a processor is limited to (its `scope`); empty for a filter, whose
// `channels` are a condition that drops, not a scope that skips.
const std::vector<std::string>& ProcessorScope(const ProcessorConfig& c);

// ---- the processors

enum class Verdict { kPass, kDrop };

// A record's payload as JSON on its way through one pipeline run: parsed at most once,
// on the first processor that needs it, and serialised back into the record once, at
// the end of the run, if a processor changed it. Not thread-safe (one run).
class RecordJson {
 public:
  explicit RecordJson(const Record& record) : record_(record) {}
  // The payload as a JSON value, or null when it is not JSON (content type or syntax).
  // The source validated it (and bounded its depth) when it took it in.
  const nlohmann::json* Get();
  // The same, to change it; null when it is not JSON.
  nlohmann::json* Mutable();
  // Makes `doc` the payload (a parse of a text payload); committed as JSON.
  void Replace(nlohmann::json doc);
  // The record's content type as the run has made it so far (JSON once changed).
  ContentType content_type() const { return changed_ ? ContentType::kJson : record_.content_type; }
  // Writes a changed document into `record` (content type JSON). Invalid UTF-8 inside
  // strings was already in the payload: kept as U+FFFD.
  void CommitTo(Record& record);

 private:
  const Record& record_;
  std::optional<nlohmann::json> doc_;  // engaged once parsed as JSON
  bool parsed_ = false;
  bool changed_ = false;
};

class Processor {
 public:
  virtual ~Processor() = default;
  // Handles `record` in place (its payload through `json`, which the caller commits);
  // `mono_ns` is the monotonic time it arrived. Errors: InvalidArgument with the reason
  // the record is dead-lettered for. Never throws.
  virtual Result<Verdict> Process(Record& record, RecordJson& json, int64_t mono_ns) = 0;
  // Records the processor emits on its own (an aggregate's closed windows) by
  // `mono_ns`, appended to `out`. The agent calls it about once a second.
  virtual void Expire(int64_t /*mono_ns*/, std::vector<Record>* /*out*/) {}
  // State worth keeping across a restart (deadband's last values, open windows), or
  // null. `mono_ns`: now.
  virtual nlohmann::json SaveState(int64_t /*mono_ns*/) const { return nullptr; }
  // Restores SaveState's output; anything malformed is ignored. `mono_ns`: now.
  virtual void LoadState(const nlohmann::json& /*state*/, int64_t /*mono_ns*/) {}
};

std::unique_ptr<Processor> MakeProcessor(const ProcessorConfig& config);

struct ProcessorStats {
  std::string type;    // ProcessorTypeName
  uint64_t in = 0;     // records it was given
  uint64_t out = 0;    // handed on
  uint64_t dropped = 0;   // dropped or absorbed (an aggregate's inputs)
  uint64_t failed = 0;    // dead-lettered with its error
  uint64_t emitted = 0;   // records it made on its own (an aggregate's windows)
};

// The processors of one source, in order. Not thread-safe: the owner serializes calls.
class Pipeline {
 public:
  explicit Pipeline(const std::vector<ProcessorConfig>& configs);
  bool empty() const { return stages_.empty(); }
  // Runs `record` through every processor. True: store it (changed in place); false:
  // dropped. Errors: InvalidArgument naming the processor and why (dead-letter it).
  Result<bool> Run(Record& record, int64_t mono_ns);
  // As Run, but not counted in Stats: for a record run before (a sink's retry of a
  // batch it read again). Meant for stateless processors, which give the same result.
  Result<bool> Rerun(Record& record, int64_t mono_ns);
  // True when every processor is stateless (filter, set, rename, drop_fields, select, parse):
  // a record run again comes out the same.
  static bool Stateless(const ProcessorConfig& c);
  // What the processors emitted on their own by `mono_ns`, each run through the
  // processors after the one that emitted it: `store` to be stored, `failed` to be
  // dead-lettered with the reason.
  struct Emitted {
    std::vector<Record> store;
    std::vector<std::pair<Record, std::string>> failed;
  };
  Emitted Expire(int64_t mono_ns);
  std::vector<ProcessorStats> Stats() const;
  // {"<index>:<type>": state} for the processors that keep some; null when none do.
  nlohmann::json SaveState(int64_t mono_ns) const;
  // Returns the names ("<index>:<type>") of saved states no processor took: the
  // pipeline changed (a processor inserted before, or its settings), so they are dropped.
  std::vector<std::string> LoadState(const nlohmann::json& state, int64_t mono_ns);

 private:
  struct Stage {
    std::unique_ptr<Processor> processor;
    ProcessorStats stats;
    std::vector<std::string> scope;  // topic filters; empty = every record
  };
  // Runs `record` through stages [first, end); same result as Run.
  Result<bool> RunFrom(size_t first, Record& record, int64_t mono_ns, bool count = true);
  std::vector<Stage> stages_;
};

}  // namespace edgeferry::pipeline
