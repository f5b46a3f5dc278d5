#include "edgeferry/agent/connect_check.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "edgeferry/agent/agent.h"
#include "edgeferry/clock.h"
#include "edgeferry/redact.h"

namespace edgeferry::agent {

namespace {

constexpr int64_t kGraceNs = 2'000'000'000;  // past the timeout before a probe is abandoned

// A source under probe never reads: nothing reaches its Ingest.
class NullIngest final : public drivers::Ingest {
 public:
  Result<uint64_t> Append(Record) override { return Status::Cancelled("probe only"); }
  void DeadLetter(const Record&, std::string_view) override {}
};

// What one probe thread owns; shared with the caller, so that an abandoned thread
// still has everything it touches.
struct ProbeSlot {
  ProbeTarget target;
  ComponentCheck check;
  bool done = false;  // guarded by the Shared's mutex
};

// A source and the Ingest it was built with, destroyed source first.
struct SourceUnderProbe {
  NullIngest ingest;
  drivers::SourcePtr source;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
};

// Secrets in the config that a driver's message could conceivably quote (none does
// today): masked wherever they appear. Shorter than 4 bytes they would mask words.
std::vector<std::string> Secrets(const AgentConfig& config) {
  std::vector<std::string> out;
  const auto add = [&](std::vector<std::string> secrets) {
    for (auto& v : secrets) {
      if (v.size() >= 4) out.push_back(std::move(v));
    }
  };
  for (const auto& s : config.sources) add(SecretsOf(s.settings));
  for (const auto& s : config.sinks) add(SecretsOf(s.settings));
  return out;
}

std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  text = RedactUrlsIn(text);
  for (const auto& secret : secrets) {
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + kRedacted.size())) {
      text.replace(at, secret.size(), kRedacted);
    }
  }
  return text;
}

}  // namespace

bool ConnectCheckReport::ok() const {
  for (const auto& c : components) {
    if (c.result.failed()) return false;
  }
  return true;
}

ConnectCheckReport CheckConnections(const AgentConfig& config, int64_t timeout_ns) {
  std::vector<ProbeTarget> targets;
  for (const auto& sc : config.sources) {
    auto held = std::make_shared<SourceUnderProbe>();
    held->source = MakeSource(sc.settings, held->ingest);
    targets.push_back({"source", sc.name, std::string(sc.type()), [held](int64_t t) { return held->source->Probe(t); }});
  }
  for (const auto& sc : config.sinks) {
    std::shared_ptr<drivers::Sink> sink = MakeSink(sc.settings);
    targets.push_back({"sink", sc.name, std::string(sc.type()), [sink](int64_t t) { return sink->Probe(t); }});
  }
  return ProbeAll(std::move(targets), timeout_ns, Secrets(config));
}

ConnectCheckReport ProbeAll(std::vector<ProbeTarget> targets, int64_t timeout_ns,
                            const std::vector<std::string>& secrets) {
  auto shared = std::make_shared<Shared>();
  std::vector<std::shared_ptr<ProbeSlot>> slots;
  for (auto& t : targets) {
    auto slot = std::make_shared<ProbeSlot>();
    slot->check = {t.kind, t.name, t.type, {}, 0};
    slot->target = std::move(t);
    slots.push_back(std::move(slot));
  }
  const int64_t start = SystemClock().MonoNs();
  std::vector<std::thread> threads;
  for (const auto& slot : slots) {
    threads.emplace_back([slot, shared, timeout_ns] {
      const int64_t t0 = SystemClock().MonoNs();
      drivers::ProbeResult r;
      try {
        r = slot->target.probe(timeout_ns);
      } catch (const std::exception& e) {  // the contract says never; a report beats a crash
        r = drivers::ProbeResult::Failed(std::string("probe threw: ") + e.what());
      }
      std::lock_guard<std::mutex> l(shared->mu);
      slot->check.result = std::move(r);
      slot->check.elapsed_ns = SystemClock().MonoNs() - t0;
      slot->done = true;
      shared->cv.notify_all();
    });
  }
  ConnectCheckReport report;
  {
    std::unique_lock<std::mutex> l(shared->mu);
    shared->cv.wait_for(l, std::chrono::nanoseconds(timeout_ns + kGraceNs), [&] {
      for (const auto& s : slots) {
        if (!s->done) return false;
      }
      return true;
    });
    for (const auto& s : slots) {
      ComponentCheck c = s->check;
      if (!s->done) {
        c.result = drivers::ProbeResult::Failed(
            fmt::format("no result within {} ms (the probe did not stop at its timeout)", timeout_ns / 1'000'000));
        c.elapsed_ns = SystemClock().MonoNs() - start;
        report.abandoned = true;
      }
      c.result.detail = Scrub(c.result.detail, secrets);
      report.components.push_back(std::move(c));
    }
  }
  for (size_t i = 0; i < threads.size(); ++i) {
    bool done;
    {
      std::lock_guard<std::mutex> l(shared->mu);
      done = slots[i]->done;
    }
    if (done) {
      threads[i].join();
    } else {
      threads[i].detach();  // it owns its slot; the caller exits without waiting for it
    }
  }
  return report;
}

std::string ConnectCheckText(const ConnectCheckReport& report) {
  std::string out;
  size_t ok = 0, failed = 0, skipped = 0;
  for (const auto& c : report.components) {
    const int64_t ms = c.elapsed_ns / 1'000'000;
    out += fmt::format("{} {} {}: ", c.kind, c.type, c.name);
    if (c.result.ok()) {
      ++ok;
      out += fmt::format("ok ({} in {} ms)\n", c.result.detail, ms);
    } else if (c.result.skipped()) {
      ++skipped;
      out += fmt::format("skipped ({})\n", c.result.detail);
    } else {
      ++failed;
      out += fmt::format("FAILED: {} [{} ms]\n", c.result.detail, ms);
    }
  }
  out += fmt::format("{} ok, {} failed, {} skipped\n", ok, failed, skipped);
  return out;
}

std::string ConnectCheckJson(const ConnectCheckReport& report) {
  nlohmann::ordered_json j = {{"ok", report.ok()}, {"components", nlohmann::ordered_json::array()}};
  for (const auto& c : report.components) {
    j["components"].push_back({{"kind", c.kind},
                               {"name", c.name},
                               {"type", c.type},
                               {"ok", c.result.ok()},
                               {"skipped", c.result.skipped()},
                               {"detail", c.result.detail},
                               {"ms", c.elapsed_ns / 1'000'000}});
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edgeferry::agent
