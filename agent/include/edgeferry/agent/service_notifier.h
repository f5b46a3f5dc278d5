// ServiceNotifier: the systemd service protocol (sd_notify(3)): READY=1 once the buffer
// is recovered and sources and sinks are started, STATUS= lines, WATCHDOG=1 pings from
// the main loop (so a stuck loop gets the service restarted), RELOADING=1 / STOPPING=1.
// Every call is a no-op when not run by systemd (no NOTIFY_SOCKET). Main thread only.
#pragma once

#include <cstdint>
#include <string_view>

namespace edgeferry::agent {

class ServiceNotifier {
 public:
  ServiceNotifier();
  void Ready();
  void Reloading();
  void Stopping();
  void Status(std::string_view text);
  // Sends WATCHDOG=1 when a watchdog is set and half its interval has passed.
  void KeepAlive();
  // The watchdog interval from WATCHDOG_USEC, ns; 0 when none is set.
  int64_t watchdog_ns() const { return watchdog_ns_; }

 private:
  int64_t watchdog_ns_ = 0;
  int64_t last_ping_ns_ = 0;
};

}  // namespace edgeferry::agent
