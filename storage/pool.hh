// A pool: a logical volume store on one block device (docs/pool-format.md).
// An actor on the shard that created or imported it; its replicas are owned
// by the same shard. Control operations (replica create/destroy/resize,
// grow, export, destroy) are serialized; thin allocations run beside them and
// are grouped into shared metadata updates.
//
// Snapshots and clones (pool_snapshot.cc, format v2): a snapshot takes over
// the replica's clusters and becomes its parent; a clone is a thin volume
// whose parent is a snapshot; writes to granules a volume lacks are
// materialized by ensure_granules (pool_cow.cc). The pool becomes version 2
// on its first snapshot or clone.
//
// Crash consistency: the metadata lives in two alternating slots, each
// written whole with a higher sequence and flushed (pool_metadata.cc); an
// update is durable when its flush completes, and nothing that depends on it
// (a replica's existence, a thin write) is acknowledged before that. The
// exception: redirected writes (pool_redirect.cc) are recorded in a delta
// page after the newest image and acknowledged once it is written, before
// a flush (a kill -9 keeps it; the volume's flush makes it durable).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/actor.hh"
#include "runtime/async_mutex.hh"
#include "runtime/result.hh"
#include "storage/block_device.hh"
#include "storage/errors.hh"
#include "storage/pool_format.hh"
#include "storage/replica.hh"

namespace ioe {

class device_registry;

struct pool_create_options {
    std::string name;
    uuid id;  // nil: a random one
    std::uint32_t cluster_size = pool_format::default_cluster_size;
    bool overwrite = false;  // replace a pool the device already holds
};

struct snapshot_options {
    std::string name;
    uuid id;           // nil: a random one
    std::string txid;  // the caller's transaction id (at most 63 bytes)
};

struct pool_info {
    std::string name;
    uuid id;
    std::string device;
    std::uint32_t cluster_size = 0;
    std::uint64_t capacity_bytes = 0;   // data clusters
    std::uint64_t used_bytes = 0;       // clusters allocated to replicas
    std::uint64_t committed_bytes = 0;  // sum of replica sizes (thin included)
    std::size_t replica_count = 0;
    bool was_exported = false;          // the last import found a clean export
    std::uint32_t format_version = 1;   // of the metadata written now
};

struct replica_info {
    std::string name;
    uuid id;
    std::string pool;
    std::uint64_t size_bytes = 0;
    bool thin = false;
    std::uint64_t allocated_bytes = 0;  // clusters this volume owns
    std::uint64_t referenced_bytes = 0; // data it reads through its ancestors (granules)
    std::uint64_t freed_by_delete_bytes = 0;  // what destroying it now frees (0: it has children)
    bool snapshot = false;              // read-only
    bool discarded = false;             // destroyed, waits until at most one child is left
    std::string parent;                 // the parent snapshot's name, empty = none
    std::uint64_t created_ns = 0;       // Unix nanoseconds (snapshots and clones)
    std::string txid;
};

class pool final : public actor {
public:
    // Both run on the shard that will own the pool; `registry` (optional)
    // receives the replicas so that bdev:///NAME opens them.
    static future<std::unique_ptr<pool>> create(block_device* dev, pool_create_options opts,
                                                device_registry* registry = nullptr);
    static future<std::unique_ptr<pool>> import(block_device* dev, device_registry* registry = nullptr);
    ~pool() override;

    // Closes the replicas and marks the pool exported; delete it after.
    future<> export_pool();
    // Closes the replicas and wipes the superblocks and metadata headers.
    future<> destroy();
    // Takes in the space the device gained (after it grew).
    future<> grow();
    pool_info info() const;
    const std::string& pool_name() const noexcept { return _geo.name; }

    future<replica*> create_replica(std::string name, uuid id, std::uint64_t size_bytes, bool thin);
    // Destroys a volume (pool_delete.cc). A snapshot that is the parent of
    // one volume is merged into it; of several, it is marked discarded (no
    // new clones) and goes when at most one child is left. A discarded
    // ancestor left with no child (or one) goes with it.
    future<> destroy_replica(std::string name);
    future<> resize_replica(std::string name, std::uint64_t size_bytes);
    std::vector<replica_info> list_replicas() const;
    // The registry its volumes are registered in (null: none).
    device_registry* registry() const noexcept { return _registry; }

    // A read-only point-in-time snapshot of a replica or clone (its writes
    // pause for one metadata update). A thick replica stays thick: it gets
    // a fresh reserved set of clusters (no_space when the pool lacks it).
    future<replica*> snapshot_replica(std::string replica_name, snapshot_options opts);
    // A writable thin volume whose content is the snapshot's.
    future<replica*> clone_snapshot(std::string snapshot_name, std::string clone_name, uuid id = {});
    // Returns a replica (or clone) to the content of one of its ancestor
    // snapshots, in place: its own data is dropped (a thick replica keeps
    // its clusters, emptied), its parent becomes that snapshot; the
    // snapshots taken after it stay as they are. Its size stays.
    future<> restore_replica(std::string replica_name, std::string snapshot_name);
    // Makes a clone (or a snapshotted replica) independent of its parent
    // snapshot (pool_inflate.cc): the granules it reads through ancestors
    // are copied into its own clusters, then its parent becomes none.
    future<> inflate_replica(std::string name);
    replica* find_replica(const std::string& name) const noexcept;

    // ---- for replica channels, on the pool's shard ----
    // The physical cluster of (replica, logical), allocating, zeroing and
    // persisting it first if needed; ENOSPC when the pool is full.
    future<result<std::uint32_t>> ensure_allocated(std::uint32_t replica_id, std::uint32_t logical);
    // Frees one thin cluster (unmap); reusable after a grace period.
    future<io_status> release_cluster(std::uint32_t replica_id, std::uint32_t logical);
    // For a volume with a parent: makes the granules of `mask` in (replica,
    // logical) present (cluster taken if needed, each granule copied from
    // the nearest ancestor or zeroed, flushed, persisted, published) and
    // returns the physical cluster; ENOSPC when the pool is full.
    future<result<std::uint32_t>> ensure_granules(std::uint32_t replica_id, std::uint32_t logical, std::uint64_t mask);
    // Redirect (pool_redirect.cc), for a volume with a parent and a write
    // that covers subgranules [first, first + count) of (replica, logical):
    // begin returns the physical cluster to write them into (taken if
    // needed; EAGAIN when the slot has no room for another subgranule
    // record: copy instead); after the write, end records their bits
    // (flushing the data before the metadata) and publishes them, or, when
    // the write failed, only ends the redirect.
    future<result<std::uint32_t>> begin_redirect(std::uint32_t replica_id, std::uint32_t logical, unsigned first,
                                                 unsigned count);
    future<io_status> end_redirect(std::uint32_t replica_id, std::uint32_t logical, unsigned first, unsigned count,
                                   bool written);

    const pool_format::pool_geometry& geometry() const noexcept { return _geo; }
    block_device& device() const noexcept { return *_dev; }

private:
    pool(block_device* dev, pool_format::pool_geometry geo, pool_format::metadata_state meta,
         device_registry* registry);

    // pool_metadata.cc: device I/O for metadata.
    static future<std::vector<std::byte>> read_bytes(block_device* dev, std::uint64_t offset, std::uint64_t len);
    static future<> write_bytes(block_device* dev, std::uint64_t offset, std::span<const std::byte> data);
    static future<> flush(block_device* dev);
    // Flushes the device before a metadata update that pauses a volume, so
    // that the flush inside the pause has little left to do (see the .cc).
    future<> preflush();
    future<> write_superblock();
    // Makes the in-memory metadata durable; returns when a write that covers
    // every change made before the call has been flushed.
    future<> persist();
    // The same for a redirected write's change alone: the commit may record
    // it (and the others like it) in a delta page instead of a new image.
    future<> persist_redirect(pool_format::delta_entry entry);
    future<> wait_durable(std::uint64_t change);
    future<> commit_loop();
    future<> zero_clusters(const std::vector<std::uint32_t>& clusters);

    // pool_snapshot.cc
    future<> upgrade_to_v2();
    future<> check_name_free(const std::string& name, const uuid& id);
    // pool_delete.cc
    std::vector<std::uint32_t> children_of(std::uint32_t id) const;
    future<> remove_volume(std::uint32_t id);
    future<> free_volume(std::uint32_t id);
    future<> merge_into_child(std::uint32_t snapshot_id, std::uint32_t child_id);
    // pool_cow.cc
    // Copies into `physical` the subgranules of the `need` granules that it
    // does not hold itself, each from the nearest volume of table's chain
    // that holds it (zeros where none does).
    future<> copy_granules(std::shared_ptr<cluster_table> table, std::uint32_t logical, std::uint32_t physical,
                           std::uint64_t need);
    // Makes every partly present granule of a volume whole (copying the
    // missing subgranules from its ancestors) in memory and on the device;
    // the caller's metadata update persists it. For merges, which work on
    // whole granules. The volume must be paused (or read-only).
    future<> complete_subgranules(std::uint32_t volume_id);

    // pool_redirect.cc: the subgranule records of _meta (sorted by cluster).
    pool_format::subgranule_set* subgranules_of(std::uint32_t cluster) noexcept;
    // Adds subgranules [first, first + count) to a cluster's record (granules
    // they complete become whole); returns the cluster's granule bits.
    std::uint64_t add_subgranules(std::uint32_t cluster, unsigned first, unsigned count);
    void drop_subgranules(std::uint32_t cluster) noexcept;

    // pool.cc
    void set_cluster(std::uint32_t c, std::uint32_t owner, std::uint32_t logical, std::uint64_t granules) noexcept;
    future<> attach_replicas();
    future<replica*> add_replica_object(const pool_format::replica_meta& meta);
    std::optional<std::uint32_t> take_free_cluster();
    std::vector<std::uint32_t> take_free_clusters(std::uint64_t n);
    void give_back(const std::vector<std::uint32_t>& clusters);
    replica* replica_by_id(std::uint32_t id) const noexcept;
    pool_format::replica_meta* meta_of(std::uint32_t id) noexcept;
    void fail(const std::string& why);
    void check_usable() const;
    future<> close_replicas();

    block_device* _dev;
    device_registry* _registry;
    pool_format::pool_geometry _geo;
    pool_format::metadata_state _meta;
    std::vector<std::uint32_t> _free;  // free clusters, lowest index last
    std::vector<std::unique_ptr<replica>> _replicas;
    async_mutex _control;
    bool _was_exported = false;
    std::optional<std::string> _failed;  // a metadata write failed: read-only

    // Group commit.
    std::uint64_t _changes = 0;   // in-memory metadata changes so far
    std::uint64_t _durable = 0;   // changes covered by a flushed write
    bool _committing = false;
    // Data the next metadata update will reference was written without a
    // flush (copied granules): the commit flushes the device first.
    bool _data_before_commit = false;
    // Delta pages: redirected writes since the newest image, recorded in
    // that slot's tail while nothing else changed (pool_metadata.cc).
    std::vector<pool_format::delta_entry> _delta;
    bool _image_needed = true;        // a change a delta cannot carry (or none written yet)
    std::uint64_t _image_bytes = 0;   // of the newest image
    std::uint32_t _delta_pages = 0;   // written after it
    bool _delta_unflushed = false;    // the last commit was a delta page, not flushed after
    std::vector<std::byte> _delta_page;  // the page being written, kept for its capacity
    struct durable_waiter {
        std::uint64_t change;
        promise<> done;
    };
    std::vector<durable_waiter> _durable_waiters;
    std::vector<durable_waiter> _waking;  // scratch of commit_loop, kept for its capacity

    // Thin allocations in progress (zeroing or being persisted).
    struct pending_alloc {
        std::uint32_t replica_id;
        std::uint32_t logical;
        std::uint32_t physical;
        std::vector<promise<result<std::uint32_t>>> waiters;
    };
    std::vector<std::unique_ptr<pending_alloc>> _pending;
    // Granule materializations in progress, one per (volume, cluster).
    // A copy excludes everything else on its cluster; redirects of one
    // cluster run side by side (they touch only the subgranules they write).
    struct pending_cow {
        std::uint32_t replica_id;
        std::uint32_t logical;
        bool copying = false;          // ensure_granules runs
        unsigned redirects = 0;        // between begin_redirect and end_redirect
        unsigned copies_waiting = 0;   // new redirects wait behind them
        bool record_reserved = false;  // holds one of _subgranule_reserved
        std::vector<promise<>> waiters;
    };
    pending_cow* find_cow(std::uint32_t replica_id, std::uint32_t logical) noexcept;
    pending_cow* start_cow(std::uint32_t replica_id, std::uint32_t logical);
    void finish_cow(pending_cow* c);
    // Subgranule records reserved by redirects in progress (room in the slot).
    std::uint64_t _subgranule_reserved = 0;
    std::vector<std::unique_ptr<pending_cow>> _cow;
    // Finished records, reused: no allocation per first write in steady use.
    std::vector<std::unique_ptr<pending_cow>> _cow_spare;
    unsigned _background = 0;  // grace periods running
    std::optional<promise<>> _background_done;
};

}  // namespace ioe
