// JSON lines from a serial device (format = "json"): a frame is accepted only when it
// is one strict JSON text, which is then stored verbatim as content type json (sinks
// inline it in the envelope without re-checking).
#include "edgeferry/drivers/serial/frame_parser.h"
#include "fuzz_check.h"

namespace serial = edgeferry::drivers::serial;
using edgeferry::fuzz::Excerpt;
using edgeferry::fuzz::StrictJsonError;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto parser = serial::MakeJsonLinesParser();
  const serial::ParsedFrame p = parser->Parse(frame);
  if (!p.error.ok()) {
    FUZZ_CHECK(!p.error.message().empty(), "a rejected frame carries no reason");
    return 0;
  }
  FUZZ_CHECK(!p.skip, "a JSON frame was skipped");
  FUZZ_CHECK(p.content_type == edgeferry::ContentType::kJson, "an accepted frame is not content type json");
  const std::string why = StrictJsonError(p.payload);
  FUZZ_CHECK(why.empty(), "accepted a frame that is not strict JSON (%s): %s", why.c_str(),
             Excerpt(p.payload).c_str());
  return 0;
}
