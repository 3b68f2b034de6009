// A vhost-user-blk export: validation, the listening socket, one front-end
// at a time, stop and stats (see blk_export.hh).
#include "vhost/blk_export.hh"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/errors.hh"

namespace ioe::vhost {

namespace {

[[noreturn]] void bad(const blk_export_config& cfg, storage_errc c, const std::string& what) {
    throw storage_error(c, fmt::format("vhost-blk export \"{}\": {}", cfg.name, what));
}

// A unix socket nobody listens on (connect refused): what a killed engine
// leaves behind.
bool stale_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), path.size());
    const bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == ECONNREFUSED;
    ::close(fd);
    return refused;
}

}  // namespace

future<std::unique_ptr<blk_export>> blk_export::create(blk_export_config cfg, block_device& dev) {
    if (cfg.name.empty()) bad(cfg, storage_errc::invalid_argument, "the name is empty");
    if (cfg.socket_path.empty()) bad(cfg, storage_errc::invalid_argument, "the socket path is empty");
    if (cfg.socket_path.size() >= sizeof(sockaddr_un{}.sun_path))
        bad(cfg, storage_errc::invalid_argument,
            fmt::format("socket path \"{}\" is {} bytes long; a unix socket path holds at most {}", cfg.socket_path,
                        cfg.socket_path.size(), sizeof(sockaddr_un{}.sun_path) - 1));
    if (cfg.num_queues < 1 || cfg.num_queues > max_export_queues)
        bad(cfg, storage_errc::invalid_argument,
            fmt::format("{} queues: an export has 1 to {}", cfg.num_queues, max_export_queues));
    const std::uint32_t bs = dev.block_size();
    if (bs < 512 || bs > 65536 || !std::has_single_bit(bs))
        bad(cfg, storage_errc::invalid_argument,
            fmt::format("device \"{}\" has a block size of {} bytes; virtio-blk needs a power of two from 512 to 65536",
                        dev.name(), bs));
    if (dev.block_count() == 0) bad(cfg, storage_errc::invalid_argument, fmt::format("device \"{}\" is empty", dev.name()));
    if (dev.closing()) bad(cfg, storage_errc::invalid_argument, fmt::format("device \"{}\" is closing", dev.name()));
    struct stat st{};
    if (::lstat(cfg.socket_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || !stale_socket(cfg.socket_path))
            bad(cfg, storage_errc::already_exists,
                fmt::format("{} already exists ({}: remove it, or choose another path)", cfg.socket_path,
                            S_ISSOCK(st.st_mode) ? "a socket someone listens on" : "not a socket"));
        // Left over by an engine that was killed: nobody listens on it.
        log::info("vhost-blk \"{}\": removing the stale socket {} (nobody listens on it)", cfg.name, cfg.socket_path);
        ::unlink(cfg.socket_path.c_str());
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), fmt::format("vhost-blk \"{}\": socket", cfg.name));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, cfg.socket_path.data(), cfg.socket_path.size());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) {
        int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(),
                                fmt::format("vhost-blk \"{}\": listen on {}", cfg.name, cfg.socket_path));
    }
    std::unique_ptr<blk_export> e(new blk_export(std::move(cfg), dev, fd));
    e->_accepting.emplace(e->accept_loop());
    log::info("vhost-blk \"{}\": serving device \"{}\" ({} blocks of {} bytes, {} queue(s){}) on {}", e->_cfg.name,
              dev.name(), dev.block_count(), dev.block_size(), e->_cfg.num_queues, e->_cfg.read_only ? ", read-only" : "",
              e->_cfg.socket_path);
    co_return e;
}

blk_export::blk_export(blk_export_config cfg, block_device& dev, int listen_fd)
    : _cfg(std::move(cfg)), _dev(dev), _listen_fd(listen_fd), _owner(this_shard_id()) {}

blk_export::~blk_export() {
    if (!_stopped)
        log::error("vhost-blk \"{}\": destroyed without stop() (its socket and front-end are leaked)", _cfg.name);
    if (_listen_fd >= 0) ::close(_listen_fd);
}

future<> blk_export::accept_loop() {
    uring& io = local_reactor()->io();
    while (!_stopping) {
        auto accepted = io.accept(_listen_fd);
        _accept_op = io.last_op_id();
        io_result r = co_await std::move(accepted);
        _accept_op = 0;
        if (!r) {
            if (_stopping || r.error().value() == ECANCELED || r.error().value() == EINVAL) break;
            log::warn("vhost-blk \"{}\": accept failed: {}", _cfg.name, r.error().message());
            continue;
        }
        int fd = static_cast<int>(r.value());
        if (_stopping) {
            ::close(fd);
            break;
        }
        // A front-end that just left may not be torn down yet (QEMU
        // restarting): give it a moment before calling the new one a second.
        for (int i = 0; i < 100 && _conn && !_stopping; ++i) co_await sleep(std::chrono::milliseconds(10));
        if (_stopping) {
            ::close(fd);
            break;
        }
        if (_conn) {
            ++_refused;
            log::warn("vhost-blk \"{}\": a second front-end connected to {} while one is served: closed", _cfg.name,
                      _cfg.socket_path);
            ::close(fd);
            continue;
        }
        _serving.emplace(serve(fd));
    }
}

future<> blk_export::serve(int fd) {
    ++_connections;
    connection_context ctx;
    ctx.name = _cfg.name;
    ctx.device = &_dev;
    ctx.geometry = blk_geometry{_dev.block_count(), _dev.block_size(), _cfg.num_queues, _cfg.read_only};
    ctx.first_shard = _owner;
    ctx.totals = &_totals;
    ctx.protocol_errors = &_protocol_errors;
    _conn = std::make_unique<blk_connection>(std::move(ctx), fd);
    log::info("vhost-blk \"{}\": front-end connected", _cfg.name);
    co_await _conn->run();
    _conn.reset();
    log::info("vhost-blk \"{}\": front-end disconnected{}", _cfg.name, _stopping ? "" : "; listening again");
}

future<> blk_export::stop() {
    if (_stopped) co_return;
    _stopping = true;
    if (_listen_fd >= 0) {
        ::shutdown(_listen_fd, SHUT_RDWR);
        if (_accept_op) local_reactor()->io().cancel(_accept_op).ignore();
    }
    if (_accepting) {
        auto f = std::move(*_accepting);
        _accepting.reset();
        co_await f.wait_ready();
    }
    if (_conn) _conn->close();
    if (_serving) {
        auto f = std::move(*_serving);
        _serving.reset();
        co_await f.wait_ready();
    }
    if (_listen_fd >= 0) {
        ::close(_listen_fd);
        _listen_fd = -1;
    }
    ::unlink(_cfg.socket_path.c_str());
    _stopped = true;
    log::info("vhost-blk \"{}\": stopped, {} removed", _cfg.name, _cfg.socket_path);
}

future<blk_export_stats> blk_export::stats() {
    blk_export_stats s;
    s.name = _cfg.name;
    s.socket_path = _cfg.socket_path;
    s.device = _dev.name();
    s.num_queues = _cfg.num_queues;
    s.read_only = _cfg.read_only;
    s.connections = _connections;
    s.refused = _refused;
    s.io = _totals;
    if (_conn) {
        s.connected = true;
        auto cs = _conn->state();
        s.features = cs.features;
        s.protocol_features = cs.protocol_features;
        s.queues_active = cs.queues_running;
        s.mapped_bytes = cs.mapped_bytes;
        s.inflight = cs.inflight;
        s.io.add(co_await _conn->live_counters());
    }
    s.protocol_errors = _protocol_errors;
    co_return s;
}

}  // namespace ioe::vhost
