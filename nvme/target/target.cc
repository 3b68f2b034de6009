// The NVMe/TCP target's subsystems, controllers and listener (see target.hh).
#include "nvme/target/target.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <system_error>

#include "nvme/spec/nvme_spec.hh"
#include "nvme/target/tcp_qpair.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"

namespace ioe::nvme {

bool subsystem_config::allows(const std::string& hostnqn) const {
    return allowed_hosts.empty() || std::find(allowed_hosts.begin(), allowed_hosts.end(), hostnqn) != allowed_hosts.end();
}

void controller::add_io_queue(int fd) {
    std::lock_guard<std::mutex> lk(_io_mutex);
    _io_fds.push_back(fd);
}

void controller::remove_io_queue(int fd) {
    std::lock_guard<std::mutex> lk(_io_mutex);
    std::erase(_io_fds, fd);
}

void controller::tear_down() {
    dead.store(true);
    std::lock_guard<std::mutex> lk(_io_mutex);
    for (int fd : _io_fds) ::shutdown(fd, SHUT_RDWR);
}

nvmf_target::nvmf_target(std::string address, std::uint16_t port, target_limits limits)
    : _address(std::move(address)), _port(port), _limits(limits) {}

nvmf_target::~nvmf_target() {
    if (_listen_fd >= 0) ::close(_listen_fd);
}

void nvmf_target::add_subsystem(subsystem_config s) { _subsystems.push_back(std::make_unique<subsystem_config>(std::move(s))); }

const subsystem_config* nvmf_target::find_subsystem(const std::string& nqn) const noexcept {
    for (const auto& s : _subsystems)
        if (s->nqn == nqn) return s.get();
    return nullptr;
}

std::shared_ptr<controller> nvmf_target::create_controller(const subsystem_config* s, std::string hostnqn,
                                                           unsigned shard) {
    std::lock_guard<std::mutex> lk(_mutex);
    std::uint16_t id = 0;
    for (int tries = 0; tries < 0xffef; ++tries) {
        std::uint16_t candidate = _next_cntlid;
        _next_cntlid = static_cast<std::uint16_t>(_next_cntlid >= 0xffef ? 1 : _next_cntlid + 1);
        if (!_controllers.count(candidate)) {
            id = candidate;
            break;
        }
    }
    if (id == 0) return nullptr;
    auto c = std::make_shared<controller>();
    c->cntlid = id;
    c->subsystem = s;
    c->hostnqn = std::move(hostnqn);
    c->admin_shard = shard;
    _controllers[id] = c;
    return c;
}

std::shared_ptr<controller> nvmf_target::find_controller(std::uint16_t cntlid) {
    std::lock_guard<std::mutex> lk(_mutex);
    auto it = _controllers.find(cntlid);
    return it == _controllers.end() ? nullptr : it->second;
}

void nvmf_target::remove_controller(std::uint16_t cntlid) {
    std::lock_guard<std::mutex> lk(_mutex);
    _controllers.erase(cntlid);
}

std::vector<discovery_entry> nvmf_target::discovery_entries() const {
    std::vector<discovery_entry> out;
    for (const auto& s : _subsystems) {
        out.push_back(discovery_entry{s->nqn, _address, std::to_string(_port), 1, false});
    }
    return out;
}

void nvmf_target::connection_opened(int fd) {
    std::lock_guard<std::mutex> lk(_mutex);
    _connections.insert(fd);
    _open.fetch_add(1);
}

void nvmf_target::connection_closed(int fd) {
    std::lock_guard<std::mutex> lk(_mutex);
    _connections.erase(fd);
    _open.fetch_sub(1);
}

future<> nvmf_target::start() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "nvmf target: socket");
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(_port);
    if (::inet_pton(AF_INET, _address.c_str(), &a.sin_addr) != 1) {
        ::close(fd);
        throw std::system_error(EINVAL, std::generic_category(),
                                fmt::format("nvmf target: '{}' is not an IPv4 address", _address));
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0) {
        int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(), fmt::format("nvmf target: listen on {}:{}", _address, _port));
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    _port = ntohs(a.sin_port);
    _listen_fd = fd;
    log::info("NVMe/TCP target listening on {}:{} ({} subsystem(s))", _address, _port, _subsystems.size());
    _accepting.emplace(accept_loop());
    co_return;
}

future<> nvmf_target::accept_loop() {
    uring& io = local_reactor()->io();
    while (!_stopping) {
        auto accepted = io.accept(_listen_fd);
        _accept_op = io.last_op_id();
        io_result r = co_await std::move(accepted);
        if (!r) {
            if (_stopping || r.error().value() == ECANCELED || r.error().value() == EINVAL) break;
            log::warn("NVMe/TCP accept failed: {}", r.error().message());
            continue;
        }
        int fd = static_cast<int>(r.value());
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        unsigned shard = _next_shard++ % shard_count();
        connection_opened(fd);
        nvmf_target* self = this;
        submit_to(shard, [self, fd] { tcp_qpair::start(*self, fd); }).ignore();
    }
}

future<> nvmf_target::stop() {
    _stopping = true;
    if (_listen_fd >= 0) {
        ::shutdown(_listen_fd, SHUT_RDWR);
        if (_accept_op) local_reactor()->io().cancel(_accept_op).ignore();
    }
    {
        std::lock_guard<std::mutex> lk(_mutex);
        for (int fd : _connections) ::shutdown(fd, SHUT_RDWR);
    }
    if (_accepting) {
        co_await _accepting->wait_ready();
        _accepting.reset();
    }
    for (int i = 0; i < 500 && _open.load() > 0; ++i) co_await sleep(std::chrono::milliseconds(10));
    if (_listen_fd >= 0) {
        ::close(_listen_fd);
        _listen_fd = -1;
    }
}

}  // namespace ioe::nvme
