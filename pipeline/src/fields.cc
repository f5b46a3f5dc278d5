#include <fmt/format.h>

#include <set>

#include "json_field.h"
#include "processors.h"

namespace edgeferry::pipeline {

namespace {
class Fields final : public Processor {
 public:
  explicit Fields(FieldsConfig c) : c_(std::move(c)) {}
  Result<Verdict> Process(Record& r, RecordJson& json, int64_t) override {
    const nlohmann::json* peek = json.Get();
    if (peek == nullptr || !peek->is_object()) {
      return Status::InvalidArgument(fmt::format("payload is not a JSON object (content type {})",
                                                 ContentTypeName(r.content_type)));
    }
    nlohmann::json* doc = json.Mutable();
    using Kind = FieldsConfig::Kind;
    switch (c_.kind) {
      case Kind::kSet:
        for (const auto& [name, value] : c_.set) (*doc)[name] = value;
        break;
      case Kind::kRename:
        for (const auto& [from, to] : c_.rename) {
          const auto it = doc->find(from);
          if (it == doc->end()) continue;
          nlohmann::json v = std::move(*it);
          doc->erase(from);
          (*doc)[to] = std::move(v);
        }
        break;
      case Kind::kDrop:
        for (const auto& name : c_.names) doc->erase(name);
        break;
      case Kind::kSelect: {
        nlohmann::json kept = nlohmann::json::object();
        for (const auto& name : c_.names) {
          if (const auto it = doc->find(name); it != doc->end()) kept[name] = std::move(*it);
        }
        *doc = std::move(kept);
        break;
      }
    }
    return Verdict::kPass;
  }

 private:
  const FieldsConfig c_;
};
}  // namespace

std::unique_ptr<Processor> MakeFields(FieldsConfig c) { return std::make_unique<Fields>(std::move(c)); }

}  // namespace edgeferry::pipeline
