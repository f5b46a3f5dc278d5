// edgeferry-replay: publishes recorded sensor data to an MQTT broker, one message per
// line, as a sensor fleet would. Used by the demo and the tests.
//
//   edgeferry-replay --broker tcp://127.0.0.1:1883 --topic lora/uplink data.ndjson.gz
//   edgeferry-replay --topic air/quality --rate 200 AirQualityUCI.csv
//
// Input: NDJSON (each line published as it is) or CSV (header line, then each row
// published as a JSON object keyed by the header, numbers typed), plain or gzip.
#include <mqtt/async_client.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Reads lines from a plain or gzip file (zlib reads both).
class LineReader {
 public:
  explicit LineReader(const std::string& path) : f_(gzopen(path.c_str(), "rb")) {}
  ~LineReader() {
    if (f_) gzclose(f_);
  }
  bool ok() const { return f_ != nullptr; }
  bool Next(std::string* line) {
    line->clear();
    char buf[65536];
    while (gzgets(f_, buf, sizeof(buf))) {
      line->append(buf);
      if (!line->empty() && line->back() == '\n') {
        line->pop_back();
        if (!line->empty() && line->back() == '\r') line->pop_back();
        return true;
      }
    }
    return !line->empty();
  }

 private:
  gzFile f_;
};

std::vector<std::string> SplitCsv(const std::string& line, char sep) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

nlohmann::ordered_json Typed(const std::string& v) {
  if (!v.empty()) {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (end && *end == '\0') {
      if (v.find_first_of(".eE") == std::string::npos) return static_cast<int64_t>(d);
      return d;
    }
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgeferry-replay: publish recorded sensor data over MQTT"};
  std::string broker = "tcp://127.0.0.1:1883", topic = "sensors/replay", format = "auto", client_id;
  std::vector<std::string> files;
  int qos = 1;
  double rate = 0;
  long long limit = 0;
  bool quiet = false;
  app.add_option("--broker", broker, "Broker URI")->capture_default_str();
  app.add_option("--topic", topic, "Topic to publish to")->capture_default_str();
  app.add_option("--qos", qos, "QoS 0, 1 or 2")->check(CLI::Range(0, 2))->capture_default_str();
  app.add_option("--rate", rate, "Messages per second; 0 = as fast as the broker acks")->capture_default_str();
  app.add_option("--limit", limit, "Stop after this many messages per file; 0 = all");
  app.add_option("--format", format, "ndjson, csv or auto (by file name)")->check(CLI::IsMember({"auto", "ndjson", "csv"}));
  app.add_option("--client-id", client_id, "MQTT client id (default: edgeferry-replay-<pid>)");
  app.add_flag("-q,--quiet", quiet, "Print only the summary");
  app.add_option("files", files, "Input files (.ndjson, .csv, optionally .gz)")->required()->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  if (client_id.empty()) client_id = "edgeferry-replay-" + std::to_string(getpid());

  // Paho queues publishes in a bounded command queue; keep our window below it.
  mqtt::async_client client(broker, client_id, mqtt::create_options(MQTTVERSION_3_1_1, 1000));
  try {
    client.connect(mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize())->wait();
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "edgeferry-replay: cannot connect to %s: %s\n", broker.c_str(), e.what());
    return 1;
  }
  const auto start = Clock::now();
  long long total = 0, bytes = 0;
  std::deque<mqtt::delivery_token_ptr> inflight;
  for (const auto& path : files) {
    LineReader in(path);
    if (!in.ok()) {
      std::fprintf(stderr, "edgeferry-replay: cannot read %s\n", path.c_str());
      return 1;
    }
    const bool csv = format == "csv" || (format == "auto" && path.find(".csv") != std::string::npos);
    std::vector<std::string> header;
    std::string line;
    long long n = 0;
    if (csv && in.Next(&line)) header = SplitCsv(line, ',');
    while ((limit == 0 || n < limit) && in.Next(&line)) {
      if (line.empty()) continue;
      std::string payload = line;
      if (csv) {
        nlohmann::ordered_json obj;
        const auto cells = SplitCsv(line, ',');
        for (size_t i = 0; i < header.size() && i < cells.size(); ++i) obj[header[i]] = Typed(cells[i]);
        payload = obj.dump();
      }
      if (rate > 0) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>((total) / rate)));
      }
      try {
        inflight.push_back(client.publish(topic, payload, qos, false));
        while (inflight.size() > 200) {
          inflight.front()->wait();
          inflight.pop_front();
        }
      } catch (const mqtt::exception& e) {
        std::fprintf(stderr, "edgeferry-replay: publish failed after %lld messages: %s\n", total, e.what());
        return 1;
      }
      ++n;
      ++total;
      bytes += static_cast<long long>(payload.size());
      if (!quiet && total % 1000 == 0) {
        std::fprintf(stderr, "\r  published %lld messages...", total);
      }
    }
  }
  for (auto& t : inflight) t->wait();
  client.disconnect()->wait();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (!quiet && total >= 1000) std::fprintf(stderr, "\n");
  std::printf("published %lld messages, %lld payload bytes, in %.2f s (%.0f msg/s) to %s %s\n", total, bytes, secs,
              secs > 0 ? static_cast<double>(total) / secs : 0.0, broker.c_str(), topic.c_str());
  return 0;
}
