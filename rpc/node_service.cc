// node_service: devices, pools, replicas, stats and the state file
// (node_service.hh). The NVMe/TCP shares are in node_service_nvmf.cc.
#include "rpc/node_service.hh"

#include <fmt/format.h>

#include <algorithm>

#include "nvme/target/target.hh"
#include "runtime/log.hh"
#include "storage/backend_schemes.hh"
#include "storage/uri.hh"

namespace ioe::rpc {

node_service::node_service(engine& e, node_identity id, nvme::nvmf_target* target, state_writer writer)
    : _engine(e), _id(std::move(id)), _target(target), _writer(std::move(writer)) {
    // Hosts reach these devices through the target's shares: local users
    // (a nexus's bdev:/// children) take part in the same reservations.
    if (_target) _devices.set_reservation_authority(_target);
}

node_service::~node_service() = default;

node_info node_service::info() const {
    node_info n;
    n.name = _id.name;
    n.version = engine_version;
    n.data_dir = _id.data_dir;
    n.shards = _engine.shards();
    n.cores = _engine.cores();
    n.poll_mode = std::string(to_string(_engine.config().reactor.mode));
    n.memory = _engine.dma().description();
    n.features = {"malloc", "null", "uring", "bdev"};
    for (const auto& scheme : registered_backend_schemes()) n.features.push_back(scheme);  // nvmf, pcie, ...
    n.features.push_back("pools");
    n.features.push_back("replicas");
    if (_target) n.features.push_back("nvmf-target");
    n.features.push_back("vhost-blk");
    return n;
}

void node_service::check_not_busy(const std::string& verb) const {
    if (_shutting_down) throw storage_error(storage_errc::unavailable, "the engine is stopping; " + verb + " refused");
}

// ---- state ------------------------------------------------------------------

node_state node_service::current_state() const {
    node_state s;
    for (const auto& [name, slot] : _pools) s.pools.push_back({name, slot.uri});
    for (const auto& p : _pending_pools) s.pools.push_back(p);
    for (const auto& [name, sh] : _shares) {
        if (sh.kind == share_kind::replica) {
            s.shares.push_back({name, sh.hosts, sh.nqn == share_nqn_prefix + name ? std::string() : sh.nqn});
        }
    }
    for (const auto& p : _pending_shares) s.shares.push_back(p);
    for (const auto& [name, slot] : _nexuses) {
        nexus_record r{name, slot.spec.uuid, slot.spec.health_key, slot.spec.segment_bytes,
                       slot.spec.rebuild_parallel, slot.spec.verify, false, slot.spec.children, {}, {}, {}};
        if (auto it = _shares.find(name); it != _shares.end()) {
            r.published = true;
            r.allowed_hosts = it->second.hosts;
            if (it->second.nqn != share_nqn_prefix + name) r.nqn = it->second.nqn;
            r.ana = it->second.ana;
        }
        s.nexuses.push_back(std::move(r));
    }
    for (const auto& p : _pending_nexuses) s.nexuses.push_back(p);
    for (const auto& [name, slot] : _vhost) {
        const auto& v = slot.spec;
        if (v.persistent) s.vhost_exports.push_back({v.name, v.socket_path, v.device, v.queues, v.read_only});
    }
    for (const auto& p : _pending_vhost) s.vhost_exports.push_back(p);
    for (const auto& [nqn, slot] : _standbys) s.standbys.push_back(slot.record);
    return s;
}

future<> node_service::persist() {
    if (!_writer) co_return;
    try {
        co_await _writer(current_state());
    } catch (const std::exception& e) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("the change is done but the state file could not be written: {} "
                                        "(check the data directory {})",
                                        e.what(), _id.data_dir));
    }
}

future<std::vector<std::string>> node_service::apply(node_state state) {
    check_not_busy("re-applying the state");
    auto guard = co_await _mutex.hold();  // a stop requested meanwhile waits for it
    std::vector<std::string> failed;
    for (auto& p : state.pools) {
        if (_pools.count(p.name)) continue;
        try {
            auto e = co_await import_pool_quietly(p.uri);
            if (e.pool.name != p.name) {
                log::warn("state: pool on {} is called \"{}\" now (was \"{}\")", p.uri, e.pool.name, p.name);
            }
            log::info("state: pool \"{}\" imported from {}", e.pool.name, p.uri);
        } catch (const std::exception& e) {
            failed.push_back(fmt::format("pool \"{}\" on {}: {}", p.name, p.uri, e.what()));
            log::error("state: pool \"{}\" on {} not imported: {} (kept in the state; retried at the next start)",
                       p.name, p.uri, e.what());
            _pending_pools.push_back(p);
        }
    }
    for (auto& s : state.shares) {
        try {
            pool* owner = nullptr;
            replica* r = find_replica(s.name, &owner);
            if (!r) throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\"", s.name));
            auto info = co_await share(s.name, r, share_kind::replica, s.allowed_hosts, s.nqn);
            log::info("state: replica \"{}\" shared again as {}", s.name, info.nqn);
        } catch (const std::exception& e) {
            failed.push_back(fmt::format("share of replica \"{}\": {}", s.name, e.what()));
            log::error("state: replica \"{}\" not shared again: {} (kept in the state)", s.name, e.what());
            _pending_shares.push_back(s);
        }
    }
    // Nexuses last: their local children are the replicas above. Each is
    // created over its health record (only children recorded healthy come
    // back online).
    for (auto& r : state.nexuses) {
        try {
            nexus_spec spec{r.name, r.uuid, r.children, r.health_key, r.segment_bytes, r.rebuild_parallel, r.verify};
            auto e = co_await create_nexus_locked(std::move(spec));
            log::info("state: nexus \"{}\" created again ({})", r.name, to_string(e.nexus.state));
            if (r.published) {
                auto info = co_await share(r.name, _nexuses.at(r.name).n.get(), share_kind::nexus, r.allowed_hosts,
                                           r.nqn, r.ana);
                log::info("state: nexus \"{}\" published again as {}{}", r.name, info.nqn,
                          r.ana.empty() ? "" : " (ANA " + r.ana + ")");
            }
        } catch (const std::exception& e) {
            failed.push_back(fmt::format("nexus \"{}\": {}", r.name, e.what()));
            log::error("state: nexus \"{}\" not created again: {} (kept in the state; retried at the next start)",
                       r.name, e.what());
            if (!_nexuses.count(r.name)) _pending_nexuses.push_back(r);
        }
    }
    // Standby paths after the nexuses: one whose NQN a nexus here serves
    // now is not needed.
    for (auto& r : state.standbys) {
        try {
            if (co_await add_standby_again(r)) log::info("state: standby path {} published again", r.nqn);
        } catch (const std::exception& e) {
            failed.push_back(fmt::format("standby {}: {}", r.nqn, e.what()));
            log::error("state: standby {} not published again: {}", r.nqn, e.what());
        }
    }
    // vhost-user-blk exports last: they may serve a replica or a nexus.
    for (auto& r : state.vhost_exports) {
        try {
            co_await create_vhost_locked({r.name, r.socket_path, r.device, r.queues, r.read_only, true});
            log::info("state: vhost export \"{}\" of \"{}\" on {} started again", r.name, r.device, r.socket_path);
        } catch (const std::exception& e) {
            failed.push_back(fmt::format("vhost export \"{}\": {}", r.name, e.what()));
            log::error("state: vhost export \"{}\" not started again: {} (kept in the state; retried at the next "
                       "start)", r.name, e.what());
            if (!_vhost.count(r.name)) _pending_vhost.push_back(r);
        }
    }
    co_await persist();
    co_return failed;
}

future<pool_entry> node_service::ensure_pool(std::string name, std::string uri) {
    if (auto it = _pools.find(name); it != _pools.end()) co_return entry_of(it->second);
    try {
        co_return co_await create_pool(name, uri, 0);
    } catch (const storage_error& e) {
        if (e.code != storage_errc::already_exists) throw;
    }
    // The device holds a pool already (created by an earlier run).
    auto e = co_await import_pool(uri);
    if (e.pool.name != name) {
        throw storage_error(storage_errc::already_exists,
                            fmt::format("{} holds pool \"{}\", not \"{}\"", uri, e.pool.name, name));
    }
    co_return e;
}

// ---- devices ----------------------------------------------------------------

future<device_entry> node_service::create_device(std::string uri) {
    check_not_busy("device create");
    auto guard = co_await _mutex.hold();
    block_device* dev = co_await _devices.create(uri);
    device_entry e;
    e.device = {dev->name(), dev->product(), uri, dev->id(), dev->block_size(), dev->block_count(),
                dev->owner_shard()};
    co_return e;
}

future<> node_service::destroy_device(std::string name) {
    check_not_busy("device destroy");
    auto guard = co_await _mutex.hold();
    for (const auto& [pname, slot] : _pools) {
        if (slot.device_name == name) {
            throw storage_error(storage_errc::busy, fmt::format("device \"{}\" holds pool \"{}\"; export or destroy "
                                                                "the pool first",
                                                                name, pname));
        }
    }
    if (find_replica(name)) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is a replica; use replica destroy", name));
    }
    if (_nexuses.count(name)) {
        throw storage_error(storage_errc::invalid_argument, fmt::format("\"{}\" is a nexus; use nexus destroy", name));
    }
    check_not_a_child(name, "device destroy");
    check_not_exported(name, "device destroy");
    (void)co_await _devices.find(name);  // not_found
    co_await unshare_quietly(name);
    co_await _devices.destroy(name);
    _stats_base.erase(name);
}

future<std::vector<device_entry>> node_service::list_devices() {
    auto infos = co_await _devices.list();
    std::vector<device_entry> out;
    for (auto& d : infos) {
        device_entry e;
        e.device = std::move(d);
        if (auto it = _shares.find(e.device.name); it != _shares.end()) e.share_nqn = it->second.nqn;
        out.push_back(std::move(e));
    }
    co_return out;
}

future<share_info> node_service::share_device(std::string name, std::vector<std::string> hosts, std::string nqn) {
    check_not_busy("device share");
    auto guard = co_await _mutex.hold();
    if (find_replica(name)) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is a replica; use replica share", name));
    }
    if (_nexuses.count(name)) {
        throw storage_error(storage_errc::invalid_argument, fmt::format("\"{}\" is a nexus; use nexus publish", name));
    }
    block_device* dev = co_await _devices.find(name);
    co_return co_await share(name, dev, share_kind::device, std::move(hosts), std::move(nqn));
}

future<> node_service::unshare_device(std::string name) {
    check_not_busy("device unshare");
    auto guard = co_await _mutex.hold();
    auto it = _shares.find(name);
    if (it == _shares.end() || it->second.kind != share_kind::device) {
        (void)co_await _devices.find(name);
        throw storage_error(storage_errc::not_found, fmt::format("device \"{}\" is not shared", name));
    }
    co_await unshare_quietly(name);
}

// ---- pools ------------------------------------------------------------------

node_service::pool_slot& node_service::find_pool(const std::string& name) {
    auto it = _pools.find(name);
    if (it == _pools.end()) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("no pool \"{}\" (pool list shows the pools; pool import URI brings "
                                        "one in)",
                                        name));
    }
    return it->second;
}

pool_entry node_service::entry_of(const pool_slot& s) const {
    return {s.p->info(), s.uri};
}

future<pool_entry> node_service::create_pool(std::string name, std::string uri, std::uint32_t cluster_size) {
    check_not_busy("pool create");
    auto guard = co_await _mutex.hold();
    if (_pools.count(name)) throw storage_error(storage_errc::already_exists, fmt::format("pool \"{}\" exists", name));
    for (const auto& [pname, slot] : _pools) {
        if (slot.uri == uri) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("{} holds pool \"{}\" already", uri, pname));
        }
    }
    block_device* dev = co_await _devices.create(uri);
    std::string dev_name = dev->name();
    std::unique_ptr<pool> p;
    std::exception_ptr failed;
    try {
        pool_create_options opts;
        opts.name = name;
        if (cluster_size) opts.cluster_size = cluster_size;
        p = co_await pool::create(dev, opts, &_devices);
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        co_await _devices.destroy(dev_name);
        std::rethrow_exception(failed);
    }
    auto& slot = _pools[name];
    slot = {std::move(p), uri, dev_name};
    std::erase_if(_pending_pools, [&](const pool_record& r) { return r.name == name; });
    co_await persist();
    co_return entry_of(slot);
}

future<pool_entry> node_service::import_pool_quietly(std::string uri) {
    for (const auto& [pname, slot] : _pools) {
        if (slot.uri == uri) {
            throw storage_error(storage_errc::already_exists, fmt::format("pool \"{}\" on {} is imported", pname, uri));
        }
    }
    block_device* dev = co_await _devices.create(uri);
    std::string dev_name = dev->name();
    std::unique_ptr<pool> p;
    std::exception_ptr failed;
    try {
        p = co_await pool::import(dev, &_devices);
        if (_pools.count(p->pool_name())) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("{} holds pool \"{}\", and a pool of that name is imported already", uri,
                                            p->pool_name()));
        }
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        if (p) co_await p->export_pool();
        p.reset();
        co_await _devices.destroy(dev_name);
        std::rethrow_exception(failed);
    }
    std::string name = p->pool_name();
    auto& slot = _pools[name];
    slot = {std::move(p), uri, dev_name};
    std::erase_if(_pending_pools, [&](const pool_record& r) { return r.name == name || r.uri == uri; });
    co_return entry_of(slot);
}

future<pool_entry> node_service::import_pool(std::string uri) {
    check_not_busy("pool import");
    auto guard = co_await _mutex.hold();
    auto e = co_await import_pool_quietly(uri);
    co_await persist();
    co_return e;
}

future<> node_service::remove_pool_shares(pool& p) {
    for (const auto& r : p.list_replicas()) {
        co_await unshare_quietly(r.name);
        _stats_base.erase(r.name);
        std::erase_if(_pending_shares, [&](const share_record& s) { return s.name == r.name; });
    }
}

future<> node_service::export_pool(std::string name) {
    check_not_busy("pool export");
    auto guard = co_await _mutex.hold();
    auto& slot = find_pool(name);
    for (const auto& r : slot.p->list_replicas()) check_not_a_child(r.name, "pool export");
    co_await remove_pool_shares(*slot.p);
    co_await slot.p->export_pool();
    std::string dev = slot.device_name;
    _pools.erase(name);
    co_await _devices.destroy(dev);
    co_await persist();
}

future<> node_service::destroy_pool(std::string name) {
    check_not_busy("pool destroy");
    auto guard = co_await _mutex.hold();
    auto& slot = find_pool(name);
    for (const auto& r : slot.p->list_replicas()) {
        check_not_a_child(r.name, "pool destroy");
        check_not_exported(r.name, "pool destroy");
    }
    co_await remove_pool_shares(*slot.p);
    co_await slot.p->destroy();
    std::string dev = slot.device_name;
    _pools.erase(name);
    co_await _devices.destroy(dev);
    co_await persist();
}

future<pool_entry> node_service::grow_pool(std::string name) {
    check_not_busy("pool grow");
    auto guard = co_await _mutex.hold();
    auto& slot = find_pool(name);
    co_await slot.p->device().rescan();
    co_await slot.p->grow();
    co_return entry_of(find_pool(name));
}

std::vector<pool_entry> node_service::list_pools() const {
    std::vector<pool_entry> out;
    for (const auto& [name, slot] : _pools) out.push_back(entry_of(slot));
    return out;
}

// ---- replicas ---------------------------------------------------------------

replica* node_service::find_replica(const std::string& name, pool** owner) const {
    for (const auto& [pname, slot] : _pools) {
        if (replica* r = slot.p->find_replica(name)) {
            if (owner) *owner = slot.p.get();
            return r;
        }
    }
    return nullptr;
}

replica_entry node_service::entry_of(const replica_info& r) const {
    replica_entry e;
    e.replica = r;
    if (auto it = _shares.find(r.name); it != _shares.end()) {
        e.share_nqn = it->second.nqn;
        e.allowed_hosts = it->second.hosts;
    }
    return e;
}

future<replica_entry> node_service::create_replica(std::string pool_name, std::string name, std::uint64_t size_bytes,
                                                   bool thin) {
    check_not_busy("replica create");
    auto guard = co_await _mutex.hold();
    auto& slot = find_pool(pool_name);
    if (size_bytes == 0) throw storage_error(storage_errc::invalid_argument, "replica size must be above 0");
    if (find_replica(name)) throw storage_error(storage_errc::already_exists, fmt::format("replica \"{}\" exists", name));
    pool* p = slot.p.get();
    co_await p->create_replica(name, uuid{}, size_bytes, thin);
    for (const auto& r : p->list_replicas()) {
        if (r.name == name) co_return entry_of(r);
    }
    throw storage_error(storage_errc::internal, fmt::format("replica \"{}\" vanished after its creation", name));
}

future<> node_service::destroy_replica(std::string name) {
    check_not_busy("replica destroy");
    auto guard = co_await _mutex.hold();
    pool* owner = nullptr;
    if (!find_replica(name, &owner)) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    check_not_a_child(name, "replica destroy");
    check_not_exported(name, "replica destroy");
    bool was_shared = _shares.count(name) > 0;
    co_await unshare_quietly(name);
    co_await owner->destroy_replica(name);
    _stats_base.erase(name);
    if (was_shared) co_await persist();
}

future<replica_entry> node_service::resize_replica(std::string name, std::uint64_t size_bytes) {
    check_not_busy("replica resize");
    auto guard = co_await _mutex.hold();
    pool* owner = nullptr;
    if (!find_replica(name, &owner)) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    co_await owner->resize_replica(name, size_bytes);
    for (const auto& r : owner->list_replicas()) {
        if (r.name == name) co_return entry_of(r);
    }
    throw storage_error(storage_errc::internal, fmt::format("replica \"{}\" vanished after its resize", name));
}

std::vector<replica_entry> node_service::list_replicas(const std::string& pool_name) const {
    if (!pool_name.empty() && !_pools.count(pool_name)) {
        throw storage_error(storage_errc::not_found, fmt::format("no pool \"{}\"", pool_name));
    }
    std::vector<replica_entry> out;
    for (const auto& [pname, slot] : _pools) {
        if (!pool_name.empty() && pname != pool_name) continue;
        for (const auto& r : slot.p->list_replicas()) out.push_back(entry_of(r));
    }
    return out;
}

future<share_info> node_service::share_replica(std::string name, std::vector<std::string> hosts) {
    check_not_busy("replica share");
    auto guard = co_await _mutex.hold();
    replica* r = find_replica(name);
    if (!r) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    auto info = co_await share(name, r, share_kind::replica, std::move(hosts));
    std::erase_if(_pending_shares, [&](const share_record& s) { return s.name == name; });
    co_await persist();
    co_return info;
}

future<> node_service::unshare_replica(std::string name) {
    check_not_busy("replica unshare");
    auto guard = co_await _mutex.hold();
    if (!find_replica(name)) {
        throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\" (replica list shows them)", name));
    }
    if (!_shares.count(name)) throw storage_error(storage_errc::not_found, fmt::format("replica \"{}\" is not shared", name));
    co_await unshare_quietly(name);
    co_await persist();
}

// ---- stats ------------------------------------------------------------------

std::vector<std::string> node_service::names_of(stats_kind kind, const std::string& name) {
    std::vector<std::string> names;
    if (kind == stats_kind::replica) {
        if (!name.empty()) {
            if (!find_replica(name)) throw storage_error(storage_errc::not_found, fmt::format("no replica \"{}\"", name));
            names.push_back(name);
        } else {
            for (const auto& r : list_replicas("")) names.push_back(r.replica.name);
        }
    } else if (kind == stats_kind::nexus) {
        if (!name.empty()) {
            (void)find_nexus(name);  // not_found
            names.push_back(name);
        } else {
            for (const auto& [n, slot] : _nexuses) names.push_back(n);
        }
    }
    return names;
}

namespace {
channel_stats minus(const channel_stats& a, const channel_stats& b) {
    channel_stats d;
    d.read_ops = a.read_ops - b.read_ops;
    d.write_ops = a.write_ops - b.write_ops;
    d.flush_ops = a.flush_ops - b.flush_ops;
    d.zeroes_ops = a.zeroes_ops - b.zeroes_ops;
    d.unmap_ops = a.unmap_ops - b.unmap_ops;
    d.read_bytes = a.read_bytes - b.read_bytes;
    d.write_bytes = a.write_bytes - b.write_bytes;
    d.errors = a.errors - b.errors;
    d.latency_ns_sum = a.latency_ns_sum - b.latency_ns_sum;
    for (unsigned i = 0; i < channel_stats::latency_buckets; ++i) {
        d.latency_histogram[i] = a.latency_histogram[i] - b.latency_histogram[i];
    }
    // Extremes cannot be taken back out: they stay those since the device opened.
    d.latency_ns_min = a.latency_ns_min;
    d.latency_ns_max = a.latency_ns_max;
    return d;
}
}  // namespace

future<std::vector<io_stats>> node_service::stats(stats_kind kind, std::string name) {
    auto guard = co_await _mutex.hold();  // no device vanishes while its shards are asked
    std::vector<std::string> names = names_of(kind, name);
    if (kind == stats_kind::device) {
        if (!name.empty()) {
            (void)co_await _devices.find(name);
            names.push_back(name);
        } else {
            for (const auto& d : co_await _devices.list()) names.push_back(d.name);
        }
    }
    std::vector<io_stats> out;
    for (const auto& n : names) {
        block_device* dev = nullptr;
        try {
            dev = co_await _devices.find(n);
        } catch (const storage_error&) {
            continue;  // destroyed meanwhile
        }
        auto s = co_await dev->stats();
        if (auto it = _stats_base.find(n); it != _stats_base.end()) s = minus(s, it->second);
        out.push_back({n, kind, s});
    }
    co_return out;
}

future<> node_service::reset_stats(stats_kind kind, std::string name) {
    auto now = co_await stats(kind, name);
    auto guard = co_await _mutex.hold();
    for (const auto& s : now) {
        _stats_base[s.name].merge(s.counters);
    }
}

future<std::vector<node_service::device_snapshot>> node_service::snapshot_devices() {
    auto guard = co_await _mutex.hold();
    std::vector<device_snapshot> out;
    for (const auto& d : co_await _devices.list()) {
        block_device* dev = co_await _devices.find(d.name);
        device_snapshot snap{d.name, d.product, co_await dev->stats(), {}};
        for (unsigned s = 0; s < _engine.shards(); ++s) {
            snap.in_flight.push_back(co_await submit_to(s, [dev] {
                io_channel* ch = dev->open_channel_here();
                return ch ? ch->in_flight() : 0u;
            }));
        }
        out.push_back(std::move(snap));
    }
    co_return out;
}

// ---- stop -------------------------------------------------------------------

future<> node_service::shutdown() {
    if (_shutting_down) co_return;
    _shutting_down = true;
    auto guard = co_await _mutex.hold();
    // vhost-user-blk exports first: they serve the nexuses, replicas and
    // devices below (their queues drain before the devices close).
    co_await stop_vhost_exports();
    // Nexuses next (their children are replicas and devices below): a
    // clean shutdown is recorded in each health record.
    std::vector<std::string> nexuses;
    for (const auto& [name, slot] : _nexuses) nexuses.push_back(name);
    for (const auto& n : nexuses) {
        try {
            co_await close_nexus(n);
        } catch (const std::exception& e) {
            log::error("nexus \"{}\": shutdown at stop failed: {}", n, e.what());
        }
    }
    std::vector<std::string> shared;
    for (const auto& [name, sh] : _shares) shared.push_back(name);
    for (const auto& n : shared) co_await unshare_quietly(n);
    co_await remove_standbys();
    for (auto& [name, slot] : _pools) {
        try {
            co_await slot.p->export_pool();
        } catch (const std::exception& e) {
            log::error("pool \"{}\": export at stop failed: {}", name, e.what());
        }
    }
    _pools.clear();
    co_await _devices.close_all();
}

}  // namespace ioe::rpc
