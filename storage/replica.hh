// A replica: a logical volume in a pool, itself a block_device (so it can be
// opened as bdev:///NAME, shared over NVMe/TCP, and be a nexus child).
//
// Its channels translate LBAs through the logical-to-physical cluster table
// and split I/O at cluster boundaries, with no lock and no heap allocation:
// the table is an array of atomics that the pool's shard fills (release) and
// every shard reads (acquire). Each channel holds its own reference to the
// current table; growing the replica publishes a larger table to every
// channel (DESIGN.md's for_each_channel). A thin replica's first write to a
// cluster asks the pool's shard to allocate it (zeroed and persisted before
// the write is acknowledged); reads of unallocated clusters return zeros.
//
// Snapshots and clones (pool format v2): every table entry carries the
// bitmap of granules (cluster_size / 64) present in that physical cluster,
// and a table points to its parent volume's table. A read takes each
// granule from the nearest volume of the chain that holds it (zeros when
// none does); a write to a granule the volume lacks asks the pool's shard to
// materialize it first (copy from the ancestor, persist the bit), unless
// the write covers whole subgranules (cluster_size / 1024): those are
// written in place and their bits persisted after the data (redirect, no
// copy; pool_redirect.cc). A
// snapshot is read-only. pause()/resume() close and open a gate in front of
// every channel, which the pool uses to swap a volume's table when it takes
// a snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "storage/block_device.hh"
#include "storage/pool_format.hh"

namespace ioe {

class pool;

inline constexpr std::uint32_t unallocated_cluster = 0xffffffffu;

// The logical-to-physical cluster table of one volume, with the granules
// present in each physical cluster and the parent volume's table.
struct cluster_table {
    explicit cluster_table(std::uint64_t n, std::shared_ptr<cluster_table> parent_table = nullptr);
    std::uint64_t count;
    std::unique_ptr<std::atomic<std::uint32_t>[]> entries;
    std::unique_ptr<std::atomic<std::uint64_t>[]> granules;
    const std::shared_ptr<cluster_table> parent;  // null: no parent (holes read as zeros)
    // Subgranules present outside whole granules, subgranule_words words per
    // logical cluster; allocated by the pool's shard for the first partly
    // present granule and kept as long as the table. A set granule bit
    // makes its subgranule bits irrelevant (they may stay set).
    std::unique_ptr<std::atomic<std::uint64_t>[]> subgranule_storage;
    std::atomic<std::atomic<std::uint64_t>*> subgranule_bits{nullptr};

    std::uint32_t lookup(std::uint64_t logical) const noexcept {
        return logical < count ? entries[logical].load(std::memory_order_acquire) : unallocated_cluster;
    }
    std::uint64_t present(std::uint64_t logical) const noexcept {
        return logical < count ? granules[logical].load(std::memory_order_acquire) : 0;
    }
    // Whether subgranule sg (0..1023) of `logical` is in this table's own
    // cluster (its granule whole, or the subgranule itself).
    bool holds(std::uint64_t logical, unsigned sg) const noexcept {
        if (present(logical) >> (sg / pool_format::subgranules_per_granule) & 1) return true;
        const std::atomic<std::uint64_t>* bits = subgranule_bits.load(std::memory_order_acquire);
        return bits && logical < count &&
               (bits[logical * pool_format::subgranule_words + sg / 64].load(std::memory_order_acquire) >> (sg % 64) & 1);
    }
    // The physical cluster holding subgranule sg of `logical` for this
    // volume: its own, else the nearest ancestor's; unallocated_cluster for
    // zeros.
    std::uint32_t source_sub(std::uint64_t logical, unsigned sg) const noexcept {
        for (const cluster_table* t = this; t; t = t->parent.get()) {
            const std::uint32_t p = t->lookup(logical);
            if (p != unallocated_cluster && t->holds(logical, sg)) return p;
        }
        return unallocated_cluster;
    }
    // The same for a whole granule g (its first subgranule: callers use it
    // where no table of the chain has subgranule bits).
    std::uint32_t source(std::uint64_t logical, unsigned g) const noexcept {
        return source_sub(logical, g * pool_format::subgranules_per_granule);
    }
    // Whether any table of the chain has subgranule bits (reads must then
    // go subgranule by subgranule).
    bool chain_has_subgranules() const noexcept {
        for (const cluster_table* t = this; t; t = t->parent.get()) {
            if (t->subgranule_bits.load(std::memory_order_acquire)) return true;
        }
        return false;
    }
    // Whether every subgranule of [first, first + n) is in this table's own
    // cluster.
    bool holds_range(std::uint64_t logical, unsigned first, unsigned n) const noexcept {
        for (unsigned sg = first; sg < first + n; ++sg) {
            if (!holds(logical, sg)) return false;
        }
        return true;
    }
    // Pool shard: the subgranule words, allocated on first use.
    std::atomic<std::uint64_t>* subgranules_for_update();
};

// Bits of the granules that [within, within + len) of a cluster touches.
inline std::uint64_t granule_mask(std::uint64_t within, std::uint64_t len, std::uint64_t granule_bytes) noexcept {
    const std::uint64_t g0 = within / granule_bytes, g1 = (within + len - 1) / granule_bytes;
    const std::uint64_t n = g1 - g0 + 1;
    return (n >= 64 ? ~std::uint64_t(0) : ((std::uint64_t(1) << n) - 1)) << g0;
}

class replica final : public block_device {
public:
    // Owner shard = the pool's shard. `meta` as recorded in the pool;
    // `table` its cluster table (the pool builds it with the parent's).
    replica(pool& owner, const pool_format::replica_meta& meta, std::uint32_t block_size,
            std::uint32_t cluster_size, std::shared_ptr<cluster_table> table);
    ~replica() override;

    pool& owner_pool() const noexcept { return _pool; }
    std::uint32_t replica_id() const noexcept { return _id; }
    bool thin() const noexcept { return _thin; }
    bool read_only() const noexcept { return _read_only; }
    bool paused() const noexcept { return _paused.load(std::memory_order_acquire); }
    std::uint64_t logical_clusters() const noexcept { return _table->count; }
    std::uint64_t allocated_clusters() const noexcept { return _allocated; }
    // Bytes of granules this volume reads from its ancestors (pool shard).
    std::uint64_t bytes_from_ancestors() const noexcept;

    // ---- pool shard only ----
    std::uint32_t lookup(std::uint64_t logical) const noexcept { return _table->lookup(logical); }
    // Granules first, then the cluster: a reader that sees the cluster sees
    // its bits (only granules whose data is durable are ever published).
    void publish(std::uint64_t logical, std::uint32_t physical,
                 std::uint64_t granules = pool_format::all_granules) noexcept;
    // Subgranule bits (ORed in), then granules, then the cluster.
    void publish_subgranules(std::uint64_t logical, std::uint32_t physical, std::uint64_t granules,
                             const std::uint64_t (&bits)[pool_format::subgranule_words]);
    void unpublish(std::uint64_t logical) noexcept;
    // Grows to `size_bytes`: a larger table to every shard's channel, the
    // clusters of `mapping` (logical, physical) published, then the new
    // block count.
    future<> grow(std::uint64_t size_bytes, std::vector<std::pair<std::uint64_t, std::uint32_t>> mapping);
    // Returns once every I/O that any shard started before the call is done
    // (the grace period before a freed cluster may be reused).
    future<> quiesce();

    // Closes the gate in front of every shard's channel (new I/O waits) and
    // waits for the I/O already started; resume() opens it again.
    future<> pause();
    future<> resume();
    // While paused: gives every channel a new table (a snapshot moved this
    // volume's clusters to a new parent volume).
    future<> replace_table(std::shared_ptr<cluster_table> table);

    std::shared_ptr<cluster_table> current_table() const noexcept { return _table; }

protected:
    std::unique_ptr<device_channel> open_channel() override;

private:
    pool& _pool;
    std::uint32_t _id;
    bool _thin;
    bool _read_only;
    std::atomic<bool> _paused{false};
    std::uint32_t _cluster_size;
    std::uint64_t _allocated = 0;
    std::shared_ptr<cluster_table> _table;  // read by channels when they open
    // While grow() publishes a larger table, channels may still read this
    // one: publish()/unpublish() update it too until every channel switched.
    std::shared_ptr<cluster_table> _previous;
};

}  // namespace ioe
