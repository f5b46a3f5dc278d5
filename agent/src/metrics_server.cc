#include "edgeferry/agent/metrics_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace edgeferry::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class MetricsServer::Impl {
 public:
  explicit Impl(Handlers handlers) : handlers_(std::move(handlers)) {}

  Status Start(const std::string& address, int port) {
    try {
      acceptor_.open(tcp::v4());
      acceptor_.set_option(asio::socket_base::reuse_address(true));
      acceptor_.bind(tcp::endpoint(asio::ip::make_address(address), static_cast<unsigned short>(port)));
      acceptor_.listen();
      port_ = acceptor_.local_endpoint().port();
    } catch (const std::exception& e) {
      return Status::IOError(fmt::format("metrics endpoint {}:{}: {}", address, port, e.what()));
    }
    thread_ = std::thread([this] { Serve(); });
    spdlog::info("metrics on http://{}:{}/metrics, health on /healthz", address, port_);
    return Status::Ok();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    // Closing the acceptor does not wake a blocked accept() on Linux; a connection does.
    boost::system::error_code ec;
    asio::io_context io;
    tcp::socket wake(io);
    auto address = acceptor_.local_endpoint(ec).address();
    if (address.is_unspecified()) address = asio::ip::make_address("127.0.0.1");
    wake.connect(tcp::endpoint(address, static_cast<unsigned short>(port_)), ec);
    thread_.join();
    acceptor_.close(ec);
  }

  int port() const { return port_; }

 private:
  void Serve() {
    while (!stop_) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stop_) return;
      if (ec) continue;
      // A client that connects and says nothing must not hold the endpoint.
      timeval timeout{5, 0};
      setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
      Handle(socket);
    }
  }

  void Handle(tcp::socket& socket) {
    boost::system::error_code ec;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(false);
    const std::string target(req.target());
    if (req.method() != http::verb::get) {
      res.result(http::status::method_not_allowed);
      res.body() = "GET only\n";
    } else if (target == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = handlers_.metrics();
    } else if (target == "/healthz") {
      const std::string problem = handlers_.health();
      res.result(problem.empty() ? http::status::ok : http::status::service_unavailable);
      res.body() = problem.empty() ? "ok\n" : problem + "\n";
    } else if (target == "/status") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "application/json");
      res.body() = handlers_.status();
    } else {
      res.result(http::status::not_found);
      res.body() = "try /metrics, /healthz or /status\n";
    }
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  Handlers handlers_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int port_ = 0;
};

MetricsServer::MetricsServer(Handlers handlers) : impl_(std::make_unique<Impl>(std::move(handlers))) {}
MetricsServer::~MetricsServer() { Stop(); }
Status MetricsServer::Start(const std::string& address, int port) { return impl_->Start(address, port); }
void MetricsServer::Stop() { impl_->Stop(); }
int MetricsServer::port() const { return impl_->port(); }

}  // namespace edgeferry::agent
