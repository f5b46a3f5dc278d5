#include <fmt/format.h>

#include "edgeferry/pipeline/processor.h"
#include "processors.h"

namespace edgeferry::pipeline {

std::string ProcessorTypeName(const ProcessorConfig& c) {
  if (std::holds_alternative<FilterConfig>(c)) return "filter";
  if (std::holds_alternative<DeadbandConfig>(c)) return "deadband";
  if (std::holds_alternative<SampleConfig>(c)) return "sample";
  switch (std::get<FieldsConfig>(c).kind) {
    case FieldsConfig::Kind::kSet: return "set";
    case FieldsConfig::Kind::kRename: return "rename";
    case FieldsConfig::Kind::kDrop: return "drop_fields";
    case FieldsConfig::Kind::kSelect: return "select";
  }
  return "?";
}

std::unique_ptr<Processor> MakeProcessor(const ProcessorConfig& config) {
  return std::visit(
      [](const auto& c) -> std::unique_ptr<Processor> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, FilterConfig>) return MakeFilter(c);
        if constexpr (std::is_same_v<T, FieldsConfig>) return MakeFields(c);
        if constexpr (std::is_same_v<T, DeadbandConfig>) return MakeDeadband(c);
        if constexpr (std::is_same_v<T, SampleConfig>) return MakeSample(c);
      },
      config);
}

Pipeline::Pipeline(const std::vector<ProcessorConfig>& configs) {
  for (const auto& c : configs) stages_.push_back(Stage{MakeProcessor(c), ProcessorStats{ProcessorTypeName(c)}});
}

Result<bool> Pipeline::Run(Record& record, int64_t mono_ns) {
  for (size_t i = 0; i < stages_.size(); ++i) {
    Stage& s = stages_[i];
    ++s.stats.in;
    Result<Verdict> v = Verdict::kPass;
    try {
      v = s.processor->Process(record, mono_ns);
    } catch (const std::exception& e) {  // a bug in a processor must not stop the source
      v = Status::InvalidArgument(std::string("threw: ") + e.what());
    }
    if (!v.ok()) {
      ++s.stats.failed;
      return Status::InvalidArgument(fmt::format("processor {} ({}): {}", i, s.stats.type, v.status().message()));
    }
    if (*v == Verdict::kDrop) {
      ++s.stats.dropped;
      return false;
    }
    ++s.stats.out;
  }
  return true;
}

std::vector<ProcessorStats> Pipeline::Stats() const {
  std::vector<ProcessorStats> out;
  for (const auto& s : stages_) out.push_back(s.stats);
  return out;
}

nlohmann::json Pipeline::SaveState() const {
  nlohmann::json j;
  for (size_t i = 0; i < stages_.size(); ++i) {
    auto st = stages_[i].processor->SaveState();
    if (!st.is_null()) j[fmt::format("{}:{}", i, stages_[i].stats.type)] = std::move(st);
  }
  return j;
}

void Pipeline::LoadState(const nlohmann::json& state, int64_t mono_ns) {
  if (!state.is_object()) return;
  for (size_t i = 0; i < stages_.size(); ++i) {
    // Keyed by position and type: a reordered or changed pipeline does not get stale state.
    const auto it = state.find(fmt::format("{}:{}", i, stages_[i].stats.type));
    if (it != state.end()) stages_[i].processor->LoadState(*it, mono_ns);
  }
}

}  // namespace edgeferry::pipeline
