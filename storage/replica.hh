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

// The logical-to-physical cluster table of one replica.
struct cluster_table {
    explicit cluster_table(std::uint64_t n);
    std::uint64_t count;
    std::unique_ptr<std::atomic<std::uint32_t>[]> entries;

    std::uint32_t lookup(std::uint64_t logical) const noexcept {
        return logical < count ? entries[logical].load(std::memory_order_acquire) : unallocated_cluster;
    }
};

class replica final : public block_device {
public:
    // Owner shard = the pool's shard. `meta` as recorded in the pool.
    replica(pool& owner, const pool_format::replica_meta& meta, std::uint32_t block_size,
            std::uint32_t cluster_size);
    ~replica() override;

    pool& owner_pool() const noexcept { return _pool; }
    std::uint32_t replica_id() const noexcept { return _id; }
    bool thin() const noexcept { return _thin; }
    std::uint64_t logical_clusters() const noexcept { return _table->count; }
    std::uint64_t allocated_clusters() const noexcept { return _allocated; }

    // ---- pool shard only ----
    std::uint32_t lookup(std::uint64_t logical) const noexcept { return _table->lookup(logical); }
    void publish(std::uint64_t logical, std::uint32_t physical) noexcept;
    void unpublish(std::uint64_t logical) noexcept;
    // Grows to `size_bytes`: a larger table to every shard's channel, the
    // clusters of `mapping` (logical, physical) published, then the new
    // block count.
    future<> grow(std::uint64_t size_bytes, std::vector<std::pair<std::uint64_t, std::uint32_t>> mapping);
    // Returns once every I/O that any shard started before the call is done
    // (the grace period before a freed cluster may be reused).
    future<> quiesce();

    std::shared_ptr<cluster_table> current_table() const noexcept { return _table; }

protected:
    std::unique_ptr<device_channel> open_channel() override;

private:
    pool& _pool;
    std::uint32_t _id;
    bool _thin;
    std::uint32_t _cluster_size;
    std::uint64_t _allocated = 0;
    std::shared_ptr<cluster_table> _table;  // read by channels when they open
    // While grow() publishes a larger table, channels may still read this
    // one: publish()/unpublish() update it too until every channel switched.
    std::shared_ptr<cluster_table> _previous;
};

}  // namespace ioe
