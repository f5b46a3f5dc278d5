#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "edgeferry/pipeline/processor.h"
#include "edgeferry/pipeline/route.h"
#include "json_field.h"
#include "processors.h"

namespace edgeferry::pipeline {

std::string ProcessorTypeName(const ProcessorConfig& c) {
  if (std::holds_alternative<FilterConfig>(c)) return "filter";
  if (std::holds_alternative<DeadbandConfig>(c)) return "deadband";
  if (std::holds_alternative<SampleConfig>(c)) return "sample";
  if (std::holds_alternative<AggregateConfig>(c)) return "aggregate";
  if (std::holds_alternative<ParseConfig>(c)) return "parse";
  switch (std::get<FieldsConfig>(c).kind) {
    case FieldsConfig::Kind::kSet: return "set";
    case FieldsConfig::Kind::kRename: return "rename";
    case FieldsConfig::Kind::kDrop: return "drop_fields";
    case FieldsConfig::Kind::kSelect: return "select";
  }
  return "?";
}

const std::vector<std::string>& ProcessorScope(const ProcessorConfig& c) {
  static const std::vector<std::string> kNone;
  return std::visit(
      [](const auto& v) -> const std::vector<std::string>& {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, FilterConfig>) {
          return kNone;
        } else {
          return v.scope;
        }
      },
      c);
}

std::unique_ptr<Processor> MakeProcessor(const ProcessorConfig& config) {
  return std::visit(
      [](const auto& c) -> std::unique_ptr<Processor> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, FilterConfig>) return MakeFilter(c);
        if constexpr (std::is_same_v<T, FieldsConfig>) return MakeFields(c);
        if constexpr (std::is_same_v<T, DeadbandConfig>) return MakeDeadband(c);
        if constexpr (std::is_same_v<T, SampleConfig>) return MakeSample(c);
        if constexpr (std::is_same_v<T, AggregateConfig>) return MakeAggregate(c);
        if constexpr (std::is_same_v<T, ParseConfig>) return MakeParse(c);
      },
      config);
}

Pipeline::Pipeline(const std::vector<ProcessorConfig>& configs) {
  for (const auto& c : configs) {
    stages_.push_back(Stage{MakeProcessor(c), ProcessorStats{ProcessorTypeName(c)}, ProcessorScope(c)});
  }
}

Result<bool> Pipeline::Run(Record& record, int64_t mono_ns) { return RunFrom(0, record, mono_ns); }

Result<bool> Pipeline::Rerun(Record& record, int64_t mono_ns) { return RunFrom(0, record, mono_ns, false); }

bool Pipeline::Stateless(const ProcessorConfig& c) {
  return std::holds_alternative<FilterConfig>(c) || std::holds_alternative<FieldsConfig>(c) ||
         std::holds_alternative<ParseConfig>(c);
}

Pipeline::Emitted Pipeline::Expire(int64_t mono_ns) {
  Emitted e;
  for (size_t i = 0; i < stages_.size(); ++i) {
    std::vector<Record> made;
    stages_[i].processor->Expire(mono_ns, &made);
    stages_[i].stats.emitted += made.size();
    for (auto& r : made) {
      auto keep = RunFrom(i + 1, r, mono_ns);
      if (!keep.ok()) {
        e.failed.emplace_back(std::move(r), keep.status().message());
      } else if (*keep) {
        e.store.push_back(std::move(r));
      }
    }
  }
  return e;
}

const nlohmann::json* RecordJson::Get() {
  if (!parsed_) {
    parsed_ = true;
    if (record_.content_type == ContentType::kJson && JsonDepthWithin(record_.payload, kMaxPayloadDepth)) {
      auto j = nlohmann::json::parse(record_.payload, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) doc_ = std::move(j);
    }
  }
  return doc_ ? &*doc_ : nullptr;
}

void RecordJson::Replace(nlohmann::json doc) {
  doc_ = std::move(doc);
  parsed_ = true;
  changed_ = true;
}

nlohmann::json* RecordJson::Mutable() {
  if (Get() == nullptr) return nullptr;
  changed_ = true;
  return &*doc_;
}

void RecordJson::CommitTo(Record& record) {
  if (!changed_) return;
  record.payload = doc_->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  record.content_type = ContentType::kJson;
  changed_ = false;
}

Result<bool> Pipeline::RunFrom(size_t first, Record& record, int64_t mono_ns, bool count) {
  RecordJson json(record);
  for (size_t i = first; i < stages_.size(); ++i) {
    Stage& s = stages_[i];
    if (!s.scope.empty() &&
        std::none_of(s.scope.begin(), s.scope.end(), [&](const auto& f) { return TopicMatches(f, record.channel); })) {
      continue;  // not this processor's channel: on to the next one, uncounted
    }
    const uint64_t n = count ? 1 : 0;
    s.stats.in += n;
    Result<Verdict> v = Verdict::kPass;
    try {
      v = s.processor->Process(record, json, mono_ns);
    } catch (const std::exception& e) {  // a bug in a processor must not stop the source
      v = Status::InvalidArgument(std::string("threw: ") + e.what());
    }
    if (!v.ok()) {
      s.stats.failed += n;
      return Status::InvalidArgument(fmt::format("processor {} ({}): {}", i, s.stats.type, v.status().message()));
    }
    if (*v == Verdict::kDrop) {
      s.stats.dropped += n;
      return false;
    }
    s.stats.out += n;
  }
  json.CommitTo(record);
  return true;
}

std::vector<ProcessorStats> Pipeline::Stats() const {
  std::vector<ProcessorStats> out;
  for (const auto& s : stages_) out.push_back(s.stats);
  return out;
}

nlohmann::json Pipeline::SaveState(int64_t mono_ns) const {
  nlohmann::json j;
  for (size_t i = 0; i < stages_.size(); ++i) {
    auto st = stages_[i].processor->SaveState(mono_ns);
    if (!st.is_null()) j[fmt::format("{}:{}", i, stages_[i].stats.type)] = std::move(st);
  }
  return j;
}

std::vector<std::string> Pipeline::LoadState(const nlohmann::json& state, int64_t mono_ns) {
  std::vector<std::string> untaken;
  if (!state.is_object()) return untaken;
  std::set<std::string> taken;
  for (size_t i = 0; i < stages_.size(); ++i) {
    // Keyed by position and type: a reordered or changed pipeline does not get stale state.
    const std::string key = fmt::format("{}:{}", i, stages_[i].stats.type);
    const auto it = state.find(key);
    if (it == state.end()) continue;
    taken.insert(key);
    try {
      stages_[i].processor->LoadState(*it, mono_ns);
    } catch (const std::exception&) {  // a damaged file loses that processor's state, nothing more
    }
  }
  for (const auto& [key, value] : state.items()) {
    if (!taken.count(key)) untaken.push_back(key);
  }
  return untaken;
}

}  // namespace edgeferry::pipeline
