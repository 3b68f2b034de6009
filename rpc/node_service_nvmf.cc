// node_service: sharing devices and replicas over NVMe/TCP, one subsystem
// per shared device (nqn.2019-05.io.ioengine:<name>, the device as namespace
// 1, the allowed hosts), and the target's listeners, subsystems and hosts.
#include <fmt/format.h>

#include "nvme/spec/nqn.hh"
#include "nvme/target/target.hh"
#include "rpc/node_service.hh"

namespace ioe::rpc {

namespace {
std::string serial_of(const block_device& dev) {
    // 20 ASCII characters at most (Identify Controller SN).
    std::string hex;
    for (auto b : dev.id().bytes) hex += fmt::format("{:02x}", static_cast<unsigned>(b));
    return hex.substr(0, 20);
}
}  // namespace

share_info node_service::share_info_of(const std::string& name) const {
    share_info info;
    auto it = _shares.find(name);
    if (it == _shares.end()) return info;
    info.nqn = it->second.nqn;
    info.allowed_hosts = it->second.hosts;
    if (_target) {
        info.address = _target->address();
        info.port = _target->port();
    }
    return info;
}

future<share_info> node_service::share(std::string name, block_device* dev, share_kind kind,
                                       std::vector<std::string> hosts, std::string wanted_nqn, std::string ana) {
    if (!_target) {
        throw storage_error(storage_errc::unavailable,
                            "this engine serves no NVMe/TCP (start it with --nvmf-listen ADDRESS:PORT)");
    }
    for (const auto& h : hosts) {
        if (h.empty() || h.size() > 223 || h.rfind("nqn.", 0) != 0) {
            throw storage_error(storage_errc::invalid_argument,
                                fmt::format("allowed host \"{}\" is not an NQN (nqn.YYYY-MM.domain:name, 223 "
                                            "bytes at most)",
                                            h));
        }
    }
    if (!wanted_nqn.empty()) {
        if (auto why = nvme::check_nqn(wanted_nqn); !why.empty()) {
            throw storage_error(storage_errc::invalid_argument, fmt::format("NQN \"{}\": {}", wanted_nqn, why));
        }
    }
    std::string nqn = wanted_nqn.empty() ? share_nqn_prefix + name : wanted_nqn;
    auto state = nvme::ana_state::optimized;
    if (!ana.empty()) {
        const auto a = nvme::ana_state_from_string(ana);
        if (!a || !(*a == nvme::ana_state::non_optimized || *a == nvme::ana_state::inaccessible)) {
            throw storage_error(storage_errc::invalid_argument,
                                fmt::format("ANA state \"{}\": non-optimized or inaccessible", ana));
        }
        state = *a;
    }
    if (auto it = _shares.find(name); it != _shares.end()) {
        if (!wanted_nqn.empty() && wanted_nqn != it->second.nqn) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("\"{}\" is shared already as {} (unshare it first to change its NQN)",
                                            name, it->second.nqn));
        }
        nqn = it->second.nqn;
        // Shared already: only the allowed hosts change.
        co_await _target->set_allowed_hosts(nqn, hosts);
        it->second.hosts = std::move(hosts);
        co_return share_info_of(name);
    }
    // A standby path of this NQN here: the nexus takes its namespace, so
    // that hosts already connected see the same namespace turn optimized.
    if (kind == share_kind::nexus && co_await take_standby(nqn, dev, hosts, state)) {
        _shares[name] = share_slot{kind, nqn, std::move(hosts), ana};
        co_return share_info_of(name);
    }
    nvme::subsystem_config sub;
    sub.nqn = nqn;
    sub.serial = serial_of(*dev);
    sub.model = kind == share_kind::replica ? "ioengine replica"
                : kind == share_kind::nexus ? "ioengine nexus"
                                            : "ioengine device";
    sub.allowed_hosts = hosts;
    // The device is namespace 1 from the start: the subsystem becomes
    // visible (Connect, discovery) only with its namespace.
    sub.namespaces.push_back(dev);
    sub.ana.push_back(state);
    co_await _target->add_subsystem(std::move(sub));
    _shares[name] = share_slot{kind, nqn, std::move(hosts), ana};
    co_return share_info_of(name);
}

future<> node_service::unshare_quietly(const std::string& name) {
    auto it = _shares.find(name);
    if (it == _shares.end()) co_return;
    std::string nqn = it->second.nqn;
    _shares.erase(it);
    if (_target) {
        try {
            co_await _target->remove_subsystem(nqn);
        } catch (const storage_error& e) {
            if (e.code != storage_errc::not_found) throw;
        }
    }
}

std::vector<nvmf_listener_info> node_service::nvmf_listeners() const {
    std::vector<nvmf_listener_info> out;
    if (_target) out.push_back({"tcp", _target->address(), _target->port()});
    return out;
}

std::vector<nvmf_subsystem_info> node_service::nvmf_subsystems() const {
    std::vector<nvmf_subsystem_info> out;
    if (!_target) return out;
    for (const auto& s : _target->subsystems()) {
        nvmf_subsystem_info i;
        i.nqn = s.nqn;
        i.serial = s.serial;
        i.model = s.model;
        i.allowed_hosts = s.allowed_hosts;
        for (const auto& ns : s.namespaces) {
            i.namespaces.push_back(
                {ns.nsid, ns.device, ns.block_size, ns.block_count, std::string(nvme::to_string(ns.ana))});
        }
        out.push_back(std::move(i));
    }
    return out;
}

std::vector<nvmf_host_info> node_service::nvmf_hosts() const {
    std::vector<nvmf_host_info> out;
    if (!_target) return out;
    for (const auto& h : _target->connected_hosts()) out.push_back({h.cntlid, h.subnqn, h.hostnqn, h.io_queues});
    return out;
}

}  // namespace ioe::rpc
