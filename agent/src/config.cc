#include "edgeferry/agent/config.h"

#include "config_table.h"
#include "nesting_depth.h"

#include <fmt/format.h>
#include <glob.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <type_traits>
#include <utility>

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/redact.h"
#include "edgeferry/units.h"

namespace edgeferry::agent {

// Every key read below whose value names a local file or directory.
const std::vector<std::string>& LocalPathKeys() {
  static const std::vector<std::string> keys = {
      "data_dir",          // gateway
      "path",              // buffer
      "dir",               // outbox sinks
      "device",            // serial sources
      "password_file",     // MQTT sources, sinks, fleet link
      "bearer_token_file", // HTTP sinks
      "credentials_file",  // Kinesis, S3
      "ca_file", "cert_file", "key_file",  // every [*.tls]
      "public_key_file",   // fleet
  };
  return keys;
}

std::string ConfigErrors::Join() const {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

namespace {

bool ValidName(std::string_view s, bool allow_dot) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || (allow_dot && c == '.'))) {
      return false;
    }
  }
  return true;
}

// "0, 1 or 2" for a short range, "between 50 and 4000000" otherwise.
template <typename T>
std::string RangeText(T min, T max) {
  using U = std::make_unsigned_t<T>;
  const U span = static_cast<U>(static_cast<U>(max) - static_cast<U>(min));  // exact when max >= min
  if (max < min || span > 3) return fmt::format("between {} and {}", min, max);
  std::string out;
  for (U k = 0; k <= span; ++k) {
    out += fmt::format("{}{}", k == 0 ? "" : k == span ? " or " : ", ", static_cast<T>(static_cast<U>(min) + k));
  }
  return out;
}

// Reads one TOML table against a schema written as calls: each getter marks its key
// as known, checks type and bounds, and records "path.key: reason" on a problem.
// Finish() reports the keys nobody asked for.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string path, ConfigErrors* errors)
      : table_(table), path_(std::move(path)), errors_(errors) {}
  ~TableReader() { Finish(); }

  std::string Key(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  ConfigErrors* errors() { return errors_; }
  const toml::table* table() const { return table_; }
  void Error(std::string_view key, std::string_view reason) {
    errors_->errors.push_back(fmt::format("{}: {}", Key(key), reason));
  }
  bool Has(std::string_view key) {
    known_.insert(std::string(key));
    return table_ && table_->contains(key);
  }
  const toml::node* Node(std::string_view key) {
    known_.insert(std::string(key));
    return table_ ? table_->get(key) : nullptr;
  }

  std::string String(std::string_view key, std::string fallback, bool required = false) {
    const toml::node* n = Node(key);
    if (!n) {
      if (required) Error(key, "is required");
      return fallback;
    }
    if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
    Error(key, "must be a string");
    return fallback;
  }

  bool Bool(std::string_view key, bool fallback) {
    const toml::node* n = Node(key);
    if (!n) return fallback;
    if (n->is_boolean()) return *n->value<bool>();
    Error(key, "must be true or false");
    return fallback;
  }

  // An integer key read into T. Every value outside [min, max] is an error naming the
  // key; the bounds themselves are T's, so nothing read here is narrowed by a cast
  // later (qos = 4294967297 used to become QoS 1). T is always spelled at the call.
  template <typename T>
  T Int(std::string_view key, std::type_identity_t<T> fallback, std::type_identity_t<T> min,
        std::type_identity_t<T> max) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    const toml::node* n = Node(key);
    if (!n) return fallback;
    if (!n->is_integer()) {
      Error(key, "must be an integer");
      return fallback;
    }
    const int64_t v = *n->value<int64_t>();
    if (std::cmp_less(v, min) || std::cmp_greater(v, max)) {
      Error(key, fmt::format("must be {} (got {})", RangeText(min, max), v));
      return fallback;
    }
    return static_cast<T>(v);  // in [min, max], so in T's range
  }

  // An integer number of bytes or a string with a unit: "64MiB", "512KiB", "1GB".
  // T is uint64_t unless the field is narrower (size_t is 32 bits on armhf).
  template <typename T = uint64_t>
  T Bytes(std::string_view key, std::type_identity_t<T> fallback, std::type_identity_t<T> min,
          std::type_identity_t<T> max) {
    static_assert(std::is_unsigned_v<T>);
    const toml::node* n = Node(key);
    if (!n) return fallback;
    std::optional<uint64_t> v;
    if (n->is_integer() && *n->value<int64_t>() >= 0) {
      v = static_cast<uint64_t>(*n->value<int64_t>());
    } else if (n->is_string()) {
      v = ParseBytes(*n->value<std::string>());
    }
    if (!v) {
      Error(key, "must be a size such as 4096, \"512KiB\", \"64MiB\" or \"1GiB\"");
      return fallback;
    }
    if (*v < min || *v > max) {
      Error(key, fmt::format("must be between {} and {} (got {})", FormatBytes(min), FormatBytes(max),
                             FormatBytes(*v)));
      return fallback;
    }
    return static_cast<T>(*v);  // <= max, so in T's range
  }

  // A string with a unit: "250ms", "30s", "15m", "6h", "7d"; or 0.
  int64_t Duration(std::string_view key, int64_t fallback, int64_t min_ns, int64_t max_ns) {
    const toml::node* n = Node(key);
    if (!n) return fallback;
    std::optional<int64_t> v;
    if (n->is_string()) v = ParseDurationNs(*n->value<std::string>());
    if (n->is_integer() && *n->value<int64_t>() == 0) v = 0;
    if (!v) {
      Error(key, "must be a duration such as \"250ms\", \"30s\", \"15m\", \"6h\" or \"7d\"");
      return fallback;
    }
    if (*v < min_ns || *v > max_ns) {
      Error(key, fmt::format("must be between {} ms and {} ms (got {} ms)", min_ns / 1'000'000,
                             max_ns / 1'000'000, *v / 1'000'000));
      return fallback;
    }
    return *v;
  }

  std::string Enum(std::string_view key, std::string fallback, std::initializer_list<std::string_view> allowed) {
    const toml::node* n = Node(key);
    if (!n) return fallback;
    std::string options;
    for (auto a : allowed) options += (options.empty() ? "" : ", ") + fmt::format("\"{}\"", a);
    if (!n->is_string()) {
      Error(key, "must be one of " + options);
      return fallback;
    }
    const std::string v = *n->value<std::string>();
    for (auto a : allowed) {
      if (a == v) return v;
    }
    Error(key, fmt::format("must be one of {} (got \"{}\")", options, v));
    return fallback;
  }

  const toml::table* Table(std::string_view key) {
    const toml::node* n = Node(key);
    if (!n) return nullptr;
    if (n->is_table()) return n->as_table();
    Error(key, "must be a table");
    return nullptr;
  }

  void Finish() {
    if (finished_ || !table_) return;
    finished_ = true;
    for (const auto& [k, v] : *table_) {
      if (!known_.count(std::string(k.str()))) {
        errors_->errors.push_back(fmt::format("{}: unknown key", Key(k.str())));
      }
    }
  }

 private:
  const toml::table* table_;
  std::string path_;
  ConfigErrors* errors_;
  std::set<std::string> known_;
  bool finished_ = false;
};

std::optional<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The parsers recurse per level of nesting: a file or string nested deeper is refused
// before parsing (a 60 KB file of dotted keys overflowed the stack).
constexpr int kMaxConfigDepth = 64;
std::string TooDeepMessage(std::string_view origin) {
  return fmt::format("{}: nested deeper than {} levels (tables, dotted keys, arrays); not parsed", origin,
                     kMaxConfigDepth);
}

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1000 * kMs;
constexpr int64_t kDay = 86400 * kSec;

void ReadBuffer(TableReader& r, const std::string& data_dir, buffer::StoreOptions* b) {
  b->path = r.String("path", data_dir + "/buffer.db");
  // Seq never goes back for this gateway, even when the buffer files are lost or moved.
  b->seq_floor_path = data_dir + "/seq_floor";
  b->seq_floor_from_clock = true;
  b->max_bytes = r.Bytes("max_bytes", b->max_bytes, 1 << 20, 1ull << 50);
  const std::string when_full = r.Enum("when_full", "drop_oldest", {"drop_oldest", "reject_new", "backpressure"});
  b->when_full = when_full == "reject_new"     ? buffer::FullPolicy::kRejectNew
                 : when_full == "backpressure" ? buffer::FullPolicy::kBackpressure
                                               : buffer::FullPolicy::kDropOldest;
  // On by default: in WAL mode a completely full file system blocks every write.
  b->min_free_bytes = r.Bytes("min_free_bytes", 32ull << 20, 0, 1ull << 50);
  b->ttl_ns = r.Duration("ttl", 0, 0, 3650 * kDay);
  b->durability = r.Enum("durability", "normal", {"normal", "sync"}) == "sync" ? buffer::Durability::kSync
                                                                              : buffer::Durability::kNormal;
  b->commit_interval_ns = r.Duration("commit_interval", b->commit_interval_ns, 1 * kMs, 60 * kSec);
  b->sync_interval_ns = r.Duration("sync_interval", b->sync_interval_ns, 0, 3600 * kSec);
  b->segment_max_records =
      r.Int<uint32_t>("segment_max_records", b->segment_max_records, 1, 1'000'000);
  b->segment_max_bytes = r.Bytes("segment_max_bytes", b->segment_max_bytes, 1024, 64ull << 20);
  b->zstd_level = r.Int<int>("compression_level", b->zstd_level, 1, 19);
  b->zstd_dictionary = r.Bool("zstd_dictionary", b->zstd_dictionary);
  b->integrity_check = r.Enum("integrity_check", "quick", {"quick", "none"}) == "none"
                           ? buffer::IntegrityCheck::kNone
                           : buffer::IntegrityCheck::kQuick;
  b->dlq_max_records = r.Int<uint64_t>("dlq_max_records", 100'000, 1, 100'000'000);
  // An eighth of the cap by default (at most 64 MiB): junk a source refuses cannot take
  // the room of records still to deliver.
  b->dlq_max_bytes = r.Bytes("dlq_max_bytes", std::min<uint64_t>(64ull << 20, b->max_bytes / 8), 64 << 10, 1ull << 40);
  b->max_pending_bytes = r.Bytes("max_pending_bytes", b->max_pending_bytes, 1 << 20, 1ull << 30);
}

// password_file: the secret's content (trailing newline dropped), or an error naming the key.
std::string ReadPasswordFile(TableReader& r) {
  const std::string file = r.String("password_file", "");
  if (file.empty()) return "";
  auto pw = ReadSecretFile(file);
  if (!pw) r.Error("password_file", fmt::format("cannot read \"{}\"", file));
  return pw.value_or("");
}

constexpr const char* kMqttSchemes[] = {"tcp://", "ssl://", "mqtt://", "mqtts://", "ws://", "wss://"};

bool IsTlsUri(const std::string& uri) {
  return uri.starts_with("ssl://") || uri.starts_with("mqtts://") || uri.starts_with("wss://");
}

// What is wrong with the authority (`[user@]host[:port]`) of `scheme://authority/...`,
// or "" if nothing: Paho and curl would otherwise fail only at the first connect.
std::string AuthorityProblem(std::string_view url, bool allow_userinfo) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  std::string_view auth = url.substr(scheme_end + 3);
  auth = auth.substr(0, auth.find_first_of("/?#"));
  if (const size_t at = auth.rfind('@'); at != std::string_view::npos) {
    if (!allow_userinfo) return "must not carry a user name or password (user:pass@): set username and password_file";
    auth.remove_prefix(at + 1);
  }
  if (auth.empty()) return "has no host";
  size_t colon = std::string_view::npos;
  if (auth.front() == '[') {  // [IPv6]
    const size_t close = auth.find(']');
    if (close == std::string_view::npos) return "has an unterminated [IPv6] host";
    if (close + 1 < auth.size() && auth[close + 1] != ':') return "has bytes after its [IPv6] host";
    if (close + 1 < auth.size()) colon = close + 1;
  } else {
    colon = auth.rfind(':');
  }
  if (colon == std::string_view::npos) return "";
  if (colon == 0) return "has no host";
  const std::string_view port = auth.substr(colon + 1);
  int n = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 1 || n > 65535) {
    // Echoed only when it is digits: in `user:pa/ss@host` the "port" is part of a password.
    const bool digits = !port.empty() && port.size() <= 16 &&
                        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    return digits ? fmt::format("port must be 1 to 65535 (got \"{}\")", port) : std::string("port must be 1 to 65535");
  }
  return "";
}

void CheckMqttUri(TableReader& r, const std::string& uri) {
  for (const char* scheme : kMqttSchemes) {
    if (uri.starts_with(scheme)) {
      if (const std::string problem = AuthorityProblem(uri, /*allow_userinfo=*/false); !problem.empty()) {
        r.Error("uri", problem);
      }
      return;
    }
  }
  r.Error("uri", fmt::format("must start with tcp://, ssl://, mqtt://, mqtts://, ws:// or wss:// (got \"{}\")", RedactUrl(uri)));
}

// ca_file, cert_file, key_file, verify: the same keys for every TLS client.
template <typename Tls>
void ReadTlsFiles(TableReader& tr, Tls* tls) {
  tls->ca_file = tr.String("ca_file", "");
  tls->cert_file = tr.String("cert_file", "");
  tls->key_file = tr.String("key_file", "");
  tls->verify = tr.Bool("verify", true);
  if (tls->cert_file.empty() != tls->key_file.empty()) {
    tr.Error(tls->cert_file.empty() ? "cert_file" : "key_file", "cert_file and key_file go together");
  }
  for (const auto& [k, f] : {std::pair{"ca_file", tls->ca_file}, {"cert_file", tls->cert_file},
                             {"key_file", tls->key_file}}) {
    if (!f.empty() && !std::ifstream(f)) tr.Error(k, fmt::format("cannot read \"{}\"", f));
  }
}

// [<path>.tls] of an MQTT client: present when the table is, or the URI asks for TLS.
std::optional<drivers::MqttUplinkTls> ReadMqttTls(TableReader& r, const std::string& uri, bool allow_alpn) {
  const bool has_tls = r.Has("tls");
  if (has_tls && !IsTlsUri(uri)) r.Error("tls", "is set but uri does not start with ssl://, mqtts:// or wss://");
  if (!has_tls && !IsTlsUri(uri)) return std::nullopt;
  TableReader tr(r.Table("tls"), r.Key("tls"), r.errors());
  drivers::MqttUplinkTls tls;
  ReadTlsFiles(tr, &tls);
  if (allow_alpn) {
    if (const toml::node* n = tr.Node("alpn")) {
      if (!n->is_array()) {
        tr.Error("alpn", "must be a list of protocol names, e.g. [\"x-amzn-mqtt-ca\"]");
      } else {
        for (const auto& p : *n->as_array()) tls.alpn.push_back(p.value_or(std::string()));
      }
    }
  }
  return tls;
}

// A non-empty list of strings at `key`; false when absent (or not such a list).
bool StringList(TableReader& r, const char* key, std::vector<std::string>* out, std::string_view hint = "") {
  const toml::node* n = r.Node(key);
  if (!n) return false;
  if (!n->is_array() || n->as_array()->empty()) {
    r.Error(key, fmt::format("must be a non-empty list of strings{}", hint));
    return false;
  }
  size_t i = 0;
  for (const auto& v : *n->as_array()) {
    if (!v.is_string()) {
      r.Error(fmt::format("{}[{}]", key, i), "must be a string");
    } else {
      out->push_back(*v.value<std::string>());
    }
    ++i;
  }
  return true;
}

// MQTT topic filters at `key`, each checked.
void TopicFilters(TableReader& r, const char* key, std::vector<std::string>* out) {
  if (!StringList(r, key, out, " (leave it out to select everything)")) return;
  for (size_t i = 0; i < out->size(); ++i) {
    if (!pipeline::TopicFilterValid((*out)[i])) {
      r.Error(fmt::format("{}[{}]", key, i),
              fmt::format("\"{}\" is not a valid topic filter ('+' and '#' only as whole levels, '#' last)", (*out)[i]));
    }
  }
}

// `sources` and `channels` of a sink: names of configured sources, MQTT topic filters.
void ReadRoute(TableReader& r, const std::vector<SourceConfig>& configured, Route* route) {
  if (StringList(r, "sources", &route->sources, " (leave it out to select everything)")) {
    for (size_t i = 0; i < route->sources.size(); ++i) {
      const auto& name = route->sources[i];
      const bool known = std::any_of(configured.begin(), configured.end(),
                                     [&](const SourceConfig& s) { return s.name == name; });
      if (!known) {
        std::string names;
        for (const auto& s : configured) names += (names.empty() ? "" : ", ") + s.name;
        r.Error(fmt::format("sources[{}]", i),
                fmt::format("no source named \"{}\" (configured: {})", name, names.empty() ? "none" : names));
      }
    }
  }
  TopicFilters(r, "channels", &route->channels);
}

// A JSON field path at `key` ("sensor.temp").
std::optional<pipeline::FieldPath> FieldAt(TableReader& r, const char* key, bool required) {
  const std::string text = r.String(key, "", required);
  if (text.empty()) return std::nullopt;
  auto path = pipeline::ParseFieldPath(text);
  if (!path) r.Error(key, fmt::format("\"{}\" is not a field path (names joined by '.', at most 16 levels)", text));
  return path;
}

// A number (integer or float) at `key`, at least `min`.
double Number(TableReader& r, const char* key, double fallback, double min) {
  const toml::node* n = r.Node(key);
  if (!n) return fallback;
  if (!n->is_number()) {
    r.Error(key, "must be a number");
    return fallback;
  }
  const double v = n->is_integer() ? static_cast<double>(*n->value<int64_t>()) : *n->value<double>();
  if (!(v >= min) || !std::isfinite(v)) {
    r.Error(key, fmt::format("must be a finite number of at least {}", min));
    return fallback;
  }
  return v;
}

// A scalar TOML value as JSON (string, integer, float, bool), or null.
nlohmann::json Scalar(const toml::node& n) {
  if (n.is_string()) return *n.value<std::string>();
  if (n.is_integer()) return *n.value<int64_t>();
  if (n.is_floating_point()) return *n.value<double>();
  if (n.is_boolean()) return *n.value<bool>();
  return nullptr;
}

// A one-character separator at `key`.
char SeparatorAt(TableReader& r, const char* key, char fallback) {
  const std::string s = r.String(key, std::string(1, fallback));
  if (s.size() != 1 || s[0] == '"' || static_cast<unsigned char>(s[0]) < 0x20 || static_cast<unsigned char>(s[0]) > 0x7e) {
    r.Error(key, "must be one printable ASCII character other than '\"'");
    return fallback;
  }
  return s[0];
}

pipeline::ParseConfig ReadParse(TableReader& r) {
  using Format = pipeline::ParseConfig::Format;
  pipeline::ParseConfig p;
  const std::string format = r.Enum("format", "", {"csv", "kv", "regex", "nmea"});
  if (format.empty() && !r.Has("format")) r.Error("format", "is required: csv, kv, regex or nmea");
  p.format = format == "kv" ? Format::kKeyValue : format == "regex" ? Format::kRegex
           : format == "nmea" ? Format::kNmea : Format::kCsv;
  p.field = FieldAt(r, "field", false);
  const auto only_for = [&](const char* key, Format f, const char* name) {
    if (r.Has(key) && !format.empty() && p.format != f) r.Error(key, fmt::format("is for format = \"{}\"", name));
  };
  only_for("columns", Format::kCsv, "csv");
  only_for("separator", Format::kCsv, "csv");
  only_for("decimal_comma", Format::kCsv, "csv");
  only_for("kv_separator", Format::kKeyValue, "kv");
  only_for("pair_separator", Format::kKeyValue, "kv");
  only_for("pattern", Format::kRegex, "regex");
  if (p.format == Format::kCsv && !format.empty()) {
    if (!StringList(r, "columns", &p.columns) && !r.Has("columns")) {
      r.Error("columns", "is required: the names of the row's cells, in order");
    }
    if (p.columns.size() > 1024) r.Error("columns", "at most 1024");
    for (size_t i = 0; i < p.columns.size(); ++i) {
      if (p.columns[i].empty()) r.Error(fmt::format("columns[{}]", i), "must not be empty");
    }
    p.separator = SeparatorAt(r, "separator", ',');
    p.decimal_comma = r.Bool("decimal_comma", false);
    if (p.decimal_comma && p.separator == ',') r.Error("decimal_comma", "needs a separator other than ','");
  } else if (p.format == Format::kKeyValue) {
    p.kv_separator = SeparatorAt(r, "kv_separator", '=');
    if (r.Has("pair_separator")) p.pair_separator = SeparatorAt(r, "pair_separator", ',');
    if (p.pair_separator == p.kv_separator) r.Error("pair_separator", "must differ from kv_separator");
  } else if (p.format == Format::kRegex) {
    p.pattern = r.String("pattern", "", /*required=*/true);
    if (r.Has("pattern")) {
      if (Status st = pipeline::CheckParsePattern(p.pattern); !st.ok()) r.Error("pattern", st.message());
    }
  }
  return p;
}

pipeline::ProcessorConfig ReadProcessor(TableReader& r, const std::string& type) {
  using pipeline::FieldsConfig;
  if (type == "filter") {
    pipeline::FilterConfig f;
    f.drop = r.Enum("action", "keep", {"keep", "drop"}) == "drop";
    TopicFilters(r, "channels", &f.channels);
    if (r.Has("content_type")) {
      const std::string ct = r.Enum("content_type", "json", {"json", "nmea", "csv", "text", "binary"});
      f.content_type = ParseContentType(ct);
    }
    f.field = FieldAt(r, "field", false);
    const std::string op = r.Enum("op", "exists", {"exists", "==", "!=", "<", "<=", ">", ">="});
    using Op = pipeline::FilterConfig::Op;
    f.op = op == "==" ? Op::kEq : op == "!=" ? Op::kNe : op == "<" ? Op::kLt : op == "<=" ? Op::kLe
         : op == ">" ? Op::kGt : op == ">=" ? Op::kGe : Op::kExists;
    if (const toml::node* v = r.Node("value")) {
      f.value = Scalar(*v);
      if (f.value.is_null()) r.Error("value", "must be a string, number or boolean");
    } else if (f.op != Op::kExists) {
      r.Error("value", fmt::format("is required with op = \"{}\"", op));
    }
    if (r.Has("op") && !f.field) r.Error("op", "needs a field");
    return f;
  }
  if (type == "deadband") {
    pipeline::DeadbandConfig d;
    if (auto f = FieldAt(r, "field", true)) d.field = *f;
    d.absolute = Number(r, "absolute", 0, 0);
    d.percent = Number(r, "percent", 0, 0);
    d.heartbeat_ns = r.Duration("heartbeat", 0, 0, 30 * kDay);
    return d;
  }
  if (type == "sample") {
    pipeline::SampleConfig s;
    s.every = r.Int<uint64_t>("every", 0, 1, 1'000'000'000);
    s.interval_ns = r.Duration("interval", 0, kMs, 30 * kDay);
    if ((s.every > 0) == (s.interval_ns > 0)) r.Error("every", "set exactly one of every (1 in N) or interval");
    return s;
  }
  if (type == "aggregate") {
    pipeline::AggregateConfig a;
    a.window_ns = r.Duration("window", 60 * kSec, kSec, kDay);
    std::vector<std::string> names;
    if (!StringList(r, "fields", &names) && !r.Has("fields")) r.Error("fields", "is required: a list of numeric fields");
    for (const auto& n : names) {
      if (n == "window_start" || n == "window_end" || n == "records" || n == "first_ts" || n == "last_ts") {
        r.Error("fields", fmt::format("\"{}\" is a member of the window record itself; rename the field first", n));
      } else if (auto path = pipeline::ParseFieldPath(n)) {
        a.fields.push_back(*path);
      } else {
        r.Error("fields", fmt::format("\"{}\" is not a field path (names joined by '.', at most 16 levels)", n));
      }
    }
    if (a.fields.size() > 32) r.Error("fields", "at most 32");
    return a;
  }
  if (type == "parse") return ReadParse(r);
  FieldsConfig c;
  if (type == "set") {
    c.kind = FieldsConfig::Kind::kSet;
    if (const toml::table* t = r.Table("fields")) {
      for (const auto& [k, v] : *t) {
        c.set[std::string(k.str())] = Scalar(v);
        if (c.set[std::string(k.str())].is_null()) r.Error(fmt::format("fields.{}", k.str()), "must be a string, number or boolean");
      }
    }
    if (c.set.empty()) r.Error("fields", "is required: a table of name = value");
  } else if (type == "rename") {
    c.kind = FieldsConfig::Kind::kRename;
    if (const toml::table* t = r.Table("fields")) {
      for (const auto& [k, v] : *t) {
        if (!v.is_string() || v.value<std::string>()->empty()) {
          r.Error(fmt::format("fields.{}", k.str()), "must be the new name (a string)");
        } else {
          c.rename[std::string(k.str())] = *v.value<std::string>();
        }
      }
    }
    if (c.rename.empty()) r.Error("fields", "is required: a table of old = \"new\"");
  } else {
    c.kind = type == "select" ? FieldsConfig::Kind::kSelect : FieldsConfig::Kind::kDrop;
    if (!StringList(r, "fields", &c.names) && !r.Has("fields")) r.Error("fields", "is required: a list of member names");
  }
  return c;
}

// [[sources.<name>.processors]] (applied in order before the buffer) or, with
// `at_sink`, [[sinks.<name>.processors]] (after it, on what the sink's route selects).
void ReadProcessors(TableReader& r, std::vector<pipeline::ProcessorConfig>* out, bool at_sink = false) {
  const toml::node* n = r.Node("processors");
  if (!n) return;
  if (!n->is_array_of_tables()) {
    r.Error("processors", at_sink ? "must be an array of tables ([[sinks.<name>.processors]])"
                                  : "must be an array of tables ([[sources.<name>.processors]])");
    return;
  }
  size_t i = 0;
  for (const auto& t : *n->as_array()) {
    TableReader tr(t.as_table(), r.Key(fmt::format("processors[{}]", i++)), r.errors());
    const std::string type = tr.Enum("type", "", {"filter", "set", "rename", "drop_fields", "select", "deadband", "sample",
                                                       "aggregate", "parse"});
    if (type.empty()) {
      if (!tr.Has("type")) tr.Error("type", "is required");
      continue;
    }
    out->push_back(ReadProcessor(tr, type));
    // Any processor but a filter (whose `channels` are its condition) may be limited to
    // some channels; records on others skip it.
    if (type != "filter") {
      std::vector<std::string> scope;
      TopicFilters(tr, "channels", &scope);
      std::visit(
          [&](auto& c) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(c)>, pipeline::FilterConfig>) c.scope = std::move(scope);
          },
          out->back());
    }
    // A sink reads a batch again after a failed delivery: only processors that give the
    // same result the second time may run there.
    if (at_sink && !pipeline::Pipeline::Stateless(out->back())) {
      tr.Error("type", fmt::format("\"{}\" keeps state and runs at a source; a sink's processors are filter, set, "
                                   "rename, drop_fields, select and parse",
                                   type));
    }
  }
  if (out->size() > 32) r.Error("processors", at_sink ? "at most 32 per sink" : "at most 32 per source");
}

void ReadMqttSource(TableReader& r, const std::string& gateway_id, SourceConfig* s) {
  auto& m = s->mqtt;
  m.name = s->name;
  m.uri = r.String("uri", "tcp://127.0.0.1:1883");
  CheckMqttUri(r, m.uri);
  m.client_id = r.String("client_id", "edgeferry-" + gateway_id + "-" + s->name);
  if (m.client_id.empty() || m.client_id.size() > 128) r.Error("client_id", "must be 1 to 128 characters");
  const int default_qos = r.Int<int>("qos", 1, 0, 2);
  const toml::node* topics = r.Node("topics");
  if (!topics) {
    r.Error("topics", "is required (a list of topic filters, e.g. [\"sensors/#\"])");
  } else if (!topics->is_array() || topics->as_array()->empty()) {
    r.Error("topics", "must be a non-empty list of topic filters");
  } else {
    size_t i = 0;
    for (const auto& t : *topics->as_array()) {
      const std::string key = fmt::format("topics[{}]", i++);
      drivers::MqttSubscription sub{"", default_qos};
      if (t.is_string()) {
        sub.filter = *t.value<std::string>();
      } else if (t.is_table()) {
        TableReader tr(t.as_table(), r.Key(key), r.errors());
        sub.filter = tr.String("filter", "", /*required=*/true);
        sub.qos = tr.Int<int>("qos", default_qos, 0, 2);
        if (sub.filter.empty()) continue;
      } else {
        r.Error(key, "must be a topic filter string or {filter = \"...\", qos = 1}");
        continue;
      }
      // MQTT 3.1.1 4.7.1: '#' only last and alone in its level; '+' alone in its level.
      const std::string& f = sub.filter;
      bool ok = !f.empty() && f.size() <= 65535;
      for (size_t p = 0; ok && p < f.size(); ++p) {
        if (f[p] == '#') ok = p + 1 == f.size() && (p == 0 || f[p - 1] == '/');
        if (f[p] == '+') ok = (p == 0 || f[p - 1] == '/') && (p + 1 == f.size() || f[p + 1] == '/');
      }
      if (!ok) {
        r.Error(key, fmt::format("\"{}\" is not a valid MQTT topic filter", f));
        continue;
      }
      m.subscriptions.push_back(sub);
    }
  }
  m.clean_session = r.Bool("clean_session", true);
  const std::string version = r.Enum("mqtt_version", "3.1.1", {"3.1.1", "5"});
  m.mqtt_version = version == "5" ? 5 : 4;
  m.username = r.String("username", "");
  m.password = ReadPasswordFile(r);
  m.keepalive_s = static_cast<int>(r.Duration("keepalive", 30 * kSec, kSec, 3600 * kSec) / kSec);
  m.reconnect_min_ns = r.Duration("reconnect_min", m.reconnect_min_ns, 10 * kMs, 3600 * kSec);
  m.reconnect_max_ns = r.Duration("reconnect_max", m.reconnect_max_ns, 10 * kMs, 3600 * kSec);
  if (m.reconnect_max_ns < m.reconnect_min_ns) r.Error("reconnect_max", "must not be below reconnect_min");
  m.max_record_bytes = r.Bytes("max_record_bytes", m.max_record_bytes, 1, 256ull << 20);
  const std::string ct = r.Enum("content_type", "auto", {"auto", "json", "text", "csv", "nmea", "binary"});
  if (ct != "auto") m.content_type = ParseContentType(ct);
  if (auto tls = ReadMqttTls(r, m.uri, /*allow_alpn=*/false)) m.tls = static_cast<drivers::MqttTls>(*tls);
}

void ReadSerialSource(TableReader& r, SourceConfig* s) {
  namespace sr = drivers::serial;
  auto& c = s->serial;
  c.name = s->name;
  c.device = r.String("device", "", /*required=*/true);
  c.baud = r.Int<unsigned>("baud", 9600, 50, 4'000'000);
  c.data_bits = r.Int<unsigned>("data_bits", 8, 5, 8);
  const std::string parity = r.Enum("parity", "none", {"none", "even", "odd"});
  c.parity = parity == "even" ? sr::Parity::kEven : parity == "odd" ? sr::Parity::kOdd : sr::Parity::kNone;
  if (const toml::node* n = r.Node("stop_bits")) {
    const std::string v = n->is_integer() ? std::to_string(*n->value<int64_t>()) : n->value_or(std::string());
    if (v == "1") {
      c.stop_bits = sr::StopBits::kOne;
    } else if (v == "1.5") {
      c.stop_bits = sr::StopBits::kOnePointFive;
    } else if (v == "2") {
      c.stop_bits = sr::StopBits::kTwo;
    } else {
      r.Error("stop_bits", "must be 1, 2 or \"1.5\"");
    }
  }
  const std::string flow = r.Enum("flow_control", "none", {"none", "rts_cts", "xon_xoff"});
  c.flow_control = flow == "rts_cts"    ? sr::FlowControl::kHardware
                   : flow == "xon_xoff" ? sr::FlowControl::kSoftware
                                        : sr::FlowControl::kNone;
  const std::string format = r.Enum("format", "nmea", {"nmea", "csv", "json", "raw"});
  c.format = format == "csv" ? sr::Format::kCsv : format == "json" ? sr::Format::kJson
             : format == "raw" ? sr::Format::kRaw : sr::Format::kNmea;
  const std::string framing = r.Enum("framing", "line", {"line", "delimiter", "fixed"});
  c.framing.max_frame_bytes = r.Bytes<size_t>("max_frame_bytes", 4096, 1, 16u << 20);
  c.framing.delimiter = r.String("delimiter", "");
  c.framing.frame_bytes = r.Int<size_t>("frame_bytes", 0, 0, 16u << 20);
  const std::string start_hex = r.String("frame_start", "");
  if (start_hex.size() % 2 != 0 || start_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    r.Error("frame_start", "must be hex bytes, e.g. \"aa55\"");
  } else {
    for (size_t i = 0; i < start_hex.size(); i += 2) {
      c.framing.frame_start.push_back(static_cast<char>(std::stoi(start_hex.substr(i, 2), nullptr, 16)));
    }
  }
  if (framing == "delimiter") {
    c.framing.mode = sr::FramingConfig::Mode::kDelimiter;
    if (c.framing.delimiter.empty()) r.Error("delimiter", "is required with framing = \"delimiter\"");
  } else if (framing == "fixed") {
    c.framing.mode = sr::FramingConfig::Mode::kFixed;
    if (c.framing.frame_bytes == 0) r.Error("frame_bytes", "is required with framing = \"fixed\"");
    if (c.framing.frame_start.size() > c.framing.frame_bytes) r.Error("frame_start", "is longer than frame_bytes");
  } else {
    if (!c.framing.delimiter.empty()) r.Error("delimiter", "needs framing = \"delimiter\"");
    if (c.framing.frame_bytes) r.Error("frame_bytes", "needs framing = \"fixed\"");
  }
  c.channel = r.String("channel", "");
  if (const toml::node* n = r.Node("csv_columns")) {
    if (!n->is_array()) {
      r.Error("csv_columns", "must be a list of column names");
    } else {
      for (const auto& col : *n->as_array()) {
        if (!col.is_string()) {
          r.Error("csv_columns", "must be a list of column names");
          break;
        }
        c.csv.columns.push_back(*col.value<std::string>());
      }
    }
  }
  const std::string sep = r.String("csv_separator", ",");
  if (sep.size() != 1) r.Error("csv_separator", "must be one character");
  c.csv.separator = sep.empty() ? ',' : sep[0];
  c.csv.decimal_comma = r.Bool("csv_decimal_comma", false);
  if (c.csv.decimal_comma && c.csv.separator == ',') {
    r.Error("csv_decimal_comma", "needs a csv_separator other than \",\"");
  }
  if (format != "csv" && (r.Has("csv_columns") || r.Has("csv_separator") || r.Has("csv_decimal_comma"))) {
    r.Error("format", "csv_* keys need format = \"csv\"");
  }
  c.reopen_min_ns = r.Duration("reopen_min", c.reopen_min_ns, 10 * kMs, 3600 * kSec);
  c.reopen_max_ns = r.Duration("reopen_max", c.reopen_max_ns, 10 * kMs, 3600 * kSec);
  if (c.reopen_max_ns < c.reopen_min_ns) r.Error("reopen_max", "must not be below reopen_min");
}

drivers::http::TlsOptions ReadHttpTls(TableReader& r) {
  drivers::http::TlsOptions tls;
  TableReader tr(r.Table("tls"), r.Key("tls"), r.errors());
  ReadTlsFiles(tr, &tls);
  return tls;
}

void CheckTemplate(TableReader& r, std::string_view key, const std::string& tmpl) {
  if (const std::string bad = drivers::UnknownTemplateField(tmpl); !bad.empty()) {
    r.Error(key, fmt::format("unknown template field {{{}}} (known: gateway_id, source, channel, prefix, seq, "
                             "first_seq, last_seq, yyyy, mm, dd, HH)", bad));
  }
}

bool ReadPayloadMode(TableReader& r) { return r.Enum("payload", "envelope", {"envelope", "raw"}) == "raw"; }

void ReadMqttSink(TableReader& r, const AgentConfig& cfg, SinkConfig* s) {
  auto& m = s->mqtt;
  m.name = s->name;
  m.gateway_id = cfg.gateway_id;
  m.uri = r.String("uri", "", /*required=*/true);
  if (!m.uri.empty()) CheckMqttUri(r, m.uri);
  m.client_id = r.String("client_id", "edgeferry-" + cfg.gateway_id + "-" + s->name);
  m.mqtt_version = r.Enum("mqtt_version", "3.1.1", {"3.1.1", "5"}) == "5" ? 5 : 4;
  m.qos = r.Int<int>("qos", 1, 0, 2);
  m.topic = r.String("topic", m.topic);
  CheckTemplate(r, "topic", m.topic);
  if (m.topic.find_first_of("#+") != std::string::npos) r.Error("topic", "must not contain the wildcards # or +");
  m.raw_payload = ReadPayloadMode(r);
  m.username = r.String("username", "");
  m.password = ReadPasswordFile(r);
  m.keepalive_s = static_cast<int>(r.Duration("keepalive", 30 * kSec, kSec, 3600 * kSec) / kSec);
  m.connect_timeout_ns = r.Duration("connect_timeout", m.connect_timeout_ns, 100 * kMs, 600 * kSec);
  m.publish_timeout_ns = r.Duration("publish_timeout", m.publish_timeout_ns, 100 * kMs, 3600 * kSec);
  m.max_inflight = r.Int<int>("max_inflight", 100, 1, 65535);
  m.tls = ReadMqttTls(r, m.uri, /*allow_alpn=*/true);
  // MQTT's own ceiling is a 256 MiB packet; each record is one message, so no batch limit.
  m.limits.max_record_bytes = r.Bytes("max_record_bytes", m.limits.max_record_bytes, 1, 268'435'455);
}

// What the destination accepts (sink.h, DestinationLimits): documented defaults per
// type, overridable up to the protocol's own ceiling.
drivers::DestinationLimits ReadDestinationLimits(TableReader& r, const drivers::DestinationLimits& d,
                                                 uint64_t record_ceiling, uint64_t batch_ceiling) {
  drivers::DestinationLimits l = d;
  l.max_record_bytes = r.Bytes("max_record_bytes", d.max_record_bytes, 1, record_ceiling);
  l.max_batch_bytes = r.Bytes("max_batch_bytes", d.max_batch_bytes, 1, batch_ceiling);
  return l;
}

void ReadHttpSink(TableReader& r, const AgentConfig& cfg, SinkConfig* s) {
  auto& h = s->http;
  h.name = s->name;
  h.gateway_id = cfg.gateway_id;
  h.url = r.String("url", "", /*required=*/true);
  if (!h.url.empty() && !h.url.starts_with("http://") && !h.url.starts_with("https://")) {
    r.Error("url", fmt::format("must start with http:// or https:// (got \"{}\")", RedactUrl(h.url)));
  } else if (const std::string problem = AuthorityProblem(h.url, /*allow_userinfo=*/true); !problem.empty()) {
    r.Error("url", problem);
  }
  if (const toml::table* headers = r.Table("headers")) {
    for (const auto& [k, v] : *headers) {
      const auto control = [](std::string_view t) {
        return std::any_of(t.begin(), t.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
      };
      if (!v.is_string()) {
        r.Error("headers." + std::string(k.str()), "must be a string");
      } else if (k.str().empty() || control(k.str()) || k.str().find(':') != std::string_view::npos ||
                 control(*v.value<std::string>())) {
        // A CR or LF would add headers (or a request) of the writer's choosing (RFC 9110).
        r.Error("headers." + std::string(k.str()), "names and values may not contain control characters or ':' in the name");
      } else {
        h.headers[std::string(k.str())] = *v.value<std::string>();
      }
    }
  }
  h.bearer_token_file = r.String("bearer_token_file", "");
  if (!h.bearer_token_file.empty() && !std::ifstream(h.bearer_token_file)) {
    r.Error("bearer_token_file", fmt::format("cannot read \"{}\"", h.bearer_token_file));
  }
  h.compression = *drivers::ParseCompression(r.Enum("compression", "gzip", {"none", "gzip", "zstd"}));
  h.timeout_ms = r.Duration("timeout", 30 * kSec, 100 * kMs, 3600 * kSec) / kMs;
  h.tls = ReadHttpTls(r);
  h.limits = ReadDestinationLimits(r, h.limits, 4ull << 30, 4ull << 30);
}

void ReadAwsCommon(TableReader& r, std::string* region, std::string* endpoint, std::string* file, std::string* profile) {
  const char* env_region = std::getenv("AWS_REGION");
  *region = r.String("region", env_region && *env_region ? env_region : "us-east-1");
  // The region becomes part of a host name (kinesis.{region}.amazonaws.com).
  if (region->empty() || region->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    r.Error("region", fmt::format("must be an AWS region name such as eu-central-1 (lowercase letters, digits, -)"));
  }
  *endpoint = r.String("endpoint", "");
  if (!endpoint->empty() && !endpoint->starts_with("http://") && !endpoint->starts_with("https://")) {
    r.Error("endpoint", "must start with http:// or https://");
  } else if (const std::string problem = AuthorityProblem(*endpoint, /*allow_userinfo=*/false); !problem.empty()) {
    r.Error("endpoint", problem);
  }
  *file = r.String("credentials_file", "");
  *profile = r.String("profile", "");
}

void ReadKinesisSink(TableReader& r, const AgentConfig& cfg, SinkConfig* s) {
  auto& k = s->kinesis;
  k.name = s->name;
  k.gateway_id = cfg.gateway_id;
  k.stream = r.String("stream", "", /*required=*/true);
  ReadAwsCommon(r, &k.region, &k.endpoint, &k.credentials_file, &k.profile);
  k.partition_key = r.String("partition_key", k.partition_key);
  CheckTemplate(r, "partition_key", k.partition_key);
  k.raw_payload = ReadPayloadMode(r);
  k.timeout_ms = r.Duration("timeout", 30 * kSec, 100 * kMs, 3600 * kSec) / kMs;
  k.tls = ReadHttpTls(r);
  // PutRecords: 1 MiB per record (data + partition key), 5 MiB per request.
  k.limits = ReadDestinationLimits(r, k.limits, 1ull << 20, 5ull << 20);
}

void ReadS3Sink(TableReader& r, const AgentConfig& cfg, SinkConfig* s) {
  auto& o = s->s3;
  o.name = s->name;
  o.gateway_id = cfg.gateway_id;
  o.bucket = r.String("bucket", "", /*required=*/true);
  // S3 bucket naming rules; the name can become part of the host (virtual-hosted style).
  if (!o.bucket.empty() && (o.bucket.size() < 3 || o.bucket.size() > 63 ||
                            o.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)) {
    r.Error("bucket", "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'");
  }
  ReadAwsCommon(r, &o.region, &o.endpoint, &o.credentials_file, &o.profile);
  o.path_style = r.Bool("path_style", false);
  o.prefix = r.String("prefix", o.prefix);
  o.key_template = r.String("key_template", o.key_template);
  CheckTemplate(r, "key_template", o.key_template);
  if (o.key_template.find("{first_seq}") == std::string::npos || o.key_template.find("{last_seq}") == std::string::npos) {
    r.Error("key_template", "must contain {first_seq} and {last_seq}, so a retried upload writes the same key");
  }
  o.compression = *drivers::ParseCompression(r.Enum("compression", "zstd", {"none", "gzip", "zstd"}));
  o.multipart_threshold = r.Bytes("multipart_threshold", o.multipart_threshold, 5 << 20, 5ull << 30);
  o.part_size = r.Bytes("part_size", o.part_size, 5 << 20, 5ull << 30);
  o.timeout_ms = r.Duration("timeout", 120 * kSec, 100 * kMs, 3600 * kSec) / kMs;
  o.tls = ReadHttpTls(r);
  // 5 GiB per object; 10,000 parts per multipart upload (at most 5 TiB).
  o.limits.max_batch_bytes = std::min<uint64_t>(o.part_size * 10'000, 5ull << 40);
  o.limits = ReadDestinationLimits(r, o.limits, 5ull << 30, 5ull << 40);
}

// A table's settings as text, with the gateway settings every module derives from:
// equal fingerprints mean a reload can keep the running source, sink or buffer.
std::string Fingerprint(const toml::table* table, const AgentConfig& cfg) {
  std::ostringstream out;
  if (table) out << toml::toml_formatter(*table);
  out << "\n# gateway " << cfg.gateway_id << " " << cfg.data_dir;
  return out.str();
}

void ReadFleet(TableReader& f, bool present, AgentConfig* cfg) {
  auto& fl = cfg->fleet;
  fl.enabled = f.Bool("enabled", present);
  fl.topic_prefix = f.String("topic_prefix", fl.topic_prefix);
  if (fl.topic_prefix.empty() || fl.topic_prefix.find_first_of("#+") != std::string::npos) {
    f.Error("topic_prefix", "must be a non-empty topic without # or +");
  }
  fl.health_window_ns = f.Duration("health_window", fl.health_window_ns, 100 * kMs, 3600 * kSec);
  cfg->removed_sink_grace_ns = f.Duration("removed_sink_grace", fl.enabled ? 3600 * kSec : 0, 0, 30 * kDay);
  fl.use_applied = f.Bool("use_applied", true);
  fl.allow_unsigned = f.Bool("allow_unsigned", false);
  fl.max_push_bytes = f.Bytes("max_push_bytes", fl.max_push_bytes, 1 << 10, 64ull << 20);
  fl.max_push_depth = f.Int<int>("max_push_depth", fl.max_push_depth, 8, 256);
  if (const toml::node* pins = f.Node("pinned")) {
    if (const toml::array* a = pins->as_array()) {
      for (const auto& p : *a) {
        if (p.is_string()) {
          fl.pinned.push_back(*p.value<std::string>());
        } else {
          f.Error("pinned", "must be a list of key paths such as \"buffer\" or \"sinks.cloud.url\"");
        }
      }
    } else {
      f.Error("pinned", "must be a list of key paths such as \"buffer\" or \"sinks.cloud.url\"");
    }
  }
  fl.public_key_file = f.String("public_key_file", "");
  if (!fl.public_key_file.empty()) {
    std::ifstream in(fl.public_key_file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    fl.public_key_pem = ss.str();
    if (!in || fl.public_key_pem.find("-----BEGIN PUBLIC KEY-----") == std::string::npos) {
      f.Error("public_key_file", fmt::format("cannot read a PEM public key from {}", fl.public_key_file));
    }
  }
  auto& m = fl.link;
  m.name = "fleet";
  m.gateway_id = cfg->gateway_id;
  if (f.Has("uri")) {
    m.uri = f.String("uri", "");
    CheckMqttUri(f, m.uri);
    m.mqtt_version = f.Enum("mqtt_version", "3.1.1", {"3.1.1", "5"}) == "5" ? 5 : 4;
    m.username = f.String("username", "");
    m.password = ReadPasswordFile(f);
    m.tls = ReadMqttTls(f, m.uri, /*allow_alpn=*/true);
  } else if (fl.enabled) {
    // By default the uplink broker: the first MQTT sink's connection.
    const auto uplink = std::find_if(cfg->sinks.begin(), cfg->sinks.end(),
                                     [](const SinkConfig& s) { return s.type == "mqtt"; });
    if (uplink == cfg->sinks.end()) {
      f.Error("uri", "is required when no sink is of type \"mqtt\" (the default management broker)");
    } else {
      m = uplink->mqtt;
      m.name = "fleet";
    }
  }
  m.client_id = f.String("client_id", "edgeferry-" + cfg->gateway_id + "-fleet");
  m.keepalive_s = static_cast<int>(f.Duration("keepalive", 30 * kSec, kSec, 3600 * kSec) / kSec);
}

// Calls fn(name, reader) for each [<section>.<name>] table with a valid name.
void ForEachNamed(TableReader& top, const char* section, const char* what, ConfigErrors* errors,
                  const std::function<void(const std::string&, TableReader&)>& fn) {
  const toml::table* table = top.Table(section);
  if (!table) return;
  for (const auto& [key, node] : *table) {
    const std::string name(key.str());
    const std::string path = std::string(section) + "." + name;
    if (!ValidName(name, false)) {
      errors->errors.push_back(fmt::format("{}: {} names must be 1 to 64 of A-Z a-z 0-9 _ -", path, what));
    } else if (!node.is_table()) {
      errors->errors.push_back(path + ": must be a table");
    } else {
      TableReader r(node.as_table(), path, errors);
      fn(name, r);
    }
  }
}

}  // namespace

Result<AgentConfig> ParseConfig(std::string_view toml_text, std::string_view origin, ConfigErrors* errors) {
  errors->errors.clear();
  if (!TomlWithinDepth(toml_text, kMaxConfigDepth)) {
    errors->errors.push_back(TooDeepMessage(origin));
    return Status::InvalidArgument(errors->Join());
  }
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    errors->errors.push_back(fmt::format("{}:{}:{}: TOML syntax: {}", origin, where.line, where.column,
                                         e.description()));
    return Status::InvalidArgument(errors->Join());
  }
  return ParseConfigTable(root, errors);
}

// [health]: the status rules (health.h). The sinks' max_lag overrides are read with the sinks.
static void ReadHealth(TableReader& r, HealthRules* h) {
  h->window_ns = r.Duration("window", h->window_ns, 1 * kSec, 1 * kDay);
  h->dead_letter_percent = r.Int<int>("dead_letter_percent", h->dead_letter_percent, 1, 100);
  h->min_inputs = r.Int<uint64_t>("min_inputs", h->min_inputs, 1, 1'000'000'000);
  h->max_lag_ns = r.Duration("max_lag", h->max_lag_ns, 0, 365 * kDay);
}

Result<AgentConfig> ParseConfigTable(const toml::table& root, ConfigErrors* errors) {
  errors->errors.clear();
  AgentConfig cfg;
  TableReader top(&root, "", errors);
  cfg.version = top.Int<int64_t>("version", 0, 0, INT64_MAX);
  {
    TableReader g(top.Table("gateway"), "gateway", errors);
    if (!top.Has("gateway")) errors->errors.push_back("gateway: is required (with at least id = \"...\")");
    cfg.gateway_id = g.String("id", "", /*required=*/top.Has("gateway"));
    if (g.Has("id") && !ValidName(cfg.gateway_id, true)) {  // an empty id too
      g.Error("id", "must be 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    if (cfg.gateway_id == kExampleGatewayId) {
      g.Error("id", fmt::format("\"{}\" is the documentation's example: every gateway imaged with it would share one "
                                "dedup key; set a unique id, or remove the line to use the host name",
                                kExampleGatewayId));
    }
    cfg.data_dir = g.String("data_dir", "/var/lib/edgeferry");
    if (cfg.data_dir.empty()) g.Error("data_dir", "must not be empty");
    cfg.clock_trusted = g.Enum("clock", "kernel", {"kernel", "trusted"}) == "trusted";
  }
  {
    TableReader l(top.Table("log"), "log", errors);
    cfg.log_level = l.Enum("level", "info", {"trace", "debug", "info", "warn", "error"});
    cfg.log_format = l.Enum("format", "text", {"text", "json"});
    cfg.stats_interval_ns = l.Duration("stats_interval", cfg.stats_interval_ns, 0, 86400 * kSec);
  }
  {
    TableReader m(top.Table("metrics"), "metrics", errors);
    if (!m.Bool("enabled", true)) cfg.metrics_address.clear();
    const std::string address = m.String("address", cfg.metrics_address);
    if (!cfg.metrics_address.empty()) cfg.metrics_address = address;
    cfg.metrics_port = m.Int<int>("port", cfg.metrics_port, 0, 65535);
  }
  {
    TableReader b(top.Table("buffer"), "buffer", errors);
    ReadBuffer(b, cfg.data_dir, &cfg.buffer);
    cfg.buffer_fingerprint = Fingerprint(b.table(), cfg);
  }
  ForEachNamed(top, "sources", "source", errors, [&](const std::string& name, TableReader& r) {
    SourceConfig s;
    s.name = name;
    s.type = r.String("type", "", /*required=*/true);
    if (s.type == "mqtt") {
      ReadMqttSource(r, cfg.gateway_id, &s);
    } else if (s.type == "serial") {
      ReadSerialSource(r, &s);
    } else if (!s.type.empty()) {
      r.Error("type", fmt::format("unknown source type \"{}\" (known: mqtt, serial)", s.type));
      return;
    }
    ReadProcessors(r, &s.processors);
    s.fingerprint = Fingerprint(r.table(), cfg);
    cfg.sources.push_back(std::move(s));
  });
  ForEachNamed(top, "sinks", "sink", errors, [&](const std::string& name, TableReader& r) {
    SinkConfig s;
    s.name = name;
    s.type = r.String("type", "", /*required=*/true);
    // Batch defaults by kind: streaming sinks send at once, batch sinks gather.
    drivers::BatchPolicy d{10'000, 4ull << 20, 1 * kSec};
    if (s.type == "mqtt") d = {1000, 1ull << 20, 0};
    if (s.type == "http") d = {1000, 1ull << 20, 1 * kSec};
    if (s.type == "kinesis") d = {500, 4ull << 20, 1 * kSec};
    if (s.type == "s3") d = {1'000'000, 64ull << 20, 300 * kSec};
    drivers::BatchPolicy batch;
    batch.max_records = r.Int<size_t>("max_records", d.max_records, 1, 10'000'000);
    batch.max_bytes = r.Bytes("max_bytes", d.max_bytes, 1, 4ull << 30);
    batch.linger_ns = r.Duration("linger", d.linger_ns, 0, 7 * kDay);
    s.retry.base_ns = r.Duration("retry_base", s.retry.base_ns, 1 * kMs, 3600 * kSec);
    s.retry.max_ns = r.Duration("retry_max", s.retry.max_ns, 1 * kMs, 86400 * kSec);
    s.drain.records_per_s = static_cast<double>(r.Int<int64_t>("drain_rate", 0, 0, 100'000'000));
    s.drain.bytes_per_s = static_cast<double>(r.Bytes("drain_bytes_rate", 0, 0, 1ull << 40));
    s.drain.start_jitter_ns = r.Duration("start_jitter", 0, 0, 3600 * kSec);
    s.drain.live_first = r.Enum("order", "oldest_first", {"oldest_first", "live_first"}) == "live_first";
    if (r.Has("max_lag")) cfg.health.sink_max_lag_ns[name] = r.Duration("max_lag", 0, 0, 365 * kDay);
    ReadRoute(r, cfg.sources, &s.route);
    ReadProcessors(r, &s.processors, /*at_sink=*/true);
    if (s.type == "outbox") {
      auto& o = s.outbox;
      o.name = name;
      o.gateway_id = cfg.gateway_id;
      o.dir = r.String("dir", cfg.data_dir + "/outbox");
      o.zstd_level = r.Int<int>("compression_level", 3, 0, 19);
      o.batch = batch;
    } else if (s.type == "mqtt") {
      ReadMqttSink(r, cfg, &s);
      s.mqtt.batch = batch;
    } else if (s.type == "http") {
      ReadHttpSink(r, cfg, &s);
      s.http.batch = batch;
    } else if (s.type == "kinesis") {
      ReadKinesisSink(r, cfg, &s);
      s.kinesis.batch = batch;
      if (batch.max_records > 500) r.Error("max_records", "must be at most 500 for Kinesis PutRecords");
    } else if (s.type == "s3") {
      ReadS3Sink(r, cfg, &s);
      s.s3.batch = batch;
    } else if (!s.type.empty()) {
      r.Error("type", fmt::format("unknown sink type \"{}\" (known: outbox, mqtt, http, kinesis, s3)", s.type));
      return;
    }
    s.fingerprint = Fingerprint(r.table(), cfg);
    cfg.sinks.push_back(std::move(s));
  });
  {
    TableReader f(top.Table("fleet"), "fleet", errors);
    ReadFleet(f, top.Has("fleet"), &cfg);
  }
  {
    TableReader h(top.Table("health"), "health", errors);
    ReadHealth(h, &cfg.health);
  }
  top.Finish();
  if (!errors->errors.empty()) return Status::InvalidArgument(errors->Join());
  return cfg;
}

namespace {

std::string JoinKey(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// The whole file, or an error naming it; bounded so an include of a huge file (or a
// device) cannot exhaust memory.
std::optional<std::string> ReadBounded(const std::string& path, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back(fmt::format("{}: cannot read the configuration file", path));
    return std::nullopt;
  }
  std::string text(kMaxConfigFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    errors->push_back(fmt::format("{}: larger than {} (a configuration file is at most that)", path,
                                  FormatBytes(kMaxConfigFileBytes)));
    return std::nullopt;
  }
  if (in.bad()) {
    errors->push_back(fmt::format("{}: cannot read the configuration file", path));
    return std::nullopt;
  }
  return text;
}

std::optional<toml::table> ParseFile(const std::string& path, std::vector<std::string>* errors) {
  auto text = ReadBounded(path, errors);
  if (!text) return std::nullopt;
  if (!TomlWithinDepth(*text, kMaxConfigDepth)) {
    errors->push_back(TooDeepMessage(path));
    return std::nullopt;
  }
  try {
    return toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    errors->push_back(fmt::format("{}:{}:{}: TOML syntax: {}", path, e.source().begin.line, e.source().begin.column,
                                  e.description()));
    return std::nullopt;
  }
}

// Records the file that defined each key path under `t`, tables included.
void Own(const toml::table& t, const std::string& prefix, const std::string& file,
         std::map<std::string, std::string>* owner) {
  for (const auto& [k, v] : t) {
    const std::string path = JoinKey(prefix, k.str());
    owner->emplace(path, file);
    if (const toml::table* sub = v.as_table()) Own(*sub, path, file, owner);
  }
}

// Adds `src` (from `file`) to `dst`. Tables merge key by key; any other key present in
// both is a conflict, whatever the values: the order of files must not decide.
void Merge(toml::table& dst, const toml::table& src, const std::string& prefix, const std::string& file,
           std::map<std::string, std::string>* owner, std::vector<std::string>* errors) {
  for (const auto& [k, v] : src) {
    const std::string path = JoinKey(prefix, k.str());
    const std::string key(k.str());  // clang 14 cannot capture a structured binding
    toml::node* mine = dst.get(key);
    if (!mine) {
      v.visit([&](auto&& value) { dst.insert_or_assign(key, value); });
      owner->emplace(path, file);
      if (const toml::table* sub = v.as_table()) Own(*sub, path, file, owner);
    } else if (mine->is_table() && v.is_table()) {
      Merge(*mine->as_table(), *v.as_table(), path, file, owner, errors);
    } else {
      errors->push_back(fmt::format("{}: defined in {} and in {}", path, (*owner)[path], file));
    }
  }
}

// The file `path` resolves to (symbolic links, ".", ".." and repeated "/" resolved), or
// `path` itself when it cannot be resolved (reading it then says why).
std::string RealPath(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return path;
  std::string out(real);
  std::free(real);
  return out;
}

// The files `include` names, in order: each pattern's matches sorted (glob(3), C
// locale: byte order), a file reached twice (by two patterns, two spellings or a
// symbolic link: the same real path) merged once, under the first name it was found by.
// A pattern with glob characters (* ? [) may match nothing (an empty conf.d); a plain
// file name must name a file, so a typo cannot silently drop what the file configures.
// The main file never includes itself: named plainly it is an error, matched by a glob
// it is skipped.
std::vector<std::string> IncludedFiles(const toml::node& include, const std::string& main_path,
                                       std::vector<std::string>* errors) {
  std::vector<std::string> files;
  const toml::array* patterns = include.as_array();
  if (!patterns) {
    errors->push_back("include: must be an array of file patterns such as [\"conf.d/*.toml\"]");
    return files;
  }
  const std::string dir = main_path.find('/') == std::string::npos ? "." : main_path.substr(0, main_path.rfind('/'));
  const std::string main_real = RealPath(main_path);
  std::set<std::string> seen = {main_real};  // real paths
  for (size_t i = 0; i < patterns->size(); ++i) {
    const auto* p = (*patterns)[i].as_string();
    if (!p || p->get().empty()) {
      errors->push_back(fmt::format("include[{}]: must be a non-empty string (a file or a glob pattern)", i));
      continue;
    }
    const std::string pattern = p->get()[0] == '/' ? p->get() : (dir.empty() ? "" : dir) + "/" + p->get();
    const bool plain = p->get().find_first_of("*?[") == std::string::npos;
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      for (size_t m = 0; m < g.gl_pathc; ++m) {
        const std::string real = RealPath(g.gl_pathv[m]);
        if (plain && real == main_real) {
          errors->push_back(fmt::format("include[{}]: \"{}\" is this file itself ({}): a file cannot include itself", i,
                                        p->get(), main_path));
        } else if (seen.insert(real).second) {
          files.emplace_back(g.gl_pathv[m]);
        }
      }
    } else if (rc == GLOB_NOMATCH) {
      if (plain) {
        errors->push_back(fmt::format("include[{}]: \"{}\": no such file ({}); a pattern without * ? [ must name a file",
                                      i, p->get(), pattern));
      }
    } else {
      errors->push_back(fmt::format("include[{}]: cannot list \"{}\"", i, pattern));
    }
    ::globfree(&g);
  }
  if (files.size() > kMaxIncludedFiles) {
    errors->push_back(fmt::format("include: the patterns match {} files (at most {})", files.size(), kMaxIncludedFiles));
    files.clear();
  }
  return files;
}

// ${NAME}, ${NAME:-default} (default when NAME is unset or empty), $$ for "$"; any
// other "$" stays as it is. The default is literal text up to the first "}".
std::optional<std::string> Expand(std::string_view in, const ConfigHost& host, std::string* problem) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 == in.size() || (in[i + 1] != '$' && in[i + 1] != '{')) {
      out += in[i];
      continue;
    }
    if (in[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    const size_t close = in.find('}', i + 2);
    if (close == std::string_view::npos) {
      *problem = "\"${\" without a closing \"}\" (write $$ for a literal $)";
      return std::nullopt;
    }
    const std::string_view inner = in.substr(i + 2, close - i - 2);
    const size_t colon = inner.find(":-");
    const std::string name(inner.substr(0, colon));
    const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                       std::all_of(name.begin(), name.end(),
                                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    if (!valid) {
      *problem = fmt::format("\"${{{}}}\": a variable name is letters, digits and _ (write $$ for a literal $)", inner);
      return std::nullopt;
    }
    const std::optional<std::string> value = host.getenv ? host.getenv(name) : std::nullopt;
    if (colon != std::string_view::npos) {
      out += value && !value->empty() ? *value : std::string(inner.substr(colon + 2));
    } else if (value) {
      out += *value;
    } else {
      *problem = fmt::format("the environment variable {0} is not set (write ${{{0}:-default}} for a default, $$ for "
                             "a literal $)", name);
      return std::nullopt;
    }
    i = close;
  }
  return out;
}

// Expands every string value under `node`; keys are never touched, so a variable can
// only ever become a string, never TOML structure.
void ExpandStrings(toml::node& node, const std::string& path, const ConfigHost& host,
                   std::vector<std::string>* errors) {
  if (toml::table* t = node.as_table()) {
    for (auto&& [k, v] : *t) ExpandStrings(v, JoinKey(path, k.str()), host, errors);
  } else if (toml::array* a = node.as_array()) {
    for (size_t i = 0; i < a->size(); ++i) ExpandStrings((*a)[i], fmt::format("{}[{}]", path, i), host, errors);
  } else if (toml::value<std::string>* s = node.as_string()) {
    std::string problem;
    if (auto expanded = Expand(s->get(), host, &problem)) {
      s->get() = std::move(*expanded);
    } else {
      errors->push_back(fmt::format("{}: {}", path, problem));
    }
  }
}

}  // namespace

ConfigHost SystemConfigHost() {
  ConfigHost h;
  h.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  h.hostname = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return std::string();
    return std::string(name);
  };
  return h;
}

std::string DefaultGatewayId(const ConfigHost& host) {
  const std::string name = host.hostname ? host.hostname() : "";
  if (ValidName(name, true) && name != "localhost" && name != "localhost.localdomain") return name;
  std::ifstream in(host.machine_id_path, std::ios::binary);
  std::string id;
  std::getline(in, id);
  while (!id.empty() && std::isspace(static_cast<unsigned char>(id.back()))) id.pop_back();
  if (id.empty()) return "";
  // Hashed: the machine id itself should not leave the host (machine-id(5)).
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(id.data(), id.size(), md, &n, EVP_sha256(), nullptr) != 1) return "";
  std::string hex;
  for (unsigned int i = 0; i < 6 && i < n; ++i) hex += fmt::format("{:02x}", md[i]);
  return "gw-" + hex;
}

Result<std::string> ReadConfigFile(const std::string& path, ConfigErrors* errors, const ConfigHost& host) {
  errors->errors.clear();
  auto& e = errors->errors;
  auto root = ParseFile(path, &e);
  if (!root) return Status::InvalidArgument(errors->Join());
  if (const toml::node* include = root->get("include")) {
    const std::vector<std::string> files = IncludedFiles(*include, path, &e);
    root->erase("include");
    std::map<std::string, std::string> owner;
    Own(*root, "", path, &owner);
    for (const auto& file : files) {
      auto part = ParseFile(file, &e);
      if (!part) continue;
      // One level only: a chain of includes would hide where a key comes from.
      if (part->contains("include")) {
        e.push_back(fmt::format("include: {} includes other files; only the main configuration file may", file));
        continue;
      }
      Merge(*root, *part, "", file, &owner, &e);
    }
  }
  if (!e.empty()) return Status::InvalidArgument(errors->Join());
  for (auto&& [k, v] : *root) ExpandStrings(v, std::string(k.str()), host, &e);
  if (!e.empty()) return Status::InvalidArgument(errors->Join());
  if (!root->contains("gateway")) root->insert("gateway", toml::table{});
  if (toml::table* g = root->get("gateway")->as_table(); g && !g->contains("id")) {
    if (std::string id = DefaultGatewayId(host); !id.empty()) g->insert("id", id);
  }
  std::ostringstream text;
  text << toml::toml_formatter(*root);
  return text.str() + "\n";
}

Result<AgentConfig> LoadConfigFile(const std::string& path, ConfigErrors* errors, const ConfigHost& host) {
  auto text = ReadConfigFile(path, errors, host);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path, errors);
}

}  // namespace edgeferry::agent
