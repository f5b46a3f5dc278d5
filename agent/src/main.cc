// edgeferry: moves sensor data from an edge gateway to the cloud without losing it.
//
//   edgeferry run --config F            run the agent until SIGTERM/SIGINT; SIGHUP reloads
//   edgeferry check --config F          validate a config file (exit 78 when invalid)
//   edgeferry check --connect [--timeout 5s] [--json] --config F
//                                       and probe every source and sink (exit 69 when one fails)
//   edgeferry status --config F         sources, sinks, backlog, last errors at a glance
//   edgeferry tap --config F [--source S] [--sink K] [--point P] [--channel FILTER]
//                                       records as they pass the running agent (read-only)
//   edgeferry buffer stats --config F   what the buffer holds (--json for scripts)
//   edgeferry buffer check --config F   is the buffer damaged? read-only; exit 0 clean, 1 damaged
//   edgeferry dlq list|show|replay|purge|move --config F   the dead letter queue
//   edgeferry version | --version
//   -c/--config goes before or after the subcommand; default $EDGEFERRY_CONFIG, else
//   /etc/edgeferry/edgeferry.toml.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <optional>
#include <thread>
#include <mutex>
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "edgeferry/agent/agent.h"
#include "edgeferry/agent/config.h"
#include "edgeferry/agent/connect_check.h"
#include "edgeferry/agent/fleet.h"
#include "edgeferry/agent/report.h"
#include "edgeferry/agent/metrics_server.h"
#include "edgeferry/agent/service_notifier.h"
#include "edgeferry/agent/tap.h"
#include "edgeferry/buffer/check.h"
#include "edgeferry/buffer/dead_letter_admin.h"
#include "edgeferry/clock.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/drivers/http/http_client.h"
#include "edgeferry/redact.h"
#include "edgeferry/units.h"

namespace edgeferry::agent {
namespace {

constexpr int kExitIoError = 74;      // sysexits.h EX_IOERR
constexpr int kExitUnavailable = 69;  // sysexits.h EX_UNAVAILABLE
constexpr int kExitUsage = 64;        // sysexits.h EX_USAGE

// Under systemd (JOURNAL_STREAM set) each line starts with "<N>", the syslog priority
// journald reads; elsewhere with a UTC timestamp.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr const char* kPrio[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const char* p = kPrio[static_cast<int>(msg.level)];
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPriorityFlag>(); }
};

// The message as a JSON string literal, for `log.format = "json"`: whatever bytes a
// message carries (a topic, a device's reply), the line stays one valid JSON object.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string out;
    drivers::AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), &out);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

// format: "text" or "json" (one object per line: ts, level, msg). Under systemd the
// syslog priority prefix stays in front of either, so journald keeps the levels.
void SetUpLogging(const std::string& level, const std::string& format = "text") {
  auto logger = std::make_shared<spdlog::logger>("edgeferry", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  if (journal) formatter->add_flag<SyslogPriorityFlag>('*');
  if (format == "json") {
    formatter->add_flag<JsonMessageFlag>('J').set_pattern(std::string(journal ? "%*" : "") +
                                                          R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":%J})");
  } else if (journal) {
    formatter->set_pattern("%*%l: %v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l: %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Loads the config or prints every error and returns nullopt.
std::optional<AgentConfig> Load(const std::string& path) {
  ConfigErrors errors;
  auto cfg = LoadConfigFile(path, &errors);
  if (cfg.ok()) return std::move(cfg).value();
  std::fprintf(stderr, "edgeferry: invalid configuration %s:\n", path.c_str());
  for (const auto& e : errors.errors) std::fprintf(stderr, "  %s\n", e.c_str());
  return std::nullopt;
}

// The running agent and its configuration; replaced or changed in place by a reload
// or a fleet push. Every access from another thread holds `mu`.
struct Running {
  std::mutex mu;
  AgentConfig config;
  std::unique_ptr<Agent> agent;

  AgentStats Stats() {
    std::lock_guard<std::mutex> l(mu);
    return agent->Stats();
  }
  HealthRules HealthRulesInForce() {
    std::lock_guard<std::mutex> l(mu);
    return config.health;
  }
  // In place when the buffer and gateway settings are unchanged, else a restart that
  // keeps the buffer file. On failure the previous configuration is started again.
  Status Apply(const AgentConfig& next) {
    std::lock_guard<std::mutex> l(mu);
    Status st;
    if (agent->CanApplyInPlace(next)) {
      st = agent->Apply(next);
    } else {
      (void)agent->Stop();
      agent = std::make_unique<Agent>(next);
      st = agent->Start();
    }
    if (st.ok()) {
      config = next;
      spdlog::set_level(spdlog::level::from_str(config.log_level));
      return st;
    }
    spdlog::error("the new configuration does not start ({}); back to the previous one", st.ToString());
    (void)agent->Stop();
    agent = std::make_unique<Agent>(config);
    if (Status again = agent->Start(); !again.ok()) {
      spdlog::critical("cannot restart the previous configuration: {}", again.ToString());
    }
    return st;
  }
};

int Run(const std::string& path, bool ignore_applied) {
  ConfigErrors errors;
  auto startup = SelectStartupConfig(path, ignore_applied, &errors);
  if (!startup.ok()) {
    std::fprintf(stderr, "edgeferry: invalid configuration %s:\n", path.c_str());
    for (const auto& e : errors.errors) std::fprintf(stderr, "  %s\n", e.c_str());
    return kExitConfig;
  }
  SetUpLogging(startup->config.log_level, startup->config.log_format);
  // Block the stop, reload and wake-up signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServiceNotifier systemd;
  Running running;
  running.config = startup->config;
  spdlog::info("edgeferry {} starting: gateway {}, {} sources, {} sinks, configuration {}", EDGEFERRY_VERSION,
               running.config.gateway_id, running.config.sources.size(), running.config.sinks.size(), startup->origin);
  running.agent = std::make_unique<Agent>(running.config);
  if (Status st = running.agent->Start(); !st.ok()) {
    spdlog::critical("cannot start: {}", st.ToString());
    (void)running.agent->Stop();
    return st.code() == Status::Code::kInvalidArgument ? kExitConfig : kExitIoError;
  }
  std::atomic<int64_t> loop_alive_ns{SystemClock().MonoNs()};
  const int64_t started_ns = SystemClock().NowNs();
  // Neither changes while the process runs (a fleet push may not move the buffer).
  const std::string gateway_id = running.config.gateway_id, buffer_path = running.config.buffer.path;
  // Liveness, for /healthz: a restart would help.
  auto alive = [&](const AgentStats& stats) -> std::string {
    if (SystemClock().MonoNs() - loop_alive_ns > 5'000'000'000) return "main loop stalled";
    return stats.buffer.writable ? "" : "buffer not writable (file system full?)";
  };
  // Health, for `edgeferry status`: liveness and the [health] rules (a restart would not
  // fix a source sending junk, so /healthz leaves those out).
  auto health = [&](const AgentStats& stats) -> std::vector<std::string> {
    std::vector<std::string> problems;
    if (std::string a = alive(stats); !a.empty()) problems.push_back(std::move(a));
    for (auto& p : HealthProblems(stats, running.HealthRulesInForce(), SystemClock().NowNs())) {
      problems.push_back(std::move(p));
    }
    return problems;
  };
  std::unique_ptr<FleetManager> fleet;
  std::mutex fleet_mu;  // the status page reads the fleet record
  auto fleet_status = [&]() -> std::string {
    std::lock_guard<std::mutex> l(fleet_mu);
    if (!fleet) return "";
    const FleetRecord r = fleet->record();
    return r.status.empty() ? "" : fmt::format("{} version {}", r.status, r.status_version);
  };
  MetricsServer metrics({
      .metrics = [&] { return PrometheusText(running.Stats(), EDGEFERRY_VERSION, EDGEFERRY_COMMIT, SystemClock().NowNs()) + ProcessMetricsText(); },
      .health = [&] { return alive(running.Stats()); },
      .status =
          [&] {
            const AgentStats stats = running.Stats();
            return AgentStatusJson(stats, RunInfo{EDGEFERRY_VERSION, path, started_ns, health(stats), fleet_status(),
                                                  gateway_id, buffer_path, static_cast<int64_t>(::getpid())});
          },
      .tap =
          [&](std::string_view query) {
            std::lock_guard<std::mutex> l(running.mu);
            return TapAnswer(running.agent->tap(), query, SystemClock().MonoNs());
          },
  });
  const AgentConfig& first = running.config;
  if (!first.metrics_address.empty()) {
    if (Status st = metrics.Start(first.metrics_address, first.metrics_port); !st.ok()) {
      spdlog::error("{}; running without it", st.ToString());
    }
  }
  // Fleet pushes: the local file's [fleet] section rules, whatever configuration runs.
  auto start_fleet = [&](const StartupConfig& su) {
    std::lock_guard<std::mutex> l(fleet_mu);
    if (fleet) fleet->Stop();
    fleet.reset();
    if (!su.local.fleet.enabled) return;
    fleet = std::make_unique<FleetManager>(su.local, su.local_toml, su.toml,
                                           FleetManager::Host{
                                               .apply = [&](const AgentConfig& c) { return running.Apply(c); },
                                               .stats = [&] { return running.Stats(); },
                                               .wake = [] { kill(getpid(), SIGUSR1); },
                                           });
    fleet->Start();
  };
  start_fleet(*startup);
  systemd.Ready();
  spdlog::info("running");
  // The loop wakes at least twice per watchdog interval, and at once for a fleet push.
  const int64_t tick_ns = systemd.watchdog_ns() ? std::min<int64_t>(1'000'000'000, systemd.watchdog_ns() / 2)
                                                : 1'000'000'000;
  int64_t next_stats = SystemClock().MonoNs() + running.config.stats_interval_ns;
  while (true) {
    timespec tick{};
    tick.tv_sec = static_cast<time_t>(tick_ns / 1'000'000'000);  // 32-bit time_t on armhf
    tick.tv_nsec = static_cast<long>(tick_ns % 1'000'000'000);
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("{} received: sealing the open segment and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (sig == SIGHUP) {
      ConfigErrors reload_errors;
      auto next = SelectStartupConfig(path, ignore_applied, &reload_errors, /*at_process_start=*/false);
      if (!next.ok()) {
        spdlog::error("SIGHUP: {} is invalid; still running the previous configuration:", path);
        for (const auto& e : reload_errors.errors) spdlog::error("  {}", e);
      } else {
        systemd.Reloading();
        spdlog::info("SIGHUP: applying {} (the buffer is kept)", next->origin);
        if (running.Apply(next->config).ok()) {
          spdlog::info("configuration reloaded: {} sources, {} sinks", running.config.sources.size(),
                       running.config.sinks.size());
        }
        start_fleet(*next);
        systemd.Ready();
      }
    }
    {
      std::lock_guard<std::mutex> l(fleet_mu);
      if (fleet) fleet->Poll(SystemClock().MonoNs());
    }
    {
      std::lock_guard<std::mutex> l(running.mu);
      running.agent->Tick();
    }
    systemd.KeepAlive();
    loop_alive_ns = SystemClock().MonoNs();
    const int64_t now = SystemClock().MonoNs();
    if (now >= next_stats) {
      const AgentStats stats = running.Stats();
      systemd.Status(AgentStatusText(stats));
      if (running.config.stats_interval_ns > 0) spdlog::info("{}", AgentStatsLine(stats));
      next_stats = now + (running.config.stats_interval_ns > 0 ? running.config.stats_interval_ns : 10'000'000'000);
    }
  }
  systemd.Stopping();
  {
    std::lock_guard<std::mutex> l(fleet_mu);
    if (fleet) fleet->Stop();
  }
  metrics.Stop();
  const AgentStats final_stats = running.Stats();
  const Status st = running.agent->Stop();
  spdlog::info("{}", AgentStatsLine(final_stats));
  if (!st.ok()) {
    spdlog::error("stopped with an error: {}", st.ToString());
    return kExitIoError;
  }
  spdlog::info("stopped cleanly");
  return 0;
}

// `edgeferry check [--connect]`: the schema, then (with --connect) every source's and
// sink's probe. Exit 0 valid (and every probe ok or skipped), 69 a probe failed, 78 invalid.
int Check(const std::string& path, bool connect, const std::string& timeout, bool json) {
  const auto timeout_ns = ParseDurationNs(timeout);
  if (connect && (!timeout_ns || *timeout_ns <= 0)) {
    std::fprintf(stderr, "edgeferry: --timeout %s: expected a duration such as 500ms or 5s\n", timeout.c_str());
    return kExitConfig;
  }
  auto cfg = Load(path);
  if (!cfg) return kExitConfig;
  if (!json) {
    std::printf("%s: OK (gateway %s, %zu sources, %zu sinks, buffer %s)\n", path.c_str(), cfg->gateway_id.c_str(),
                cfg->sources.size(), cfg->sinks.size(), cfg->buffer.path.c_str());
    if (cfg->fleet.enabled && cfg->fleet.public_key_pem.empty()) {
      std::printf(cfg->fleet.allow_unsigned
                      ? "warning: fleet.allow_unsigned = true: anyone who can publish to the desired topic on the "
                        "management broker can reconfigure this gateway; install fleet.public_key_file\n"
                      : "warning: [fleet] has no public_key_file: every push will be refused (set public_key_file, "
                        "or allow_unsigned = true for a lab)\n");
    }
  }
  if (!connect) return 0;
  SetUpLogging("warn");  // drivers log at info ("connected to"); the report says it all
  std::fflush(stdout);
  const ConnectCheckReport report = CheckConnections(*cfg, *timeout_ns);
  std::printf("%s", json ? (ConnectCheckJson(report) + "\n").c_str() : ConnectCheckText(report).c_str());
  const int rc = report.ok() ? 0 : kExitUnavailable;
  if (report.abandoned) {
    // A probe thread is still running: leave without destructors racing it.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(rc);
  }
  return rc;
}

// Opens the buffer a config names, read-only (safe beside a running agent), or sets
// *exit_code and returns null.
std::unique_ptr<buffer::Store> OpenForInspection(const std::string& path, int* exit_code) {
  auto cfg = Load(path);
  if (!cfg) {
    *exit_code = kExitConfig;
    return nullptr;
  }
  SetUpLogging("warn");
  buffer::StoreOptions o = cfg->buffer;
  o.read_only = true;
  auto store = buffer::Store::Open(o);
  if (!store.ok()) {
    std::fprintf(stderr, "edgeferry: %s\n", store.status().ToString().c_str());
    *exit_code = kExitIoError;
    return nullptr;
  }
  return std::move(store).value();
}

struct TapOptions {
  std::string point, source, sink, channel;
  uint64_t count = 0;        // stop after this many records; 0 = until Ctrl-C
  std::string duration;      // stop after this long, e.g. "30s"; empty = no limit
  bool json = false;
};

std::atomic<bool> tap_interrupted{false};

std::string PercentEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// `edgeferry tap`: records as they pass a point of the running agent (tap.h), polled from
// its metrics endpoint until --count records, --duration or Ctrl-C. Read-only: the
// agent copies records for a tap only while one polls, into a bounded ring. Exit 0, 3
// when no agent answers, 64 for a bad option.
int TapCommand(const std::string& path, const TapOptions& o) {
  auto cfg = Load(path);
  if (!cfg) return kExitConfig;
  SetUpLogging("warn");
  std::optional<int64_t> duration_ns;
  if (!o.duration.empty()) {
    duration_ns = ParseDurationNs(o.duration);
    if (!duration_ns || *duration_ns <= 0) {
      std::fprintf(stderr, "edgeferry tap: --duration \"%s\" is not a duration such as 30s or 5m\n", o.duration.c_str());
      return kExitUsage;
    }
  }
  if (cfg->metrics_address.empty()) {
    std::fprintf(stderr, "edgeferry tap: the metrics endpoint is off in %s ([metrics]); tap reads through it\n",
                 path.c_str());
    return 3;
  }
  const std::string host = cfg->metrics_address == "0.0.0.0" ? "127.0.0.1"
                           : cfg->metrics_address == "::"    ? "::1"
                                                             : cfg->metrics_address;
  const std::string base = fmt::format("http://{}:{}/tap?max=500", host.find(':') != std::string::npos ? "[" + host + "]" : host,
                                       cfg->metrics_port);
  std::string filter;
  for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"point", o.point}, {"source", o.source},
                                   {"sink", o.sink}, {"channel", o.channel}}) {
    if (!value.empty()) filter += fmt::format("&{}={}", key, PercentEncode(value));
  }
  std::signal(SIGINT, [](int) { tap_interrupted = true; });
  std::signal(SIGTERM, [](int) { tap_interrupted = true; });
  drivers::http::HttpClient client({});
  const int64_t start = SystemClock().MonoNs();
  uint64_t after = 0, shown = 0, missed = 0;
  bool first = true;
  bool waiting = false;  // said once per outage that the agent stopped answering
  std::fprintf(stderr, "tapping %s%s (Ctrl-C to stop)\n", base.c_str(), filter.c_str());
  while (!tap_interrupted && (o.count == 0 || shown < o.count) &&
         (!duration_ns || SystemClock().MonoNs() - start < *duration_ns)) {
    drivers::http::HttpRequest request;
    request.method = "GET";
    request.url = fmt::format("{}&after={}{}", base, after, filter);
    request.timeout_ms = 3000;
    request.max_body_bytes = 32u << 20;  // 500 entries of at most 4 KiB payload, escaped
    const auto res = client.Send(request);
    const auto j = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    if (res.status == 400) {
      std::fprintf(stderr, "edgeferry tap: %s\n", j.is_object() ? j.value("error", res.body).c_str() : res.body.c_str());
      return kExitUsage;
    }
    if (res.status != 200 || !j.is_object() || !j.contains("entries")) {
      if (first) {
        std::fprintf(stderr, "edgeferry tap: no agent answers on %s: %s\n", base.c_str(),
                     res.error.empty() ? fmt::format("HTTP {}: {}", res.status, EscapeControlChars(res.body)).c_str()
                                       : res.error.c_str());
        return 3;
      }
      if (!waiting) {
        std::fprintf(stderr, "edgeferry tap: the agent stopped answering (%s); waiting for it (Ctrl-C to stop)\n",
                     res.error.empty() ? fmt::format("HTTP {}", res.status).c_str() : res.error.c_str());
        waiting = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a restart: wait for it
      continue;
    }
    if (waiting) std::fprintf(stderr, "edgeferry tap: the agent answers again\n");
    first = false;
    waiting = false;
    try {
      after = j.value("next", after);
      if (const uint64_t m = j.value("missed", uint64_t{0}); m > 0) {
        missed += m;
        std::fprintf(stderr, "(%llu records passed while this tap was behind; not shown)\n", static_cast<unsigned long long>(m));
      }
      for (const auto& e : j["entries"]) {
        if (o.json) {
          std::printf("%s\n", e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
          const std::string at = e.value("at", "");
          // Names and channels come from outside too (an MQTT topic): no escape sequences.
          const std::string point = EscapeControlChars(e.value("point", "") + ":" + e.value("name", ""));
          const std::string channel = EscapeControlChars(e.value("channel", ""));
          const uint64_t seq = e.value("seq", uint64_t{0});
          const uint64_t bytes = e.value("payload_bytes", uint64_t{0});
          const std::string payload = EscapeControlChars(e.value("payload", ""));
          std::printf("%s %-20s %s%s %s%s\n", at.size() > 23 ? at.substr(11, 12).c_str() : at.c_str(), point.c_str(),
                      channel.c_str(), seq ? fmt::format(" seq {}", seq).c_str() : "", payload.c_str(),
                      bytes > payload.size() ? fmt::format(" ... ({} bytes)", bytes).c_str() : "");
        }
        std::fflush(stdout);
        if (++shown == o.count) break;
      }
    } catch (const nlohmann::json::exception& e) {  // whatever listens there is not edgeferry
      std::fprintf(stderr, "edgeferry tap: a malformed answer from %s: %s\n", base.c_str(), e.what());
      return 3;
    }
    if (o.count == 0 || shown < o.count) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::fprintf(stderr, "tap: %llu records shown, %llu missed, in %.1f s\n", static_cast<unsigned long long>(shown),
               static_cast<unsigned long long>(missed), static_cast<double>(SystemClock().MonoNs() - start) / 1e9);
  return 0;
}

// `edgeferry status`: asks the running agent on its metrics endpoint; when nothing
// answers, reads the buffer instead. Exit status as `systemctl status`: 0 running and
// healthy, 1 running but unhealthy, 3 not running.
int StatusCommand(const std::string& path, bool json) {
  auto cfg = Load(path);
  if (!cfg) return kExitConfig;
  SetUpLogging("warn");
  std::string body, why;
  if (cfg->metrics_address.empty()) {
    why = "the metrics endpoint is off in this config ([metrics] enabled = false)";
  } else {
    const std::string host = cfg->metrics_address == "0.0.0.0" ? "127.0.0.1" : cfg->metrics_address;
    const std::string url = fmt::format("http://{}:{}/status", host.find(':') != std::string::npos ? "[" + host + "]" : host,
                                        cfg->metrics_port);
    drivers::http::HttpClient client({});
    drivers::http::HttpRequest request;
    request.method = "GET";
    request.url = url;
    request.timeout_ms = 3000;
    request.max_body_bytes = 16u << 20;  // /status of many sources and sinks
    const auto res = client.Send(request);
    const auto answer = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    const std::string answer_buffer = answer.is_object() ? answer.value("buffer_path", "") : "";
    if (res.status == 200 && !answer_buffer.empty() && answer_buffer != cfg->buffer.path) {
      // Another agent holds this port (this one could not bind it, or is not running).
      why = fmt::format("the agent answering on {} is gateway {} with buffer {}, not this configuration's {}", url,
                        answer.value("gateway_id", "?"), answer_buffer, cfg->buffer.path);
    } else if (res.status == 200) {
      body = res.body;
    } else {
      why = res.error.empty() ? fmt::format("{} answered HTTP {}", url, res.status) : fmt::format("no answer on {}", url);
    }
  }
  bool running = !body.empty();
  if (!running) {
    int rc = 0;
    auto store = OpenForInspection(path, &rc);
    if (!store) return rc;
    body = OfflineStatusJson(store->Stats());
  }
  std::cout << (json ? body + "\n" : StatusForPerson(body, SystemClock().NowNs()));
  if (!running) {
    if (!json) std::cout << "          (" << why << ")\n";
    return 3;
  }
  return nlohmann::json::parse(body, nullptr, false).value("healthy", false) ? 0 : 1;
}

int BufferStats(const std::string& path, bool json) {
  int rc = 0;
  auto store = OpenForInspection(path, &rc);
  if (!store) return rc;
  const auto stats = store->Stats();
  std::cout << (json ? StoreStatsJson(stats) + "\n" : StoreStatsText(stats));
  return 0;
}

// `edgeferry buffer check`: reads the store without writing (safe beside a running
// agent). Exit 0 clean, 1 damaged, 74 no store, 78 bad config.
int BufferCheck(const std::string& path, bool json) {
  auto cfg = Load(path);
  if (!cfg) return kExitConfig;
  SetUpLogging("warn");
  auto report = buffer::CheckStore(cfg->buffer.path);
  if (!report.ok()) {
    std::fprintf(stderr, "edgeferry: %s\n", report.status().ToString().c_str());
    return kExitIoError;
  }
  const auto& r = *report;
  if (json) {
    nlohmann::json j = {{"path", r.path}, {"clean", r.clean()}, {"segments_ok", r.segments_ok},
                        {"records_ok", r.records_ok}, {"records_lost", r.records_lost()},
                        {"records_unreachable", r.records_unreachable}, {"damaged_regions", r.damaged_regions},
                        {"sqlite_problems", r.sqlite_problems}, {"first_error", r.first_error}};
    j["records_expected"] = r.records_expected >= 0 ? nlohmann::json(r.records_expected) : nlohmann::json();
    j["bad_segments"] = nlohmann::json::array();
    for (const auto& b : r.bad_segments) {
      j["bad_segments"].push_back({{"first_seq", b.first_seq}, {"last_seq", b.last_seq}, {"records", b.count},
                                   {"reason", b.reason}});
    }
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (r.clean()) {
    std::printf("%s: CLEAN (%llu segments, %llu records: every checksum and decode ok)\n", r.path.c_str(),
                static_cast<unsigned long long>(r.segments_ok), static_cast<unsigned long long>(r.records_ok));
  } else {
    std::printf("%s: DAMAGED (%llu records readable, %llu lost: %zu bad segments, %llu damaged regions, "
                "%zu SQLite problems)\n",
                r.path.c_str(), static_cast<unsigned long long>(r.records_ok),
                static_cast<unsigned long long>(r.records_lost()), r.bad_segments.size(),
                static_cast<unsigned long long>(r.damaged_regions), r.sqlite_problems.size());
    for (const auto& p : r.sqlite_problems) std::printf("  sqlite: %s\n", p.c_str());
    for (const auto& b : r.bad_segments) {
      std::printf("  segment %llu..%llu (%llu records): %s\n", static_cast<unsigned long long>(b.first_seq),
                  static_cast<unsigned long long>(b.last_seq), static_cast<unsigned long long>(b.count),
                  b.reason.c_str());
    }
    if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
    std::printf(r.sqlite_problems.empty()
                    ? "  The agent skips these segments and counts them (dropped.corrupt) when a sink reaches them.\n"
                    : "  At its next start the agent quarantines this file and salvages every intact segment.\n");
  }
  return r.clean() ? 0 : 1;
}

std::string Preview(const std::string& payload, size_t max) {
  std::string out;
  for (char c : payload.substr(0, max)) {
    out += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
  }
  return payload.size() > max ? out + "..." : out;
}

void PrintDeadLetter(const buffer::DeadLetter& d, size_t preview) {
  std::string when;
  AppendRfc3339Ns(d.dead_ns, &when);
  std::printf("%-6llu %s %-14s %s\n       seq %s, %zu bytes on %s: %s\n", static_cast<unsigned long long>(d.id),
              when.substr(0, 19).c_str(), d.stage.c_str(), d.reason.c_str(),
              d.seq ? std::to_string(*d.seq).c_str() : "-", d.record.payload.size(), d.record.channel.c_str(),
              Preview(d.record.payload, preview).c_str());
}

// One dead letter for scripts: where and why, and the record as the outbox envelope
// writes it (seq 0 when it never was stored), so binary payloads stay exact (base64).
nlohmann::json DeadLetterJson(const buffer::DeadLetter& d, const std::string& gateway_id) {
  std::string when, envelope;
  AppendRfc3339Ns(d.dead_ns, &when);
  drivers::AppendEnvelope(gateway_id, StoredRecord{d.seq.value_or(0), d.record}, &envelope);
  return {{"id", d.id},
          {"dead_at", when},
          {"stage", d.stage},
          {"reason", d.reason},
          {"seq", d.seq ? nlohmann::json(*d.seq) : nlohmann::json()},
          {"record", nlohmann::json::parse(envelope)}};
}

// Opens the dead letter queue of the store a config names, or sets *exit_code.
// *gateway_id (optional) receives the configured gateway id.
std::unique_ptr<buffer::DeadLetterAdmin> OpenDlq(const std::string& path, int* exit_code,
                                                 std::string* gateway_id = nullptr) {
  auto cfg = Load(path);
  if (!cfg) {
    *exit_code = kExitConfig;
    return nullptr;
  }
  if (gateway_id) *gateway_id = cfg->gateway_id;
  SetUpLogging("warn");
  auto dlq = buffer::DeadLetterAdmin::Open(cfg->buffer.path);
  if (!dlq.ok()) {
    std::fprintf(stderr, "edgeferry: %s\n", dlq.status().ToString().c_str());
    *exit_code = kExitIoError;
    return nullptr;
  }
  return std::move(dlq).value();
}

struct DlqCommand {
  std::string action;           // list, show, replay, purge, move
  uint64_t seq = 0;             // move: the buffered record
  std::vector<uint64_t> ids;
  bool all = false;
  std::string sink;
  size_t limit = 1000;
  bool json = false;            // list, show: a JSON document instead of text
};

int Dlq(const std::string& path, const DlqCommand& cmd) {
  int rc = 0;
  std::string gateway_id;
  auto dlq = OpenDlq(path, &rc, &gateway_id);
  if (!dlq) return rc;
  if (cmd.action == "list" || cmd.action == "show") {
    std::vector<buffer::DeadLetter> list;
    if (cmd.action == "show") {
      for (uint64_t id : cmd.ids) {
        auto one = dlq->Get(id);
        if (!one.ok()) {
          std::fprintf(stderr, "edgeferry: %s\n", one.status().ToString().c_str());
          return 1;
        }
        list.push_back(std::move(one).value());
      }
    } else {
      auto all = dlq->List(0, cmd.limit);
      if (!all.ok()) {
        std::fprintf(stderr, "edgeferry: %s\n", all.status().ToString().c_str());
        return kExitIoError;
      }
      list = std::move(all).value();
    }
    if (cmd.json) {
      nlohmann::json out = {{"count", list.size()}, {"dead_letters", nlohmann::json::array()}};
      for (const auto& d : list) out["dead_letters"].push_back(DeadLetterJson(d, gateway_id));
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    for (const auto& d : list) PrintDeadLetter(d, cmd.action == "show" ? 4096 : 60);
    std::printf("%zu dead letter%s\n", list.size(), list.size() == 1 ? "" : "s");
    return 0;
  }
  if (cmd.action == "move") {
    // Unblocks a sink stuck on one record: the agent dead-letters it when it reaches it.
    if (Status st = dlq->RequestMove(cmd.sink, cmd.seq); !st.ok()) {
      std::fprintf(stderr, "edgeferry: %s\n", st.ToString().c_str());
      return st.code() == Status::Code::kNotFound || st.code() == Status::Code::kInvalidArgument ? 1 : kExitIoError;
    }
    std::printf("seq %llu of sink %s will be moved to the dead letter queue (within a second in a running agent, "
                "else at its next start)\n",
                static_cast<unsigned long long>(cmd.seq), cmd.sink.c_str());
    return 0;
  }
  if (cmd.ids.empty() && !cmd.all) {
    std::fprintf(stderr, "edgeferry: dlq %s needs --id ID (repeatable) or --all\n", cmd.action.c_str());
    return 2;
  }
  auto n = cmd.action == "replay" ? dlq->Replay(cmd.ids, cmd.sink) : dlq->Purge(cmd.ids);
  if (!n.ok()) {
    std::fprintf(stderr, "edgeferry: %s\n", n.status().ToString().c_str());
    return n.status().code() == Status::Code::kNotFound ? 1 : kExitIoError;
  }
  if (cmd.action == "replay") {
    std::printf("%zu dead letter%s queued for replay%s; the running agent delivers them\n", *n, *n == 1 ? "" : "s",
                cmd.sink.empty() ? "" : (" to sink " + cmd.sink).c_str());
  } else {
    std::printf("%zu dead letter%s purged\n", *n, *n == 1 ? "" : "s");
  }
  return 0;
}

}  // namespace
}  // namespace edgeferry::agent

int main(int argc, char** argv) {
  using namespace edgeferry::agent;
  // Defence in depth: every file the agent writes is created with an explicit mode
  // (0600 data, 0640 config); should one ever be missed, or a library (SQLite) create
  // one with its own default, it still gets no world access.
  ::umask(027);
  CLI::App app{"edgeferry: durable sensor data forwarding for edge gateways"};
  app.require_subcommand(1);
  const std::string version_line = std::string("edgeferry ") + EDGEFERRY_VERSION + " (" EDGEFERRY_COMMIT ")";
  // Handled while parsing, before the subcommand requirement: `edgeferry --version` exits 0.
  app.set_version_flag("--version", version_line, "Print the version and exit");
  // -c before the subcommand sets it here, after it in the subcommand: the same variable.
  const char* env_config = std::getenv("EDGEFERRY_CONFIG");
  std::string config = env_config && *env_config ? env_config : "/etc/edgeferry/edgeferry.toml";
  app.add_option("-c,--config", config, "Configuration file (default: $EDGEFERRY_CONFIG, else this)")
      ->capture_default_str();
  bool json = false;

  auto* run = app.add_subcommand("run", "Run the agent until SIGTERM or SIGINT (SIGHUP reloads the config)");
  run->add_option("-c,--config", config, "Configuration file")->capture_default_str();
  bool ignore_applied = false;
  run->add_flag("--ignore-applied", ignore_applied,
                "Run the file as it is, not the last configuration a fleet push applied");
  auto* check = app.add_subcommand(
      "check", "Validate a configuration file (exit 78 when invalid); with --connect also reach every source and sink, "
               "read-only (exit 69 when one fails)");
  check->add_option("-c,--config", config, "Configuration file")->capture_default_str();
  bool connect = false;
  std::string connect_timeout = "5s";
  check->add_flag("--connect", connect,
                  "Also probe every source and sink, read-only (connect, CONNACK, credentials, HeadBucket...); "
                  "exit 69 when one fails");
  // Not ->needs(--connect): CLI11 prints "Needs: --connect" in the option's help line,
  // where packaging/cli-docs.sh would read it as a value. Checked in Check() instead.
  check->add_option("--timeout", connect_timeout, "With --connect: the bound of each probe, e.g. 500ms, 5s")
      ->capture_default_str();
  check->add_flag("--json", json,
                  "With --connect: print {ok, components: [{kind, name, type, ok, skipped, detail, ms}]}");
  auto* status = app.add_subcommand(
      "status", "Sources, sinks, backlog and last errors of the running agent (exit 0 healthy, 1 unhealthy, 3 not running)");
  status->add_option("-c,--config", config, "Configuration file")->capture_default_str();
  status->add_flag("--json", json, "Print the JSON document");
  TapOptions tap_options;
  auto* tap = app.add_subcommand(
      "tap", "Print records as they pass the running agent: after a source, as stored, as a sink sends them (read-only)");
  tap->add_option("-c,--config", config, "Configuration file")->capture_default_str();
  tap->add_option("--point", tap_options.point, "source, stored or sink (comma-separated; default all)");
  tap->add_option("--source", tap_options.source, "Only records from this source");
  tap->add_option("--sink", tap_options.sink, "Only records as this sink sends them");
  tap->add_option("--channel", tap_options.channel, "Only channels matching this MQTT topic filter, e.g. 'plant/+/temp'");
  tap->add_option("-n,--count", tap_options.count, "Stop after this many records (default: until Ctrl-C)");
  tap->add_option("--duration", tap_options.duration, "Stop after this long, e.g. 30s");
  tap->add_flag("--json", tap_options.json, "One JSON object per record");
  auto* buffer = app.add_subcommand("buffer", "Inspect the durable buffer");
  buffer->require_subcommand(1);
  auto* stats = buffer->add_subcommand("stats", "Records, bytes, compression, backlog per sink, drops");
  stats->add_option("-c,--config", config, "Configuration file")->capture_default_str();
  stats->add_flag("--json", json, "Print JSON");
  auto* buffer_check = buffer->add_subcommand(
      "check", "Integrity of the buffer (SQLite's check, every segment's checksum and decode), read-only; "
               "exit 0 clean, 1 damaged");
  buffer_check->add_option("-c,--config", config, "Configuration file")->capture_default_str();
  buffer_check->add_flag("--json", json, "Print JSON");
  auto* dlq = app.add_subcommand("dlq", "The dead letter queue: records that could not be delivered, and why");
  dlq->require_subcommand(1);
  DlqCommand dlq_cmd;
  for (const char* action : {"list", "show", "replay", "purge"}) {
    const std::string help = std::string(action) == "list"   ? "List dead letters, oldest first, with their reasons"
                             : std::string(action) == "show" ? "Show dead letters in full"
                             : std::string(action) == "replay"
                                 ? "Queue dead letters for delivery again (to the sink that refused each, or --sink)"
                                 : "Delete dead letters";
    auto* sub = dlq->add_subcommand(action, help);
    sub->add_option("-c,--config", config, "Configuration file")->capture_default_str();
    if (std::string(action) == "list") sub->add_option("--limit", dlq_cmd.limit, "At most this many")->capture_default_str();
    if (std::string(action) == "list" || std::string(action) == "show") {
      sub->add_flag("--json", dlq_cmd.json, "Print JSON: {count, dead_letters: [{id, dead_at, stage, reason, seq, record}]}");
    }
    if (std::string(action) != "list") sub->add_option("--id", dlq_cmd.ids, "Dead letter id (repeatable)");
    if (std::string(action) == "replay" || std::string(action) == "purge") {
      sub->add_flag("--all", dlq_cmd.all, "Every dead letter");
    }
    if (std::string(action) == "replay") sub->add_option("--sink", dlq_cmd.sink, "Deliver to this sink instead");
    sub->callback([&dlq_cmd, action] { dlq_cmd.action = action; });
  }
  {
    auto* sub = dlq->add_subcommand(
        "move", "Move a buffered record (by seq) of one sink to the dead letter queue, so that sink stops retrying it");
    sub->add_option("-c,--config", config, "Configuration file")->capture_default_str();
    sub->add_option("--sink", dlq_cmd.sink, "The sink that is stuck on the record")->required();
    sub->add_option("--seq", dlq_cmd.seq, "The record's seq")->required()->check(CLI::PositiveNumber);
    sub->callback([&dlq_cmd] { dlq_cmd.action = "move"; });
  }
  auto* version = app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // app.exit prints the help, the version or the error; a usage error is sysexits'
    // EX_USAGE, not CLI11's own numbers (106, 109, ...).
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (*run) return Run(config, ignore_applied);
  if (*check) {
    if (!connect && (json || check->count("--timeout") > 0)) {
      std::fprintf(stderr, "edgeferry check: --json and --timeout go with --connect\n");
      return kExitUsage;
    }
    return Check(config, connect, connect_timeout, json);
  }
  if (*status) return StatusCommand(config, json);
  if (*tap) return TapCommand(config, tap_options);
  if (*stats) return BufferStats(config, json);
  if (*buffer_check) return BufferCheck(config, json);
  if (*dlq) return Dlq(config, dlq_cmd);
  if (*version) {
    std::printf("%s\n", version_line.c_str());
    return 0;
  }
  return 1;
}
