#include "edgeferry/drivers/serial/serial_source.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/serial_port.hpp>
#include <filesystem>
#include <thread>

#include "edgeferry/clock.h"
#include "edgeferry/thread_annotations.h"

namespace edgeferry::drivers::serial {

namespace asio = boost::asio;

namespace {
std::unique_ptr<FrameParser> MakeParser(const SerialSourceConfig& c) {
  switch (c.format) {
    case Format::kNmea: return MakeNmeaParser();
    case Format::kCsv: return MakeCsvParser(c.csv);
    case Format::kJson: return MakeJsonLinesParser();
    case Format::kRaw: return MakeRawParser();
  }
  return MakeRawParser();
}
// Opens `c.device` (resolving symlinks now) on `port` and applies the line settings.
// Returns "" or the error ("<path>: <reason>"), with `port` closed.
std::string OpenPort(const SerialSourceConfig& c, asio::serial_port& port, std::string* resolved) {
  std::error_code fec;
  const auto path = std::filesystem::canonical(c.device, fec);
  if (fec) return fmt::format("{}: {}", c.device, fec.message());
  *resolved = path.string();
  boost::system::error_code ec;
  port.open(*resolved, ec);
  using sp = asio::serial_port_base;
  if (!ec) port.set_option(sp::baud_rate(c.baud), ec);
  if (!ec) port.set_option(sp::character_size(c.data_bits), ec);
  if (!ec) {
    port.set_option(sp::parity(c.parity == Parity::kEven  ? sp::parity::even
                               : c.parity == Parity::kOdd ? sp::parity::odd
                                                          : sp::parity::none),
                    ec);
  }
  if (!ec) {
    port.set_option(sp::stop_bits(c.stop_bits == StopBits::kTwo            ? sp::stop_bits::two
                                  : c.stop_bits == StopBits::kOnePointFive ? sp::stop_bits::onepointfive
                                                                           : sp::stop_bits::one),
                    ec);
  }
  if (!ec) {
    port.set_option(sp::flow_control(c.flow_control == FlowControl::kHardware   ? sp::flow_control::hardware
                                     : c.flow_control == FlowControl::kSoftware ? sp::flow_control::software
                                                                                : sp::flow_control::none),
                    ec);
  }
  if (ec) {
    boost::system::error_code ignored;
    port.close(ignored);
    return fmt::format("{}: {}", *resolved, ec.message());
  }
  return "";
}
}  // namespace

class SerialSource::Impl {
 public:
  Impl(SerialSourceConfig config, Ingest& ingest)
      : cfg_(std::move(config)),
        ingest_(ingest),
        channel_(cfg_.channel.empty() ? cfg_.device : cfg_.channel),
        parser_(MakeParser(cfg_)),
        framer_(
            cfg_.framing, [this](std::string_view f) { OnFrame(f); },
            [this](std::string_view head, const std::string& why) { DeadLetter(head, why); }),
        port_(io_) {}
  ~Impl() { Stop(); }

  const std::string& name() const { return cfg_.name; }
  const SerialSourceConfig& config() const { return cfg_; }

  Status Start() {
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void Stop() {
    {
      MutexLock l(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.NotifyAll();
    asio::post(io_, [this] {
      boost::system::error_code ec;
      port_.close(ec);
      io_.stop();
    });
    if (thread_.joinable()) thread_.join();
  }

  SourceStats Stats() const { return counters_.Snapshot(); }

 private:
  bool Stopping() EXCLUDES(mu_) {
    MutexLock l(mu_);
    return stop_;
  }

  // Opens the device (resolving symlinks now) and applies the line settings.
  bool Open(std::string* resolved) {
    if (std::string error = OpenPort(cfg_, port_, resolved); !error.empty()) {
      counters_.SetError(std::move(error));
      return false;
    }
    return true;
  }

  void Run() {
    int64_t delay = cfg_.reopen_min_ns;
    bool ever_open = false, waiting_logged = false;
    while (!Stopping()) {
      std::string resolved;
      if (Open(&resolved)) {
        if (ever_open) counters_.reconnects.fetch_add(1);
        spdlog::info("source {}: {} {}{} at {} baud", cfg_.name, ever_open ? "reopened" : "opened", cfg_.device,
                     resolved == cfg_.device ? "" : " (" + resolved + ")", cfg_.baud);
        ever_open = true;
        waiting_logged = false;
        delay = cfg_.reopen_min_ns;
        parser_->Reset();
        counters_.connected = true;
        ReadUntilError();
        counters_.connected = false;
        if (std::string partial = framer_.TakePartial(); !partial.empty()) OnFrameAtDisconnect(partial);
        if (Stopping()) break;
        spdlog::warn("source {}: {} went away ({}); waiting for it", cfg_.name, cfg_.device, counters_.last_error());
      } else if (!waiting_logged) {
        spdlog::warn("source {}: waiting for {} ({})", cfg_.name, cfg_.device, counters_.last_error());
        waiting_logged = true;
      }
      {
        MutexLock l(mu_);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(delay);
        while (!stop_ && std::chrono::steady_clock::now() < deadline) {
          cv_.WaitFor(l, deadline - std::chrono::steady_clock::now());
        }
      }
      delay = std::min(delay * 2, cfg_.reopen_max_ns);
    }
  }

  void ReadUntilError() {
    buf_.resize(cfg_.read_chunk_bytes);
    io_.restart();
    StartRead();
    io_.run();
    boost::system::error_code ignored;
    port_.close(ignored);
  }

  void StartRead() {
    port_.async_read_some(asio::buffer(buf_), [this](const boost::system::error_code& ec, size_t n) {
      if (n > 0) {
        StampReceipt(SystemClock(), &receipt_);
        framer_.Feed(std::string_view(buf_.data(), n));
      }
      if (ec) {
        counters_.SetError(ec == asio::error::eof ? "end of file (device closed)" : ec.message());
        return;  // io_.run() returns: the caller closes and reopens
      }
      StartRead();
    });
  }

  // Counts as received each record that comes out of a frame (the frame itself, and junk
  // split off before a sentence), so received == stored + dead_lettered + rejected. A
  // skipped frame (a CSV header) is not a record.
  void OnFrame(std::string_view frame) {
    ParsedFrame p = parser_->Parse(frame);
    if (p.skip) return;
    if (!p.junk.empty()) DeadLetter(p.junk, fmt::format("{} bytes of non-NMEA data before a sentence", p.junk.size()));
    if (!p.error.ok()) {
      DeadLetter(p.payload.empty() ? frame : std::string_view(p.payload), p.error.message());
      return;
    }
    Record r = ReceivedNow();
    r.event_ts_ns = p.event_ts_ns.value_or(0);
    r.source = cfg_.name;
    r.channel = p.channel.empty() ? channel_ : std::move(p.channel);
    r.content_type = p.content_type;
    r.payload = std::move(p.payload);
    counters_.CountReceived();
    counters_.CountAppend(ingest_.Append(std::move(r)));
  }

  // What was unterminated when the device went away (or a log file ended). Only a
  // sentence that proves itself complete, an NMEA checksum that matches, is a record:
  // the last line of a log often has no newline. Anything else may be cut short.
  void OnFrameAtDisconnect(std::string_view partial) {
    if (cfg_.format == Format::kNmea) {
      ParsedFrame p = parser_->Parse(partial);
      if (!p.skip && p.error.ok()) {
        OnFrame(partial);
        return;
      }
    }
    DeadLetter(partial, fmt::format("incomplete frame at disconnect ({} bytes)", partial.size()));
  }

  // A record stamped with the time of the read its bytes came from.
  Record ReceivedNow() {
    Record r;
    if (receipt_.ts_ns == 0) StampReceipt(SystemClock(), &receipt_);
    r.ts_ns = receipt_.ts_ns;
    r.ts_source = receipt_.ts_source;
    r.boot_ns = receipt_.boot_ns;
    r.boot_id = receipt_.boot_id;
    return r;
  }

  void DeadLetter(std::string_view bytes, const std::string& reason) {
    Record r = ReceivedNow();
    r.source = cfg_.name;
    r.channel = channel_;
    r.content_type = ContentType::kBinary;
    r.payload = std::string(bytes);
    counters_.CountReceived();
    ingest_.DeadLetter(r, reason);
    counters_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  }

  const SerialSourceConfig cfg_;
  Ingest& ingest_;
  const std::string channel_;
  std::unique_ptr<FrameParser> parser_;
  Framer framer_;
  asio::io_context io_;
  asio::serial_port port_;
  std::vector<char> buf_;
  Record receipt_;  // only its time: when the last read returned

  std::thread thread_;

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  SourceCounters counters_;
};

SerialSource::SerialSource(SerialSourceConfig config, Ingest& ingest)
    : impl_(std::make_unique<Impl>(std::move(config), ingest)) {}
SerialSource::~SerialSource() = default;
const std::string& SerialSource::name() const { return impl_->name(); }
Status SerialSource::Start() { return impl_->Start(); }
void SerialSource::Stop() { impl_->Stop(); }
SourceStats SerialSource::Stats() const { return impl_->Stats(); }

ProbeResult SerialSource::Probe(int64_t) {
  const SerialSourceConfig& c = impl_->config();
  std::string resolved;
  asio::io_context io;
  asio::serial_port port(io);
  // The same open and line settings as the source (opening a tty does not block: Asio
  // opens it O_NONBLOCK), then close: nothing is read.
  std::string error = OpenPort(c, port, &resolved);
  if (!error.empty()) {
    // The two an operator meets most, with what to do about them.
    const std::string missing = std::make_error_code(std::errc::no_such_file_or_directory).message();
    const std::string denied = std::make_error_code(std::errc::permission_denied).message();
    if (error.ends_with(missing)) error += " (is the device plugged in, and the path right?)";
    if (error.ends_with(denied)) error += " (the agent's user needs read/write access: e.g. the dialout group)";
    return ProbeResult::Failed(error);
  }
  boost::system::error_code ignored;
  port.close(ignored);
  return ProbeResult::Ok(fmt::format("opened {}{} at {} baud", c.device, resolved == c.device ? "" : " (" + resolved + ")",
                                     c.baud));
}

}  // namespace edgeferry::drivers::serial
