// Subgranule redirect on the pool's shard (pool.hh, docs/pool-format.md
// "Subgranules"): a write to a volume with a parent that covers whole
// subgranules (cluster_size / 1024, 4 KiB in a 4 MiB cluster) it lacks is
// not preceded by a copy of their granule. begin_redirect hands the
// replica channel the volume's cluster (taken from the free list if it has
// none: not zeroed, clear bits are never read); the channel writes the data
// there; end_redirect records the subgranules' bits in the volume's
// subgranule record (a granule whose 16 subgranules are all present becomes
// whole) with one group-committed metadata update, which flushes the device
// before it writes the slot: the data is durable before any metadata names
// it, so a crash never shows a recycled cluster's bytes (the update is a
// 4 KiB delta page when nothing else changed). Only then are the
// bits published and the write acknowledged; a crash before the update
// leaves the ancestor's data in place (a valid pre-write state).
//
// Redirects of one cluster run side by side; a copy (ensure_granules) of
// that cluster waits for them and they for it (pending_cow).
#include <algorithm>

#include "runtime/log.hh"
#include "storage/pool.hh"

namespace ioe {

namespace pf = pool_format;

pf::subgranule_set* pool::subgranules_of(std::uint32_t cluster) noexcept {
    auto it = std::lower_bound(_meta.subgranules.begin(), _meta.subgranules.end(), cluster,
                               [](const pf::subgranule_set& s, std::uint32_t c) { return s.cluster < c; });
    return it != _meta.subgranules.end() && it->cluster == cluster ? &*it : nullptr;
}

void pool::drop_subgranules(std::uint32_t cluster) noexcept {
    std::erase_if(_meta.subgranules, [cluster](const pf::subgranule_set& s) { return s.cluster == cluster; });
}

std::uint64_t pool::add_subgranules(std::uint32_t cluster, unsigned first, unsigned count) {
    return pf::add_subgranules(_meta, cluster, first, count);
}

pool::pending_cow* pool::find_cow(std::uint32_t replica_id, std::uint32_t logical) noexcept {
    for (auto& c : _cow) {
        if (c->replica_id == replica_id && c->logical == logical) return c.get();
    }
    return nullptr;
}

pool::pending_cow* pool::start_cow(std::uint32_t replica_id, std::uint32_t logical) {
    std::unique_ptr<pending_cow> c;
    if (_cow_spare.empty()) {
        c = std::make_unique<pending_cow>(pending_cow{replica_id, logical, false, 0, 0, false, {}});
    } else {
        c = std::move(_cow_spare.back());
        _cow_spare.pop_back();
        c->replica_id = replica_id;
        c->logical = logical;
    }
    if (_cow.capacity() == 0) _cow.reserve(64);
    _cow.push_back(std::move(c));
    return _cow.back().get();
}

void pool::finish_cow(pending_cow* c) {
    if (c->record_reserved) --_subgranule_reserved;
    auto waiters = std::move(c->waiters);
    auto it = std::find_if(_cow.begin(), _cow.end(), [c](const std::unique_ptr<pending_cow>& x) { return x.get() == c; });
    *c = pending_cow{0, 0, false, 0, 0, false, {}};
    _cow_spare.push_back(std::move(*it));
    _cow.erase(it);
    for (auto& w : waiters) w.set_value();
}

future<result<std::uint32_t>> pool::begin_redirect(std::uint32_t replica_id, std::uint32_t logical, unsigned first,
                                                   unsigned count) {
    pending_cow* mine = nullptr;
    for (;;) {
        if (_failed) co_return errno_error(EIO);
        if (!replica_by_id(replica_id)) co_return errno_error(ENODEV);
        mine = find_cow(replica_id, logical);
        if (!mine || (!mine->copying && mine->copies_waiting == 0)) break;
        mine->waiters.emplace_back();
        co_await mine->waiters.back().get_future();
    }
    replica* r = replica_by_id(replica_id);
    std::uint32_t physical = r->current_table()->lookup(logical);
    // Room for this cluster's subgranule record in the slot.
    const bool has_record = physical != unallocated_cluster && subgranules_of(physical);
    const bool reserve = !has_record && !(mine && mine->record_reserved);
    if (reserve && _meta.subgranules.size() + _subgranule_reserved >=
                       pf::subgranule_capacity(_geo, _meta.clusters.size())) {
        co_return errno_error(EAGAIN);
    }
    if (physical == unallocated_cluster) {
        auto c = take_free_cluster();
        if (!c) co_return errno_error(ENOSPC);
        physical = *c;
        // Owned with no granule: reads still go to the ancestors. Recorded
        // by whichever metadata update comes next.
        set_cluster(physical, replica_id, logical, 0);
        r->publish(logical, physical, 0);
    }
    if (!mine) {
        mine = start_cow(replica_id, logical);
    }
    if (reserve) {
        mine->record_reserved = true;
        ++_subgranule_reserved;
    }
    ++mine->redirects;
    co_return physical;
}

future<io_status> pool::end_redirect(std::uint32_t replica_id, std::uint32_t logical, unsigned first, unsigned count,
                                     bool written) {
    pending_cow* mine = find_cow(replica_id, logical);
    replica* r = replica_by_id(replica_id);
    io_status st = io_status::success;
    if (written && r && !_failed) {
        const std::uint32_t physical = r->current_table()->lookup(logical);
        const std::uint64_t granules = add_subgranules(physical, first, count);
        _data_before_commit = true;
        try {
            co_await persist_redirect(pf::delta_entry{physical, replica_id, logical, static_cast<std::uint16_t>(first),
                                                      static_cast<std::uint16_t>(count)});
            if (_failed) throw storage_error(storage_errc::io_error, *_failed);
            pf::subgranule_set bits{};
            for (unsigned b = first; b < first + count; ++b) bits.bits[b / 64] |= std::uint64_t(1) << (b % 64);
            r->publish_subgranules(logical, physical, granules, bits.bits);
        } catch (const std::exception& e) {
            log::error("pool \"{}\": recording a redirected write to cluster {} failed: {}", _geo.name, logical,
                       e.what());
            st = io_status::internal_error;
        }
    } else if (written) {
        st = io_status::internal_error;
    }
    if (mine && --mine->redirects == 0 && !mine->copying) finish_cow(mine);
    co_return st;
}

}  // namespace ioe
