#include <unordered_map>

#include "processors.h"

namespace edgeferry::pipeline {

namespace {
class Sample final : public Processor {
 public:
  explicit Sample(SampleConfig c) : c_(c) {}
  Result<Verdict> Process(Record& r, RecordJson&, int64_t mono_ns) override {
    auto it = series_.find(r.channel);
    if (it == series_.end()) {
      if (series_.size() >= kMaxSeries) return Verdict::kPass;  // bounded, as the deadband
      series_.emplace(r.channel, Series{0, mono_ns});
      return Verdict::kPass;  // the first of a series always passes
    }
    Series& s = it->second;
    if (c_.every > 0) {
      s.seen = (s.seen + 1) % c_.every;
      return s.seen == 0 ? Verdict::kPass : Verdict::kDrop;
    }
    if (mono_ns - s.passed_mono_ns < c_.interval_ns) return Verdict::kDrop;
    s.passed_mono_ns = mono_ns;
    return Verdict::kPass;
  }

 private:
  static constexpr size_t kMaxSeries = 100'000;
  struct Series {
    uint64_t seen;           // records since the last one passed (every)
    int64_t passed_mono_ns;  // when the last one passed (interval)
  };
  const SampleConfig c_;
  std::unordered_map<std::string, Series> series_;
};
}  // namespace

std::unique_ptr<Processor> MakeSample(SampleConfig c) { return std::make_unique<Sample>(c); }

}  // namespace edgeferry::pipeline
