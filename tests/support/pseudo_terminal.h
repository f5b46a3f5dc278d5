// A real pseudo-terminal standing in for a serial device: the source opens the
// slave path; the test writes to the master, optionally paced at a baud rate.
#pragma once

#include <string>
#include <string_view>

namespace edgeferry::testing {

class Pty {
 public:
  // Opens a pty (raw mode) and points `link` at its slave, as udev's
  // /dev/serial/by-id links do. Sources open the link, never /dev/pts/N: pts numbers
  // are reused at once by other processes (parallel tests), so a source reopening an
  // unplugged /dev/pts/N could read another test's device.
  explicit Pty(std::string link);
  ~Pty();  // Close()
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  const std::string& path() const { return link_; }
  const std::string& slave_path() const { return slave_path_; }
  // Writes all bytes; baud > 0 paces them at baud/10 bytes per second (8N1).
  // Returns false if the reader did not drain the pty within 10 s.
  bool Write(std::string_view bytes, unsigned baud = 0);
  // Removes the link, then closes the master: an unplugged USB adapter.
  void Close();

 private:
  int master_ = -1;
  std::string link_;
  std::string slave_path_;
};

// A gpsd capture without its '#' header lines.
std::string ReceiverOutput(const std::string& log_path);

}  // namespace edgeferry::testing
