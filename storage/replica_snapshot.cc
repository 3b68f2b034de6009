// snapshot_replica_once (replica_snapshot.hh).
#include "storage/replica_snapshot.hh"

#include <fmt/format.h>

#include "runtime/smp.hh"
#include "storage/errors.hh"
#include "storage/pool.hh"

namespace ioe {

namespace {

// On the pool's shard.
future<device_snapshot_reply> snapshot_on_pool(pool* p, std::string replica_name, device_snapshot_request req) {
    const std::vector<replica_info> all = p->list_replicas();
    auto by_name = [&all](const std::string& n) -> const replica_info* {
        for (const auto& i : all)
            if (i.name == n) return &i;
        return nullptr;
    };
    const replica_info* self = by_name(replica_name);
    if (!self) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("pool \"{}\" has no replica \"{}\"", p->pool_name(), replica_name));
    }
    // The chain of the replica's snapshots, nearest first (bounded by the
    // pool's volume count against a cycle).
    std::size_t steps = 0;
    for (const replica_info* at = by_name(self->parent); at && steps <= all.size(); at = by_name(at->parent), ++steps) {
        if (at->snapshot && at->txid == req.txid) co_return device_snapshot_reply{.existed = true};
    }
    if (const replica_info* same = by_name(req.name)) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("pool \"{}\": \"{}\" exists and is not a snapshot of \"{}\" with txid \"{}\"",
                                        p->pool_name(), same->name, replica_name, req.txid));
    }
    co_await p->snapshot_replica(replica_name, snapshot_options{.name = req.name, .id = {}, .txid = req.txid});
    co_return device_snapshot_reply{.existed = false};
}

}  // namespace

future<device_snapshot_reply> snapshot_replica_once(replica* r, device_snapshot_request req) {
    if (req.txid.empty() || req.txid.size() > device_snapshot_request::max_txid_bytes) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("snapshot \"{}\" of \"{}\": a transaction id of 1 to {} bytes is required",
                                        req.name, r->name(), device_snapshot_request::max_txid_bytes));
    }
    pool* p = &r->owner_pool();
    std::string name = r->name();
    co_return co_await submit_to(p->owner_shard(), [p, name, req] { return snapshot_on_pool(p, name, req); });
}

io_status snapshot_error_status(storage_errc c) noexcept {
    switch (c) {
        case storage_errc::no_space: return io_status::capacity_exceeded;
        case storage_errc::invalid_argument:
        case storage_errc::already_exists: return io_status::invalid_field;
        case storage_errc::not_found:
        case storage_errc::unavailable: return io_status::namespace_not_ready;
        default: return io_status::internal_error;
    }
}

}  // namespace ioe
