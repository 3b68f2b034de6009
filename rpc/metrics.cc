// The /metrics HTTP endpoint (metrics.hh): Boost.Beast on the control
// thread, one request per connection, the figures from shard 0.
#include "rpc/metrics.hh"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <stdexcept>

#include "rpc/metrics_collect.hh"
#include "rpc/node_service.hh"
#include "runtime/control.hh"
#include "runtime/log.hh"

namespace ioe::rpc {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct metrics_server::impl : std::enable_shared_from_this<metrics_server::impl> {
    engine& e;
    control_thread& control;
    node_service& svc;
    std::string address;
    tcp::acceptor acceptor;
    bool stopped = false;

    impl(engine& en, control_thread& c, node_service& s, std::string a)
        : e(en), control(c), svc(s), address(std::move(a)), acceptor(c.io()) {}

    struct connection : std::enable_shared_from_this<connection> {
        std::shared_ptr<impl> server;
        beast::tcp_stream stream;
        beast::flat_buffer buffer;
        http::request<http::string_body> request;
        http::response<http::string_body> response;
        connection(std::shared_ptr<impl> s, tcp::socket sock) : server(std::move(s)), stream(std::move(sock)) {}

        void start() {
            stream.expires_after(std::chrono::seconds(10));
            http::async_read(stream, buffer, request, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                if (!ec) self->answer();
            });
        }
        void answer() {
            response.version(request.version());
            response.keep_alive(false);
            if (request.method() != http::verb::get || request.target() != "/metrics") {
                send(http::status::not_found, "text/plain", "only GET /metrics is served here\n");
                return;
            }
            auto self = shared_from_this();
            server->control.call_on_shard<std::string>(
                0, [svc = &server->svc] { return collect_metrics(*svc); },
                [self](outcome<std::string> o) {
                    if (o.failed()) {
                        std::string why = "metrics unavailable";
                        try {
                            std::rethrow_exception(o.exception());
                        } catch (const std::exception& ex) {
                            why = ex.what();
                        }
                        self->send(http::status::internal_server_error, "text/plain", why + "\n");
                    } else {
                        self->send(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", o.take());
                    }
                });
        }
        void send(http::status status, const char* type, std::string body) {
            response.result(status);
            response.set(http::field::content_type, type);
            response.body() = std::move(body);
            response.prepare_payload();
            http::async_write(stream, response, [self = shared_from_this()](beast::error_code, std::size_t) {
                beast::error_code ignored;
                self->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
            });
        }
    };

    void accept() {
        acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket sock) {
            if (self->stopped) return;
            if (!ec) std::make_shared<connection>(self, std::move(sock))->start();
            self->accept();
        });
    }
};

metrics_server::metrics_server(engine& e, control_thread& control, node_service& svc, std::string address)
    : _impl(std::make_shared<impl>(e, control, svc, std::move(address))) {}

metrics_server::~metrics_server() = default;

void metrics_server::start() {
    auto colon = _impl->address.rfind(':');
    unsigned port = 0;
    if (colon == std::string::npos || std::sscanf(_impl->address.c_str() + colon + 1, "%u", &port) != 1 || port > 65535) {
        throw std::runtime_error("metrics address '" + _impl->address + "': expected HOST:PORT");
    }
    beast::error_code ec;
    auto ip = asio::ip::make_address(_impl->address.substr(0, colon), ec);
    if (ec) throw std::runtime_error("metrics address '" + _impl->address + "': " + ec.message());
    tcp::endpoint ep(ip, static_cast<unsigned short>(port));
    auto& a = _impl->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        throw std::runtime_error("metrics on " + _impl->address + ": cannot listen: " + ec.message() +
                                 " (another engine running? --metrics picks another address, --metrics off none)");
    }
    _impl->accept();
}

void metrics_server::stop() {
    _impl->stopped = true;
    beast::error_code ec;
    _impl->acceptor.close(ec);
}

std::string metrics_server::bound() const {
    beast::error_code ec;
    auto ep = _impl->acceptor.local_endpoint(ec);
    if (ec) return _impl->address;
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace ioe::rpc
