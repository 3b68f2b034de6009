// ioe::embedded (embedded.hh): the engine on threads of its own, shard 0's
// main holding node_service, the optional target, RPC server and state file.
#include "rpc/embedded.hh"

#include <filesystem>
#include <thread>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/pcie/pcie_backend.hh"
#include "nvme/target/target.hh"
#include "rpc/control_calls.hh"
#include "rpc/health_backend.hh"
#include "rpc/server.hh"
#include "runtime/control.hh"
#include "runtime/cores.hh"
#include "runtime/log.hh"

namespace ioe {

using namespace ioe::rpc;

struct embedded::impl {
    embedded_options opts;
    std::unique_ptr<engine> e;
    std::unique_ptr<control_thread> control;
    std::thread thread;
    std::promise<void> ready;
    std::atomic<bool> running{false};
    // Set on shard 0 before `ready`; valid while running.
    node_service* svc = nullptr;
    std::vector<std::string> rpc_bound;
    std::uint16_t nvmf_port = 0;
    std::string state_path;
};

namespace {

bool split_address(const std::string& text, std::string& host, std::uint16_t& port) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    try {
        unsigned long p = std::stoul(text.substr(colon + 1));
        if (p > 65535) return false;
        port = static_cast<std::uint16_t>(p);
    } catch (const std::exception&) {
        return false;
    }
    host = text.substr(0, colon);
    return true;
}

future<int> embedded_main(embedded::impl* im) {
    engine& e = *im->e;
    nvme::register_nvmf_backend();
    nvme::register_pcie_backend();  // pcie:///BDF (VFIO)
    std::unique_ptr<nvme::nvmf_target> target;
    if (!im->opts.nvmf_listen.empty()) {
        std::string host;
        std::uint16_t port = 0;
        if (!split_address(im->opts.nvmf_listen, host, port)) {
            im->ready.set_exception(std::make_exception_ptr(
                std::invalid_argument("nvmf_listen '" + im->opts.nvmf_listen + "': expected ADDRESS:PORT")));
            e.stop(1);
            co_return 1;
        }
        target = std::make_unique<nvme::nvmf_target>(host, port);
    }
    state_writer writer;
    if (!im->state_path.empty()) {
        writer = [&e, control = im->control.get(), path = im->state_path](node_state s) -> future<> {
            return run_on_control<void>(e, *control, [path, s] { save_state_file(path, s); });
        };
    }
    health_backend health;  // outlives svc: its nexuses write their records at stop
    node_service svc(e, {im->opts.name, im->opts.data_dir}, target.get(), writer);
    try {
        health = health_backend::make(e, *im->control, im->opts.etcd);
    } catch (...) {
        im->ready.set_exception(std::current_exception());
        e.stop(1);
        co_return 1;
    }
    svc.set_health_store(health.store.get(), health.description);
    rpc_server rpc(e, svc, im->opts.rpc);
    promise<> stopped;
    auto done = stopped.get_future();
    bool serving = false;
    e.at_stop([&]() -> future<> {
        co_await run_on_control<void>(e, *im->control, [&] { rpc.stop(); });
        if (serving) co_await target->stop();
        co_await svc.shutdown();
        stopped.set_value();
    });
    std::exception_ptr failed;
    try {
        if (target) {
            co_await target->start();
            serving = true;
            im->nvmf_port = target->port();
        }
        if (!im->state_path.empty()) {
            auto saved = co_await run_on_control<std::optional<node_state>>(
                e, *im->control, [path = im->state_path] { return load_state_file(path); });
            if (saved) {
                for (const auto& p : co_await svc.apply(*saved)) log::warn("state not re-applied: {}", p);
            }
        }
        if (!im->opts.rpc.empty()) {
            co_await run_on_control<void>(e, *im->control, [&] {
                rpc.start();
                im->rpc_bound = rpc.bound();
            });
        }
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        im->ready.set_exception(failed);
        e.stop(1);
        co_await std::move(done);
        co_return 1;
    }
    im->svc = &svc;
    im->running.store(true, std::memory_order_release);
    im->ready.set_value();
    co_await std::move(done);
    co_return 0;
}

// On shard 0: fn(svc) and its outcome into `p`.
template <typename T, typename Fn>
future<> relay(std::shared_ptr<std::promise<T>> p, Fn fn, node_service* svc) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await futurize_invoke([&fn, svc] { return fn(*svc); });
            p->set_value();
        } else {
            T v = co_await futurize_invoke([&fn, svc] { return fn(*svc); });
            p->set_value(std::move(v));
        }
    } catch (...) {
        p->set_exception(std::current_exception());
    }
}

}  // namespace

embedded::embedded(embedded_options opts) : _impl(std::make_unique<impl>()) {
    _impl->opts = std::move(opts);
    engine_config cfg;
    if (!_impl->opts.cores.empty()) {
        cfg.cores = _impl->opts.cores;
    } else {
        auto allowed = allowed_cores();
        if (_impl->opts.shards == 0 || _impl->opts.shards > allowed.size()) {
            throw std::invalid_argument("embedded: " + std::to_string(_impl->opts.shards) + " shard(s) asked, " +
                                        std::to_string(allowed.size()) + " core(s) allowed");
        }
        allowed.resize(_impl->opts.shards);
        cfg.cores = allowed;
    }
    cfg.memory.size_mb = _impl->opts.dma_mb;
    cfg.reactor.mode = _impl->opts.poll;
    if (!_impl->opts.data_dir.empty()) {
        std::filesystem::create_directories(_impl->opts.data_dir);
        _impl->state_path = _impl->opts.data_dir + "/state";
    }
    _impl->e = std::make_unique<engine>(cfg);
    _impl->control = std::make_unique<control_thread>(*_impl->e);
    _impl->control->start();
    auto ready = _impl->ready.get_future();
    impl* im = _impl.get();
    _impl->thread = std::thread([im] {
        try {
            im->e->run([im] { return embedded_main(im); });
        } catch (...) {
            try {
                im->ready.set_exception(std::current_exception());
            } catch (const std::future_error&) {
            }
        }
    });
    try {
        ready.get();
    } catch (...) {
        _impl->thread.join();
        _impl->control->stop();
        throw;
    }
}

embedded::~embedded() { stop(); }

void embedded::stop() {
    if (!_impl->thread.joinable()) return;
    _impl->running.store(false, std::memory_order_release);
    _impl->e->stop(0);
    _impl->thread.join();
    _impl->control->stop();
}

engine& embedded::get_engine() { return *_impl->e; }
std::vector<std::string> embedded::rpc_addresses() const { return _impl->rpc_bound; }
std::uint16_t embedded::nvmf_port() const { return _impl->nvmf_port; }

template <typename T, typename Fn>
T embedded::call(Fn fn) {
    if (!_impl->running.load(std::memory_order_acquire)) {
        throw storage_error(storage_errc::unavailable, "the embedded engine is stopped");
    }
    auto p = std::make_shared<std::promise<T>>();
    auto f = p->get_future();
    _impl->e->post(0, [p, fn, svc = _impl->svc] { relay<T>(p, fn, svc).ignore(); });
    return f.get();
}

void embedded::run(std::function<future<>(node_service&)> fn) {
    call<void>([fn](node_service& s) { return fn(s); });
}

node_info embedded::info() {
    return call<node_info>([](node_service& s) { return s.info(); });
}
device_entry embedded::create_device(const std::string& uri) {
    return call<device_entry>([uri](node_service& s) { return s.create_device(uri); });
}
void embedded::destroy_device(const std::string& name) {
    call<void>([name](node_service& s) { return s.destroy_device(name); });
}
std::vector<device_entry> embedded::list_devices() {
    return call<std::vector<device_entry>>([](node_service& s) { return s.list_devices(); });
}
share_info embedded::share_device(const std::string& name, const std::vector<std::string>& hosts,
                                   const std::string& nqn) {
    return call<share_info>([name, hosts, nqn](node_service& s) { return s.share_device(name, hosts, nqn); });
}
void embedded::unshare_device(const std::string& name) {
    call<void>([name](node_service& s) { return s.unshare_device(name); });
}
pool_entry embedded::create_pool(const std::string& name, const std::string& uri, std::uint32_t cluster_size) {
    return call<pool_entry>([name, uri, cluster_size](node_service& s) { return s.create_pool(name, uri, cluster_size); });
}
pool_entry embedded::import_pool(const std::string& uri) {
    return call<pool_entry>([uri](node_service& s) { return s.import_pool(uri); });
}
void embedded::export_pool(const std::string& name) {
    call<void>([name](node_service& s) { return s.export_pool(name); });
}
void embedded::destroy_pool(const std::string& name) {
    call<void>([name](node_service& s) { return s.destroy_pool(name); });
}
pool_entry embedded::grow_pool(const std::string& name) {
    return call<pool_entry>([name](node_service& s) { return s.grow_pool(name); });
}
std::vector<pool_entry> embedded::list_pools() {
    return call<std::vector<pool_entry>>([](node_service& s) { return s.list_pools(); });
}
replica_entry embedded::create_replica(const std::string& pool, const std::string& name, std::uint64_t size_bytes,
                                       bool thin) {
    return call<replica_entry>(
        [pool, name, size_bytes, thin](node_service& s) { return s.create_replica(pool, name, size_bytes, thin); });
}
void embedded::destroy_replica(const std::string& name) {
    call<void>([name](node_service& s) { return s.destroy_replica(name); });
}
replica_entry embedded::resize_replica(const std::string& name, std::uint64_t size_bytes) {
    return call<replica_entry>([name, size_bytes](node_service& s) { return s.resize_replica(name, size_bytes); });
}
std::vector<replica_entry> embedded::list_replicas(const std::string& pool) {
    return call<std::vector<replica_entry>>([pool](node_service& s) { return s.list_replicas(pool); });
}
share_info embedded::share_replica(const std::string& name, const std::vector<std::string>& hosts) {
    return call<share_info>([name, hosts](node_service& s) { return s.share_replica(name, hosts); });
}
void embedded::unshare_replica(const std::string& name) {
    call<void>([name](node_service& s) { return s.unshare_replica(name); });
}

replica_entry embedded::snapshot_replica(const std::string& name, const std::string& snapshot_name,
                                         const std::string& txid, const std::string& id) {
    return call<replica_entry>(
        [name, snapshot_name, txid, id](node_service& s) { return s.snapshot_replica(name, snapshot_name, txid, id); });
}

replica_entry embedded::clone_snapshot(const std::string& snapshot_name, const std::string& clone_name,
                                       const std::string& id) {
    return call<replica_entry>(
        [snapshot_name, clone_name, id](node_service& s) { return s.clone_snapshot(snapshot_name, clone_name, id); });
}

replica_entry embedded::inflate_replica(const std::string& name) {
    return call<replica_entry>([name](node_service& s) { return s.inflate_replica(name); });
}

replica_entry embedded::restore_replica(const std::string& name, const std::string& snapshot_name) {
    return call<replica_entry>([name, snapshot_name](node_service& s) { return s.restore_replica(name, snapshot_name); });
}
std::vector<nvmf_listener_info> embedded::nvmf_listeners() {
    return call<std::vector<nvmf_listener_info>>([](node_service& s) { return s.nvmf_listeners(); });
}
std::vector<nvmf_subsystem_info> embedded::nvmf_subsystems() {
    return call<std::vector<nvmf_subsystem_info>>([](node_service& s) { return s.nvmf_subsystems(); });
}
std::vector<nvmf_host_info> embedded::nvmf_hosts() {
    return call<std::vector<nvmf_host_info>>([](node_service& s) { return s.nvmf_hosts(); });
}
std::vector<io_stats> embedded::stats(stats_kind kind, const std::string& name) {
    return call<std::vector<io_stats>>([kind, name](node_service& s) { return s.stats(kind, name); });
}
void embedded::reset_stats(stats_kind kind, const std::string& name) {
    call<void>([kind, name](node_service& s) { return s.reset_stats(kind, name); });
}

vhost_entry embedded::create_vhost(const vhost_spec& spec) {
    return call<vhost_entry>([spec](node_service& s) { return s.create_vhost(spec); });
}
void embedded::destroy_vhost(const std::string& name, bool force) {
    call<void>([name, force](node_service& s) { return s.destroy_vhost(name, force); });
}
std::vector<vhost_entry> embedded::list_vhost(const std::string& name) {
    return call<std::vector<vhost_entry>>([name](node_service& s) { return s.list_vhost(name); });
}
nexus_entry embedded::create_nexus(const nexus_spec& spec) {
    return call<nexus_entry>([spec](node_service& s) { return s.create_nexus(spec); });
}
void embedded::destroy_nexus(const std::string& name) {
    call<void>([name](node_service& s) { return s.destroy_nexus(name); });
}
share_info embedded::publish_nexus(const std::string& name, const std::vector<std::string>& hosts,
                                    const std::string& nqn) {
    return call<share_info>([name, hosts, nqn](node_service& s) { return s.publish_nexus(name, hosts, nqn); });
}
share_info embedded::add_standby(const std::string& nqn, const std::string& uuid, std::uint64_t size_bytes,
                                 std::uint32_t block_size, const std::vector<std::string>& hosts,
                                 const std::string& forward) {
    return call<share_info>([nqn, uuid, size_bytes, block_size, hosts, forward](node_service& s) {
        return s.add_standby(nqn, uuid, size_bytes, block_size, hosts, forward);
    });
}

void embedded::remove_standby(const std::string& nqn) {
    call<void>([nqn](node_service& s) { return s.remove_standby(nqn); });
}

void embedded::set_nexus_ana(const std::string& name, const std::string& state) {
    call<void>([name, state](node_service& s) { return s.set_nexus_ana(name, state); });
}

void embedded::unpublish_nexus(const std::string& name) {
    call<void>([name](node_service& s) { return s.unpublish_nexus(name); });
}
void embedded::shutdown_nexus(const std::string& name) {
    call<void>([name](node_service& s) { return s.shutdown_nexus(name); });
}

nexus_snapshot_result embedded::snapshot_nexus(const std::string& name, const std::string& snapshot_name,
                                               const std::string& txid) {
    return call<nexus_snapshot_result>(
        [name, snapshot_name, txid](node_service& s) { return s.snapshot_nexus(name, snapshot_name, txid); });
}
std::vector<nexus_entry> embedded::list_nexuses(const std::string& name) {
    return call<std::vector<nexus_entry>>([name](node_service& s) { return s.list_nexuses(name); });
}
nexus_entry embedded::nexus_child(const std::string& name, const std::string& uri, child_action action) {
    return call<nexus_entry>([name, uri, action](node_service& s) { return s.nexus_child(name, uri, action); });
}
void embedded::rebuild_control(const std::string& name, const std::string& child, rebuild_action action) {
    call<void>([name, child, action](node_service& s) { return s.rebuild_control(name, child, action); });
}
std::string embedded::rebuild_state(const std::string& name, const std::string& child) {
    return call<std::string>([name, child](node_service& s) { return s.rebuild_state(name, child); });
}
std::vector<rebuild_progress> embedded::rebuild_stats(const std::string& name, const std::string& child) {
    return call<std::vector<rebuild_progress>>([name, child](node_service& s) { return s.rebuild_stats(name, child); });
}
std::vector<rebuild_progress> embedded::rebuild_history(const std::string& name) {
    return call<std::vector<rebuild_progress>>([name](node_service& s) { return s.rebuild_history(name); });
}

}  // namespace ioe
