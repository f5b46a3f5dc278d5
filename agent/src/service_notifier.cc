#include "edgeferry/agent/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <string>

#include "edgeferry/clock.h"

namespace edgeferry::agent {

ServiceNotifier::ServiceNotifier() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ns_ = static_cast<int64_t>(usec) * 1000;
}

void ServiceNotifier::Ready() { sd_notify(0, "READY=1"); }
void ServiceNotifier::Reloading() { sd_notify(0, "RELOADING=1"); }
void ServiceNotifier::Stopping() { sd_notify(0, "STOPPING=1"); }

void ServiceNotifier::Status(std::string_view text) {
  sd_notify(0, ("STATUS=" + std::string(text)).c_str());
}

void ServiceNotifier::KeepAlive() {
  if (watchdog_ns_ == 0) return;
  const int64_t now = SystemClock().MonoNs();
  if (now - last_ping_ns_ < watchdog_ns_ / 2) return;
  sd_notify(0, "WATCHDOG=1");
  last_ping_ns_ = now;
}

}  // namespace edgeferry::agent
