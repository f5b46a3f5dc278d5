// edgeferry_latency_probe: streaming latency through the agent. Publishes timestamped
// JSON messages (~150 bytes) at a fixed rate to the local broker and times their
// arrival on the uplink broker (where edgeferry's MQTT sink republishes them), then
// prints p50/p90/p99/max. Both clocks are this process's steady clock.
#include <mqtt/async_client.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class Receiver : public mqtt::callback {
 public:
  explicit Receiver(size_t count) : latencies_(count, -1) {}
  void message_arrived(mqtt::const_message_ptr msg) override {
    const int64_t now = NowNs();
    const std::string p = msg->to_string();
    const auto at_id = p.find("\"probe\":"), at_t = p.find("\"t_ns\":");
    if (at_id == std::string::npos || at_t == std::string::npos) return;
    const size_t id = std::stoull(p.substr(at_id + 8));
    const int64_t sent = std::stoll(p.substr(at_t + 7));
    std::lock_guard<std::mutex> l(mu_);
    if (id < latencies_.size() && latencies_[id] < 0) {
      latencies_[id] = now - sent;
      ++received_;
    }
  }
  size_t received() const { return received_; }
  std::vector<int64_t> Latencies() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<int64_t> out;
    for (int64_t v : latencies_) {
      if (v >= 0) out.push_back(v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> latencies_;
  std::atomic<size_t> received_{0};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgeferry_latency_probe: MQTT in -> edgeferry -> MQTT uplink latency"};
  std::string in_uri, out_uri, in_topic = "probe/in", out_filter = "#";
  size_t count = 5000;
  double rate = 1000;
  int qos = 1;
  app.add_option("--in", in_uri, "Local broker (edgeferry's MQTT source)")->required();
  app.add_option("--in-topic", in_topic)->capture_default_str();
  app.add_option("--out", out_uri, "Uplink broker (edgeferry's MQTT sink)")->required();
  app.add_option("--out-filter", out_filter)->capture_default_str();
  app.add_option("--count", count)->capture_default_str();
  app.add_option("--rate", rate, "Messages per second")->capture_default_str();
  app.add_option("--qos", qos)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  Receiver receiver(count);
  mqtt::async_client sub(out_uri, "latency-probe-sub");
  sub.set_callback(receiver);
  sub.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
  sub.subscribe(out_filter, qos)->wait();
  mqtt::async_client pub(in_uri, "latency-probe-pub");
  pub.connect(mqtt::connect_options_builder().clean_session(true).max_inflight(65535).finalize())->wait();

  const std::string pad(60, 'x');
  const int64_t start = NowNs();
  const int64_t gap = static_cast<int64_t>(1e9 / rate);
  for (size_t i = 0; i < count; ++i) {
    const int64_t due = start + static_cast<int64_t>(i) * gap;
    while (NowNs() < due) std::this_thread::sleep_for(std::chrono::microseconds(100));
    const std::string body = "{\"probe\":" + std::to_string(i) + ",\"t_ns\":" + std::to_string(NowNs()) +
                             ",\"sensor\":\"aq-01\",\"t\":21.5,\"rh\":48.9,\"pad\":\"" + pad + "\"}";
    pub.publish(in_topic, body.data(), body.size(), qos, false);
    if (i % 1000 == 999) std::fprintf(stderr, "\rlatency probe: %zu/%zu sent, %zu received", i + 1, count, receiver.received());
  }
  const int64_t deadline = NowNs() + 10'000'000'000;
  while (receiver.received() < count && NowNs() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::fprintf(stderr, "\n");
  auto l = receiver.Latencies();
  pub.disconnect()->wait();
  sub.disconnect()->wait();
  if (l.empty()) {
    std::printf("received 0 of %zu\n", count);
    return 1;
  }
  auto pct = [&](double q) { return static_cast<double>(l[std::min(l.size() - 1, static_cast<size_t>(q * static_cast<double>(l.size())))]) / 1e6; };
  std::printf("received %zu of %zu at %.0f msg/s: latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", l.size(),
              count, rate, pct(0.50), pct(0.90), pct(0.99), static_cast<double>(l.back()) / 1e6);
  return l.size() == count ? 0 : 1;
}
