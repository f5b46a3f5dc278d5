#include <cmath>
#include <unordered_map>

#include "json_field.h"
#include "processors.h"

namespace edgeferry::pipeline {

namespace {
class Deadband final : public Processor {
 public:
  explicit Deadband(DeadbandConfig c) : c_(std::move(c)) {}

  Result<Verdict> Process(Record& r, RecordJson& json, int64_t mono_ns) override {
    const nlohmann::json* doc = json.Get();
    const auto value = doc != nullptr ? FindNumber(*doc, c_.field) : std::nullopt;
    if (!value) return Verdict::kPass;  // not a reading of this series
    // Bounded: a source with ever new channels (a topic per message id) must not grow
    // this without limit; past the bound every new series passes unfiltered.
    auto it = last_.find(r.channel);
    if (it == last_.end()) {
      if (last_.size() < kMaxSeries) last_.emplace(r.channel, Last{*value, mono_ns});
      return Verdict::kPass;
    }
    Last& last = it->second;
    const double moved = std::fabs(*value - last.value);
    const bool outside = (c_.absolute > 0 && moved > c_.absolute) ||
                         (c_.percent > 0 && moved > std::fabs(last.value) * c_.percent / 100.0) ||
                         (c_.absolute <= 0 && c_.percent <= 0 && moved > 0);
    const bool heartbeat = c_.heartbeat_ns > 0 && mono_ns - last.mono_ns >= c_.heartbeat_ns;
    if (!outside && !heartbeat) return Verdict::kDrop;
    last = Last{*value, mono_ns};
    return Verdict::kPass;
  }

  nlohmann::json SaveState(int64_t /*mono_ns*/) const override {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [series, last] : last_) j[series] = last.value;
    return j;
  }
  void LoadState(const nlohmann::json& state, int64_t mono_ns) override {
    if (!state.is_object()) return;
    for (const auto& [series, v] : state.items()) {
      // The heartbeat restarts with the agent: the first reading after it waits at most one interval.
      if (v.is_number() && last_.size() < kMaxSeries) last_[series] = Last{v.get<double>(), mono_ns};
    }
  }

 private:
  static constexpr size_t kMaxSeries = 100'000;
  struct Last {
    double value;
    int64_t mono_ns;  // when it was handed on
  };
  const DeadbandConfig c_;
  std::unordered_map<std::string, Last> last_;  // by channel (the field is fixed)
};
}  // namespace

std::unique_ptr<Processor> MakeDeadband(DeadbandConfig c) { return std::make_unique<Deadband>(std::move(c)); }

}  // namespace edgeferry::pipeline
