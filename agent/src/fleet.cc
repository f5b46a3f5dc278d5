#include "edgeferry/agent/fleet.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config_table.h"
#include "edgeferry/clock.h"
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

// JSON documents map onto the same keys as TOML: objects are tables.
bool JsonToToml(const nlohmann::json& j, toml::table* out, const std::string& path, std::vector<std::string>* errors);

std::unique_ptr<toml::node> JsonValue(const nlohmann::json& v, const std::string& path, std::vector<std::string>* errors) {
  if (v.is_object()) {
    auto t = std::make_unique<toml::table>();
    JsonToToml(v, t.get(), path, errors);
    return t;
  }
  if (v.is_array()) {
    auto a = std::make_unique<toml::array>();
    for (size_t i = 0; i < v.size(); ++i) {
      if (auto n = JsonValue(v[i], fmt::format("{}[{}]", path, i), errors)) a->push_back(std::move(*n));
    }
    return a;
  }
  if (v.is_string()) return std::make_unique<toml::value<std::string>>(v.get<std::string>());
  if (v.is_boolean()) return std::make_unique<toml::value<bool>>(v.get<bool>());
  if (v.is_number_integer()) return std::make_unique<toml::value<int64_t>>(v.get<int64_t>());
  if (v.is_number_float()) return std::make_unique<toml::value<double>>(v.get<double>());
  errors->push_back(path + ": null and other JSON values without a TOML equivalent are not allowed");
  return nullptr;
}

bool JsonToToml(const nlohmann::json& j, toml::table* out, const std::string& path, std::vector<std::string>* errors) {
  for (const auto& [k, v] : j.items()) {
    const std::string p = path.empty() ? k : path + "." + k;
    if (auto n = JsonValue(v, p, errors)) {
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
  std::vector<std::string> all = {"fleet", "gateway.id", "gateway.data_dir"};
  all.insert(all.end(), pinned.begin(), pinned.end());
  return all;
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
  if (!j.is_object() || !JsonToToml(j, &t, "", &errors->errors)) {
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

Result<FleetDocument> DecodePush(std::string_view payload, const std::string& public_key_pem) {
  FleetDocument doc;
  const size_t first = payload.find_first_not_of(" \t\r\n");
  const bool json = first != std::string_view::npos && payload[first] == '{';
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
  if (!errors->errors.empty()) return Status::InvalidArgument(errors->Join());
  return ToText(*pushed);
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
  std::filesystem::create_directories(dir_, ec);
  const std::string path = dir_ + "/" + name, tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Status::IOError(fmt::format("{}: {}", tmp, std::strerror(errno)));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      ::close(fd);
      return Status::IOError(fmt::format("{}: {}", tmp, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IOError(fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

namespace {
std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

FleetRecord FleetFiles::Load() const {
  FleetRecord r;
  const auto j = nlohmann::json::parse(Slurp(dir_ + "/state.json"), nullptr, false);
  if (!j.is_object()) return r;
  r.applied_version = j.value("applied_version", int64_t{0});
  r.highest_version = j.value("highest_version", int64_t{0});
  r.pending_version = j.value("pending_version", int64_t{0});
  r.status = j.value("status", std::string());
  r.status_version = j.value("status_version", int64_t{0});
  r.errors = j.value("errors", std::vector<std::string>{});
  r.time_ns = j.value("time_ns", int64_t{0});
  return r;
}

Status FleetFiles::Save(const FleetRecord& r) const {
  nlohmann::json j = {{"applied_version", r.applied_version}, {"highest_version", r.highest_version},
                      {"pending_version", r.pending_version}, {"status", r.status},
                      {"status_version", r.status_version},   {"errors", r.errors},
                      {"time_ns", r.time_ns}};
  return WriteAtomically("state.json", j.dump(2) + "\n");
}

Status FleetFiles::WriteApplied(std::string_view toml) const { return WriteAtomically("applied.toml", toml); }
Status FleetFiles::WriteLastGood(std::string_view toml) const { return WriteAtomically("last-good.toml", toml); }
std::string FleetFiles::ReadApplied() const { return Slurp(dir_ + "/applied.toml"); }
std::string FleetFiles::ReadLastGood() const { return Slurp(dir_ + "/last-good.toml"); }

// ---- startup ----

Result<StartupConfig> SelectStartupConfig(const std::string& local_path, bool ignore_applied, ConfigErrors* errors) {
  StartupConfig out;
  auto local = LoadConfigFile(local_path, errors);
  if (!local.ok()) return local.status();
  out.local = std::move(local).value();
  out.local_toml = Slurp(local_path);
  out.config = out.local;
  out.toml = out.local_toml;
  out.origin = local_path;
  const auto& fleet = out.local.fleet;
  if (!fleet.enabled || !fleet.use_applied || ignore_applied) return out;
  FleetFiles files(out.config.data_dir + "/fleet");
  FleetRecord rec = files.Load();
  std::string stored = files.ReadApplied();
  int64_t version = rec.applied_version;
  if (rec.pending_version != 0) {
    // The process ended inside a health window: that push never proved itself.
    spdlog::warn("fleet: version {} was still in its health window when the agent stopped; "
                 "starting the last-known-good configuration", rec.pending_version);
    stored = files.ReadLastGood();
    rec.status = "rolled_back";
    rec.status_version = rec.pending_version;
    rec.errors = {"the agent restarted during the health window"};
    rec.time_ns = SystemClock().NowNs();
    rec.pending_version = 0;
    (void)files.Save(rec);
    (void)files.WriteApplied(stored);
  }
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
      files_(local_.data_dir + "/fleet") {
  record_ = files_.Load();
  const std::string base = local_.fleet.topic_prefix + "/" + local_.gateway_id + "/config/";
  desired_topic_ = base + "desired";
  reported_topic_ = base + "reported";
  // The configuration running now is the one to return to until a push proves itself.
  if (files_.ReadLastGood().empty()) (void)files_.WriteLastGood(running_toml_);
}

FleetManager::~FleetManager() { Stop(); }

void FleetManager::Start() {
  channel_ = std::make_unique<drivers::MqttControlChannel>(
      local_.fleet.link, desired_topic_, [this](const std::string&, const std::string& payload) {
        {
          std::lock_guard<std::mutex> l(mu_);
          queue_.push_back(payload);
          if (queue_.size() > 8) queue_.pop_front();  // only the newest matter
        }
        if (host_.wake) host_.wake();
      });
  channel_->Start();
  spdlog::info("fleet: configuration pushes on {} (health window {} ms{})", desired_topic_,
               local_.fleet.health_window_ns / 1'000'000,
               local_.fleet.public_key_pem.empty() ? "" : ", Ed25519 signatures required");
}

void FleetManager::Stop() {
  if (channel_) channel_->Stop();
}

FleetRecord FleetManager::record() const {
  std::lock_guard<std::mutex> l(mu_);
  return record_;
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
  std::string payload;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (queue_.empty()) return;
    payload = std::move(queue_.back());  // the newest; older queued ones are superseded
    queue_.clear();
  }
  Handle(payload, now_ns);
}

void FleetManager::Handle(const std::string& payload, int64_t now_ns) {
  auto doc = DecodePush(payload, local_.fleet.public_key_pem);
  if (!doc.ok()) {
    spdlog::error("fleet: push rejected: {}", doc.status().message());
    Report(0, "rejected", {std::string(doc.status().message())});
    return;
  }
  const int64_t v = doc->version;
  int64_t highest = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    highest = record_.highest_version;
    if (v > highest) record_.highest_version = v;
  }
  if (v == highest) {
    spdlog::debug("fleet: version {} already handled", v);  // a retained redelivery
    return;
  }
  if (v < highest) {
    const std::string why = fmt::format("version: {} is older than version {} already seen (a replay?)", v, highest);
    spdlog::error("fleet: push rejected: {}", why);
    Report(v, "rejected", {why});
    return;
  }
  ConfigErrors errors;
  auto effective = EffectiveConfig(*doc, local_toml_, local_.fleet.pinned, &errors);
  auto cfg = effective.ok() ? ParseConfig(*effective, fmt::format("push version {}", v), &errors)
                            : Result<AgentConfig>(effective.status());
  if (!cfg.ok()) {
    spdlog::error("fleet: version {} rejected:", v);
    for (const auto& e : errors.errors) spdlog::error("  {}", e);
    Record("rejected", v, errors.errors);
    Report(v, "rejected", errors.errors);
    return;
  }
  // Durable before it runs: a crash from here on restarts into last-good.toml.
  if (Status st = files_.WriteApplied(*effective); !st.ok()) {
    Report(v, "rejected", {"cannot store the configuration: " + st.ToString()});
    return;
  }
  Record("applying", v, {});
  spdlog::info("fleet: applying version {} ({} sources, {} sinks); health window {} ms", v, cfg->sources.size(),
               cfg->sinks.size(), local_.fleet.health_window_ns / 1'000'000);
  candidate_toml_ = *effective;
  const Status applied = host_.apply(*cfg);
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
  if (Status st = channel_->Publish(reported_topic_, j.dump(), /*retained=*/true); !st.ok()) {
    spdlog::warn("fleet: could not report {} of version {}: {}", status, version, st.ToString());
  }
}

}  // namespace edgeferry::agent
