#include "edgeferry/agent/metrics_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <memory>
#include <thread>

namespace edgeferry::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// One connection: read one request within the deadline, answer, close. Every step runs
// on the server's one io_context thread, so a slow client costs a socket and a few KiB,
// never the attention of the thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const MetricsServer::Handlers& handlers, const MetricsServer::Limits& limits)
      : stream_(std::move(socket)), handlers_(handlers), limits_(limits) {
    parser_.header_limit(static_cast<std::uint32_t>(limits.max_request_bytes));
    parser_.body_limit(0);  // GET carries no body
  }

  void Start() {
    stream_.expires_after(limits_.request_timeout);  // the whole request, not each read
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  // Called on the server thread: drops the connection whatever it is doing.
  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  bool open() const { return stream_.socket().is_open(); }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      // Too large: say so (431) rather than drop silently; anything else just closes.
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow || ec == http::error::body_limit) {
        Respond(http::status::request_header_fields_too_large, "request too large\n", "");
      } else {
        Close();
      }
      return;
    }
    const auto& req = parser_.get();
    const std::string target(req.target());
    if (req.method() != http::verb::get) {
      Respond(http::status::method_not_allowed, "GET only\n", "");
    } else if (target == "/metrics") {
      Respond(http::status::ok, handlers_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    } else if (target == "/healthz") {
      const std::string problem = handlers_.health();
      Respond(problem.empty() ? http::status::ok : http::status::service_unavailable,
              problem.empty() ? "ok\n" : problem + "\n", "");
    } else if (target == "/status") {
      Respond(http::status::ok, handlers_.status(), "application/json");
    } else {
      Respond(http::status::not_found, "try /metrics, /healthz or /status\n", "");
    }
  }

  void Respond(http::status status, std::string body, std::string_view content_type) {
    res_.result(status);
    res_.version(11);
    res_.keep_alive(false);
    if (!content_type.empty()) res_.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    res_.body() = std::move(body);
    res_.prepare_payload();
    stream_.expires_after(limits_.request_timeout);  // a client that does not read its answer
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, std::size_t) { self->Close(); });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> res_;
  const MetricsServer::Handlers& handlers_;
  const MetricsServer::Limits limits_;
};

}  // namespace

class MetricsServer::Impl {
 public:
  Impl(Handlers handlers, Limits limits) : handlers_(std::move(handlers)), limits_(limits) {}

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
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    spdlog::info("metrics on http://{}:{}/metrics, health on /healthz", address, port_);
    return Status::Ok();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    // On the server thread, which owns the acceptor and the sessions; what is still
    // pending is destroyed with io_.
    asio::post(io_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      retry_.cancel();
      for (auto& weak : sessions_) {
        if (auto s = weak.lock()) s->Close();
      }
      io_.stop();
    });
    thread_.join();
  }

  int port() const { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // EMFILE and the like: try again shortly instead of spinning on the error.
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && acceptor_.is_open()) Accept();
        });
        return;
      }
      // At the cap the oldest connection goes: a flood of idle clients cannot exhaust
      // the process's descriptors, and a fresh scrape always gets in.
      sessions_.remove_if([](const std::weak_ptr<Session>& w) {
        auto s = w.lock();
        return !s || !s->open();
      });
      while (sessions_.size() >= limits_.max_connections) {
        if (auto oldest = sessions_.front().lock()) oldest->Close();
        sessions_.pop_front();
      }
      auto session = std::make_shared<Session>(std::move(socket), handlers_, limits_);
      sessions_.push_back(session);
      session->Start();
      Accept();
    });
  }

  Handlers handlers_;
  const Limits limits_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  asio::steady_timer retry_{io_};
  std::list<std::weak_ptr<Session>> sessions_;  // oldest first; only the server thread touches it
  std::thread thread_;
  int port_ = 0;
};

MetricsServer::MetricsServer(Handlers handlers) : MetricsServer(std::move(handlers), Limits{}) {}
MetricsServer::MetricsServer(Handlers handlers, Limits limits)
    : impl_(std::make_unique<Impl>(std::move(handlers), limits)) {}
MetricsServer::~MetricsServer() { Stop(); }
Status MetricsServer::Start(const std::string& address, int port) { return impl_->Start(address, port); }
void MetricsServer::Stop() { impl_->Stop(); }
int MetricsServer::port() const { return impl_->port(); }

}  // namespace edgeferry::agent
