// Fencing a faulted child before it is rebuilt or brought back (see
// nexus.hh, fence_faulted_child, and docs/nexus.md, "Fencing a faulted
// remote child"). The hole it closes: a remote child's connection is cut
// by the network while a write is still executing at a target that lives
// on; our initiator counts that command as finished, the target's old
// controller may still be live, and the write could land after a rebuild
// copied its segment. So the child gets a new connection under the next
// connection generation (another host id and reservation key,
// nexus_epoch.hh), and claiming it preempts-and-aborts the old generation's
// key: our target completes that only once the old host's commands have
// finished at its device (bounded by its drain timeout, failing otherwise),
// and refuses the old host's writes from then on. The segments of writes
// in flight at the fault are in the child's dirty log (nexus_dirty.hh), so
// a partial rebuild copies them after that.
#include <fmt/format.h>

#include <algorithm>

#include "runtime/log.hh"
#include "runtime/timer.hh"
#include "storage/errors.hh"
#include "storage/nexus/nexus.hh"

namespace ioe {

namespace {

storage_error fence_error(storage_errc c, const std::string& nexus_name, const std::string& what) {
    return storage_error(c, fmt::format("nexus '{}': {}", nexus_name, what));
}

// A child reached through our NVMe/TCP initiator: a connection the network
// can cut while the far end lives on.
bool remote(const block_device& dev) { return dev.product() == "nvmf"; }

}  // namespace

std::uint32_t nexus::next_connection() {
    if (_last_connection >= nexus_epoch::max_generation) {
        throw fence_error(storage_errc::busy, name(),
                          fmt::format("the {} connection generations of epoch {} are used up: create the nexus again "
                                      "(a new epoch) to bring children back",
                                      nexus_epoch::max_generation, _epoch));
    }
    return ++_last_connection;
}

future<> nexus::reconnect_child(std::string uri) {
    child* c = find_child(uri);
    if (!c || !c->dev || c->state != child_state::faulted) co_return;
    const std::uint32_t slot_generation = c->generation;
    child fresh;
    fresh.uri = uri;
    fresh.connection = next_connection();
    try {
        co_await open_child(fresh, _opts.registry, identity_of(fresh));
    } catch (const std::exception& e) {
        throw fence_error(storage_errc::unavailable, name(),
                          fmt::format("child {}: connecting again (generation {}): {}", uri, fresh.connection,
                                      e.what()));
    }
    std::string why;
    if (fresh.dev->id() != c->id) {
        why = fmt::format("it is another device now (uuid {}, was {})", fresh.dev->id().to_string(), c->id.to_string());
    } else if (fresh.dev->block_size() != block_size() || fresh.dev->block_count() < block_count()) {
        why = fmt::format("{} blocks of {} bytes, the nexus has {} of {}", fresh.dev->block_count(),
                          fresh.dev->block_size(), block_count(), block_size());
    }
    c = find_child(uri);  // the table may have changed while it connected
    if (why.empty() && (!c || c->generation != slot_generation || c->state != child_state::faulted || c->rebuild)) {
        why = "it changed meanwhile; try again";
    }
    if (!why.empty()) {
        if (fresh.owned) co_await fresh.owned->close();
        throw fence_error(storage_errc::busy, name(), fmt::format("child {}: {}", uri, why));
    }
    std::unique_ptr<block_device> old = std::move(c->owned);
    const std::uint32_t old_connection = c->connection;
    c->owned = std::move(fresh.owned);
    c->dev = fresh.dev;
    c->connection = fresh.connection;
    // Every shard now sends nothing to the old device (the child is still
    // faulted and logging); I/O still in flight on it fails as it closes,
    // and is marked dirty for the child (nexus::child_failed).
    co_await publish();
    log::info("nexus {}: child {} connected again as generation {} (was {}); closing the old connection", name(), uri,
              c->connection, old_connection);
    if (old) co_await old->close();
}

future<nexus::child*> nexus::fence_once(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw fence_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    if (_state == nexus_state::fenced) {
        throw fence_error(storage_errc::unavailable, name(), "it is fenced (another incarnation took over)");
    }
    if (c->dev && c->owned && remote(*c->dev)) {
        co_await reconnect_child(uri);
        c = find_child(uri);
        if (!c || !c->dev || c->state != child_state::faulted) {
            throw fence_error(storage_errc::busy, name(), fmt::format("child {} changed meanwhile; try again", uri));
        }
    }
    co_await claim_child(*c);
    co_return c;
}

future<nexus::child*> nexus::fence_faulted_child(std::string uri) {
    // An attempt fails unavailable while the old connection's commands still
    // run at the target (the preempt-and-abort was not confirmed within the
    // target's drain bound or the child's I/O timeout), or while the child's
    // node cannot be reached: tried again, each time under a new generation
    // (the failed attempt's preempt took effect at the target: claiming
    // again under the same key would find itself the holder and confirm
    // nothing), up to settle_limit; then busy. Anything else (a conflict,
    // fenced, the child changed) at once.
    const auto deadline = steady_clock::now() + _opts.settle_limit;
    for (unsigned attempt = 1;; ++attempt) {
        std::string failure;
        try {
            co_return co_await fence_once(uri);
        } catch (const storage_error& e) {
            if (e.code != storage_errc::unavailable || _state == nexus_state::fenced) throw;
            failure = e.what();
        }
        if (steady_clock::now() >= deadline) {
            throw fence_error(storage_errc::busy, name(),
                              fmt::format("child {} not fenced within {} ms ({} attempts); the last: {}", uri,
                                          _opts.settle_limit.count(), attempt, failure));
        }
        if (attempt == 1) log::info("nexus {}: {}; trying again (up to {} ms)", name(), failure, _opts.settle_limit.count());
        co_await sleep(std::min<steady_clock::duration>(deadline - steady_clock::now(), std::chrono::milliseconds(100)));
    }
}

}  // namespace ioe
