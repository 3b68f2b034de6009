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
#include "storage/errors.hh"

namespace ioe::nvme {

subsystem::subsystem(const subsystem_config& cfg, unsigned shards)
    : nqn(cfg.nqn), serial(cfg.serial), model(cfg.model), _views(shards), _namespaces(cfg.namespaces),
      _allowed(cfg.allowed_hosts) {
    for (std::size_t i = 0; i < _namespaces.size(); ++i) {
        _reservations.push_back(std::make_shared<namespace_reservations>(shards));
        _ana.push_back(i < cfg.ana.size() ? cfg.ana[i] : ana_state::optimized);
    }
}

const reservation_view& namespace_reservations::local() const noexcept { return views[this_shard_id()].v; }

namespace_reservations* subsystem::reservations_of(std::uint32_t nsid) const noexcept {
    const auto& r = _views[this_shard_id()].resv;
    return nsid == 0 || nsid > r.size() ? nullptr : r[nsid - 1].get();
}

block_device* subsystem::namespace_of(std::uint32_t nsid) const noexcept {
    const auto& ns = _views[this_shard_id()].ns;
    return nsid == 0 || nsid > ns.size() ? nullptr : ns[nsid - 1];
}

std::vector<std::uint32_t> subsystem::active_nsids() const {
    std::vector<std::uint32_t> ids;
    const auto& ns = _views[this_shard_id()].ns;
    for (std::uint32_t i = 0; i < ns.size(); ++i)
        if (ns[i]) ids.push_back(i + 1);
    return ids;
}

std::uint32_t subsystem::highest_nsid() const noexcept {
    return static_cast<std::uint32_t>(_views[this_shard_id()].ns.size());
}

bool subsystem::allows(const std::string& hostnqn) const {
    std::lock_guard lk(_hosts_mutex);
    return _allowed.empty() || std::find(_allowed.begin(), _allowed.end(), hostnqn) != _allowed.end();
}

std::vector<std::string> subsystem::allowed_hosts() const {
    std::lock_guard lk(_hosts_mutex);
    return _allowed;
}

void controller::namespace_changed(std::uint32_t nsid) {
    // The list holds up to 1024 IDs; past that, one entry FFFFFFFFh says
    // "more than 1024 changed" (NVMe Base 2.0, Changed Namespace List).
    if (changed_nsids.size() < 1024) {
        if (std::find(changed_nsids.begin(), changed_nsids.end(), nsid) == changed_nsids.end())
            changed_nsids.push_back(nsid);
    } else {
        changed_nsids.assign(1, 0xffffffffu);
    }
    ns_event_pending = true;
    if (admin) admin->report_async_events();
}

void controller::discovery_changed() {
    discovery_event_pending = true;
    if (admin) admin->report_async_events();
}

void controller::add_io_queue(int fd) {
    std::lock_guard<std::mutex> lk(_io_mutex);
    _io_fds.push_back(fd);
}

std::size_t controller::io_queue_count() {
    std::lock_guard<std::mutex> lk(_io_mutex);
    return _io_fds.size();
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
    : _address(std::move(address)), _port(port), _limits(limits), _home(this_shard_id()), _qpairs(shard_count()) {
    if (_limits.cntlid_first == 0 || _limits.cntlid_last > 0xffef || _limits.cntlid_first > _limits.cntlid_last) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("nvmf target: controller ID range {}-{} is not within 1-65519 (FFEFh)",
                                        _limits.cntlid_first, _limits.cntlid_last));
    }
}

nvmf_target::~nvmf_target() {
    if (_listen_fd >= 0) ::close(_listen_fd);
}

void nvmf_target::check_home(const char* what) const {
    if (this_shard_id() != _home) {
        throw storage_error(storage_errc::internal,
                            fmt::format("nvmf target: {} called on shard {}, not on its home shard {}", what,
                                        this_shard_id(), _home));
    }
}

std::shared_ptr<subsystem> nvmf_target::subsystem_or_throw(const std::string& nqn) const {
    auto s = find_subsystem(nqn);
    if (!s) throw storage_error(storage_errc::not_found, fmt::format("nvmf target: no subsystem {}", nqn));
    return s;
}

future<> nvmf_target::publish_namespaces(std::shared_ptr<subsystem> s) {
    const std::vector<block_device*> table = s->_namespaces;
    const std::vector<std::shared_ptr<namespace_reservations>> resv = s->_reservations;
    const std::vector<ana_state> ana = s->_ana;
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        co_await submit_to(shard, [s, table, resv, ana] {
            auto& v = s->_views[this_shard_id()];
            v.ns = table;
            v.resv = resv;
            v.ana = ana;
        });
    }
}

void nvmf_target::notify_namespace_changed(const std::shared_ptr<subsystem>& s, std::uint32_t nsid) {
    std::vector<std::shared_ptr<controller>> ctrls;
    {
        std::lock_guard lk(_mutex);
        for (const auto& [id, c] : _controllers)
            if (c->subsys == s) ctrls.push_back(c);
    }
    for (auto& c : ctrls) {
        const unsigned shard = c->admin_shard;
        submit_to(shard, [c, nsid] { c->namespace_changed(nsid); }).ignore();
    }
}

void nvmf_target::notify_discovery_changed() {
    std::vector<std::shared_ptr<controller>> ctrls;
    {
        std::lock_guard lk(_mutex);
        for (const auto& [id, c] : _controllers)
            if (c->discovery()) ctrls.push_back(c);
    }
    for (auto& c : ctrls) {
        submit_to(c->admin_shard, [c] { c->discovery_changed(); }).ignore();
    }
}

future<> nvmf_target::add_subsystem(subsystem_config cfg) {
    check_home("add_subsystem");
    auto bad = [&](const std::string& why) {
        return storage_error(storage_errc::invalid_argument, fmt::format("nvmf subsystem '{}': {}", cfg.nqn, why));
    };
    if (cfg.nqn.size() < 5 || cfg.nqn.size() > nqn_max_length || cfg.nqn.compare(0, 4, "nqn.") != 0) {
        throw bad(fmt::format("an NQN starts with 'nqn.' and is at most {} bytes", nqn_max_length));
    }
    if (cfg.nqn == discovery_nqn) throw bad("the discovery subsystem's NQN is reserved");
    if (cfg.serial.empty() || cfg.serial.size() > 20) throw bad("the serial number must be 1 to 20 characters");
    if (cfg.model.empty() || cfg.model.size() > 40) throw bad("the model must be 1 to 40 characters");
    if (cfg.namespaces.size() > subsystem::max_namespaces) {
        throw bad(fmt::format("at most {} namespaces", subsystem::max_namespaces));
    }
    for (block_device* d : cfg.namespaces)
        if (!d) throw bad("a namespace without a device");
    auto s = std::make_shared<subsystem>(cfg, shard_count());
    {
        std::lock_guard lk(_mutex);
        for (const auto& e : _subsystems)
            if (e->nqn == cfg.nqn) {
                throw storage_error(storage_errc::already_exists,
                                    fmt::format("nvmf subsystem '{}' already exists", cfg.nqn));
            }
    }
    // Reservations persisted through power loss are back before any I/O.
    for (std::size_t i = 0; i < cfg.namespaces.size(); ++i)
        s->_reservations[i] = co_await make_reservations(cfg.nqn, static_cast<std::uint32_t>(i + 1), cfg.namespaces[i]);
    // Visible to Connect only once every shard has its namespaces.
    co_await publish_namespaces(s);
    {
        std::lock_guard lk(_mutex);
        _subsystems.push_back(s);
    }
    _generation.fetch_add(1, std::memory_order_relaxed);
    notify_discovery_changed();
    log::info("nvmf subsystem {} added ({} namespace(s))", s->nqn, cfg.namespaces.size());
}

future<> nvmf_target::remove_subsystem(std::string nqn) {
    check_home("remove_subsystem");
    std::shared_ptr<subsystem> s;
    std::vector<std::shared_ptr<controller>> ctrls;
    {
        std::lock_guard lk(_mutex);
        auto it = std::find_if(_subsystems.begin(), _subsystems.end(), [&](const auto& e) { return e->nqn == nqn; });
        if (it == _subsystems.end()) {
            throw storage_error(storage_errc::not_found, fmt::format("nvmf target: no subsystem {}", nqn));
        }
        s = *it;
        _subsystems.erase(it);
        for (const auto& [id, c] : _controllers)
            if (c->subsys == s) ctrls.push_back(c);
    }
    _generation.fetch_add(1, std::memory_order_relaxed);
    notify_discovery_changed();
    // The controllers' connections end first (a command that still runs
    // finishes on its device; its answer may not reach the host, which
    // retries on reconnect), then later commands find no namespace and get
    // a path status (never Invalid Namespace with DNR: docs/nvmf.md,
    // "Teardown").
    for (auto& c : ctrls) {
        const unsigned shard = c->admin_shard;
        co_await submit_to(shard, [c] {
            c->tear_down();
            if (c->admin) c->admin->shut_down_connection();
        });
    }
    s->_namespaces.clear();
    s->_reservations.clear();
    s->_ana.clear();
    co_await publish_namespaces(s);
    log::info("nvmf subsystem {} removed ({} controller(s) disconnected)", nqn, ctrls.size());
}

future<std::uint32_t> nvmf_target::add_namespace(std::string nqn, block_device* dev) {
    check_home("add_namespace");
    if (!dev) throw storage_error(storage_errc::invalid_argument, fmt::format("nvmf subsystem {}: no device", nqn));
    auto s = subsystem_or_throw(nqn);
    // The NSID it will get (the lowest free one); its reservation is loaded
    // before the table changes, then the slot is checked again.
    std::uint32_t want = 1;
    while (want <= s->_namespaces.size() && s->_namespaces[want - 1]) ++want;
    auto resv = co_await make_reservations(nqn, want, dev);
    auto& ns = s->_namespaces;
    if (!(want > ns.size() ? want == ns.size() + 1 : ns[want - 1] == nullptr)) {
        throw storage_error(storage_errc::busy,
                            fmt::format("nvmf subsystem {}: namespaces changed meanwhile, add the device again", nqn));
    }
    for (block_device* d : ns)
        if (d == dev) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("nvmf subsystem {}: device {} is already a namespace", nqn, dev->name()));
        }
    auto free_slot = std::find(ns.begin(), ns.end(), nullptr);
    std::uint32_t nsid = 0;
    if (free_slot != ns.end()) {
        *free_slot = dev;
        nsid = static_cast<std::uint32_t>(free_slot - ns.begin()) + 1;
        s->_reservations[nsid - 1] = resv;
        s->_ana[nsid - 1] = ana_state::optimized;
    } else {
        if (ns.size() >= subsystem::max_namespaces) {
            throw storage_error(storage_errc::no_space, fmt::format("nvmf subsystem {}: already {} namespaces", nqn,
                                                                    subsystem::max_namespaces));
        }
        ns.push_back(dev);
        s->_reservations.push_back(resv);
        s->_ana.push_back(ana_state::optimized);
        nsid = static_cast<std::uint32_t>(ns.size());
    }
    co_await publish_namespaces(s);
    notify_namespace_changed(s, nsid);
    log::info("nvmf subsystem {}: namespace {} is {}", nqn, nsid, dev->name());
    co_return nsid;
}

future<> nvmf_target::remove_namespace(std::string nqn, std::uint32_t nsid) {
    check_home("remove_namespace");
    auto s = subsystem_or_throw(nqn);
    auto& ns = s->_namespaces;
    if (nsid == 0 || nsid > ns.size() || !ns[nsid - 1]) {
        throw storage_error(storage_errc::not_found, fmt::format("nvmf subsystem {}: no namespace {}", nqn, nsid));
    }
    const std::string name = ns[nsid - 1]->name();
    ns[nsid - 1] = nullptr;
    s->_reservations[nsid - 1] = nullptr;
    while (!ns.empty() && !ns.back()) {
        ns.pop_back();
        s->_reservations.pop_back();
        s->_ana.pop_back();
    }
    co_await publish_namespaces(s);
    notify_namespace_changed(s, nsid);
    log::info("nvmf subsystem {}: namespace {} ({}) removed", nqn, nsid, name);
}

future<> nvmf_target::set_allowed_hosts(std::string nqn, std::vector<std::string> hosts) {
    check_home("set_allowed_hosts");
    for (const auto& h : hosts) {
        if (h.empty() || h.size() > nqn_max_length) {
            throw storage_error(storage_errc::invalid_argument,
                                fmt::format("nvmf subsystem {}: host NQN '{}' must be 1 to {} bytes", nqn, h,
                                            nqn_max_length));
        }
    }
    auto s = subsystem_or_throw(nqn);
    {
        std::lock_guard lk(s->_hosts_mutex);
        s->_allowed = std::move(hosts);
    }
    co_return;  // connected hosts stay connected; new Connects see the list
}

std::vector<subsystem_info> nvmf_target::subsystems() const {
    std::vector<std::shared_ptr<subsystem>> subs;
    {
        std::lock_guard lk(_mutex);
        subs = _subsystems;
    }
    std::vector<subsystem_info> out;
    for (const auto& s : subs) {
        subsystem_info i{s->nqn, s->serial, s->model, {}, s->allowed_hosts()};
        // The home shard's table (configuration calls run there too).
        for (std::uint32_t n = 0; n < s->_namespaces.size(); ++n) {
            if (block_device* d = s->_namespaces[n])
                i.namespaces.push_back(subsystem_namespace{n + 1, d->name(), d->block_size(), d->block_count(),
                                                           s->effective_ana_of(n + 1)});
        }
        out.push_back(std::move(i));
    }
    return out;
}

std::vector<host_info> nvmf_target::connected_hosts() const {
    std::lock_guard lk(_mutex);
    std::vector<host_info> out;
    for (const auto& [id, c] : _controllers) {
        if (c->dead.load()) continue;
        out.push_back(host_info{id, c->discovery() ? std::string(discovery_nqn) : c->subsys->nqn, c->hostnqn,
                                static_cast<std::uint16_t>(c->io_queue_count())});
    }
    return out;
}

std::shared_ptr<subsystem> nvmf_target::find_subsystem(const std::string& nqn) const {
    std::lock_guard lk(_mutex);
    for (const auto& s : _subsystems)
        if (s->nqn == nqn) return s;
    return nullptr;
}

std::shared_ptr<controller> nvmf_target::create_controller(std::shared_ptr<subsystem> s, std::string hostnqn,
                                                           unsigned shard) {
    std::lock_guard<std::mutex> lk(_mutex);
    std::uint16_t id = 0;
    const std::uint16_t lo = _limits.cntlid_first, hi = _limits.cntlid_last;
    if (_next_cntlid < lo || _next_cntlid > hi) _next_cntlid = lo;
    for (int tries = 0; tries <= hi - lo; ++tries) {
        std::uint16_t candidate = _next_cntlid;
        _next_cntlid = static_cast<std::uint16_t>(_next_cntlid >= hi ? lo : _next_cntlid + 1);
        if (!_controllers.count(candidate)) {
            id = candidate;
            break;
        }
    }
    if (id == 0) return nullptr;
    auto c = std::make_shared<controller>();
    c->cntlid = id;
    c->subsys = std::move(s);
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
    auto it = _controllers.find(cntlid);
    if (it == _controllers.end()) return;
    it->second->admin = nullptr;  // called on the admin shard as its queue pair closes
    std::erase_if(_retired, [](const std::weak_ptr<controller>& w) {
        auto c = w.lock();
        return !c || c->live_qpairs.load() == 0;
    });
    _retired.push_back(it->second);
    _controllers.erase(it);
}

std::vector<discovery_entry> nvmf_target::discovery_entries() const {
    std::lock_guard lk(_mutex);
    std::vector<discovery_entry> out;
    for (const auto& s : _subsystems) {
        out.push_back(discovery_entry{s->nqn, _address, std::to_string(_port), 1, false});
    }
    return out;
}

bool nvmf_target::host_draining(const subsystem* s, const host_id& h) {
    std::lock_guard<std::mutex> lk(_mutex);
    auto draining = [&](const controller& c) {
        return c.subsys.get() == s && c.hostid == h && c.dead.load() && c.live_qpairs.load() > 0;
    };
    for (const auto& w : _retired) {
        auto c = w.lock();
        if (c && draining(*c)) return true;
    }
    for (const auto& [id, c] : _controllers)
        if (draining(*c)) return true;
    return false;
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
