#include "pseudo_terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "test_support.h"

namespace edgeferry::testing {

Pty::Pty(std::string link) : link_(std::move(link)) {
  int slave = -1;
  char name[256];
  if (openpty(&master_, &slave, name, nullptr, nullptr) != 0) std::abort();
  termios t{};
  tcgetattr(slave, &t);
  cfmakeraw(&t);
  tcsetattr(slave, TCSANOW, &t);
  close(slave);
  slave_path_ = name;
  fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
  std::filesystem::remove(link_);
  std::filesystem::create_directories(std::filesystem::path(link_).parent_path());
  std::filesystem::create_symlink(slave_path_, link_);
}

Pty::~Pty() { Close(); }

void Pty::Close() {
  if (master_ < 0) return;
  std::error_code ec;
  std::filesystem::remove(link_, ec);
  close(master_);
  master_ = -1;
}

bool Pty::Write(std::string_view bytes, unsigned baud) {
  const auto start = std::chrono::steady_clock::now();
  size_t sent = 0;
  while (sent < bytes.size()) {
    size_t chunk = bytes.size() - sent;
    if (baud > 0) {
      // Send what the line rate allows by now, in steps of at least 8 bytes.
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto allowed = static_cast<size_t>(elapsed * baud / 10.0) + 8;
      if (allowed <= sent) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      chunk = std::min(chunk, allowed - sent);
    }
    pollfd p{master_, POLLOUT, 0};
    if (poll(&p, 1, 10000) <= 0) return false;
    const ssize_t n = write(master_, bytes.data() + sent, chunk);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string ReceiverOutput(const std::string& log_path) {
  const std::string all = ReadFile(log_path);
  std::string out;
  size_t at = 0;
  // Keep the original line endings: split on '\n' and re-add it.
  while (at < all.size()) {
    size_t nl = all.find('\n', at);
    const size_t end = nl == std::string::npos ? all.size() : nl + 1;
    const std::string_view l(all.data() + at, end - at);
    if (!l.starts_with("#")) out.append(l);
    at = end;
  }
  return out;
}

}  // namespace edgeferry::testing
