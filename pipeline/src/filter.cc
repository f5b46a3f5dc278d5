#include <algorithm>

#include "edgeferry/pipeline/route.h"
#include "json_field.h"
#include "processors.h"

namespace edgeferry::pipeline {

namespace {
// Compares like with like: numbers as numbers, strings as strings, bools for == and !=.
bool Compare(const nlohmann::json& v, FilterConfig::Op op, const nlohmann::json& want) {
  using Op = FilterConfig::Op;
  if (op == Op::kExists) return true;
  int cmp = 0;
  if (v.is_number() && want.is_number()) {
    const double a = v.get<double>(), b = want.get<double>();
    cmp = a < b ? -1 : a > b ? 1 : 0;
  } else if (v.is_string() && want.is_string()) {
    cmp = v.get_ref<const std::string&>().compare(want.get_ref<const std::string&>());
  } else if (v.is_boolean() && want.is_boolean() && (op == Op::kEq || op == Op::kNe)) {
    cmp = v.get<bool>() == want.get<bool>() ? 0 : 1;
  } else {
    return op == Op::kNe;  // different kinds are never equal, never ordered
  }
  switch (op) {
    case Op::kEq: return cmp == 0;
    case Op::kNe: return cmp != 0;
    case Op::kLt: return cmp < 0;
    case Op::kLe: return cmp <= 0;
    case Op::kGt: return cmp > 0;
    case Op::kGe: return cmp >= 0;
    case Op::kExists: break;
  }
  return true;
}

class Filter final : public Processor {
 public:
  explicit Filter(FilterConfig c) : c_(std::move(c)) {}
  Result<Verdict> Process(Record& r, RecordJson& json, int64_t) override {
    return Matches(r, json) != c_.drop ? Verdict::kPass : Verdict::kDrop;
  }

 private:
  bool Matches(const Record& r, RecordJson& json) const {
    if (!c_.channels.empty() &&
        std::none_of(c_.channels.begin(), c_.channels.end(), [&](const auto& f) { return TopicMatches(f, r.channel); })) {
      return false;
    }
    if (c_.content_type && json.content_type() != *c_.content_type) return false;
    if (!c_.field) return true;
    const nlohmann::json* doc = json.Get();
    if (doc == nullptr) return false;
    const nlohmann::json* v = Find(*doc, *c_.field);
    return v != nullptr && Compare(*v, c_.op, c_.value);
  }
  const FilterConfig c_;
};
}  // namespace

std::unique_ptr<Processor> MakeFilter(FilterConfig c) { return std::make_unique<Filter>(std::move(c)); }

}  // namespace edgeferry::pipeline
