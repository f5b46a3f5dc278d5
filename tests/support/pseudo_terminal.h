// A real pseudo-terminal standing in for a serial device: the source opens the
// slave path; the test writes to the master, optionally paced at a baud rate.
#pragma once

#include <string>
#include <string_view>

namespace edgeferry::testing {

class Pty {
 public:
  Pty();   // aborts the test on failure; the slave is in raw mode
  ~Pty();  // closes the master (the device disappears)
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  const std::string& slave_path() const { return slave_path_; }
  // Writes all bytes; baud > 0 paces them at baud/10 bytes per second (8N1).
  // Returns false if the reader did not drain the pty within 10 s.
  bool Write(std::string_view bytes, unsigned baud = 0);
  // Closes the master: to the reader this is an unplugged USB adapter.
  void Close();

 private:
  int master_ = -1;
  std::string slave_path_;
};

// A gpsd capture without its '#' header lines.
std::string ReceiverOutput(const std::string& log_path);

}  // namespace edgeferry::testing
