// Serial source: reads a serial device (USB-serial adapter, UART, pseudo-terminal)
// with Boost.Asio serial_port, frames the byte stream (framer.h) and parses each
// frame (frame_parser.h) into a record. Frames that cannot be records (bad NMEA
// checksum, invalid JSON, a CSV row of the wrong width, an overlong frame, junk) go
// to the dead letter queue with the reason; the stream goes on.
//
// Hot-plug: the device path (e.g. /dev/serial/by-id/usb-...-port0) is resolved at
// every open, so a device that comes back as another /dev/ttyUSBn is found. A read
// error or EOF (unplugged: EIO, ENODEV) closes the port and reopens it with backoff
// (reopen_min doubling to reopen_max); an absent device at start is waited for the
// same way. A partial frame at disconnect is never stored as a record: it is
// dead-lettered as incomplete.
//
// Threads: one per source, running its own io_context; Ingest calls come from it.
#pragma once

#include <memory>
#include <string>

#include "edgeferry/drivers/serial/frame_parser.h"
#include "edgeferry/drivers/serial/framer.h"
#include "edgeferry/drivers/source.h"

namespace edgeferry::drivers::serial {

enum class Parity { kNone, kEven, kOdd };
enum class StopBits { kOne, kOnePointFive, kTwo };
enum class FlowControl { kNone, kHardware, kSoftware };  // none, RTS/CTS, XON/XOFF
enum class Format { kNmea, kCsv, kJson, kRaw };

struct SerialSourceConfig {
  std::string name;
  std::string device;               // path or symlink, resolved at each open
  unsigned baud = 9600;
  unsigned data_bits = 8;           // 5..8
  Parity parity = Parity::kNone;
  StopBits stop_bits = StopBits::kOne;
  FlowControl flow_control = FlowControl::kNone;
  Format format = Format::kNmea;
  FramingConfig framing;
  CsvOptions csv;
  std::string channel;              // default: `device` (NMEA uses the address field instead)
  int64_t reopen_min_ns = 500'000'000;
  int64_t reopen_max_ns = 10'000'000'000;
  size_t read_chunk_bytes = 4096;
};

class SerialSource final : public Source {
 public:
  // `ingest` is not owned and must outlive the source.
  SerialSource(SerialSourceConfig config, Ingest& ingest);
  ~SerialSource() override;
  const std::string& name() const override;
  Status Start() override;
  void Stop() override;
  // connected = the port is open; reconnects = opens after the first.
  SourceStats Stats() const override;
  // Opens the device with the line settings and closes it; reads nothing. (Opening a
  // tty may toggle its modem lines, as any open does: e.g. DTR, which resets some boards.)
  ProbeResult Probe(int64_t timeout_ns) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::drivers::serial
