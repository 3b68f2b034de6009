// Inflate (decouple) on the pool's shard (pool.hh, docs/pool-format.md
// "Operations and their crash windows"): a volume with a parent gets a copy
// of every granule it reads through its ancestors into its own clusters,
// then one metadata update makes it parentless. The volume is paused for
// the copy. Clusters where no ancestor holds data stay unallocated (they
// read as zeros either way), so a thin clone stays thin. Space is checked
// and taken before anything is written: a pool too full to hold the copy
// refuses with no_space and nothing changes. A discarded parent left with
// at most one child goes, as a delete would take it.
#include <fmt/format.h>

#include "runtime/log.hh"
#include "storage/pool.hh"

namespace ioe {

namespace pf = pool_format;

future<> pool::inflate_replica(std::string name) {
    auto guard = co_await _control.hold();
    check_usable();
    replica* r = find_replica(name);
    pf::replica_meta* m = r ? meta_of(r->replica_id()) : nullptr;
    if (!r || !m) {
        throw storage_error(storage_errc::not_found, fmt::format("pool \"{}\" has no replica \"{}\"", _geo.name, name));
    }
    if (m->snapshot) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is a snapshot; only replicas and clones are inflated", name));
    }
    if (m->parent_id == 0) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" has no parent snapshot: it is independent already", name));
    }
    const std::uint32_t id = m->id, old_parent = m->parent_id;
    co_await r->pause();
    std::exception_ptr error;
    std::vector<std::uint32_t> taken;
    std::size_t copied = 0;
    try {
        auto table = r->current_table();
        std::vector<std::uint32_t> phys(table->count, unallocated_cluster);
        for (std::size_t p = 0; p < _meta.clusters.size(); ++p) {
            if (_meta.clusters[p].owner == id) phys[_meta.clusters[p].logical] = static_cast<std::uint32_t>(p);
        }
        // Which logical clusters need a cluster of their own: those where
        // an ancestor holds a granule the volume lacks.
        std::vector<std::uint64_t> need(table->count, 0);
        std::uint64_t to_take = 0;
        for (std::uint64_t l = 0; l < table->count; ++l) {
            const std::uint64_t have = phys[l] == unallocated_cluster ? 0 : table->present(l);
            std::uint64_t inherited = 0;  // subgranule by subgranule: an ancestor may hold only some
            for (unsigned sg = 0; sg < pf::subgranules_per_cluster; ++sg) {
                const unsigned g = sg / pf::subgranules_per_granule;
                if (!(have >> g & 1) && table->source_sub(l, sg) != unallocated_cluster) inherited |= std::uint64_t(1) << g;
            }
            if (phys[l] != unallocated_cluster) {
                need[l] = ~have;  // an own cluster becomes whole (zeros where nothing was)
            } else if (inherited) {
                need[l] = pf::all_granules;
                ++to_take;
            }
        }
        taken = take_free_clusters(to_take);
        if (taken.size() < to_take) {
            throw storage_error(storage_errc::no_space,
                                fmt::format("pool \"{}\": inflating \"{}\" needs {} free clusters, {} are free",
                                            _geo.name, name, to_take, taken.size()));
        }
        std::size_t next = 0;
        for (std::uint64_t l = 0; l < table->count; ++l) {
            if (!need[l]) continue;
            if (phys[l] == unallocated_cluster) phys[l] = taken[next++];
            co_await copy_granules(table, static_cast<std::uint32_t>(l), phys[l], need[l]);
            ++copied;
        }
        // The one metadata update.
        for (std::uint64_t l = 0; l < table->count; ++l) {
            if (phys[l] != unallocated_cluster) set_cluster(phys[l], id, static_cast<std::uint32_t>(l), pf::all_granules);
        }
        meta_of(id)->parent_id = 0;
        _data_before_commit = true;  // the copies above: flushed before the update
        co_await persist();
        taken.clear();  // recorded: no longer ours to give back
        auto fresh = std::make_shared<cluster_table>(table->count);
        for (std::uint64_t l = 0; l < table->count; ++l) {
            if (phys[l] == unallocated_cluster) continue;
            fresh->granules[l].store(pf::all_granules, std::memory_order_relaxed);
            fresh->entries[l].store(phys[l], std::memory_order_relaxed);
        }
        co_await r->replace_table(std::move(fresh));
    } catch (...) {
        // Before the update (no space, a copy failed): the taken clusters
        // hold unreachable bytes and go back; memory still matches the disk.
        // A failed metadata write has made the pool read-only (fail()).
        error = std::current_exception();
    }
    if (!taken.empty()) {
        for (std::uint32_t c : taken) set_cluster(c, pf::no_owner, 0, 0);
        give_back(taken);
    }
    co_await r->resume();
    if (error) std::rethrow_exception(error);
    log::info("pool \"{}\": \"{}\" inflated ({} clusters copied); it no longer depends on its snapshot", _geo.name,
              name, copied);
    // Its old parent may be a discarded snapshot waiting for this child.
    pf::replica_meta* pm = meta_of(old_parent);
    if (pm && pm->discarded && children_of(old_parent).size() <= 1) co_await remove_volume(old_parent);
}

}  // namespace ioe
