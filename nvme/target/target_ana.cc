// Asymmetric Namespace Access in the NVMe/TCP target (docs/ana.md): each
// namespace's ANA state through this engine, changed on the home shard and
// published to every shard's view like the namespace table; the ANA Change
// event to connected controllers; a standby namespace replaced by the
// device that now serves it.
#include <fmt/format.h>

#include "nvme/target/target.hh"
#include "nvme/target/tcp_qpair.hh"
#include "runtime/log.hh"
#include "runtime/smp.hh"
#include "storage/errors.hh"

namespace ioe::nvme {

ana_state subsystem::ana_of(std::uint32_t nsid) const noexcept {
    const auto& a = _views[this_shard_id()].ana;
    return nsid == 0 || nsid > a.size() ? ana_state::inaccessible : a[nsid - 1];
}

ana_state subsystem::effective_ana_of(std::uint32_t nsid) const noexcept {
    const ana_state a = ana_of(nsid);
    const block_device* dev = namespace_of(nsid);
    if (ana_serves_io(a) && dev && dev->path_inaccessible()) return ana_state::inaccessible;
    return a;
}

bool subsystem::note_lost_path(std::uint32_t nsid) noexcept {
    if (nsid == 0 || nsid > max_namespaces) return false;
    const block_device* dev = namespace_of(nsid);
    if (!dev || !ana_serves_io(ana_of(nsid))) return false;
    auto& lost = _lost_path[nsid - 1];
    if (!dev->path_inaccessible()) {
        // A path that came back (a forwarding path whose far side answers
        // again) is a change too. A plain load first: this runs per I/O.
        const block_device* was = dev;
        if (lost.load(std::memory_order_relaxed) != dev ||
            !lost.compare_exchange_strong(was, nullptr, std::memory_order_acq_rel)) {
            return false;
        }
        _ana_changes.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    // Counted once per device: a device put in its place later (a takeover
    // back here) is counted again when it loses its path.
    if (lost.exchange(dev, std::memory_order_acq_rel) == dev) return false;
    _ana_changes.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void nvmf_target::check_lost_paths(const std::shared_ptr<subsystem>& s, std::uint32_t nsid) {
    if (!s) return;
    bool changed = false;
    if (nsid != 0) {
        changed = s->note_lost_path(nsid);
    } else {
        const std::uint32_t highest = s->highest_nsid();
        for (std::uint32_t n = 1; n <= highest; ++n) changed |= s->note_lost_path(n);
    }
    if (!changed) return;
    log::info("nvmf subsystem {}: a namespace's path was lost (a fenced nexus, a forwarding path cut off) or came "
              "back: ANA change",
              s->nqn);
    notify_ana_changed(s);
}

void controller::ana_changed() {
    ana_event_pending = true;
    if (admin) admin->report_async_events();
}

void nvmf_target::notify_ana_changed(const std::shared_ptr<subsystem>& s) {
    std::vector<std::shared_ptr<controller>> ctrls;
    {
        std::lock_guard lk(_mutex);
        for (const auto& [id, c] : _controllers)
            if (c->subsys == s) ctrls.push_back(c);
    }
    for (auto& c : ctrls) submit_to(c->admin_shard, [c] { c->ana_changed(); }).ignore();
}

future<> nvmf_target::set_ana_state(std::string nqn, std::uint32_t nsid, ana_state state) {
    check_home("set_ana_state");
    auto s = subsystem_or_throw(nqn);
    if (nsid == 0 || nsid > s->_namespaces.size() || !s->_namespaces[nsid - 1]) {
        throw storage_error(storage_errc::not_found, fmt::format("nvmf subsystem {}: no namespace {}", nqn, nsid));
    }
    if (s->_ana[nsid - 1] == state) co_return;
    s->_ana[nsid - 1] = state;
    s->_ana_changes.fetch_add(1, std::memory_order_relaxed);
    co_await publish_namespaces(s);
    notify_ana_changed(s);
    log::info("nvmf subsystem {}: namespace {} is ANA {}", nqn, nsid, to_string(state));
}

future<> nvmf_target::replace_namespace(std::string nqn, std::uint32_t nsid, block_device* dev, ana_state state) {
    check_home("replace_namespace");
    if (!dev) throw storage_error(storage_errc::invalid_argument, fmt::format("nvmf subsystem {}: no device", nqn));
    auto s = subsystem_or_throw(nqn);
    if (nsid == 0 || nsid > s->_namespaces.size() || !s->_namespaces[nsid - 1]) {
        throw storage_error(storage_errc::not_found, fmt::format("nvmf subsystem {}: no namespace {}", nqn, nsid));
    }
    block_device* old = s->_namespaces[nsid - 1];
    if (old->id() != dev->id() || old->block_size() != dev->block_size() || old->block_count() != dev->block_count()) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("nvmf subsystem {}: namespace {} is volume {} ({} blocks of {} bytes); {} is "
                                        "{} ({} blocks of {} bytes): a host would see another volume under the "
                                        "same namespace",
                                        nqn, nsid, old->id().to_string(), old->block_count(), old->block_size(),
                                        dev->name(), dev->id().to_string(), dev->block_count(), dev->block_size()));
    }
    s->_namespaces[nsid - 1] = dev;
    s->_ana[nsid - 1] = state;
    s->_ana_changes.fetch_add(1, std::memory_order_relaxed);
    co_await publish_namespaces(s);
    notify_ana_changed(s);
    log::info("nvmf subsystem {}: namespace {} is now {} (ANA {})", nqn, nsid, dev->name(), to_string(state));
}

}  // namespace ioe::nvme
