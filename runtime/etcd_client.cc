// The etcd client's transport and shard plumbing (see etcd_client.hh); the
// messages themselves are in etcd_protocol.cc.
#include "runtime/etcd_client.hh"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <mutex>
#include <vector>

#include "runtime/control.hh"
#include "runtime/engine.hh"
#include "runtime/etcd_protocol.hh"
#include "runtime/reactor.hh"

namespace ioe {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

// Largest response body accepted (etcd values are at most 1.5 MiB by
// default; base64 adds a third).
constexpr std::uint64_t max_response_body = 8u << 20;
constexpr std::uint32_t max_response_header = 16u << 10;

struct endpoint_address {
    std::string text;  // as configured, for messages
    std::string host;
    std::string port;
};

endpoint_address parse_endpoint(std::string_view s) {
    endpoint_address a;
    a.text = std::string(s);
    std::string_view rest = s;
    if (rest.starts_with("https://")) {
        throw std::invalid_argument("etcd endpoint \"" + a.text + "\": TLS (https) is not supported");
    }
    if (rest.starts_with("http://")) rest.remove_prefix(7);
    if (rest.ends_with("/")) rest.remove_suffix(1);
    std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
        throw std::invalid_argument("etcd endpoint \"" + a.text + "\": expected host:port");
    }
    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
    unsigned long p = 0;
    for (char c : port) {
        if (c < '0' || c > '9' || p > 65535) throw std::invalid_argument("etcd endpoint \"" + a.text + "\": bad port");
        p = p * 10 + unsigned(c - '0');
    }
    if (p == 0 || p > 65535) throw std::invalid_argument("etcd endpoint \"" + a.text + "\": bad port");
    if (host.empty() || host.find('/') != std::string_view::npos) {
        throw std::invalid_argument("etcd endpoint \"" + a.text + "\": bad host");
    }
    a.host = std::string(host);
    a.port = std::string(port);
    return a;
}

std::string quoted_key(std::string_view key) {
    std::string out = "\"";
    for (char c : key.substr(0, 200)) {
        auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    if (key.size() > 200) out += "...";
    return out + "\"";
}

// One call as the control thread runs it.
struct call {
    const char* op;  // "get", "put", ... (for messages)
    std::string_view path;
    std::string key;
    std::string body;
    bool idempotent;
};

// What the exchange hands back: a body and the endpoint that answered, or an error.
using on_answer = std::function<void(std::exception_ptr error, std::string body, std::string endpoint)>;

}  // namespace

etcd_error::etcd_error(kind k, std::string endpoint, std::string key, const std::string& message)
    : std::runtime_error(message), _kind(k), _endpoint(std::move(endpoint)), _key(std::move(key)) {}

struct etcd_client::impl {
    impl(engine& e, control_thread& c, etcd_config conf) : eng(e), control(c), cfg(std::move(conf)) {
        if (cfg.endpoints.empty()) throw std::invalid_argument("etcd: no endpoints given");
        for (const auto& s : cfg.endpoints) endpoints.push_back(parse_endpoint(s));
        if (cfg.request_timeout.count() <= 0 || cfg.connect_timeout.count() <= 0) {
            throw std::invalid_argument("etcd: timeouts must be positive");
        }
    }
    engine& eng;
    control_thread& control;
    const etcd_config cfg;
    std::vector<endpoint_address> endpoints;
    std::size_t preferred = 0;  // control thread only: the endpoint that answered last
    // Set when the client is destroyed: an answer that arrives later must
    // not be posted to a shard (the engine may have stopped by then).
    std::mutex closing;
    bool closed = false;
};

namespace {

// One HTTP exchange, endpoint after endpoint, on the control thread.
class exchange : public std::enable_shared_from_this<exchange> {
public:
    exchange(std::shared_ptr<etcd_client::impl> client, call c, on_answer done)
        : _client(std::move(client)), _call(std::move(c)), _done(std::move(done)), _resolver(_client->control.io()),
          _deadline(std::chrono::steady_clock::now() + _client->cfg.request_timeout), _first(_client->preferred) {}

    void start() { try_next(); }

private:
    const endpoint_address& current() const { return _client->endpoints[_index]; }

    std::chrono::steady_clock::duration remaining() const { return _deadline - std::chrono::steady_clock::now(); }

    void note(const std::string& why) {
        if (!_failures.empty()) _failures += "; ";
        _failures += current().text + ": " + why;
    }

    void fail(etcd_error::kind k, std::string endpoint, const std::string& why) {
        std::string msg = "etcd " + endpoint + ": " + _call.op + " " + quoted_key(_call.key) + ": " + why;
        auto done = std::move(_done);
        done(std::make_exception_ptr(etcd_error(k, std::move(endpoint), _call.key, msg)), {}, {});
    }

    void fail_timeout() {
        std::string why = "timed out after " + std::to_string(_client->cfg.request_timeout.count()) + " ms";
        if (_sent && !_call.idempotent) why += " (the request was sent: outcome unknown)";
        if (!_failures.empty()) why += " (before that: " + _failures + ")";
        fail(etcd_error::kind::timeout, _tries ? current().text : _client->endpoints[0].text, why);
    }

    void try_next() {
        _stream.reset();
        if (remaining() <= std::chrono::steady_clock::duration::zero()) return fail_timeout();
        std::size_t n = _client->endpoints.size();
        if (_tries == n) {
            std::string all;
            for (const auto& e : _client->endpoints) all += (all.empty() ? "" : ",") + e.text;
            return fail(etcd_error::kind::unavailable, all, "no endpoint reachable: " + _failures);
        }
        _index = (_first + _tries) % n;
        ++_tries;
        _sent = false;
        _resolver.async_resolve(current().host, current().port,
                                [self = shared_from_this()](const boost::system::error_code& ec,
                                                            tcp::resolver::results_type results) {
                                    self->on_resolve(ec, std::move(results));
                                });
    }

    void on_resolve(const boost::system::error_code& ec, tcp::resolver::results_type results) {
        if (ec) {
            note("cannot resolve: " + ec.message());
            return try_next();
        }
        auto left = remaining();
        if (left <= std::chrono::steady_clock::duration::zero()) return fail_timeout();
        _stream.emplace(_client->control.io());
        _stream->expires_after(std::min<std::chrono::steady_clock::duration>(left, _client->cfg.connect_timeout));
        _stream->async_connect(results, [self = shared_from_this()](const boost::system::error_code& e,
                                                                    const tcp::endpoint&) { self->on_connect(e); });
    }

    void on_connect(const boost::system::error_code& ec) {
        if (ec == beast::error::timeout) {
            if (remaining() <= std::chrono::steady_clock::duration::zero()) return fail_timeout();
            note("connect timed out after " + std::to_string(_client->cfg.connect_timeout.count()) + " ms");
            return try_next();
        }
        if (ec) {
            note("connect: " + ec.message());
            return try_next();
        }
        _request = {};
        _request.method(http::verb::post);
        _request.target(beast::string_view(_call.path.data(), _call.path.size()));
        _request.version(11);
        _request.set(http::field::host, current().host + ":" + current().port);
        _request.set(http::field::content_type, "application/json");
        _request.keep_alive(false);
        _request.body() = _call.body;
        _request.prepare_payload();
        _stream->expires_at(_deadline);
        http::async_write(*_stream, _request,
                          [self = shared_from_this()](const boost::system::error_code& e, std::size_t) {
                              self->on_write(e);
                          });
    }

    void on_write(const boost::system::error_code& ec) {
        if (ec == beast::error::timeout) return fail_timeout();
        if (ec) {
            // Not all of it left: the server cannot have acted on it.
            note("send: " + ec.message());
            return try_next();
        }
        _sent = true;
        _buffer.clear();
        _parser.emplace();
        _parser->body_limit(max_response_body);
        _parser->header_limit(max_response_header);
        http::async_read(*_stream, _buffer, *_parser,
                         [self = shared_from_this()](const boost::system::error_code& e, std::size_t) {
                             self->on_read(e);
                         });
    }

    void on_read(const boost::system::error_code& ec) {
        if (ec == beast::error::timeout) return fail_timeout();
        if (ec) {
            std::string why = "no answer: " + ec.message();
            if (_call.idempotent) {
                note(why);
                return try_next();
            }
            return fail(etcd_error::kind::unavailable, current().text,
                        why + " (the request was sent: outcome unknown)");
        }
        boost::system::error_code ignored;
        _stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        auto& res = _parser->get();
        unsigned status = res.result_int();
        if (status == 200) {
            _client->preferred = _index;
            auto done = std::move(_done);
            done(nullptr, std::move(res.body()), current().text);
            return;
        }
        etcd::error_response err = etcd::parse_error_response(res.body());
        std::string why = "HTTP " + std::to_string(status) + ": " + err.message;
        if (err.code >= 0) why += " (gRPC code " + std::to_string(err.code) + ")";
        if (status == 503 || err.code == etcd::grpc_unavailable) {
            if (_call.idempotent) {
                note(why);
                return try_next();
            }
            return fail(etcd_error::kind::unavailable, current().text, why);
        }
        fail(etcd_error::kind::bad_response, current().text, why);
    }

    std::shared_ptr<etcd_client::impl> _client;
    call _call;
    on_answer _done;
    tcp::resolver _resolver;
    std::optional<beast::tcp_stream> _stream;
    http::request<http::string_body> _request;
    beast::flat_buffer _buffer;
    std::optional<http::response_parser<http::string_body>> _parser;
    std::chrono::steady_clock::time_point _deadline;
    std::size_t _first;
    std::size_t _tries = 0;
    std::size_t _index = 0;
    bool _sent = false;
    std::string _failures;
};

// Runs `c` on the control thread and resolves the returned future on the
// calling shard with decode(body) (a bad_message becomes an etcd_error).
template <typename R, typename Decode>
future<R> dispatch(const std::shared_ptr<etcd_client::impl>& client, call c, Decode decode) {
    if (!local_reactor()) throw std::logic_error("etcd_client: called outside a shard");
    unsigned shard = this_shard_id();
    auto* p = new promise<R>();  // lives on `shard`; freed there when fulfilled
    future<R> f = p->get_future();
    client->control.post([client, c = std::move(c), decode = std::move(decode), shard, p]() mutable {
        std::string key = c.key;
        const char* op = c.op;
        auto ex = std::make_shared<exchange>(
            client, std::move(c),
            [client, decode = std::move(decode), shard, p, key = std::move(key), op](
                std::exception_ptr error, std::string body, std::string endpoint) {
                auto o = std::make_shared<outcome<R>>();
                if (error) {
                    o->set_exception(error);
                } else {
                    try {
                        o->set_value(decode(body));
                    } catch (const etcd::bad_message& e) {
                        o->set_exception(std::make_exception_ptr(
                            etcd_error(etcd_error::kind::bad_response, endpoint, key,
                                       "etcd " + endpoint + ": " + op + " " + quoted_key(key) + ": " + e.what())));
                    } catch (...) {
                        o->set_exception(std::current_exception());
                    }
                }
                std::lock_guard lk(client->closing);
                if (client->closed) {
                    // Nobody waits any more, and the shard may be gone: the
                    // promise belongs to that shard's allocator, so it is
                    // kept (reachable) rather than freed on this thread.
                    static std::vector<void*> orphans;
                    orphans.push_back(p);
                    return;
                }
                client->eng.post(shard, [p, o] {
                    if (o->failed()) {
                        p->set_exception(o->exception());
                    } else {
                        p->set_value(o->take());
                    }
                    delete p;
                });
            });
        ex->start();
    });
    return f;
}

}  // namespace

std::vector<std::string> etcd_config::parse_endpoints(std::string_view s) {
    std::vector<std::string> out;
    while (!s.empty()) {
        std::size_t comma = s.find(',');
        std::string_view one = s.substr(0, comma);
        if (one.empty()) throw std::invalid_argument("etcd endpoints: empty entry in the list");
        parse_endpoint(one);  // validates
        out.emplace_back(one);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
        if (s.empty()) throw std::invalid_argument("etcd endpoints: empty entry in the list");
    }
    if (out.empty()) throw std::invalid_argument("etcd endpoints: none given");
    return out;
}

etcd_client::etcd_client(engine& e, control_thread& control, etcd_config cfg)
    : _impl(std::make_shared<impl>(e, control, std::move(cfg))) {}

etcd_client::~etcd_client() {
    if (!_impl) return;
    std::lock_guard lk(_impl->closing);
    _impl->closed = true;
}

const etcd_config& etcd_client::config() const noexcept { return _impl->cfg; }

future<std::optional<etcd_kv>> etcd_client::get(std::string key) {
    std::string body = etcd::range_request(key);
    return dispatch<std::optional<etcd_kv>>(
        _impl, call{"get", etcd::range_path, key, std::move(body), true},
        [key](const std::string& b) -> std::optional<etcd_kv> {
            auto r = etcd::parse_range_response(b, key);
            if (!r.kv) return std::nullopt;
            return etcd_kv{std::move(r.kv->value), r.kv->mod_revision};
        });
}

future<std::int64_t> etcd_client::put(std::string key, std::string value) {
    std::string body = etcd::put_request(key, value);
    return dispatch<std::int64_t>(_impl, call{"put", etcd::put_path, std::move(key), std::move(body), true},
                                  [](const std::string& b) { return etcd::parse_put_response(b).revision; });
}

future<etcd_cas_result> etcd_client::compare_and_put(std::string key, std::string value,
                                                      std::int64_t expected_mod_revision) {
    if (expected_mod_revision < 0) {
        return make_exception_future<etcd_cas_result>(std::invalid_argument("etcd compare_and_put: negative revision"));
    }
    std::string body = etcd::compare_and_put_request(key, value, expected_mod_revision);
    return dispatch<etcd_cas_result>(
        _impl, call{"compare-and-put", etcd::txn_path, key, std::move(body), false},
        [key](const std::string& b) {
            auto r = etcd::parse_compare_and_put_response(b, key);
            etcd_cas_result out;
            out.succeeded = r.succeeded;
            if (r.succeeded) out.mod_revision = r.revision;
            if (r.current) out.current = etcd_kv{std::move(r.current->value), r.current->mod_revision};
            return out;
        });
}

future<bool> etcd_client::remove(std::string key) {
    std::string body = etcd::delete_request(key);
    return dispatch<bool>(_impl, call{"delete", etcd::delete_path, std::move(key), std::move(body), true},
                          [](const std::string& b) { return etcd::parse_delete_response(b).deleted > 0; });
}

}  // namespace ioe
