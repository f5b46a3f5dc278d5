// The fleet push reader: a retained MQTT message anyone with publish rights on the
// desired topic can send (JSON, TOML or a signed envelope), decoded with DecodePush
// and merged with the local file by EffectiveConfig. Invariants: nothing throws or
// crashes; a key installed means only signed pushes pass; what comes out keeps every
// pinned setting of the local file (gateway, data_dir, [fleet]) and, by default,
// [metrics] and the buffer's location (issue 12, item 1 and "what a push may change").
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "edgeferry/agent/config.h"
#include "edgeferry/agent/fleet.h"
#include "fuzz_check.h"

namespace agent = edgeferry::agent;
using edgeferry::fuzz::Excerpt;
using edgeferry::fuzz::Input;

namespace {

constexpr std::string_view kLocal = R"(
[gateway]
id = "gw-local"
data_dir = "/nonexistent/edgeferry-fuzz"
[metrics]
address = "127.0.0.1"
port = 9464
[buffer]
path = "/nonexistent/edgeferry-fuzz/buffer.db"
[fleet]
uri = "tcp://127.0.0.1:1883"
topic_prefix = "fleet-fuzz"
[sources.plant]
type = "mqtt"
uri = "tcp://127.0.0.1:1883"
topics = ["plant/#"]
[sinks.outbox]
type = "outbox"
)";

struct Keys {
  EVP_PKEY* key = nullptr;
  std::string public_pem;
  Keys() {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* p = nullptr;
    const long n = BIO_get_mem_data(bio, &p);
    public_pem.assign(p, static_cast<size_t>(n));
    BIO_free(bio);
  }
  std::string SignBase64(std::string_view text) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned char sig[64];
    size_t len = sizeof sig;
    EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key);
    EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    EVP_MD_CTX_free(ctx);
    unsigned char b64[96];
    const int m = EVP_EncodeBlock(b64, sig, static_cast<int>(len));
    return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(m));
  }
};

const Keys& TheKeys() {
  static const Keys* keys = new Keys();
  return *keys;
}

const agent::AgentConfig& LocalConfig() {
  static const agent::AgentConfig* cfg = [] {
    agent::ConfigErrors errors;
    auto c = agent::ParseConfig(kLocal, "local", &errors);
    FUZZ_CHECK(c.ok(), "the fuzz target's local file is invalid: %s", errors.Join().c_str());
    return new agent::AgentConfig(*c);
  }();
  return *cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t mode = in.Byte() % 3;
  const std::string_view rest = in.Rest();
  std::string payload(rest);
  std::string key;
  if (mode >= 1) key = TheKeys().public_pem;
  if (mode == 2) {  // a push signed by the gateway's key: the document is the input
    nlohmann::json envelope = {{"document", std::string(rest)}, {"signature", TheKeys().SignBase64(rest)}};
    payload = envelope.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (nlohmann::json::parse(payload)["document"].get<std::string>() != rest) return 0;  // not UTF-8
  }
  const auto doc = agent::DecodePush(payload, key);
  if (!doc.ok()) {
    FUZZ_CHECK(!doc.status().message().empty(), "a push rejected without a reason");
    FUZZ_CHECK(mode != 2 || doc.status().message().find("signature") == std::string::npos,
               "a correctly signed push failed its signature check: %s", doc.status().message().c_str());
    return 0;
  }
  FUZZ_CHECK(doc->version >= 1, "version %lld accepted", static_cast<long long>(doc->version));
  FUZZ_CHECK(doc->format == "json" || doc->format == "toml", "format \"%s\"", doc->format.c_str());
  FUZZ_CHECK(key.empty() || doc->is_signed, "an unsigned push passed with a public key installed: %s",
             Excerpt(payload).c_str());
  if (mode == 2) FUZZ_CHECK(doc->is_signed && doc->text == rest, "the signed document changed in decoding");

  agent::ConfigErrors errors;
  const auto effective = agent::EffectiveConfig(*doc, kLocal, {}, &errors);
  if (!effective.ok()) {
    FUZZ_CHECK(!errors.errors.empty() || !effective.status().message().empty(), "rejected without a reason");
    return 0;
  }
  agent::ConfigErrors parse_errors;
  const auto cfg = agent::ParseConfig(*effective, "effective", &parse_errors);
  if (!cfg.ok()) return 0;  // the agent rejects it, naming the key: fine
  const agent::AgentConfig& local = LocalConfig();
  FUZZ_CHECK(cfg->gateway_id == local.gateway_id && cfg->data_dir == local.data_dir,
             "a push changed the gateway id or data_dir: %s", Excerpt(rest).c_str());
  FUZZ_CHECK(cfg->fleet.topic_prefix == local.fleet.topic_prefix && cfg->fleet.enabled == local.fleet.enabled,
             "a push changed [fleet]: %s", Excerpt(rest).c_str());
  FUZZ_CHECK(cfg->metrics_address == local.metrics_address && cfg->metrics_port == local.metrics_port,
             "a push changed [metrics] to %s:%d: %s", cfg->metrics_address.c_str(), cfg->metrics_port,
             Excerpt(rest).c_str());
  FUZZ_CHECK(cfg->buffer.path == local.buffer.path, "a push moved the buffer to %s: %s", cfg->buffer.path.c_str(),
             Excerpt(rest).c_str());
  return 0;
}
