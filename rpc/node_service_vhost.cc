// node_service: vhost-user-blk exports (node_service.hh). Each export is a
// vhost::blk_export owned by shard 0, serving a registered device on a
// unix socket; the persistent ones go into the state file and are started
// again by apply(). Devices are refused for destroy while exported.
#include <fmt/format.h>

#include <algorithm>

#include "rpc/node_service.hh"
#include "runtime/log.hh"

namespace ioe::rpc {

namespace {

vhost_entry vhost_entry_of(const vhost_spec& spec, const vhost::blk_export_stats& st) {
    vhost_entry e;
    e.spec = spec;
    e.connected = st.connected;
    e.connections = st.connections;
    e.refused = st.refused;
    e.protocol_errors = st.protocol_errors;
    e.queues_active = st.queues_active;
    e.mapped_bytes = st.mapped_bytes;
    e.reads = st.io.reads;
    e.writes = st.io.writes;
    e.flushes = st.io.flushes;
    e.discards = st.io.discards;
    e.write_zeroes = st.io.write_zeroes;
    e.read_bytes = st.io.read_bytes;
    e.write_bytes = st.io.write_bytes;
    e.ioerr = st.io.ioerr;
    e.unsupported = st.io.unsupported;
    e.ring_faults = st.io.ring_faults;
    e.bounced = st.io.bounced;
    return e;
}

}  // namespace

void node_service::check_not_exported(const std::string& name, const std::string& verb) const {
    for (const auto& [xname, slot] : _vhost) {
        if (slot.spec.device == name) {
            throw storage_error(storage_errc::busy,
                                fmt::format("\"{}\" is exported over vhost-user-blk as \"{}\" ({}); {} refused: "
                                            "destroy the export first (vhost destroy {})",
                                            name, xname, slot.spec.socket_path, verb, xname));
        }
    }
}

future<vhost_entry> node_service::create_vhost_locked(vhost_spec spec) {
    if (spec.name.empty()) throw storage_error(storage_errc::invalid_argument, "a vhost export needs a name");
    if (_vhost.count(spec.name)) {
        throw storage_error(storage_errc::already_exists, fmt::format("vhost export \"{}\" exists already", spec.name));
    }
    for (const auto& [xname, slot] : _vhost) {
        if (slot.spec.device == spec.device) {
            throw storage_error(storage_errc::busy,
                                fmt::format("device \"{}\" is exported already as \"{}\" ({})", spec.device, xname,
                                            slot.spec.socket_path));
        }
    }
    if (spec.queues == 0 || spec.queues > vhost::max_export_queues) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("vhost export \"{}\": {} queues; 1 to {} are possible", spec.name,
                                        spec.queues, vhost::max_export_queues));
    }
    block_device* dev = co_await _devices.find(spec.device);  // not_found names the device
    auto x = co_await vhost::blk_export::create({spec.name, spec.socket_path, spec.queues, spec.read_only}, *dev);
    auto st = co_await x->stats();
    _vhost[spec.name] = vhost_slot{std::move(x), spec};
    co_return vhost_entry_of(spec, st);
}

future<vhost_entry> node_service::create_vhost(vhost_spec spec) {
    check_not_busy("vhost create");
    auto guard = co_await _mutex.hold();
    auto e = co_await create_vhost_locked(std::move(spec));
    if (e.spec.persistent) co_await persist();
    co_return e;
}

future<> node_service::destroy_vhost(std::string name, bool force) {
    check_not_busy("vhost destroy");
    auto guard = co_await _mutex.hold();
    auto it = _vhost.find(name);
    if (it == _vhost.end()) {
        // One kept in the state whose device was missing: forget it.
        auto p = std::find_if(_pending_vhost.begin(), _pending_vhost.end(),
                              [&name](const vhost_record& r) { return r.name == name; });
        if (p == _pending_vhost.end()) {
            throw storage_error(storage_errc::not_found, fmt::format("no vhost export \"{}\"", name));
        }
        _pending_vhost.erase(p);
        co_await persist();
        co_return;
    }
    if (it->second.x->busy() && !force) {
        throw storage_error(storage_errc::busy,
                            fmt::format("vhost export \"{}\": a front-end (VM) is connected to {}; stop it first, "
                                        "or destroy with --force (its I/O then fails)",
                                        name, it->second.spec.socket_path));
    }
    auto x = std::move(it->second.x);
    const bool persistent = it->second.spec.persistent;
    _vhost.erase(it);
    co_await x->stop();
    x.reset();
    if (persistent) co_await persist();
}

future<std::vector<vhost_entry>> node_service::list_vhost(std::string name) {
    auto guard = co_await _mutex.hold();  // no export stops while its stats are read
    std::vector<std::pair<vhost_spec, vhost::blk_export*>> found;
    for (const auto& [xname, slot] : _vhost) {
        if (name.empty() || xname == name) found.emplace_back(slot.spec, slot.x.get());
    }
    if (!name.empty() && found.empty()) {
        throw storage_error(storage_errc::not_found, fmt::format("no vhost export \"{}\"", name));
    }
    std::vector<vhost_entry> out;
    for (auto& [spec, x] : found) out.push_back(vhost_entry_of(spec, co_await x->stats()));
    co_return out;
}

future<> node_service::stop_vhost_exports() {
    for (auto& [name, slot] : _vhost) {
        try {
            co_await slot.x->stop();
        } catch (const std::exception& e) {
            log::error("vhost export \"{}\": stop failed: {}", name, e.what());
        }
    }
    _vhost.clear();
}

}  // namespace ioe::rpc
