// Granule copy-on-write on the pool's shard (pool.hh, docs/pool-format.md
// "Decision 2"): a write to granules a volume with a parent does not hold
// yet has them materialized here first. The cluster is taken from the free
// list if the volume has none for that logical cluster (not zeroed: clear
// bits are never read), each missing granule is copied from the nearest
// ancestor that holds it or zeroed (subgranule by subgranule where some
// are partly present: those the volume holds are kept), and one
// (group-committed) metadata
// update, which flushes the device before it writes, sets the bits; only
// then are the bits published and the write proceeds. A crash before the update leaves the
// granules unreachable and the ancestor's data in place.
#include <cstring>
#include <fmt/format.h>

#include "runtime/engine.hh"
#include "runtime/timer.hh"
#include "runtime/log.hh"
#include "storage/pool.hh"

namespace ioe {

namespace pf = pool_format;

namespace {

constexpr std::uint64_t max_copy_bytes = 1 << 20;  // the largest DMA buffer

void check_io(io_status st, block_device* dev, const char* what, std::uint64_t offset) {
    if (!ok(st)) {
        throw storage_error(storage_errc::io_error, fmt::format("device \"{}\": {} at byte {} failed: {}", dev->name(),
                                                                what, offset, to_string(st)));
    }
}

// A buffer for copying `len` bytes, at least one granule: the whole run if
// the DMA pool has it, else one granule (a 1 MiB class may be short while
// smaller ones are free); when even that is short (the I/O of every volume
// draws on the same pool), wait for buffers to come back instead of failing
// the copy, up to about two seconds.
future<dma_buffer> copy_buffer(std::uint64_t len, std::uint64_t granule) {
    for (unsigned attempt = 0;; ++attempt) {
        if (auto b = engine::current()->dma().allocate(len)) co_return std::move(*b);
        if (auto b = engine::current()->dma().allocate(granule)) co_return std::move(*b);
        if (attempt == 2000) {
            throw storage_error(storage_errc::no_space, "DMA pool exhausted while copying a granule (waited 2 s)");
        }
        co_await sleep(std::chrono::milliseconds(1));
    }
}

}  // namespace

future<> pool::copy_granules(std::shared_ptr<cluster_table> table, std::uint32_t logical, std::uint32_t physical,
                             std::uint64_t need) {
    const std::uint64_t gb = pf::granule_bytes(_geo);
    const std::uint32_t bs = _dev->block_size();
    // Granule by granule, or subgranule by subgranule where the chain has
    // partly present granules.
    const bool fine = table->chain_has_subgranules();
    const std::uint64_t unit = fine ? pf::subgranule_bytes(_geo) : gb;
    const unsigned units = fine ? pf::subgranules_per_cluster : pf::granules_per_cluster;
    const unsigned step = fine ? 1 : pf::subgranules_per_granule;  // subgranules per unit
    auto byte_of = [&](std::uint32_t cluster, std::uint64_t within) {
        return _geo.data_offset + std::uint64_t(cluster) * _geo.cluster_size + within;
    };
    auto needed = [&](unsigned u) { return (need >> (u * step / pf::subgranules_per_granule) & 1) != 0; };
    auto source = [&](unsigned u) { return table->source_sub(logical, u * step); };
    for (unsigned u = 0; u < units;) {
        const std::uint32_t src = needed(u) ? source(u) : physical;
        if (src == physical) {  // not needed, or held by the volume itself
            ++u;
            continue;
        }
        // A run of needed units with the same source, at most 1 MiB.
        unsigned end = u + 1;
        while (end < units && needed(end) && source(end) == src && (end - u + 1) * unit <= max_copy_bytes) ++end;
        const std::uint64_t within = u * unit, len = (end - u) * unit;
        io_channel* ch = _dev->channel();
        if (!ch) throw storage_error(storage_errc::unavailable, fmt::format("device \"{}\" is closing", _dev->name()));
        const std::uint64_t to = byte_of(physical, within);
        if (src == unallocated_cluster) {
            check_io(co_await ch->write_zeroes(to / bs, len / bs), _dev, "zeroing a granule", to);
        } else {
            // At least a granule (a whole number of device blocks).
            dma_buffer buf = co_await copy_buffer(len, gb);
            const std::uint64_t piece = buf.size() >= len ? len : buf.size() / gb * gb;
            for (std::uint64_t done = 0; done < len; done += piece) {
                const std::uint64_t n = std::min(piece, len - done);
                io_vec v = to_io_vec(buf);
                v.len = static_cast<std::uint32_t>(n);
                const std::uint64_t from = byte_of(src, within + done);
                check_io(co_await ch->read(from / bs, static_cast<std::uint32_t>(n / bs), io_vecs(&v, 1)), _dev,
                         "reading a granule to copy", from);
                check_io(co_await ch->write((to + done) / bs, static_cast<std::uint32_t>(n / bs), io_vecs(&v, 1)),
                         _dev, "writing a copied granule", to + done);
            }
        }
        u = end;
    }
    // No flush here: the commit that records these granules flushes the
    // device before it writes the metadata (pool_metadata.cc), once for
    // every copy in its batch.
}

future<> pool::complete_subgranules(std::uint32_t volume_id) {
    replica* r = replica_by_id(volume_id);
    if (!r) co_return;
    std::vector<std::uint32_t> clusters;
    for (const auto& sg : _meta.subgranules) {
        if (_meta.clusters[sg.cluster].owner == volume_id) clusters.push_back(sg.cluster);
    }
    auto table = r->current_table();
    for (std::uint32_t c : clusters) {
        const pf::subgranule_set* sg = subgranules_of(c);
        if (!sg) continue;
        std::uint64_t partial = 0;
        for (unsigned g = 0; g < pf::granules_per_cluster; ++g) {
            if (pf::granule_subgranules(sg->bits, g) != 0) partial |= std::uint64_t(1) << g;
        }
        const std::uint32_t logical = _meta.clusters[c].logical;
        co_await copy_granules(table, logical, c, partial);
        const std::uint64_t granules = _meta.granules[c] | partial;
        set_cluster(c, volume_id, logical, granules);  // drops the record
        _data_before_commit = true;
        r->publish(logical, c, granules);
    }
}

future<result<std::uint32_t>> pool::ensure_granules(std::uint32_t replica_id, std::uint32_t logical,
                                                    std::uint64_t mask) {
    replica* r = nullptr;
    std::shared_ptr<cluster_table> t;
    for (;;) {
        r = replica_by_id(replica_id);
        if (!r) co_return errno_error(ENODEV);
        t = r->current_table();
        const std::uint32_t p = t->lookup(logical);
        if (p != unallocated_cluster && (t->present(logical) & mask) == mask) co_return p;
        if (_failed) co_return errno_error(EIO);
        pending_cow* busy = find_cow(replica_id, logical);
        if (!busy) break;
        // One copy per cluster at a time, and none beside redirects; then
        // look again (the record is gone when its waiters wake).
        ++busy->copies_waiting;
        busy->waiters.emplace_back();
        co_await busy->waiters.back().get_future();
    }
    pending_cow* mine = start_cow(replica_id, logical);
    mine->copying = true;

    std::optional<std::error_code> error;
    std::uint32_t physical = t->lookup(logical);
    bool taken = false;
    if (physical == unallocated_cluster) {
        if (auto c = take_free_cluster()) {
            physical = *c;
            taken = true;
        } else {
            error = errno_error(ENOSPC);
        }
    }
    if (!error) {
        const std::uint64_t have = t->present(logical);
        const std::uint64_t need = mask & ~have;
        try {
            co_await copy_granules(t, logical, physical, need);
            set_cluster(physical, replica_id, logical, have | need);
            _data_before_commit = true;
            co_await persist();
            r->publish(logical, physical, have | need);
        } catch (const std::exception& e) {
            log::error("pool \"{}\": copy-on-write of cluster {} failed: {}", _geo.name, logical, e.what());
            error = errno_error(EIO);
        }
        if (error && taken && _meta.clusters[physical].owner == pf::no_owner) {
            std::vector<std::uint32_t> back(1, physical);
            give_back(back);
        }
    }
    finish_cow(mine);
    if (error) co_return *error;
    co_return physical;
}

}  // namespace ioe
