#include "edgeferry/agent/metrics_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <limits>
#include <list>
#include <memory>
#include <thread>

namespace edgeferry::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool TapClientAllowed(const std::string& peer, const std::string& local) {
  boost::system::error_code a, b;
  const auto p = asio::ip::make_address(peer, a);
  const auto l = asio::ip::make_address(local, b);
  if (a || b) return false;
  // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d.
  auto plain = [](const asio::ip::address& x) {
    return x.is_v6() && x.to_v6().is_v4_mapped() ? asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, x.to_v6()))
                                                 : x;
  };
  return plain(p).is_loopback() || plain(p) == plain(l);
}

namespace {

// One connection: read one request's header within the deadline, answer, close. A body
// is never read (no route takes one): it is discarded, at most kMaxDiscardBytes of it,
// after the answer. Every step runs on the server's one io_context thread, so a slow
// client costs a socket and a few KiB, never the attention of the thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const MetricsServer::Handlers& handlers, const MetricsServer::Limits& limits)
      : stream_(std::move(socket)), handlers_(handlers), limits_(limits) {
    parser_.header_limit(static_cast<std::uint32_t>(limits.max_request_bytes));
    // The parser never reads a body (see DiscardBody), so an announced length, however
    // large, must not fail the header read.
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
  }

  void Start() {
    stream_.expires_after(limits_.request_timeout);  // the whole request, not each read
    // The header only: the method and target decide the answer, and a body is not read.
    http::async_read_header(stream_, buffer_, parser_,
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
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        Respond(http::status::request_header_fields_too_large, "request too large\n", "");
      } else {
        Close();
      }
      return;
    }
    // A handler that throws (a bug, or bytes a JSON dump refuses) answers 500 and the
    // server goes on: the endpoint's thread must never end the process.
    try {
      Route();
    } catch (const std::exception& e) {
      Respond(http::status::internal_server_error, std::string("internal error: ") + e.what() + "\n", "");
    }
  }

  void Route() {
    const auto& req = parser_.get();
    // The route is the path: a query string (Prometheus `params:`) is ignored.
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    head_ = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head_) {
      res_.set(http::field::allow, "GET, HEAD");
      Respond(http::status::method_not_allowed, "GET or HEAD only\n", "");
    } else if (path == "/metrics") {
      Respond(http::status::ok, handlers_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    } else if (path == "/healthz") {
      const std::string problem = handlers_.health();
      Respond(problem.empty() ? http::status::ok : http::status::service_unavailable,
              problem.empty() ? "ok\n" : problem + "\n", "");
    } else if (path == "/status") {
      Respond(http::status::ok, handlers_.status(), "application/json");
    } else if (path == "/tap" && handlers_.tap) {
      // This machine only: the loopback interface, or one of its own addresses (an
      // endpoint bound to a LAN address, tapped from the gateway itself).
      beast::error_code peer_ec, local_ec;
      const auto peer = stream_.socket().remote_endpoint(peer_ec);
      const auto local = stream_.socket().local_endpoint(local_ec);
      if (peer_ec || local_ec || !TapClientAllowed(peer.address().to_string(), local.address().to_string())) {
        Respond(http::status::forbidden, "/tap answers on the loopback interface only\n", "");
        return;
      }
      // A local reverse proxy (put in front of /metrics for a remote Prometheus) would
      // make every remote client look local: a proxied request is refused.
      if (req.count(http::field::forwarded) || req.count("X-Forwarded-For") ||
          req.count(http::field::via) || req.count("X-Real-IP")) {
        Respond(http::status::forbidden, "/tap is not served through a proxy (Forwarded, X-Forwarded-For, Via)\n", "");
        return;
      }
      const size_t q = target.find('?');
      auto [code, body] = handlers_.tap(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
      Respond(static_cast<http::status>(code), std::move(body), "application/json");
    } else {
      Respond(http::status::not_found, "try /metrics, /healthz or /status\n", "");
    }
  }

  void Respond(http::status status, std::string body, std::string_view content_type) {
    res_.result(status);
    res_.version(11);
    res_.keep_alive(false);
    if (!content_type.empty()) res_.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    if (head_) {
      res_.content_length(body.size());  // what GET would send, without the body
    } else {
      res_.body() = std::move(body);
      res_.prepare_payload();
    }
    stream_.expires_after(limits_.request_timeout);  // a client that does not read its answer
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || self->parser_.is_done()) return self->Close();
      self->DiscardBody();
    });
  }

  // The request had a body (or the header was not read whole): closing with unread
  // bytes makes the kernel send a reset, which may destroy the answer before the client
  // reads it. So half-close, then discard what the client still sends, up to
  // kMaxDiscardBytes or the request timeout, whichever comes first, and close.
  void DiscardBody() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(limits_.request_timeout);
    ReadAndDiscard();
  }

  void ReadAndDiscard() {
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->discarded_ += n;
      if (ec || self->discarded_ >= kMaxDiscardBytes) return self->Close();
      self->ReadAndDiscard();
    });
  }

  static constexpr std::size_t kMaxDiscardBytes = 256 * 1024;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> res_;
  bool head_ = false;  // a HEAD request: headers only
  std::array<char, 4096> discard_;
  std::size_t discarded_ = 0;
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
