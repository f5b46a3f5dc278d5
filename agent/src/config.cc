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
#include "edgeferry/pipeline/processor_settings.h"
#include "edgeferry/redact.h"
#include "edgeferry/settings/common_keys.h"
#include "edgeferry/settings/table_reader.h"
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

namespace {

using settings::kDay;
using settings::kMs;
using settings::kSec;
using settings::StringList;
using settings::TableReader;
using settings::ValidName;

// The parsers recurse per level of nesting: a file or string nested deeper is refused
// before parsing (a 60 KB file of dotted keys overflowed the stack).
constexpr int kMaxConfigDepth = 64;
std::string TooDeepMessage(std::string_view origin) {
  return fmt::format("{}: nested deeper than {} levels (tables, dotted keys, arrays); not parsed", origin,
                     kMaxConfigDepth);
}


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
  pipeline::ReadTopicFilters(r, "channels", &route->channels);
}

// An error for a `type` no registered type has (an absent or non-string one is
// reported by the read itself).
void UnknownType(TableReader& r, std::string_view what, const std::string& type, const std::string& known) {
  const toml::node* n = r.Node("type");
  if (n && n->is_string()) r.Error("type", fmt::format("unknown {} type \"{}\" (known: {})", what, type, known));
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
    const std::string type = tr.String("type", "", /*required=*/true);
    auto processor = pipeline::ReadProcessorSettings(type, tr);
    if (!processor) {
      UnknownType(tr, "processor", type, pipeline::KnownProcessorTypes());
      continue;
    }
    out->push_back(std::move(*processor));
    // Any processor but a filter (whose `channels` are its condition) may be limited to
    // some channels; records on others skip it.
    if (type != "filter") {
      std::vector<std::string> scope;
      pipeline::ReadTopicFilters(tr, "channels", &scope);
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
    drivers::CheckMqttUri(f, m.uri);
    m.mqtt_version = f.Enum("mqtt_version", "3.1.1", {"3.1.1", "5"}) == "5" ? 5 : 4;
    m.username = f.String("username", "");
    m.password = settings::SecretFromFile(f, "password_file");
    m.tls = drivers::ReadMqttTls(f, m.uri, /*allow_alpn=*/true);
  } else if (fl.enabled) {
    // By default the uplink broker: the first MQTT sink's connection.
    const auto uplink = std::find_if(cfg->sinks.begin(), cfg->sinks.end(), [](const SinkConfig& s) {
      return s.As<drivers::MqttUplinkSinkConfig>() != nullptr;
    });
    if (uplink == cfg->sinks.end()) {
      f.Error("uri", "is required when no sink is of type \"mqtt\" (the default management broker)");
    } else {
      m = *uplink->As<drivers::MqttUplinkSinkConfig>();
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
    const std::string type = r.String("type", "", /*required=*/true);
    auto settings = ReadSourceSettings(type, r, {name, cfg.gateway_id, cfg.data_dir});
    if (!settings) {
      UnknownType(r, "source", type, KnownSourceTypes());
      return;
    }
    s.settings = std::move(*settings);
    ReadProcessors(r, &s.processors);
    s.fingerprint = Fingerprint(r.table(), cfg);
    cfg.sources.push_back(std::move(s));
  });
  ForEachNamed(top, "sinks", "sink", errors, [&](const std::string& name, TableReader& r) {
    SinkConfig s;
    s.name = name;
    const std::string type = r.String("type", "", /*required=*/true);
    const auto defaults = DefaultBatch(type);
    if (!defaults) {
      UnknownType(r, "sink", type, KnownSinkTypes());
      return;
    }
    // Batching, retry, drain, route and processors are the agent's: the same keys for
    // every sink type, over the type's own batch defaults.
    drivers::BatchPolicy batch;
    batch.max_records = r.Int<size_t>("max_records", defaults->max_records, 1, 10'000'000);
    batch.max_bytes = r.Bytes("max_bytes", defaults->max_bytes, 1, 4ull << 30);
    batch.linger_ns = r.Duration("linger", defaults->linger_ns, 0, 7 * kDay);
    s.retry.base_ns = r.Duration("retry_base", s.retry.base_ns, 1 * kMs, 3600 * kSec);
    s.retry.max_ns = r.Duration("retry_max", s.retry.max_ns, 1 * kMs, 86400 * kSec);
    s.drain.records_per_s = static_cast<double>(r.Int<int64_t>("drain_rate", 0, 0, 100'000'000));
    s.drain.bytes_per_s = static_cast<double>(r.Bytes("drain_bytes_rate", 0, 0, 1ull << 40));
    s.drain.start_jitter_ns = r.Duration("start_jitter", 0, 0, 3600 * kSec);
    s.drain.live_first = r.Enum("order", "oldest_first", {"oldest_first", "live_first"}) == "live_first";
    if (r.Has("max_lag")) cfg.health.sink_max_lag_ns[name] = r.Duration("max_lag", 0, 0, 365 * kDay);
    ReadRoute(r, cfg.sources, &s.route);
    ReadProcessors(r, &s.processors, /*at_sink=*/true);
    s.settings = std::move(*ReadSinkSettings(type, r, {name, cfg.gateway_id, cfg.data_dir}, batch));
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
