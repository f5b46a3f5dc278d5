// The TOML configuration reader on arbitrary text (a local file, or a fleet push after
// EffectiveConfig). It must return a config or name what is wrong, never throw or
// crash, and what it accepts must be within the documented ranges (issue 12, item 15:
// integer keys are range-checked, no wrap-around).
#include <unistd.h>

#include "edgeferry/agent/config.h"
#include "fuzz_check.h"

namespace agent = edgeferry::agent;
using edgeferry::fuzz::Excerpt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  agent::ConfigErrors errors;
  const auto cfg = agent::ParseConfig(text, "fuzz.toml", &errors);
  if (!cfg.ok()) {
    FUZZ_CHECK(!errors.errors.empty() || !cfg.status().message().empty(), "rejected without a reason");
    for (const auto& e : errors.errors) FUZZ_CHECK(!e.empty(), "an empty error message");
    return 0;
  }
  FUZZ_CHECK(errors.errors.empty(), "accepted with %zu errors: %s", errors.errors.size(), errors.Join().c_str());
  const std::string& id = cfg->gateway_id;
  FUZZ_CHECK(!id.empty() && id.size() <= 64 &&
                 id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
                     std::string::npos,
             "gateway.id \"%s\" accepted", Excerpt(id).c_str());
  FUZZ_CHECK(cfg->metrics_port >= 0 && cfg->metrics_port <= 65535, "metrics port %d accepted", cfg->metrics_port);
  for (const auto& s : cfg->sources) {
    if (const auto* m = s.As<edgeferry::drivers::MqttSourceConfig>()) {
      for (const auto& sub : m->subscriptions) {
        FUZZ_CHECK(sub.qos >= 0 && sub.qos <= 2, "source %s: qos %d accepted", s.name.c_str(), sub.qos);
      }
    }
    if (const auto* c = s.As<edgeferry::drivers::serial::SerialSourceConfig>()) {
      FUZZ_CHECK(c->framing.max_frame_bytes >= 1, "source %s: max_frame_bytes 0 accepted", s.name.c_str());
    }
  }
  for (const auto& s : cfg->sinks) {
    if (const auto* m = s.As<edgeferry::drivers::MqttUplinkSinkConfig>()) {
      FUZZ_CHECK(m->qos >= 0 && m->qos <= 2, "sink %s: qos %d accepted", s.name.c_str(), m->qos);
    }
  }
  return 0;
}
