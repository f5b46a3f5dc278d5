// The health and metrics endpoint (HTTP/1.1, Boost.Beast), on 127.0.0.1 by default:
//   GET /metrics  Prometheus text exposition format 0.0.4 (metrics_text.h)
//   GET /healthz  200 "ok" when the buffer is writable and the main loop is alive,
//                 503 with the reason otherwise
//   GET /status   the agent's status as JSON (report.h AgentStatusJson), for `edgeferry status`
// One thread, one request at a time: scrapes are rare and small.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "edgeferry/status.h"

namespace edgeferry::agent {

class MetricsServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;  // renders /metrics
    std::function<std::string()> health;   // "" when healthy, else the reason
    std::function<std::string()> status;   // renders /status
  };
  // The handlers are called from the server's thread and must be thread-safe.
  explicit MetricsServer(Handlers handlers);
  ~MetricsServer();  // Stop()
  // Binds address:port (port 0 picks one) and starts serving. Errors: IOError.
  Status Start(const std::string& address, int port);
  void Stop();
  int port() const;  // the bound port, after Start

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::agent
