#include "edgeferry/drivers/mqtt/mqtt_settings.h"

#include <fmt/format.h>

#include "edgeferry/redact.h"
#include "edgeferry/settings/common_keys.h"

namespace edgeferry::drivers {

using settings::kMs;
using settings::kSec;
using settings::TableReader;

namespace {

bool IsTlsUri(const std::string& uri) {
  return uri.starts_with("ssl://") || uri.starts_with("mqtts://") || uri.starts_with("wss://");
}

// MQTT 3.1.1 4.7.1: '#' only last and alone in its level; '+' alone in its level.
bool ValidTopicFilter(const std::string& f) {
  bool ok = !f.empty() && f.size() <= 65535;
  for (size_t p = 0; ok && p < f.size(); ++p) {
    if (f[p] == '#') ok = p + 1 == f.size() && (p == 0 || f[p - 1] == '/');
    if (f[p] == '+') ok = (p == 0 || f[p - 1] == '/') && (p + 1 == f.size() || f[p + 1] == '/');
  }
  return ok;
}

void ReadSubscriptions(TableReader& r, int default_qos, std::vector<MqttSubscription>* out) {
  const toml::node* topics = r.Node("topics");
  if (!topics) {
    r.Error("topics", "is required (a list of topic filters, e.g. [\"sensors/#\"])");
    return;
  }
  if (!topics->is_array() || topics->as_array()->empty()) {
    r.Error("topics", "must be a non-empty list of topic filters");
    return;
  }
  size_t i = 0;
  for (const auto& t : *topics->as_array()) {
    const std::string key = fmt::format("topics[{}]", i++);
    MqttSubscription sub{"", default_qos};
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
    if (!ValidTopicFilter(sub.filter)) {
      r.Error(key, fmt::format("\"{}\" is not a valid MQTT topic filter", sub.filter));
      continue;
    }
    out->push_back(sub);
  }
}

}  // namespace

void CheckMqttUri(TableReader& r, const std::string& uri) {
  for (const char* scheme : {"tcp://", "ssl://", "mqtt://", "mqtts://", "ws://", "wss://"}) {
    if (uri.starts_with(scheme)) {
      if (const std::string problem = settings::AuthorityProblem(uri, /*allow_userinfo=*/false); !problem.empty()) {
        r.Error("uri", problem);
      }
      return;
    }
  }
  r.Error("uri", fmt::format("must start with tcp://, ssl://, mqtt://, mqtts://, ws:// or wss:// (got \"{}\")",
                             RedactUrl(uri)));
}

std::optional<MqttUplinkTls> ReadMqttTls(TableReader& r, const std::string& uri, bool allow_alpn) {
  const bool has_tls = r.Has("tls");
  if (has_tls && !IsTlsUri(uri)) r.Error("tls", "is set but uri does not start with ssl://, mqtts:// or wss://");
  if (!has_tls && !IsTlsUri(uri)) return std::nullopt;
  TableReader tr(r.Table("tls"), r.Key("tls"), r.errors());
  MqttUplinkTls tls;
  settings::ReadTlsFiles(tr, &tls);
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

MqttSourceConfig MqttSourceType::Read(TableReader& r, const settings::Context& ctx) {
  MqttSourceConfig m;
  m.name = ctx.name;
  m.uri = r.String("uri", "tcp://127.0.0.1:1883");
  CheckMqttUri(r, m.uri);
  m.client_id = r.String("client_id", "edgeferry-" + ctx.gateway_id + "-" + ctx.name);
  if (m.client_id.empty() || m.client_id.size() > 128) r.Error("client_id", "must be 1 to 128 characters");
  ReadSubscriptions(r, r.Int<int>("qos", 1, 0, 2), &m.subscriptions);
  m.clean_session = r.Bool("clean_session", true);
  m.mqtt_version = r.Enum("mqtt_version", "3.1.1", {"3.1.1", "5"}) == "5" ? 5 : 4;
  m.username = r.String("username", "");
  m.password = settings::SecretFromFile(r, "password_file");
  m.keepalive_s = static_cast<int>(r.Duration("keepalive", 30 * kSec, kSec, 3600 * kSec) / kSec);
  m.reconnect_min_ns = r.Duration("reconnect_min", m.reconnect_min_ns, 10 * kMs, 3600 * kSec);
  m.reconnect_max_ns = r.Duration("reconnect_max", m.reconnect_max_ns, 10 * kMs, 3600 * kSec);
  if (m.reconnect_max_ns < m.reconnect_min_ns) r.Error("reconnect_max", "must not be below reconnect_min");
  m.max_record_bytes = r.Bytes("max_record_bytes", m.max_record_bytes, 1, 256ull << 20);
  const std::string ct = r.Enum("content_type", "auto", {"auto", "json", "text", "csv", "nmea", "binary"});
  if (ct != "auto") m.content_type = ParseContentType(ct);
  if (auto tls = ReadMqttTls(r, m.uri, /*allow_alpn=*/false)) m.tls = static_cast<MqttTls>(*tls);
  return m;
}

SourcePtr MqttSourceType::Make(const Config& config, Ingest& ingest) {
  return std::make_unique<MqttSource>(config, ingest);
}

MqttUplinkSinkConfig MqttUplinkSinkType::Read(TableReader& r, const settings::Context& ctx, const BatchPolicy& batch) {
  MqttUplinkSinkConfig m;
  m.name = ctx.name;
  m.gateway_id = ctx.gateway_id;
  m.batch = batch;
  m.uri = r.String("uri", "", /*required=*/true);
  if (!m.uri.empty()) CheckMqttUri(r, m.uri);
  m.client_id = r.String("client_id", "edgeferry-" + ctx.gateway_id + "-" + ctx.name);
  m.mqtt_version = r.Enum("mqtt_version", "3.1.1", {"3.1.1", "5"}) == "5" ? 5 : 4;
  m.qos = r.Int<int>("qos", 1, 0, 2);
  m.topic = r.String("topic", m.topic);
  CheckTemplate(r, "topic", m.topic);
  if (m.topic.find_first_of("#+") != std::string::npos) r.Error("topic", "must not contain the wildcards # or +");
  m.raw_payload = ReadPayloadMode(r);
  m.username = r.String("username", "");
  m.password = settings::SecretFromFile(r, "password_file");
  m.keepalive_s = static_cast<int>(r.Duration("keepalive", 30 * kSec, kSec, 3600 * kSec) / kSec);
  m.connect_timeout_ns = r.Duration("connect_timeout", m.connect_timeout_ns, 100 * kMs, 600 * kSec);
  m.publish_timeout_ns = r.Duration("publish_timeout", m.publish_timeout_ns, 100 * kMs, 3600 * kSec);
  m.max_inflight = r.Int<int>("max_inflight", 100, 1, 65535);
  m.tls = ReadMqttTls(r, m.uri, /*allow_alpn=*/true);
  // MQTT's own ceiling is a 256 MiB packet; each record is one message, so no batch limit.
  m.limits.max_record_bytes = r.Bytes("max_record_bytes", m.limits.max_record_bytes, 1, 268'435'455);
  return m;
}

SinkPtr MqttUplinkSinkType::Make(const Config& config) { return std::make_unique<MqttUplinkSink>(config); }

}  // namespace edgeferry::drivers
