// Processors (pipeline/) on any payload a source may store: never a crash or an
// exception; a record a reshape handed on is a JSON object; a drop or a failure is
// counted exactly once.
#include "edgeferry/pipeline/processor.h"
#include "fuzz_check.h"

namespace pl = edgeferry::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte: content type and which pipeline; the rest: the payload.
  const auto ct = static_cast<edgeferry::ContentType>(data[0] % 5);
  const std::string payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  pl::FilterConfig filter;
  filter.field = pl::ParseFieldPath("a.b");
  filter.op = static_cast<pl::FilterConfig::Op>((data[0] >> 3) % 7);
  filter.value = (data[0] & 0x80) ? nlohmann::json("x") : nlohmann::json(1.5);
  const std::vector<pl::ProcessorConfig> stages = {
      filter,
      pl::FieldsConfig{pl::FieldsConfig::Kind::kRename, {}, {{"a", "b"}}, {}},
      pl::FieldsConfig{pl::FieldsConfig::Kind::kSet, {{"site", "x"}}, {}, {}},
      pl::DeadbandConfig{*pl::ParseFieldPath("b.c"), 0.5, 1, 1000},
      pl::SampleConfig{2, 0},
      pl::FieldsConfig{pl::FieldsConfig::Kind::kSelect, {}, {}, {"b", "site"}},
  };
  const size_t first = (data[0] >> 4) % stages.size();  // start somewhere: not every record passes the filter
  pl::Pipeline p(std::vector<pl::ProcessorConfig>(stages.begin() + static_cast<long>(first), stages.end()));
  for (int64_t t = 0; t < 3; ++t) {  // again: the deadband and sample keep state
    edgeferry::Record r{t, "s", "c/" + std::to_string(size % 3), ct, payload};
    const auto out = p.Run(r, t * 600);
    if (out.ok() && *out) {
      const auto j = nlohmann::json::parse(r.payload, nullptr, false);
      FUZZ_CHECK(j.is_object(), "a reshaped record handed on is not a JSON object: %s", r.payload.substr(0, 200).c_str());
    }
    if (!out.ok()) FUZZ_CHECK(!out.status().message().empty(), "a failure without a reason");
  }
  uint64_t in = 0, accounted = 0;
  for (const auto& st : p.Stats()) {
    FUZZ_CHECK(st.in == st.out + st.dropped + st.failed, "processor %s: in %llu != out + dropped + failed",
               st.type.c_str(), static_cast<unsigned long long>(st.in));
    in += st.in;
    accounted += st.out + st.dropped + st.failed;
  }
  FUZZ_CHECK(in == accounted, "counts do not add up");
  return 0;
}
