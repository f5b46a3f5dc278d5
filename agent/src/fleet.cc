#include "edgeferry/agent/fleet.h"

#include "nesting_depth.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config_table.h"
#include "edgeferry/clock.h"
#include "edgeferry/files.h"
#include "edgeferry/drivers/mqtt/mqtt_control_channel.h"
#include "edgeferry/units.h"

namespace edgeferry::agent {

namespace {

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string s;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') s.push_back(c);
  }
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::string out(s.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  if (s.ends_with("==")) {
    len -= 2;
  } else if (s.ends_with("=")) {
    len -= 1;
  }
  out.resize(len);
  return out;
}

Status VerifyEd25519(const std::string& public_key_pem, std::string_view message, std::string_view signature) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())),
                                                BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                          EVP_PKEY_free);
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return Status::InvalidArgument("the installed public key is not an Ed25519 key");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return Status::IOError("OpenSSL: EVP_DigestVerifyInit failed");
  }
  const int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size());
  if (ok != 1) return Status::InvalidArgument("signature: does not verify with the installed public key");
  return Status::Ok();
}

// JSON documents map onto the same keys as TOML: objects are tables. CheckPushBounds
// has bounded the depth; `depth` guards the recursion again should a caller skip it.
constexpr int kMaxConvertDepth = 256;

bool JsonToToml(const nlohmann::json& j, toml::table* out, const std::string& path, int depth,
                std::vector<std::string>* errors);

std::unique_ptr<toml::node> JsonValue(const nlohmann::json& v, const std::string& path, int depth,
                                      std::vector<std::string>* errors) {
  if (depth > kMaxConvertDepth) {
    errors->push_back(path + ": nested too deeply");
    return nullptr;
  }
  if (v.is_object()) {
    auto t = std::make_unique<toml::table>();
    JsonToToml(v, t.get(), path, depth + 1, errors);
    return t;
  }
  if (v.is_array()) {
    auto a = std::make_unique<toml::array>();
    for (size_t i = 0; i < v.size(); ++i) {
      if (auto n = JsonValue(v[i], fmt::format("{}[{}]", path, i), depth + 1, errors)) a->push_back(std::move(*n));
    }
    return a;
  }
  if (v.is_string()) return std::make_unique<toml::value<std::string>>(v.get<std::string>());
  if (v.is_boolean()) return std::make_unique<toml::value<bool>>(v.get<bool>());
  if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX})) {
    return std::make_unique<toml::value<int64_t>>(v.get<int64_t>());
  }
  if (v.is_number_float()) return std::make_unique<toml::value<double>>(v.get<double>());
  errors->push_back(path + ": null, integers beyond 64 bits and other JSON values without a TOML equivalent are not allowed");
  return nullptr;
}

bool JsonToToml(const nlohmann::json& j, toml::table* out, const std::string& path, int depth,
                std::vector<std::string>* errors) {
  for (const auto& item : j.items()) {
    const std::string k = item.key();  // a plain variable: clang 14 cannot capture a structured binding
    const auto& v = item.value();
    const std::string p = path.empty() ? k : path + "." + k;
    if (auto n = JsonValue(v, p, depth, errors)) {
      if (auto* t = n->as_table()) {
        out->insert_or_assign(k, std::move(*t));
      } else if (auto* a = n->as_array()) {
        out->insert_or_assign(k, std::move(*a));
      } else {
        // key = k: clang 14 cannot capture a structured binding (C++20 P1091).
        n->visit([&, &key = k](auto&& val) {
          if constexpr (toml::is_value<decltype(val)>) out->insert_or_assign(key, *val);
        });
      }
    }
  }
  return errors->empty();
}

Status TooDeep(int limit) {
  return Status::InvalidArgument(
      fmt::format("push: nested deeper than {} levels (fleet.max_push_depth); not parsed", limit));
}

std::string NodeText(const toml::node& n) {
  std::ostringstream s;
  n.visit([&](auto&& v) { s << v; });
  return s.str();
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(cur);
  return parts;
}

const toml::node* Find(const toml::table& root, const std::vector<std::string>& parts) {
  const toml::table* t = &root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const toml::node* n = t->get(parts[i]);
    if (!n) return nullptr;
    if (i + 1 == parts.size()) return n;
    t = n->as_table();
    if (!t) return nullptr;
  }
  return nullptr;
}

// Sets root[parts] to a copy of `value`, or erases it when value is null.
void Put(toml::table& root, const std::vector<std::string>& parts, const toml::node* value) {
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* n = t->get(parts[i]);
    if (!n || !n->is_table()) {
      if (!value) return;
      t->insert_or_assign(parts[i], toml::table{});
      n = t->get(parts[i]);
    }
    t = n->as_table();
  }
  if (!value) {
    t->erase(parts.back());
    return;
  }
  value->visit([&](auto&& v) { t->insert_or_assign(parts.back(), v); });
}

std::vector<std::string> AllPins(const std::vector<std::string>& pinned) {
  std::vector<std::string> all = DefaultPins();
  all.insert(all.end(), pinned.begin(), pinned.end());
  return all;
}

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ".") + p;
  return out;
}

// Calls fn(parts, table) for every table of `root` (arrays of tables included, their
// index appended to the last part), without recursion.
void ForEachTable(const toml::table& root,
                  const std::function<void(const std::vector<std::string>&, const toml::table&)>& fn) {
  std::vector<std::pair<const toml::node*, std::vector<std::string>>> todo{{&root, {}}};
  while (!todo.empty()) {
    auto [node, parts] = std::move(todo.back());
    todo.pop_back();
    if (const toml::table* t = node->as_table()) {
      fn(parts, *t);
      for (const auto& [k, v] : *t) {
        if (!v.is_table() && !v.is_array()) continue;
        auto child = parts;
        child.emplace_back(k.str());
        todo.emplace_back(&v, std::move(child));
      }
    } else if (const toml::array* a = node->as_array()) {
      for (size_t i = 0; i < a->size(); ++i) {
        if (!(*a)[i].is_table() && !(*a)[i].is_array()) continue;
        auto child = parts;
        if (child.empty()) child.emplace_back();
        child.back() += fmt::format("[{}]", i);
        todo.emplace_back(&(*a)[i], std::move(child));
      }
    }
  }
}

bool Same(const toml::node* a, const toml::node* b) {
  if (!a || !b) return a == b;
  return a->type() == b->type() && NodeText(*a) == NodeText(*b);
}

// A key naming a local file or directory, anywhere in the push (a new sink included),
// must be absent or equal to the local file's value at the same path.
void CheckPathKeys(const toml::table& pushed, const toml::table& local, std::vector<std::string>* errors) {
  const auto& names = LocalPathKeys();
  ForEachTable(pushed, [&](const std::vector<std::string>& parts, const toml::table& t) {
    for (const auto& [k, v] : t) {
      if (std::find(names.begin(), names.end(), k.str()) == names.end()) continue;
      auto path = parts;
      path.emplace_back(k.str());
      if (!Same(Find(local, path), &v)) {
        errors->push_back(fmt::format("{}: names a local file or directory; a push may not set or change it "
                                      "(pinned: only the local file decides)", JoinPath(path)));
      }
    }
  });
}

// A client that sends a local secret (password_file, bearer_token_file, credentials_file,
// a TLS key) keeps the local file's destination and TLS verification: a push may not
// point the secret at another server.
void CheckSecretDestinations(const toml::table& pushed, const toml::table& local, std::vector<std::string>* errors) {
  static const char* kSecrets[] = {"password_file", "bearer_token_file", "credentials_file"};
  // region and bucket name the AWS host too (kinesis.{region}.amazonaws.com); profile
  // picks which credentials sign.
  static const char* kDestination[] = {"uri",    "url",    "endpoint", "tls.verify", "tls.ca_file",
                                       "region", "bucket", "profile",  "path_style"};
  ForEachTable(pushed, [&](const std::vector<std::string>& parts, const toml::table& t) {
    std::string secret;
    for (const char* s : kSecrets) {
      if (t.contains(s)) secret = s;
    }
    if (const toml::table* tls = t.get_as<toml::table>("tls"); tls && tls->contains("key_file")) secret = "tls.key_file";
    // An AWS sink always signs, with a credentials file or the process's own (environment,
    // ~/.aws): a push must not point those signatures, or the session token, elsewhere.
    if (const auto type = t["type"].value<std::string>(); type && (*type == "kinesis" || *type == "s3")) {
      secret = "AWS credentials (type = " + *type + ")";
    }
    if (secret.empty()) return;
    for (const char* d : kDestination) {
      auto path = parts;
      for (auto& p : SplitPath(d)) path.push_back(p);
      if (!Same(Find(local, path), Find(pushed, path))) {
        errors->push_back(fmt::format("{}: pinned: {} sends the local secret {}, so a push may not change where "
                                      "it goes or how the server is verified", JoinPath(path), JoinPath(parts), secret));
      }
    }
  });
}


Result<toml::table> ParseToml(std::string_view text, std::string_view origin, ConfigErrors* errors) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    errors->errors.push_back(fmt::format("{}:{}:{}: TOML syntax: {}", origin, e.source().begin.line,
                                         e.source().begin.column, e.description()));
    return Status::InvalidArgument(errors->Join());
  }
}

Result<toml::table> DocumentTable(const FleetDocument& doc, ConfigErrors* errors) {
  if (doc.format == "toml") return ParseToml(doc.text, "push", errors);
  const auto j = nlohmann::json::parse(doc.text, nullptr, false);
  toml::table t;
  if (!j.is_object() || !JsonToToml(j, &t, "", 1, &errors->errors)) {
    if (errors->errors.empty()) errors->errors.push_back("push: not a JSON object");
    return Status::InvalidArgument(errors->Join());
  }
  return t;
}

std::string ToText(const toml::table& t) {
  std::ostringstream s;
  s << toml::toml_formatter(t);
  return s.str() + "\n";
}

}  // namespace

Status CheckPushBounds(std::string_view text, bool json, const PushLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::InvalidArgument(fmt::format("push: {} bytes, more than fleet.max_push_bytes ({}); not parsed",
                                               text.size(), limits.max_bytes));
  }
  const bool within = json ? JsonWithinDepth(text, limits.max_depth) : TomlWithinDepth(text, limits.max_depth);
  return within ? Status::Ok() : TooDeep(limits.max_depth);
}

Result<FleetDocument> DecodePush(std::string_view payload, const std::string& public_key_pem, const PushLimits& limits) {
  FleetDocument doc;
  const size_t first = payload.find_first_not_of(" \t\r\n");
  const bool json = first != std::string_view::npos && payload[first] == '{';
  if (Status st = CheckPushBounds(payload, json, limits); !st.ok()) return st;
  nlohmann::json j;
  if (json) {
    j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded()) return Status::InvalidArgument("push: not valid JSON");
  }
  if (json && j.contains("document")) {
    if (!j["document"].is_string()) return Status::InvalidArgument("document: must be a string (the configuration text)");
    doc.text = j["document"].get<std::string>();
    if (j.contains("signature")) {
      if (!j["signature"].is_string()) return Status::InvalidArgument("signature: must be base64 text");
      auto sig = Base64Decode(j["signature"].get<std::string>());
      if (!sig || sig->size() != 64) return Status::InvalidArgument("signature: must be a base64 Ed25519 signature (64 bytes)");
      if (public_key_pem.empty()) return Status::InvalidArgument("signature: present, but no public key is installed on this gateway");
      if (Status st = VerifyEd25519(public_key_pem, doc.text, *sig); !st.ok()) return st;
      doc.is_signed = true;
    }
    const size_t f = doc.text.find_first_not_of(" \t\r\n");
    doc.format = f != std::string::npos && doc.text[f] == '{' ? "json" : "toml";
  } else {
    doc.text = std::string(payload);
    doc.format = json ? "json" : "toml";
  }
  if (!public_key_pem.empty() && !doc.is_signed) {
    return Status::InvalidArgument("signature: required (a public key is installed) but the push is not signed");
  }
  // The enveloped document meets the bounds too (the envelope hid its depth in a string).
  if (Status st = CheckPushBounds(doc.text, doc.format == "json", limits); !st.ok()) return st;
  ConfigErrors errors;
  auto table = DocumentTable(doc, &errors);
  if (!table.ok()) return table.status();
  const toml::node* v = table->get("version");
  if (!v || !v->is_integer() || *v->value<int64_t>() < 1) {
    return Status::InvalidArgument("version: a pushed configuration needs an integer version >= 1");
  }
  doc.version = *v->value<int64_t>();
  return doc;
}

Result<std::string> EffectiveConfig(const FleetDocument& doc, std::string_view local_toml,
                                    const std::vector<std::string>& pinned, ConfigErrors* errors) {
  errors->errors.clear();
  auto pushed = DocumentTable(doc, errors);
  if (!pushed.ok()) return pushed.status();
  auto local = ParseToml(local_toml, "local", errors);
  if (!local.ok()) return local.status();
  for (const auto& path : AllPins(pinned)) {
    const auto parts = SplitPath(path);
    const toml::node* mine = Find(*local, parts);
    const toml::node* theirs = Find(*pushed, parts);
    if (theirs && (!mine || NodeText(*mine) != NodeText(*theirs))) {
      errors->errors.push_back(fmt::format("{}: pinned by the gateway's local configuration; a push may not change it", path));
    }
    Put(*pushed, parts, mine);
  }
  CheckPathKeys(*pushed, *local, &errors->errors);
  CheckSecretDestinations(*pushed, *local, &errors->errors);
  if (!errors->errors.empty()) return Status::InvalidArgument(errors->Join());
  return ToText(*pushed);
}

const std::vector<std::string>& DefaultPins() {
  // metrics: where the status endpoint listens (0.0.0.0 would expose it);
  // buffer.path: moving the store restarts seq and strands the backlog;
  // buffer.ttl, max_bytes, min_free_bytes, when_full, dlq_max_records: a push could set
  // them to delete the undelivered backlog (ttl = "1ms") or the dead letters. The other
  // [buffer] keys reopen the same file and keep every record; pin "buffer" to fix them.
  static const std::vector<std::string> pins = {
      "fleet",          "gateway.id",            "gateway.data_dir", "metrics",          "buffer.path",
      "buffer.ttl",     "buffer.max_bytes",      "buffer.min_free_bytes", "buffer.when_full",
      "buffer.dlq_max_records"};
  return pins;
}

Result<ValidatedPush> ValidatePush(std::string_view payload, const AgentConfig& local, std::string_view local_toml,
                                   ConfigErrors* errors, int64_t* version) {
  errors->errors.clear();
  auto fail = [&](const Status& st) -> Status {
    if (errors->errors.empty()) errors->errors.push_back(std::string(st.message()));
    return st;
  };
  const FleetConfig& fl = local.fleet;
  if (fl.public_key_pem.empty() && !fl.allow_unsigned) {
    // Refused before anything parses it.
    return fail(Status::InvalidArgument(
        "signature: this gateway has no fleet.public_key_file and does not set fleet.allow_unsigned = true; "
        "pushes are refused"));
  }
  auto doc = DecodePush(payload, fl.public_key_pem, PushLimits{fl.max_push_bytes, fl.max_push_depth});
  if (!doc.ok()) return fail(doc.status());
  if (version) *version = doc->version;
  ValidatedPush out;
  out.doc = std::move(doc).value();
  auto effective = EffectiveConfig(out.doc, local_toml, fl.pinned, errors);
  if (!effective.ok()) return fail(effective.status());
  auto cfg = ParseConfig(*effective, fmt::format("push version {}", out.doc.version), errors);
  if (!cfg.ok()) return fail(cfg.status());
  // A client with the management connection's id would take its session over and lock
  // the gateway out of the fleet.
  const std::string& link_id = fl.link.client_id;
  for (const auto& src : cfg->sources) {
    if (const auto* m = src.As<drivers::MqttSourceConfig>(); m && m->client_id == link_id) {
      errors->errors.push_back(fmt::format("sources.{}.client_id: \"{}\" is the fleet connection's", src.name, link_id));
    }
  }
  for (const auto& snk : cfg->sinks) {
    if (const auto* m = snk.As<drivers::MqttUplinkSinkConfig>(); m && m->client_id == link_id) {
      errors->errors.push_back(fmt::format("sinks.{}.client_id: \"{}\" is the fleet connection's", snk.name, link_id));
    }
  }
  if (!errors->errors.empty()) return Status::InvalidArgument(errors->Join());
  out.toml = std::move(effective).value();
  out.config = std::move(cfg).value();
  return out;
}

std::string PushHash(std::string_view payload) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(payload.data(), payload.size(), md, &n, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

Result<std::string> OverlayPins(std::string_view applied_toml, std::string_view local_toml,
                                const std::vector<std::string>& pinned) {
  ConfigErrors errors;
  auto applied = ParseToml(applied_toml, "applied", &errors);
  if (!applied.ok()) return applied.status();
  auto local = ParseToml(local_toml, "local", &errors);
  if (!local.ok()) return local.status();
  for (const auto& path : AllPins(pinned)) {
    const auto parts = SplitPath(path);
    Put(*applied, parts, Find(*local, parts));
  }
  return ToText(*applied);
}

// ---- files ----

FleetFiles::FleetFiles(std::string dir) : dir_(std::move(dir)) {}

Status FleetFiles::WriteAtomically(const std::string& name, std::string_view content) const {
  std::error_code ec;
  if (std::filesystem::create_directories(dir_, ec)) ::chmod(dir_.c_str(), 0700);
  return WriteFileAtomically(dir_ + "/" + name, content, 0600);
}

namespace {
std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr size_t kQuarantineKept = 32;
}  // namespace

FleetRecord FleetFiles::Load() const {
  FleetRecord r;
  const auto j = nlohmann::json::parse(Slurp(dir_ + "/state.json"), nullptr, false);
  if (!j.is_object()) return r;
  try {
    r.applied_version = j.value("applied_version", int64_t{0});
    r.highest_version = j.value("highest_version", int64_t{0});
    r.pending_version = j.value("pending_version", int64_t{0});
    r.status = j.value("status", std::string());
    r.status_version = j.value("status_version", int64_t{0});
    r.errors = j.value("errors", std::vector<std::string>{});
    r.time_ns = j.value("time_ns", int64_t{0});
    r.quarantined = j.value("quarantined", std::vector<std::string>{});
  } catch (const nlohmann::json::exception&) {
    return FleetRecord{};  // hand-edited into another shape: as if absent
  }
  return r;
}

Status FleetFiles::Save(const FleetRecord& r) const {
  nlohmann::json j = {{"applied_version", r.applied_version}, {"highest_version", r.highest_version},
                      {"pending_version", r.pending_version}, {"status", r.status},
                      {"status_version", r.status_version},   {"errors", r.errors},
                      {"time_ns", r.time_ns},                 {"quarantined", r.quarantined}};
  return WriteAtomically("state.json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

Status FleetFiles::WriteApplied(std::string_view toml) const { return WriteAtomically("applied.toml", toml); }
Status FleetFiles::WriteLastGood(std::string_view toml) const { return WriteAtomically("last-good.toml", toml); }
std::string FleetFiles::ReadApplied() const { return Slurp(dir_ + "/applied.toml"); }
std::string FleetFiles::ReadLastGood() const { return Slurp(dir_ + "/last-good.toml"); }

Status FleetFiles::WriteMarker(const InProgressMarker& m) const {
  return WriteAtomically("in-progress.json", nlohmann::json{{"sha256", m.hash}, {"version", m.version}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

std::optional<InProgressMarker> FleetFiles::ReadMarker() const {
  const std::string path = dir_ + "/in-progress.json";
  if (!std::filesystem::exists(path)) return std::nullopt;
  InProgressMarker m;
  const auto j = nlohmann::json::parse(Slurp(path), nullptr, false);
  if (j.is_object() && j.contains("sha256") && j["sha256"].is_string()) m.hash = j["sha256"].get<std::string>();
  if (j.is_object() && j.contains("version") && j["version"].is_number_integer()) m.version = j["version"].get<int64_t>();
  return m;  // present but torn: still a crash during a push, hash unknown
}

void FleetFiles::ClearMarker() const {
  const std::string path = dir_ + "/in-progress.json";
  if (::unlink(path.c_str()) == 0) {
    if (const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
}

// ---- startup ----

Result<StartupConfig> SelectStartupConfig(const std::string& local_path, bool ignore_applied, ConfigErrors* errors,
                                          bool at_process_start) {
  StartupConfig out;
  // The file as read (includes merged, variables expanded): pins and last-good.toml
  // hold the values that ran, and nothing later expands again.
  auto text = ReadConfigFile(local_path, errors);
  if (!text.ok()) return text.status();
  auto local = ParseConfig(*text, local_path, errors);
  if (!local.ok()) return local.status();
  out.local = std::move(local).value();
  out.local_toml = std::move(text).value();
  out.config = out.local;
  out.toml = out.local_toml;
  out.origin = local_path;
  const auto& fleet = out.local.fleet;
  if (!fleet.enabled) return out;
  FleetFiles files(out.config.data_dir + "/fleet");
  FleetRecord rec = files.Load();
  std::string stored = files.ReadApplied();
  int64_t version = rec.applied_version;
  bool use_last_good = false;
  if (auto marker = at_process_start ? files.ReadMarker() : std::nullopt) {
    // The process died while a push was decoded or applied: never that payload again.
    spdlog::error("fleet: the agent stopped while handling a push (version {}, sha256 {}); it is quarantined and "
                  "the last-known-good configuration runs", marker->version, marker->hash.empty() ? "?" : marker->hash);
    if (!marker->hash.empty()) {
      rec.quarantined.push_back(marker->hash);
      if (rec.quarantined.size() > kQuarantineKept) rec.quarantined.erase(rec.quarantined.begin());
    }
    rec.status = "quarantined";
    rec.status_version = marker->version;
    rec.errors = {fmt::format("the agent stopped while handling this push (sha256 {}); it will be ignored when it "
                              "arrives again", marker->hash.empty() ? "?" : marker->hash)};
    rec.time_ns = SystemClock().NowNs();
    if (rec.pending_version == marker->version) rec.pending_version = 0;
    use_last_good = true;
    (void)files.Save(rec);
    files.ClearMarker();
  }
  if (rec.pending_version != 0) {
    // The process ended inside a health window: that push never proved itself.
    spdlog::warn("fleet: version {} was still in its health window when the agent stopped; "
                 "starting the last-known-good configuration", rec.pending_version);
    rec.status = "rolled_back";
    rec.status_version = rec.pending_version;
    rec.errors = {"the agent restarted during the health window"};
    rec.time_ns = SystemClock().NowNs();
    rec.pending_version = 0;
    use_last_good = true;
    (void)files.Save(rec);
  }
  if (use_last_good) {
    stored = files.ReadLastGood();
    (void)files.WriteApplied(stored);
  }
  if (!fleet.use_applied || ignore_applied) return out;
  if (stored.empty() || version == 0) return out;
  auto merged = OverlayPins(stored, out.local_toml, fleet.pinned);
  ConfigErrors applied_errors;
  auto cfg = merged.ok() ? ParseConfig(*merged, "fleet applied.toml", &applied_errors)
                         : Result<AgentConfig>(merged.status());
  if (!cfg.ok()) {
    spdlog::error("fleet: the applied configuration (version {}) no longer validates ({}); running {}", version,
                  cfg.status().ToString(), local_path);
    return out;
  }
  out.config = std::move(cfg).value();
  out.toml = *merged;
  out.origin = fmt::format("fleet version {} ({}/applied.toml)", version, files.dir());
  return out;
}

// ---- manager ----

FleetManager::FleetManager(AgentConfig local, std::string local_toml, std::string running_toml, Host host)
    : local_(std::move(local)),
      local_toml_(std::move(local_toml)),
      running_toml_(std::move(running_toml)),
      host_(std::move(host)),
      files_(local_.data_dir + "/fleet"),
      shared_(std::make_shared<Shared>()) {
  record_ = files_.Load();
  {
    MutexLock l(shared_->mu);
    shared_->quarantined = record_.quarantined;
  }
  const std::string base = local_.fleet.topic_prefix + "/" + local_.gateway_id + "/config/";
  desired_topic_ = base + "desired";
  reported_topic_ = base + "reported";
  // The configuration running now is the one to return to until a push proves itself.
  if (files_.ReadLastGood().empty()) (void)files_.WriteLastGood(running_toml_);
}

FleetManager::~FleetManager() { Stop(); }

void FleetManager::Start() {
  channel_ = std::make_unique<drivers::MqttControlChannel>(
      local_.fleet.link, desired_topic_, [shared = shared_, wake = host_.wake](const std::string&, const std::string& payload) {
        {
          MutexLock l(shared->mu);
          shared->inbox = payload;  // only the newest matters
        }
        shared->cv.NotifyAll();
        if (wake) wake();
      });
  const uint64_t max_bytes = local_.fleet.max_push_bytes;
  channel_->LimitPayload(max_bytes, [shared = shared_, max_bytes, wake = host_.wake](const std::string&, size_t size) {
    // Dropped without a copy; the main loop reports it.
    Outcome o;
    o.errors = {fmt::format("push: {} bytes, more than fleet.max_push_bytes ({}); dropped unread", size, max_bytes)};
    {
      MutexLock l(shared->mu);
      if (shared->busy) {
        spdlog::warn("fleet: {}", o.errors.front());  // a push is being handled: log only
        return;
      }
      shared->busy = true;
      shared->done = std::move(o);
    }
    if (wake) wake();
  });
  worker_ = std::thread(&FleetManager::Work, shared_, local_, local_toml_, files_, host_.wake);
  channel_->Start();
  spdlog::info("fleet: configuration pushes on {} (health window {} ms, {}; at most {} bytes, {} levels deep)",
               desired_topic_, local_.fleet.health_window_ns / 1'000'000,
               !local_.fleet.public_key_pem.empty() ? "Ed25519 signatures required"
               : local_.fleet.allow_unsigned        ? "UNSIGNED pushes allowed (fleet.allow_unsigned)"
                                                    : "no public key: every push is refused",
               local_.fleet.max_push_bytes, local_.fleet.max_push_depth);
}

void FleetManager::Stop() {
  if (channel_) channel_->Stop();
  if (!worker_.joinable()) return;
  {
    MutexLock l(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.NotifyAll();
  // A stop never waits for a parse in progress: after a short grace the worker is left
  // to finish on its own (it owns what it touches through `shared`).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  bool finished = false;
  {
    MutexLock l(shared_->mu);
    while (!shared_->finished && std::chrono::steady_clock::now() < deadline) {
      shared_->cv.WaitFor(l, std::chrono::milliseconds(50));
    }
    finished = shared_->finished;
  }
  if (finished) {
    worker_.join();
  } else {
    spdlog::warn("fleet: a push is still being parsed; not waiting for it");
    worker_.detach();
  }
  // Stopping on request (the main loop is not applying anything now), not dying: a push
  // still being parsed or waiting for Poll is not to be quarantined.
  files_.ClearMarker();
}

FleetRecord FleetManager::record() const {
  std::lock_guard<std::mutex> l(mu_);
  return record_;
}

// The worker: takes the newest payload, marks it in progress, validates it, hands the
// outcome to Poll and waits until Poll has taken it.
void FleetManager::Work(std::shared_ptr<Shared> shared, AgentConfig local, std::string local_toml, FleetFiles files,
                        std::function<void()> wake) {
  const char* crash_on = std::getenv("EDGEFERRY_TEST_FLEET_KILL_ON");  // test hook: dies mid-decode
  MutexLock l(shared->mu);
  while (true) {
    // One push at a time, from here until Poll has handled it (busy): the marker file
    // is about that one push.
    while (!shared->stop && (!shared->inbox || shared->busy)) shared->cv.Wait(l);
    if (shared->stop) break;
    const std::string payload = std::move(*shared->inbox);
    shared->inbox.reset();
    shared->busy = true;
    l.Unlock();
    Outcome o;
    o.hash = PushHash(payload);
    l.Lock();
    if (std::find(shared->quarantined.begin(), shared->quarantined.end(), o.hash) != shared->quarantined.end()) {
      shared->busy = false;
      l.Unlock();
      spdlog::warn("fleet: ignoring a quarantined push (sha256 {})", o.hash);
      l.Lock();
      continue;
    }
    l.Unlock();
    (void)files.WriteMarker({o.hash, 0});
    if (crash_on && *crash_on && payload.find(crash_on) != std::string::npos) ::kill(::getpid(), SIGKILL);
    ConfigErrors errors;
    try {
      auto v = ValidatePush(payload, local, local_toml, &errors, &o.version);
      if (v.ok()) {
        o.push = std::make_shared<ValidatedPush>(std::move(v).value());
      } else {
        o.errors = errors.errors;
      }
    } catch (const std::exception& e) {
      o.errors = {fmt::format("push: {}", e.what())};
    }
    l.Lock();
    if (shared->stop) {
      files.ClearMarker();  // a stop, not a crash; nothing was applied
      break;
    }
    if (o.push) {
      (void)files.WriteMarker({o.hash, o.version});  // the apply comes next, on the main loop
    } else {
      files.ClearMarker();
    }
    shared->done = std::move(o);
    l.Unlock();
    if (wake) wake();
    l.Lock();
  }
  shared->finished = true;
  shared->cv.NotifyAll();
}

void FleetManager::Poll(int64_t now_ns) {
  if (channel_ && channel_->connected() && !reported_once_) {
    // Tell the fleet where this gateway stands, once per process.
    reported_once_ = true;
    Report(record_.status_version, record_.status.empty() ? "running" : record_.status, record_.errors);
  }
  if (window_end_ns_ != 0) {
    if (now_ns < window_end_ns_) return;  // pushes wait until the window has ended
    EndHealthWindow();
  }
  std::optional<Outcome> outcome;
  {
    MutexLock l(shared_->mu);
    outcome.swap(shared_->done);
  }
  if (!outcome) return;
  Handle(std::move(*outcome), now_ns);
  {
    MutexLock l(shared_->mu);
    shared_->busy = false;
  }
  shared_->cv.NotifyAll();  // the worker may take the next payload
}

void FleetManager::Handle(Outcome o, int64_t now_ns) {
  if (!o.push) {
    // Rejected: reported, and nothing else changes (not even the highest version seen).
    spdlog::error("fleet: push{} rejected:", o.version ? fmt::format(" version {}", o.version) : "");
    for (const auto& e : o.errors) spdlog::error("  {}", e);
    Report(o.version, "rejected", o.errors);
    return;
  }
  const ValidatedPush& push = *o.push;
  const int64_t v = push.doc.version;
  int64_t highest = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    highest = record_.highest_version;
  }
  if (v <= highest) {
    files_.ClearMarker();
    if (v == highest) {
      spdlog::debug("fleet: version {} already handled", v);  // a retained redelivery
      return;
    }
    // Valid (and, with a key, signed) but older: a replay.
    const std::string why = fmt::format("version: {} is older than version {} already seen (a replay?)", v, highest);
    spdlog::error("fleet: push rejected: {}", why);
    Report(v, "rejected", {why});
    return;
  }
  // Durable before it runs: a crash from here on restarts into last-good.toml.
  if (Status st = files_.WriteApplied(push.toml); !st.ok()) {
    files_.ClearMarker();
    Report(v, "rejected", {"cannot store the configuration: " + st.ToString()});
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    record_.highest_version = v;  // only a push that passed validation moves it
  }
  Record("applying", v, {});
  spdlog::info("fleet: applying version {} ({} sources, {} sinks); health window {} ms", v, push.config.sources.size(),
               push.config.sinks.size(), local_.fleet.health_window_ns / 1'000'000);
  candidate_toml_ = push.toml;
  const Status applied = host_.apply(push.config);
  files_.ClearMarker();  // applied without dying; the health window covers the rest
  window_end_ns_ = now_ns + local_.fleet.health_window_ns;
  if (!applied.ok()) {
    spdlog::error("fleet: version {} did not start: {}", v, applied.ToString());
    window_end_ns_ = now_ns;  // roll back at once
    EndHealthWindow();
    return;
  }
  Report(v, "applying", {});
}

void FleetManager::Record(const std::string& status, int64_t version, std::vector<std::string> errors) {
  std::lock_guard<std::mutex> l(mu_);
  record_.status = status;
  record_.status_version = version;
  record_.errors = std::move(errors);
  record_.pending_version = status == "applying" ? version : 0;
  if (status == "applied") record_.applied_version = version;
  record_.time_ns = SystemClock().NowNs();
  (void)files_.Save(record_);
}

std::vector<std::string> FleetManager::Unhealthy(const AgentStats& s) {
  std::vector<std::string> problems;
  if (s.sources.empty() && s.sinks.empty()) problems.push_back("the configuration has no sources and no sinks");
  for (const auto& [name, src] : s.sources) {
    if (!src.connected) {
      problems.push_back(fmt::format("source {}: not connected{}", name, src.last_error.empty() ? "" : ": " + src.last_error));
    }
  }
  for (const auto& [name, snk] : s.sinks) {
    if (snk.state != SinkState::kOnline || snk.consecutive_failures > 0) {
      problems.push_back(fmt::format("sink {}: {}{}", name, SinkStateName(snk.state),
                                     snk.last_error.empty() ? "" : ": " + snk.last_error));
    }
  }
  return problems;
}

void FleetManager::EndHealthWindow() {
  window_end_ns_ = 0;
  const int64_t v = record_.pending_version;
  auto problems = Unhealthy(host_.stats());
  if (problems.empty()) {
    Record("applied", v, {});
    (void)files_.WriteLastGood(candidate_toml_);
    running_toml_ = candidate_toml_;
    spdlog::info("fleet: version {} applied and healthy", v);
    Report(v, "applied", {});
    return;
  }
  spdlog::error("fleet: version {} is not healthy; rolling back:", v);
  for (const auto& p : problems) spdlog::error("  {}", p);
  const std::string good = files_.ReadLastGood();
  ConfigErrors errors;
  auto previous = ParseConfig(good.empty() ? running_toml_ : good, "last-good.toml", &errors);
  if (previous.ok()) {
    if (Status st = host_.apply(*previous); !st.ok()) problems.push_back("rollback: " + st.ToString());
    (void)files_.WriteApplied(good.empty() ? running_toml_ : good);
  } else {
    problems.push_back("rollback: the last-known-good configuration does not validate: " + errors.Join());
  }
  Record("rolled_back", v, problems);
  Report(v, "rolled_back", problems);
}

void FleetManager::Report(int64_t version, const std::string& status, const std::vector<std::string>& errors) {
  std::string time;
  AppendRfc3339Ns(SystemClock().NowNs(), &time);
  nlohmann::json j = {{"gateway_id", local_.gateway_id}, {"version", version},
                      {"status", status},                {"errors", errors},
                      {"time", time},                    {"applied_version", record().applied_version}};
  if (!channel_) return;
  if (Status st = channel_->Publish(reported_topic_, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), /*retained=*/true); !st.ok()) {
    spdlog::warn("fleet: could not report {} of version {}: {}", status, version, st.ToString());
  }
}

}  // namespace edgeferry::agent
