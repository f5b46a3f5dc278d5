// The parse processor (pipeline/src/parse.cc) on any text a source may store: never a
// crash, an exception or a hang (RE2 is linear); what it hands on changed is a JSON
// object whose strings are UTF-8 (a dump that must not throw); what it cannot parse
// fails with a reason; the payload of a failed record is left as it came.
#include "edgeferry/pipeline/processor.h"
#include "edgeferry/utf8.h"
#include "fuzz_check.h"

namespace pl = edgeferry::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte: bits 0-1 format, bit 2 through a JSON member ("raw"), bits 3-4 separator.
  const uint8_t flags = data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  pl::ParseConfig c;
  c.format = static_cast<pl::ParseConfig::Format>(flags % 4);
  static const char kSeparators[] = {',', ';', '\t', '|'};
  c.separator = kSeparators[(flags >> 3) % 4];
  c.decimal_comma = c.separator != ',';
  c.columns = {"a", "b", "c"};
  c.pair_separator = (flags & 0x20) ? ';' : 0;
  c.pattern = R"((?P<name>[A-Za-z_]+)\s*[=:]\s*(?P<value>-?[0-9.eE+]+|"[^"]*")(?:\s+(?P<unit>\S+))?)";
  edgeferry::Record r{0, "s", "c", edgeferry::ContentType::kText, text};
  if (flags & 0x04) {
    c.field = pl::ParseFieldPath("raw");
    r.content_type = edgeferry::ContentType::kJson;
    r.payload = nlohmann::json{{"raw", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const std::string before = r.payload;
  pl::Pipeline p({c});
  const auto out = p.Run(r, 0);
  if (!out.ok()) {
    const std::string& why = out.status().message();
    FUZZ_CHECK(!why.empty(), "a failure without a reason");
    // Reasons reach status, metrics and the dead letter queue: UTF-8 and short, whatever
    // the payload was.
    FUZZ_CHECK(edgeferry::IsValidUtf8(why), "a reason that is not UTF-8: %s", why.substr(0, 200).c_str());
    FUZZ_CHECK(why.size() < 1024, "a reason of %zu bytes", why.size());
    FUZZ_CHECK(r.payload == before, "a failed record was changed");
    return 0;
  }
  FUZZ_CHECK(*out, "parse never drops");
  if (r.payload == before) return 0;  // an NMEA sentence other than RMC/GGA
  FUZZ_CHECK(r.content_type == edgeferry::ContentType::kJson, "a parsed record is not JSON");
  const auto j = nlohmann::json::parse(r.payload, nullptr, false);
  FUZZ_CHECK(j.is_object(), "a parsed record is not a JSON object: %s", r.payload.substr(0, 200).c_str());
  try {
    (void)j.dump();  // strict: throws on a string that is not UTF-8
  } catch (const nlohmann::json::exception& e) {
    FUZZ_CHECK(false, "a parsed record holds a string that is not UTF-8: %s", e.what());
  }
  return 0;
}
