// snapshot_replica_once (replica_snapshot.hh).
#include "storage/replica_snapshot.hh"

#include <chrono>
#include <fmt/format.h>

#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/pool.hh"

namespace ioe {

namespace {

// Who holds a volume name on this node, for a snapshot under `txid`.
enum class name_holder {
    none,     // free: neither the pool nor the registry has it
    sibling,  // a snapshot with the same txid (another child of the same nexus snapshot)
    other,    // anything else
};

name_holder holder_in(const std::vector<replica_info>& all, const std::string& name, const std::string& txid) {
    for (const auto& i : all) {
        if (i.name == name) return i.snapshot && i.txid == txid ? name_holder::sibling : name_holder::other;
    }
    return name_holder::none;
}

// On the pool's shard: the pool's own volumes first, then the devices of
// its registry (a volume of another pool on this node; read on its shard).
future<name_holder> holder_of(pool* p, std::string name, std::string txid) {
    const name_holder here = holder_in(p->list_replicas(), name, txid);
    if (here != name_holder::none || !p->registry()) co_return here;
    block_device* dev = nullptr;
    try {
        dev = co_await p->registry()->find(name);
    } catch (const storage_error& e) {
        if (e.code != storage_errc::not_found) throw;
    }
    if (!dev) co_return name_holder::none;
    auto* r = dynamic_cast<replica*>(dev);
    if (!r) co_return name_holder::other;
    pool* q = &r->owner_pool();
    const std::vector<replica_info> there = co_await submit_to(q->owner_shard(), [q] { return q->list_replicas(); });
    const name_holder h = holder_in(there, name, txid);
    co_return h == name_holder::none ? name_holder::other : h;  // gone meanwhile: still not ours to take
}

// Whether the replica's chain of snapshots holds one with `txid` (nearest
// first, bounded by the pool's volume count against a cycle).
bool chain_has(const std::vector<replica_info>& all, const replica_info& self, const std::string& txid) {
    auto by_name = [&all](const std::string& n) -> const replica_info* {
        for (const auto& i : all)
            if (i.name == n) return &i;
        return nullptr;
    };
    std::size_t steps = 0;
    for (const replica_info* at = by_name(self.parent); at && steps <= all.size(); at = by_name(at->parent), ++steps) {
        if (at->snapshot && at->txid == txid) return true;
    }
    return false;
}

// Whether the replica's chain holds a snapshot with `txid`; not_found if
// the pool has no such replica.
bool taken_already(pool* p, const std::string& replica_name, const std::string& txid) {
    const std::vector<replica_info> all = p->list_replicas();
    for (const auto& i : all) {
        if (i.name == replica_name) return chain_has(all, i, txid);
    }
    throw storage_error(storage_errc::not_found,
                        fmt::format("pool \"{}\" has no replica \"{}\"", p->pool_name(), replica_name));
}

// On the pool's shard.
future<device_snapshot_reply> snapshot_on_pool(pool* p, std::string replica_name, device_snapshot_request req) {
    if (taken_already(p, replica_name, req.txid)) co_return device_snapshot_reply{.existed = true};
    // The name is the request's unless a sibling child (same txid, another
    // volume's chain, in this pool or on this node) holds it: then
    // "<name>@<replica name>" (docs/nexus.md, "Limits of what is built").
    std::string name = req.name;
    // A name reserved by a snapshot still being taken in another pool of
    // this node is refused while no device holds it yet: wait for that
    // snapshot to be registered (or dropped), then look again.
    const auto reserved_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        name_holder h = co_await holder_of(p, name, req.txid);
        if (h == name_holder::none) {
            bool refused = false;
            try {
                co_await p->snapshot_replica(replica_name, snapshot_options{.name = name, .id = {}, .txid = req.txid});
                co_return device_snapshot_reply{.existed = false};
            } catch (const storage_error& e) {
                if (e.code != storage_errc::already_exists) throw;
                refused = true;
            }
            // Taken meanwhile: by a sibling in this pool (it held the pool
            // first), or on this node, where only the registration of ours
            // may have failed (it is in our chain then: no second one).
            if (refused && taken_already(p, replica_name, req.txid)) {
                throw storage_error(storage_errc::already_exists,
                                    fmt::format("pool \"{}\": snapshot \"{}\" of \"{}\" was taken but another device "
                                                "on this node took its name meanwhile (a retry with txid \"{}\" finds it)",
                                                p->pool_name(), name, replica_name, req.txid));
            }
            h = co_await holder_of(p, name, req.txid);
            if (h == name_holder::none) {
                if (std::chrono::steady_clock::now() >= reserved_until) {
                    throw storage_error(storage_errc::busy,
                                        fmt::format("pool \"{}\": the name \"{}\" stayed reserved by another "
                                                    "snapshot on this node for 10 s",
                                                    p->pool_name(), name));
                }
                co_await sleep(std::chrono::milliseconds(1));
                continue;
            }
        }
        if (h == name_holder::sibling && name == req.name) {
            name = req.name + "@" + replica_name;
            continue;
        }
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("pool \"{}\": \"{}\" exists and is not a snapshot of \"{}\" with txid \"{}\"",
                                        p->pool_name(), name, replica_name, req.txid));
    }
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
