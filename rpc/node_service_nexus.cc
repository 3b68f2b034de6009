// node_service: the nexuses (create over local and remote children and a
// health record, publish over NVMe/TCP, child and rebuild operations,
// shutdown, destroy) and their place in the state file, so that a restarted
// engine creates them again over their health records (docs/nexus.md).
#include <fmt/format.h>

#include <algorithm>

#include "runtime/log.hh"
#include "rpc/node_service.hh"
#include "nvme/spec/nqn.hh"
#include "storage/uri.hh"

namespace ioe::rpc {

namespace {

constexpr const char* default_health_prefix = "/ioengine/nexus/";

std::string bdev_name(const std::string& uri) {
    std::string err;
    auto parsed = parse_device_uri(uri, err);
    if (!parsed || parsed->scheme != "bdev") return {};
    return parsed->path.substr(std::min<std::size_t>(1, parsed->path.size()));
}

void check_name(const std::string& name) {
    if (name.empty() || name.size() > 128 ||
        !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; })) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("nexus name \"{}\": use 1 to 128 letters, digits, '-', '_' or '.'", name));
    }
}

}  // namespace

void node_service::set_health_store(child_health_store* store, std::string description) {
    _health = store;
    _health_description = std::move(description);
}

node_service::nexus_slot& node_service::find_nexus(const std::string& name) {
    auto it = _nexuses.find(name);
    if (it == _nexuses.end()) {
        throw storage_error(storage_errc::not_found, fmt::format("no nexus \"{}\" (nexus list shows them)", name));
    }
    return it->second;
}

const node_service::nexus_slot& node_service::find_nexus(const std::string& name) const {
    return const_cast<node_service*>(this)->find_nexus(name);
}

nexus_entry node_service::entry_of(const nexus_slot& s) const {
    nexus_entry e;
    e.nexus = s.n->info();
    e.health_key = s.spec.health_key;
    if (auto it = _shares.find(s.spec.name); it != _shares.end()) {
        e.share_nqn = it->second.nqn;
        e.allowed_hosts = it->second.hosts;
    }
    return e;
}

std::string node_service::nexus_using(const std::string& device) const {
    for (const auto& [name, slot] : _nexuses)
        for (const auto& c : slot.spec.children)
            if (bdev_name(c) == device) return name;
    return {};
}

void node_service::check_not_a_child(const std::string& name, const std::string& verb) const {
    if (auto n = nexus_using(name); !n.empty()) {
        throw storage_error(storage_errc::busy, fmt::format("{} refused: \"{}\" is a child of nexus \"{}\" (nexus child "
                                                            "remove, or nexus destroy, first)",
                                                            verb, name, n));
    }
}

future<nexus_entry> node_service::create_nexus(nexus_spec spec) {
    check_not_busy("nexus create");
    auto guard = co_await _mutex.hold();
    const bool takeover = spec.takeover;
    const std::string name = spec.name, nqn = spec.takeover_nqn;
    const std::vector<std::string> hosts = spec.takeover_hosts;
    if (takeover) {
        // What the publish step needs is checked before the epoch moves.
        if (!_target) {
            throw storage_error(storage_errc::unavailable,
                                "nexus create --takeover publishes the nexus, and this engine serves no NVMe/TCP "
                                "(start it with --nvmf-listen ADDRESS:PORT)");
        }
        if (!nqn.empty()) {
            if (auto why = nvme::check_nqn(nqn); !why.empty()) {
                throw storage_error(storage_errc::invalid_argument, fmt::format("takeover NQN \"{}\": {}", nqn, why));
            }
        }
    }
    auto e = co_await create_nexus_locked(std::move(spec));
    std::exception_ptr unpublished;
    if (takeover) {
        // Published in the same call, under the NQN the old node served
        // (the namespace's identity is the nexus uuid, as on the old node).
        try {
            co_await share(name, _nexuses[name].n.get(), share_kind::nexus, hosts, nqn);
        } catch (...) {
            unpublished = std::current_exception();
        }
        e = entry_of(_nexuses[name]);
    }
    co_await persist();
    if (unpublished) {
        try {
            std::rethrow_exception(unpublished);
        } catch (const std::exception& x) {
            throw storage_error(storage_errc::unavailable,
                                fmt::format("nexus \"{}\" taken over (epoch {}) but not published: {} (nexus publish "
                                            "retries it)",
                                            name, e.nexus.epoch, x.what()));
        }
    }
    co_return e;
}

future<nexus_entry> node_service::create_nexus_locked(nexus_spec spec) {
    check_name(spec.name);
    if (!_health) {
        throw storage_error(storage_errc::unavailable, "this engine has no child health store (start it with --etcd)");
    }
    if (_nexuses.count(spec.name)) {
        throw storage_error(storage_errc::already_exists, fmt::format("nexus \"{}\" exists", spec.name));
    }
    uuid id = uuid::random();
    if (!spec.uuid.empty()) {
        auto parsed = uuid::parse(spec.uuid);
        if (!parsed) {
            throw storage_error(storage_errc::invalid_argument,
                                fmt::format("nexus uuid \"{}\" is not of the form 8-4-4-4-12 hex digits", spec.uuid));
        }
        id = *parsed;
    }
    spec.uuid = id.to_string();
    for (const auto& [name, slot] : _nexuses) {
        if (slot.spec.uuid == spec.uuid) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("nexus \"{}\" has uuid {} already", name, spec.uuid));
        }
    }
    if (spec.health_key.empty()) spec.health_key = default_health_prefix + spec.uuid;
    for (const auto& c : spec.children) {
        if (auto other = nexus_using(bdev_name(c)); !bdev_name(c).empty() && !other.empty()) {
            throw storage_error(storage_errc::busy, fmt::format("child {} belongs to nexus \"{}\" already", c, other));
        }
    }
    nexus_options opts;
    opts.health_key = spec.health_key;
    opts.health = _health;
    opts.owner = _id.name;
    opts.registry = &_devices;
    if (spec.segment_bytes) opts.segment_bytes = spec.segment_bytes;
    if (spec.rebuild_parallel) opts.rebuild_parallel = spec.rebuild_parallel;
    opts.rebuild_verify = spec.verify;
    opts.takeover = spec.takeover;
    spec.takeover = false;  // what is kept (state file, restarts) is a plain nexus of this node
    auto n = co_await nexus::create(spec.name, id, spec.children, opts);
    std::exception_ptr failed;
    try {
        co_await _devices.add(n.get());  // stats and device list see it; names stay unique
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        co_await n->close();
        std::rethrow_exception(failed);
    }
    log::info("nexus \"{}\" created ({} children, health record {} in {})", spec.name, spec.children.size(),
              spec.health_key, _health_description);
    std::string name = spec.name;
    _nexuses[name] = nexus_slot{std::move(n), std::move(spec)};
    co_return entry_of(_nexuses[name]);
}

future<> node_service::close_nexus(const std::string& name) {
    auto& slot = find_nexus(name);
    co_await unshare_quietly(name);
    if (slot.n->state() != nexus_state::shutdown) co_await slot.n->shutdown();
    try {
        co_await _devices.remove(name);
    } catch (const storage_error& e) {
        if (e.code != storage_errc::not_found) throw;
    }
    co_await slot.n->close();
    _stats_base.erase(name);
    _nexuses.erase(name);
}

future<> node_service::destroy_nexus(std::string name) {
    check_not_busy("nexus destroy");
    auto guard = co_await _mutex.hold();
    if (!_nexuses.count(name)) {
        auto it = std::find_if(_pending_nexuses.begin(), _pending_nexuses.end(),
                               [&](const nexus_record& r) { return r.name == name; });
        if (it == _pending_nexuses.end()) (void)find_nexus(name);  // not_found
        _pending_nexuses.erase(it);
        co_await persist();
        co_return;
    }
    check_not_exported(name, "nexus destroy");
    co_await close_nexus(name);
    co_await persist();
    log::info("nexus \"{}\" destroyed", name);
}

future<share_info> node_service::publish_nexus(std::string name, std::vector<std::string> hosts, std::string nqn) {
    check_not_busy("nexus publish");
    auto guard = co_await _mutex.hold();
    auto& slot = find_nexus(name);
    if (slot.n->state() == nexus_state::shutdown || slot.n->state() == nexus_state::shutting_down) {
        throw storage_error(storage_errc::unavailable, fmt::format("nexus \"{}\" is shut down", name));
    }
    auto info = co_await share(name, slot.n.get(), share_kind::nexus, std::move(hosts), std::move(nqn));
    co_await persist();
    co_return info;
}

future<> node_service::unpublish_nexus(std::string name) {
    check_not_busy("nexus unpublish");
    auto guard = co_await _mutex.hold();
    (void)find_nexus(name);
    if (!_shares.count(name)) {
        throw storage_error(storage_errc::not_found, fmt::format("nexus \"{}\" is not published", name));
    }
    co_await unshare_quietly(name);
    co_await persist();
}

future<> node_service::shutdown_nexus(std::string name) {
    check_not_busy("nexus shutdown");
    auto guard = co_await _mutex.hold();
    auto& slot = find_nexus(name);
    co_await slot.n->shutdown();
}

future<nexus_snapshot_result> node_service::snapshot_nexus(std::string name, std::string snapshot_name,
                                                          std::string txid) {
    check_not_busy("nexus snapshot");
    auto guard = co_await _mutex.hold();
    auto& slot = find_nexus(name);
    co_return co_await slot.n->snapshot(std::move(snapshot_name), std::move(txid));
}

std::vector<nexus_entry> node_service::list_nexuses(const std::string& name) const {
    std::vector<nexus_entry> out;
    if (!name.empty()) {
        out.push_back(entry_of(find_nexus(name)));
        return out;
    }
    for (const auto& [n, slot] : _nexuses) out.push_back(entry_of(slot));
    return out;
}

future<nexus_entry> node_service::nexus_child(std::string name, std::string uri, child_action action) {
    check_not_busy("nexus child");
    auto guard = co_await _mutex.hold();
    auto& slot = find_nexus(name);
    nexus& n = *slot.n;
    auto& kids = slot.spec.children;
    switch (action) {
        case child_action::add:
        case child_action::add_in_sync: {
            if (auto other = nexus_using(bdev_name(uri)); !bdev_name(uri).empty() && !other.empty() && other != name) {
                throw storage_error(storage_errc::busy,
                                    fmt::format("child {} belongs to nexus \"{}\" already", uri, other));
            }
            co_await n.add_child(uri, action == child_action::add);
            kids.push_back(uri);
            co_await persist();
            break;
        }
        case child_action::remove:
            co_await n.remove_child(uri);
            std::erase(kids, uri);
            co_await persist();
            break;
        case child_action::online: co_await n.online_child(uri); break;
        case child_action::offline: co_await n.offline_child(uri); break;
        case child_action::fault: co_await n.fault_child(uri); break;
    }
    co_return entry_of(find_nexus(name));
}

future<> node_service::rebuild_control(std::string name, std::string child, rebuild_action action) {
    check_not_busy("rebuild");
    auto guard = co_await _mutex.hold();
    nexus& n = *find_nexus(name).n;
    switch (action) {
        case rebuild_action::start: co_await n.rebuild_start(child); break;
        case rebuild_action::stop: co_await n.rebuild_stop(child); break;
        case rebuild_action::pause: co_await n.rebuild_pause(child); break;
        case rebuild_action::resume: co_await n.rebuild_resume(child); break;
    }
}

std::string node_service::rebuild_state(const std::string& name, const std::string& child) const {
    const nexus& n = *find_nexus(name).n;
    if (auto p = n.rebuild_status(child)) return std::string(to_string(p->state));
    bool known = false;
    for (const auto& c : n.info().children) known = known || c.uri == child;
    if (!known) throw storage_error(storage_errc::not_found, fmt::format("nexus \"{}\" has no child {}", name, child));
    // Not rebuilding now: the last rebuild's outcome, if it had one.
    const auto& h = n.rebuild_history();
    for (auto it = h.rbegin(); it != h.rend(); ++it)
        if (it->child == child) return std::string(to_string(it->state));
    return std::string(to_string(rebuild_state::none));
}

std::vector<rebuild_progress> node_service::rebuild_stats(const std::string& name, const std::string& child) const {
    const nexus& n = *find_nexus(name).n;
    std::vector<rebuild_progress> out;
    if (!child.empty()) {
        auto p = n.rebuild_status(child);
        if (!p) throw storage_error(storage_errc::not_found, fmt::format("nexus \"{}\": no rebuild of {}", name, child));
        out.push_back(*p);
        return out;
    }
    return n.info().rebuilds;
}

std::vector<rebuild_progress> node_service::rebuild_history(const std::string& name) const {
    const auto& h = find_nexus(name).n->rebuild_history();
    return {h.begin(), h.end()};
}

}  // namespace ioe::rpc
