// The pool's cluster allocator (pool.hh): the free list, thin allocation on
// first write (zero, persist, publish; concurrent first writes to one
// cluster share it), release of unmapped thin clusters after a grace
// period, and the read-only state after a failed metadata update.
#include <algorithm>
#include <fmt/format.h>

#include "runtime/log.hh"
#include "storage/pool.hh"

namespace ioe {

namespace pf = pool_format;

// ---- allocator ----------------------------------------------------------------------

std::optional<std::uint32_t> pool::take_free_cluster() {
    if (_free.empty()) return std::nullopt;
    std::uint32_t c = _free.back();
    _free.pop_back();
    return c;
}

std::vector<std::uint32_t> pool::take_free_clusters(std::uint64_t n) {
    std::vector<std::uint32_t> out;
    while (out.size() < n && !_free.empty()) out.push_back(*take_free_cluster());
    return out;
}

void pool::give_back(const std::vector<std::uint32_t>& clusters) {
    _free.insert(_free.end(), clusters.begin(), clusters.end());
    std::sort(_free.begin(), _free.end(), std::greater<>());  // lowest index last
}

void pool::fail(const std::string& why) {
    _failed = why;
    log::error("pool \"{}\" is now read-only: {}", _geo.name, why);
}

void pool::check_usable() const {
    if (_failed) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("pool \"{}\" is read-only after a failed metadata update ({}); export and "
                                        "re-import it",
                                        _geo.name, *_failed));
    }
}

future<result<std::uint32_t>> pool::ensure_allocated(std::uint32_t replica_id, std::uint32_t logical) {
    replica* r = replica_by_id(replica_id);
    if (!r) return make_ready_future<result<std::uint32_t>>(errno_error(ENODEV));
    if (std::uint32_t p = r->lookup(logical); p != unallocated_cluster) {
        return make_ready_future<result<std::uint32_t>>(p);
    }
    if (_failed) return make_ready_future<result<std::uint32_t>>(errno_error(EIO));
    for (auto& pa : _pending) {
        if (pa->replica_id == replica_id && pa->logical == logical) {
            pa->waiters.emplace_back();
            return pa->waiters.back().get_future();
        }
    }
    auto physical = take_free_cluster();
    if (!physical) return make_ready_future<result<std::uint32_t>>(errno_error(ENOSPC));
    auto pa = std::make_unique<pending_alloc>(pending_alloc{replica_id, logical, *physical, {}});
    pa->waiters.emplace_back();
    auto f = pa->waiters.back().get_future();
    pending_alloc* raw = pa.get();
    _pending.push_back(std::move(pa));
    // Zero, persist, publish; then answer everyone waiting for this cluster.
    [](pool* self, pending_alloc* pa) -> future<> {
        std::optional<std::error_code> error;
        // (Named vectors: GCC 12 miscompiles braced lists inside coroutines.)
        std::vector<std::uint32_t> cluster(1, pa->physical);
        try {
            co_await self->zero_clusters(cluster);
            self->set_cluster(pa->physical, pa->replica_id, pa->logical, pf::all_granules);
            co_await self->persist();
            if (replica* r = self->replica_by_id(pa->replica_id)) r->publish(pa->logical, pa->physical);
        } catch (const std::exception& e) {
            log::error("pool \"{}\": allocating a cluster failed: {}", self->_geo.name, e.what());
            error = errno_error(EIO);
        }
        if (error && self->_meta.clusters[pa->physical].owner == pf::no_owner) self->give_back(cluster);
        for (auto& w : pa->waiters) {
            if (error) w.set_value(*error);
            else w.set_value(pa->physical);
        }
        std::erase_if(self->_pending, [pa](const std::unique_ptr<pending_alloc>& x) { return x.get() == pa; });
    }(this, raw).ignore();
    return f;
}

future<io_status> pool::release_cluster(std::uint32_t replica_id, std::uint32_t logical) {
    replica* r = replica_by_id(replica_id);
    if (!r) co_return io_status::namespace_not_ready;
    const std::uint32_t physical = r->lookup(logical);
    if (physical == unallocated_cluster) co_return io_status::success;
    r->unpublish(logical);
    set_cluster(physical, pf::no_owner, 0, 0);
    try {
        co_await persist();
    } catch (const std::exception&) {
        co_return io_status::write_fault;
    }
    // The cluster is free on disk; it may be handed out again once no shard
    // has an I/O to it in flight.
    ++_background;
    [](pool* self, replica* r, std::uint32_t physical) -> future<> {
        co_await r->quiesce();
        std::vector<std::uint32_t> cluster(1, physical);
        self->give_back(cluster);
        if (--self->_background == 0 && self->_background_done) self->_background_done->set_value();
    }(this, r, physical).ignore();
    co_return io_status::success;
}

}  // namespace ioe
