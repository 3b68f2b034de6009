// node_service: standby paths and ANA states (docs/ana.md). A standby path
// publishes a volume's subsystem (its NQN, and a stand-in namespace with the
// volume's UUID, block size and block count) in ANA state inaccessible, so
// that a multipath host connects to this engine while the volume's nexus
// runs elsewhere; a nexus published here under that NQN (a takeover) takes
// the namespace over and makes it optimized, and the hosts get an ANA
// Change event.
#include <fmt/format.h>

#include <exception>

#include "nvme/spec/nqn.hh"
#include "nvme/target/target.hh"
#include "rpc/node_service.hh"
#include "runtime/log.hh"
#include "storage/backends.hh"
#include "storage/forward_device.hh"
#include "storage/uri.hh"

namespace ioe::rpc {

namespace {
std::string serial_of(const uuid& id) {
    // The same as a nexus of that volume reports (node_service_nvmf.cc):
    // every path shows one serial number.
    std::string hex;
    for (auto b : id.bytes) hex += fmt::format("{:02x}", static_cast<unsigned>(b));
    return hex.substr(0, 20);
}
}  // namespace

future<share_info> node_service::add_standby(std::string nqn, std::string id, std::uint64_t size_bytes,
                                             std::uint32_t block_size, std::vector<std::string> hosts,
                                             std::string forward) {
    check_not_busy("nexus standby");
    auto guard = co_await _mutex.hold();
    if (block_size != 512 && block_size != 4096) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("standby {}: block size {} (512 or 4096)", nqn, block_size));
    }
    if (size_bytes == 0 || size_bytes % block_size != 0) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("standby {}: size {} bytes is not a positive multiple of the block size {}",
                                        nqn, size_bytes, block_size));
    }
    co_await add_standby_locked({nqn, id, block_size, size_bytes / block_size, std::move(hosts), std::move(forward)});
    co_await persist();
    share_info info;
    info.nqn = nqn;
    info.allowed_hosts = _standbys.at(nqn).record.allowed_hosts;
    info.address = _target->address();
    info.port = _target->port();
    co_return info;
}

future<> node_service::add_standby_locked(standby_record r, bool at_start) {
    if (!_target) {
        throw storage_error(storage_errc::unavailable,
                            "this engine serves no NVMe/TCP (start it with --nvmf-listen ADDRESS:PORT)");
    }
    if (auto why = nvme::check_nqn(r.nqn); !why.empty()) {
        throw storage_error(storage_errc::invalid_argument, fmt::format("NQN \"{}\": {}", r.nqn, why));
    }
    const auto id = uuid::parse(r.uuid);
    if (!id || id->is_nil()) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("standby {}: \"{}\" is not a volume UUID (8-4-4-4-12 hex)", r.nqn, r.uuid));
    }
    for (const auto& h : r.allowed_hosts) {
        if (h.empty() || h.size() > 223 || h.rfind("nqn.", 0) != 0) {
            throw storage_error(storage_errc::invalid_argument,
                                fmt::format("allowed host \"{}\" is not an NQN (nqn.YYYY-MM.domain:name)", h));
        }
    }
    if (_standbys.count(r.nqn) || _target->find_subsystem(r.nqn)) {
        throw storage_error(storage_errc::already_exists,
                            fmt::format("{} is served here already (a share, a published nexus or a standby)", r.nqn));
    }
    std::unique_ptr<block_device> dev;
    if (!r.forward.empty()) {
        try {
            dev = co_await open_forward(r, *id);
        } catch (const storage_error& e) {
            if (!at_start || e.code != storage_errc::unavailable) throw;
            // At start the far side may be down (or be this node's old
            // self): the path is published as a standby, so hosts keep a
            // path here for a takeover, and the record keeps its forward
            // for the next start or `nexus standby` again.
            log::warn("{} (published as a standby, ANA inaccessible)", e.what());
        }
    }
    const bool forwarding = dev != nullptr;
    if (!dev) dev = std::make_unique<standby_device>("standby-" + id->to_string(), *id, r.block_size, r.block_count);
    const auto ana = forwarding ? nvme::ana_state::non_optimized : nvme::ana_state::inaccessible;
    nvme::subsystem_config sub;
    sub.nqn = r.nqn;
    sub.serial = serial_of(*id);
    sub.model = "ioengine nexus";
    sub.allowed_hosts = r.allowed_hosts;
    sub.namespaces.push_back(dev.get());
    sub.ana.push_back(ana);
    std::exception_ptr failed;
    try {
        co_await _target->add_subsystem(std::move(sub));
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        co_await dev->close();
        std::rethrow_exception(failed);
    }
    const std::string nqn = r.nqn;
    _standbys[nqn] = standby_slot{std::move(dev), std::move(r)};
    if (!forwarding) {
        log::info("standby path {} published (volume {}, ANA inaccessible)", nqn, id->to_string());
    } else {
        log::info("forwarding path {} published (volume {}, ANA non-optimized, I/O sent on to {})", nqn,
                  id->to_string(), _standbys[nqn].record.forward);
    }
}

future<std::unique_ptr<block_device>> node_service::open_forward(const standby_record& r, uuid id) {
    std::string err;
    auto parsed = parse_device_uri(r.forward, err);
    if (!parsed) throw storage_error(storage_errc::invalid_argument, "forwarding path " + r.nqn + ": " + err);
    if (parsed->scheme == "bdev") {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("forwarding path {}: {} is a device of this node; a forwarding path "
                                        "reaches the node that runs the nexus (nvmf://)",
                                        r.nqn, r.forward));
    }
    std::unique_ptr<block_device> inner;
    std::exception_ptr failed;
    try {
        inner = co_await open_backend(*parsed);
    } catch (const std::exception& e) {
        failed = std::make_exception_ptr(
            storage_error(storage_errc::unavailable, fmt::format("forwarding path {}: {}", r.nqn, e.what())));
    }
    if (failed) std::rethrow_exception(failed);
    const std::string name = "forward-" + id.to_string();
    try {
        forward_device::check_identity(name, id, r.block_size, r.block_count, *inner);
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        co_await inner->close();
        std::rethrow_exception(failed);
    }
    co_return std::make_unique<forward_device>(name, id, r.block_size, r.block_count, std::move(inner));
}

future<bool> node_service::add_standby_again(standby_record r) {
    if (_target && _target->find_subsystem(r.nqn)) co_return false;
    co_await add_standby_locked(std::move(r), true);
    co_return true;
}

future<> node_service::remove_standbys() {
    while (!_standbys.empty()) {
        auto node = _standbys.extract(_standbys.begin());
        if (_target) {
            try {
                co_await _target->remove_subsystem(node.key());
            } catch (const std::exception& e) {
                log::warn("standby {}: {}", node.key(), e.what());
            }
        }
        co_await node.mapped().dev->close();
    }
}

future<> node_service::remove_standby(std::string nqn) {
    check_not_busy("nexus standby remove");
    auto guard = co_await _mutex.hold();
    auto it = _standbys.find(nqn);
    if (it == _standbys.end()) {
        throw storage_error(storage_errc::not_found, fmt::format("no standby path {} here", nqn));
    }
    auto node = _standbys.extract(it);
    co_await _target->remove_subsystem(nqn);
    co_await node.mapped().dev->close();
    co_await persist();
}

future<bool> node_service::take_standby(const std::string& nqn, block_device* dev,
                                        const std::vector<std::string>& hosts, nvme::ana_state state) {
    auto it = _standbys.find(nqn);
    if (it == _standbys.end()) co_return false;
    // The identity must match (replace_namespace refuses otherwise, and the
    // standby stays).
    co_await _target->replace_namespace(nqn, 1, dev, state);
    co_await _target->set_allowed_hosts(nqn, hosts);
    auto node = _standbys.extract(it);
    co_await node.mapped().dev->close();
    log::info("standby path {}: now served by {} (ANA {})", nqn, dev->name(), nvme::to_string(state));
    co_return true;
}

future<> node_service::set_nexus_ana(std::string name, std::string state) {
    check_not_busy("nexus ana");
    auto guard = co_await _mutex.hold();
    (void)find_nexus(name);
    const auto a = nvme::ana_state_from_string(state);
    if (!a || *a == nvme::ana_state::change || *a == nvme::ana_state::persistent_loss) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("ANA state \"{}\": optimized, non-optimized or inaccessible", state));
    }
    auto it = _shares.find(name);
    if (it == _shares.end()) {
        throw storage_error(storage_errc::not_found, fmt::format("nexus \"{}\" is not published", name));
    }
    co_await set_nexus_ana_locked(name, state);
    co_await persist();
}

future<> node_service::set_nexus_ana_locked(const std::string& name, const std::string& state) {
    share_slot& sh = _shares.at(name);
    const auto a = nvme::ana_state_from_string(state);
    co_await _target->set_ana_state(sh.nqn, 1, *a);
    // Kept in the state file, so that a restart of this node does not
    // bring the path back optimized behind the service's back.
    sh.ana = *a == nvme::ana_state::optimized ? std::string() : std::string(nvme::to_string(*a));
}

}  // namespace ioe::rpc
