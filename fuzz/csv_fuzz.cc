// CSV rows from a serial device -> a JSON object per row. Options come from the first
// bytes, then lines follow (the first is the header unless columns are configured).
// Every accepted row must be a strict JSON object with one member per distinct column.
#include <set>

#include "edgeferry/drivers/envelope.h"
#include "edgeferry/drivers/serial/frame_parser.h"
#include "fuzz_check.h"

namespace serial = edgeferry::drivers::serial;
using edgeferry::fuzz::Excerpt;
using edgeferry::fuzz::Input;
using edgeferry::fuzz::StrictJsonError;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t flags = in.Byte();
  serial::CsvOptions opt;
  static constexpr char kSeparators[] = {',', ';', '\t', '|'};
  opt.separator = kSeparators[flags & 3];
  opt.decimal_comma = (flags & 4) && opt.separator != ',';
  if (flags & 8) {  // configured columns instead of a header line
    const int n = 1 + in.Byte() % 8;
    for (int i = 0; i < n; ++i) opt.columns.emplace_back(in.Until('\n', 16));
  }
  auto parser = serial::MakeCsvParser(opt);
  std::set<std::string> columns(opt.columns.begin(), opt.columns.end());
  bool have_header = !opt.columns.empty();
  while (in.size() > 0) {
    const std::string_view line = in.Until('\n', 4096);
    const serial::ParsedFrame p = parser->Parse(line);
    if (p.skip) {
      FUZZ_CHECK(opt.columns.empty(), "skipped a row although columns are configured");
      have_header = true;
      continue;
    }
    FUZZ_CHECK(have_header, "a data row before any header");
    if (!p.error.ok()) {
      FUZZ_CHECK(!p.error.message().empty(), "a rejected row carries no reason");
      continue;
    }
    FUZZ_CHECK(p.content_type == edgeferry::ContentType::kJson, "a row is not content type json");
    // Issue 12, item 8: a cell that is not UTF-8 makes the row a dead letter, not a marker string.
    FUZZ_CHECK(edgeferry::drivers::IsValidUtf8(line), "accepted a row that is not UTF-8: %s", Excerpt(line).c_str());
    const std::string why = StrictJsonError(p.payload);
    FUZZ_CHECK(why.empty(), "row \"%s\" became invalid JSON (%s): %s", Excerpt(line).c_str(), why.c_str(),
               Excerpt(p.payload).c_str());
    const auto j = nlohmann::json::parse(p.payload);
    FUZZ_CHECK(j.is_object(), "a row is not a JSON object");
    if (!opt.columns.empty()) {
      FUZZ_CHECK(j.size() == columns.size(), "row has %zu members for %zu distinct columns", j.size(),
                 columns.size());
    }
  }
  return 0;
}
