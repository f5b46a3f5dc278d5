// The health and metrics endpoint (HTTP/1.1, Boost.Beast), on 127.0.0.1 by default:
//   GET /metrics  Prometheus text exposition format 0.0.4 (metrics_text.h)
//   GET /healthz  200 "ok" when the buffer is writable and the main loop is alive,
//                 503 with the reason otherwise
//   GET /status   the agent's status as JSON (report.h AgentStatusJson), for `edgeferry status`
//   GET /tap?...  records passing the agent (tap.h TapAnswer), for `edgeferry tap`; only
//                 to a client on this machine: from the loopback interface or from the
//                 address it connected to (403 otherwise: payloads are data)
// A query string is ignored for routing (Prometheus `params:`); HEAD answers GET's
// status and headers without the body; any other method gets 405 with
// "Allow: GET, HEAD". A request body is never read: after the answer at most 256 KiB of
// it is discarded (so the client sees the answer, not a reset) and the connection closes.
// One thread runs an asynchronous server (one io_context): connections are served
// concurrently, each must deliver its whole request within Limits::request_timeout and
// in at most Limits::max_request_bytes (431 beyond), and at most
// Limits::max_connections are open at once (the oldest is dropped for a new one). So a
// slow or hostile local client can neither block a scrape nor make `status` lie.
// One request per connection (Connection: close).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "edgeferry/status.h"

namespace edgeferry::agent {

// Whether /tap answers a client at `peer` that reached this endpoint at `local` (IP
// addresses as text): loopback, or this machine itself (the peer's address is the
// endpoint's own). False for anything unparsable.
bool TapClientAllowed(const std::string& peer, const std::string& local);

class MetricsServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;  // renders /metrics
    std::function<std::string()> health;   // "" when healthy, else the reason
    std::function<std::string()> status;   // renders /status
    // Answers /tap with the query string (after '?'): HTTP status and body. Unset: 404.
    std::function<std::pair<int, std::string>(std::string_view query)> tap;
  };
  struct Limits {
    std::chrono::milliseconds request_timeout{5000};  // whole request read, and the answer's write
    std::size_t max_request_bytes = 8192;              // request line + headers, bytes
    std::size_t max_connections = 64;                  // open at once; the oldest is closed beyond
  };
  // The handlers are called from the server's one thread (one at a time) and must be
  // thread-safe with respect to the rest of the agent; a slow handler delays every client.
  explicit MetricsServer(Handlers handlers);  // default Limits
  MetricsServer(Handlers handlers, Limits limits);
  ~MetricsServer();  // Stop()
  // Binds address:port (port 0 picks one) and starts serving. Errors: IOError.
  Status Start(const std::string& address, int port);
  void Stop();  // closes every connection and joins the thread; idempotent
  int port() const;  // the bound port, after Start

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeferry::agent
