// edgeferry_paho_sub: a plain Eclipse Paho C++ subscriber that only counts, the
// physical limit beside edgeferry's MQTT source (same library, same broker, same run).
// Prints "<count> <seconds from first to last message>" and exits after --count
// messages or --idle seconds without one.
#include <mqtt/async_client.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace {
using Clock = std::chrono::steady_clock;

class Counter : public mqtt::callback {
 public:
  void message_arrived(mqtt::const_message_ptr) override {
    const auto now = Clock::now().time_since_epoch().count();
    if (count_++ == 0) first_ = now;
    last_ = now;
  }
  std::atomic<size_t> count_{0};
  std::atomic<int64_t> first_{0}, last_{0};
};
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgeferry_paho_sub: count messages with a plain Paho subscriber"};
  std::string uri, topic = "#";
  size_t count = 0;
  int qos = 1;
  double idle_s = 10;
  app.add_option("--uri", uri)->required();
  app.add_option("--topic", topic)->capture_default_str();
  app.add_option("--count", count, "Stop after this many")->required();
  app.add_option("--qos", qos)->capture_default_str();
  app.add_option("--idle", idle_s, "Stop after this long without a message (s)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  Counter counter;
  mqtt::async_client client(uri, "edgeferry-bench-paho-sub", mqtt::create_options(MQTTVERSION_3_1_1, 65535));
  client.set_callback(counter);
  try {
  client.connect(mqtt::connect_options_builder().clean_session(true).max_inflight(65535).finalize())->wait();
  client.subscribe(topic, qos)->wait();
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "edgeferry_paho_sub: %s\n", e.what());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  size_t seen = 0;
  auto last_change = Clock::now();
  while (counter.count_ < count) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (counter.count_ != seen) {
      seen = counter.count_;
      last_change = Clock::now();
    } else if (Clock::now() - last_change > std::chrono::duration<double>(idle_s)) {
      break;
    }
  }
  const double secs = static_cast<double>(counter.last_ - counter.first_) / 1e9;
  std::printf("%zu %.6f\n", counter.count_.load(), secs);
  std::fflush(stdout);
  try {
    client.disconnect()->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception&) {
    // The count is printed; a broken connection at the end changes nothing.
  }
  return 0;
}
