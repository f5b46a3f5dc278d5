// edgeferry-replay: publishes recorded sensor data to an MQTT broker, one message per
// line, as a sensor fleet would. Used by the demo and the tests.
//
//   edgeferry-replay --broker tcp://127.0.0.1:1883 --topic lora/uplink data.ndjson.gz
//   edgeferry-replay --topic air/quality --rate 200 AirQualityUCI.csv
//
// Input: NDJSON (each line published as it is) or CSV (RFC 4180: header line, then each
// row published as a JSON object keyed by the header, numbers typed), plain or gzip.
// --separator sets the CSV field separator (default ','; "tab" for TSV). A row whose
// field count differs from the header's, that is not UTF-8 or has text after a closing
// quote is skipped with a message on stderr, never shifted or merged; the skipped rows
// are counted in the summary and the exit status is then 3. --dry-run prints payloads.
//
// Serial mode plays a serial device instead: it creates a pseudo-terminal, points
// LINK at it (as udev's /dev/serial/by-id links do), waits for a reader, and writes
// the files' bytes unchanged at the line rate of --baud:
//   edgeferry-replay --serial /tmp/gps0 --baud 9600 --strip-comments gps.log
#include <fcntl.h>
#include <mqtt/async_client.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <csignal>
#include <deque>
#include <filesystem>
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

// One CSV record (RFC 4180): fields separated by `sep`; a field in double quotes may hold
// the separator, line breaks and "" for one quote. Unquoted fields are taken as they are
// (a stray quote inside one is kept). Returns false with *error set when a quoted field
// is followed by anything but the separator; sets *open_quote when the line ends inside a
// quoted field (the caller appends the next line and calls again).
bool ParseCsvRecord(const std::string& text, char sep, std::vector<std::string>* fields, bool* open_quote,
                    std::string* error) {
  fields->assign(1, std::string());
  *open_quote = false;
  size_t i = 0;
  while (true) {
    std::string& f = fields->back();
    if (i < text.size() && text[i] == '"') {
      ++i;
      while (true) {
        if (i >= text.size()) {
          *open_quote = true;
          return true;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            f.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        f.push_back(text[i++]);
      }
      if (i < text.size() && text[i] != sep) {
        *error = "text after the closing quote of field " + std::to_string(fields->size());
        return false;
      }
    } else {
      while (i < text.size() && text[i] != sep) f.push_back(text[i++]);
    }
    if (i >= text.size()) return true;
    ++i;  // the separator
    fields->emplace_back();
  }
}

// A cell is a JSON number only when it is one by RFC 8259's grammar ("007", "nan",
// "0x1A" stay strings); everything else is a string.
nlohmann::ordered_json Typed(const std::string& v) {
  const bool numeric_start = !v.empty() && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'));
  if (numeric_start && nlohmann::json::accept(v)) return nlohmann::ordered_json::parse(v);
  return v;
}

// Serial mode: see the file comment. Returns the process exit code.
int ReplaySerial(const std::string& link, unsigned baud, bool strip_comments, bool hold,
                 const std::vector<std::string>& files) {
  int master = -1, slave = -1;
  char name[256];
  if (openpty(&master, &slave, name, nullptr, nullptr) != 0) {
    std::perror("edgeferry-replay: openpty");
    return 1;
  }
  termios t{};
  tcgetattr(slave, &t);
  cfmakeraw(&t);
  tcsetattr(slave, TCSANOW, &t);
  close(slave);
  std::error_code ec;
  std::filesystem::remove(link, ec);
  std::filesystem::create_symlink(name, link, ec);
  if (ec) {
    std::fprintf(stderr, "edgeferry-replay: symlink %s: %s\n", link.c_str(), ec.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "serial device %s -> %s, waiting for a reader...\n", link.c_str(), name);
  // The master reports POLLHUP while no one has the slave open.
  for (int waited = 0;; waited += 50) {
    pollfd p{master, POLLOUT, 0};
    poll(&p, 1, 0);
    if (!(p.revents & POLLHUP)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // POLLHUP does not block
    if (waited > 60000) {
      std::fprintf(stderr, "edgeferry-replay: no reader opened %s in 60 s\n", link.c_str());
      return 1;
    }
  }
  std::string data;
  for (const auto& f : files) {
    // Serial mode keeps every byte (line ends, binary junk), so it reads the raw file.
    FILE* raw = std::fopen(f.c_str(), "rb");
    if (!raw) return 1;
    char buf[65536];
    size_t n;
    std::string content;
    while ((n = std::fread(buf, 1, sizeof(buf), raw)) > 0) content.append(buf, n);
    std::fclose(raw);
    size_t at = 0;
    while (at < content.size()) {
      const size_t nl = content.find('\n', at);
      const size_t end = nl == std::string::npos ? content.size() : nl + 1;
      if (!(strip_comments && content[at] == '#')) data.append(content, at, end - at);
      at = end;
    }
  }
  const auto start = Clock::now();
  size_t sent = 0;
  while (sent < data.size()) {
    size_t chunk = data.size() - sent;
    if (baud > 0) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      const auto allowed = static_cast<size_t>(elapsed * baud / 10.0) + 1;  // 8N1: 10 bits per byte
      if (allowed <= sent) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      chunk = std::min(chunk, allowed - sent);
    }
    const ssize_t w = write(master, data.data() + sent, chunk);
    if (w < 0) {
      std::perror("edgeferry-replay: write");
      return 1;
    }
    sent += static_cast<size_t>(w);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("wrote %zu bytes to %s in %.2f s (%s)\n", sent, link.c_str(), secs,
              baud ? (std::to_string(baud) + " baud").c_str() : "full speed");
  std::fflush(stdout);
  if (hold) {
    // Keep the device present until told to stop; closing it would look like an unplug.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int sig = 0;
    sigwait(&set, &sig);
  }
  close(master);
  std::filesystem::remove(link, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgeferry-replay: publish recorded sensor data over MQTT"};
  app.set_version_flag("--version", std::string("edgeferry-replay ") + EDGEFERRY_VERSION + " (" EDGEFERRY_COMMIT ")",
                       "Print the version and exit");
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
  std::string separator = ",";
  app.add_option("--separator", separator, "CSV field separator: one character, or \"tab\"")->capture_default_str();
  bool dry_run = false;
  app.add_flag("--dry-run", dry_run, "Print each message payload on stdout, one per line, instead of publishing");
  app.add_option("--client-id", client_id, "MQTT client id (default: edgeferry-replay-<pid>)");
  app.add_flag("-q,--quiet", quiet, "Print only the summary");
  std::string serial_link;
  unsigned baud = 0;
  bool strip_comments = false, hold = false;
  app.add_option("--serial", serial_link, "Serial mode: play a device at this path (a pty behind a symlink)");
  app.add_option("--baud", baud, "Serial mode: line rate in baud (8N1); 0 = full speed")->capture_default_str();
  app.add_flag("--strip-comments", strip_comments, "Serial mode: leave out lines starting with '#'");
  app.add_flag("--hold", hold, "Serial mode: keep the device until SIGTERM/SIGINT after the replay");
  app.add_option("files", files, "Input files (.ndjson, .csv, optionally .gz)")->required()->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  if (!serial_link.empty()) return ReplaySerial(serial_link, baud, strip_comments, hold, files);
  if (separator == "tab" || separator == "\\t") separator = "\t";
  if (separator.size() != 1 || separator[0] == '"' || separator[0] == '\n' || separator[0] == '\r') {
    std::fprintf(stderr, "edgeferry-replay: --separator must be one character other than a quote or line end\n");
    return 2;
  }
  const char sep = separator[0];
  if (client_id.empty()) client_id = "edgeferry-replay-" + std::to_string(getpid());

  // Paho queues publishes in a bounded command queue; keep our window below it.
  mqtt::async_client client(broker, client_id, mqtt::create_options(MQTTVERSION_3_1_1, 1000));
  try {
    if (!dry_run) {
      client.connect(mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize())->wait();
    }
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "edgeferry-replay: cannot connect to %s: %s\n", broker.c_str(), e.what());
    return 1;
  }
  const auto start = Clock::now();
  long long total = 0, bytes = 0, skipped = 0;
  // A CSV row that cannot become an object keyed by the header is skipped, never shifted.
  auto skip = [&](const std::string& path, long long line_no, const std::string& why) {
    std::fflush(stdout);  // --dry-run: keep whole payload lines apart from the messages
    if (++skipped <= 20) std::fprintf(stderr, "edgeferry-replay: %s:%lld: row skipped: %s\n", path.c_str(), line_no, why.c_str());
  };
  std::deque<mqtt::delivery_token_ptr> inflight;
  for (const auto& path : files) {
    LineReader in(path);
    if (!in.ok()) {
      std::fprintf(stderr, "edgeferry-replay: cannot read %s\n", path.c_str());
      return 1;
    }
    const bool csv = format == "csv" || (format == "auto" && path.find(".csv") != std::string::npos);
    std::vector<std::string> header, cells;
    std::string line, error;
    long long n = 0, line_no = 0;
    bool open_quote = false;
    // Reads one CSV record (it may span lines inside quotes); false at the end of the file.
    auto next_record = [&](std::string* record, long long* first_line) {
      if (!in.Next(record)) return false;
      *first_line = ++line_no;
      error.clear();
      while (ParseCsvRecord(*record, sep, &cells, &open_quote, &error) && open_quote) {
        std::string more;
        if (record->size() > (1 << 20) || !in.Next(&more)) {
          error = "quoted field not closed";
          return true;
        }
        ++line_no;
        *record += "\n" + more;
      }
      return true;
    };
    long long record_line = 0;
    if (csv) {
      if (!next_record(&line, &record_line)) continue;
      if (!error.empty()) {
        std::fprintf(stderr, "edgeferry-replay: %s: header: %s\n", path.c_str(), error.c_str());
        return 1;
      }
      header = cells;
    }
    while (limit == 0 || n < limit) {
      if (csv ? !next_record(&line, &record_line) : !in.Next(&line)) break;
      if (line.empty()) continue;
      std::string payload = line;
      if (csv) {
        if (!error.empty()) {
          skip(path, record_line, error);
          continue;
        }
        if (cells.size() != header.size()) {
          skip(path, record_line, std::to_string(cells.size()) + " fields, the header has " + std::to_string(header.size()));
          continue;
        }
        nlohmann::ordered_json obj;
        for (size_t i = 0; i < header.size(); ++i) obj[header[i]] = Typed(cells[i]);
        try {
          payload = obj.dump();
        } catch (const nlohmann::json::exception&) {  // a cell or name that is not UTF-8
          skip(path, record_line, "not valid UTF-8");
          continue;
        }
      }
      if (dry_run) {
        std::printf("%s\n", payload.c_str());
        ++n;
        ++total;
        bytes += static_cast<long long>(payload.size());
        continue;
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
  if (!dry_run) client.disconnect()->wait();
  std::fflush(stdout);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (!quiet && total >= 1000) std::fprintf(stderr, "\n");
  std::fprintf(dry_run ? stderr : stdout,
               "%s %lld messages, %lld payload bytes, in %.2f s (%.0f msg/s) to %s %s\n",
               dry_run ? "printed" : "published", total, bytes, secs,
               secs > 0 ? static_cast<double>(total) / secs : 0.0, broker.c_str(), topic.c_str());
  if (skipped > 0) {
    std::fprintf(stderr, "edgeferry-replay: %lld CSV row%s skipped (see above)\n", skipped, skipped == 1 ? "" : "s");
    return 3;
  }
  return 0;
}
