// The nexus: a mirror over 1..8 children (local devices and replicas by
// bdev:///NAME, remote replicas by nvmf://HOST:PORT/NQN or any device URI),
// itself a block_device, so the NVMe/TCP target can publish it
// (DESIGN.md section 4).
//
// Ownership. The nexus is an actor on the shard that created it (the
// owner): children, states, the health record and rebuilds live there. Each
// shard has a slot of its own (shard_state) with its view of the children
// (device pointer and state per child slot), its dirty-segment logs, its
// range locks and its pause gate; only that shard touches its slot, and the
// owner changes them by a message to every shard (the for_each_channel
// pattern). The I/O path reads its own slot: no lock, no allocation.
//
// I/O. Writes, flush, write zeroes and unmap go to every online and every
// rebuilding (degraded) child; reads go to one online child, round robin
// per shard, and move on to the next online child if one fails. A child
// that fails an I/O (or times out, or is out of space) is faulted and
// retired: the owner records it unhealthy in the health store *before* the
// I/O that failed completes; the I/O then succeeds if any child succeeded,
// and fails with the child's status if none did. If the store cannot be
// written (after bounded retries) the nexus faults instead of acknowledging.
//
// Health record. `health_key` holds { clean_shutdown, children: [{uuid,
// healthy}] }. A nexus created over a record whose clean_shutdown is false
// opens only the children recorded healthy as online; the others are
// faulted (out-of-sync) and need a rebuild. No stale read, ever.
//
// Rebuild (nexus_rebuild.cc). Copies segments (segment_bytes) from an online
// source child (a local one when there is one) to the rebuilding child, up
// to rebuild_parallel at once; each copy holds a range lock on every shard
// that application writes to the range wait for. Full (every segment) or
// partial (only segments written while the child was faulted: each shard
// logs them). On completion the child is recorded healthy and goes online;
// on failure it is faulted with reason rebuild-failed.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "storage/nexus/child_health.hh"
#include "storage/nexus/nexus_dirty.hh"
#include "storage/nexus/nexus_epoch.hh"
#include "storage/nexus/nexus_types.hh"

namespace ioe {

class device_registry;

struct nexus_options {
    std::string health_key;                   // the record's key in the store
    child_health_store* health = nullptr;     // required; outlives the nexus
    device_registry* registry = nullptr;      // resolves bdev:/// children (optional)
    std::uint32_t segment_bytes = 256 * 1024; // rebuild copy and dirty-log unit
    unsigned rebuild_parallel = 16;           // segments copied at once
    bool rebuild_verify = false;              // re-read and compare each copied segment
    unsigned health_retries = 5;              // store writes before the nexus faults
    std::chrono::milliseconds health_retry_delay{200};
    // Before a child is rebuilt: how long to wait for its device to settle
    // (connected again, writes it gave up on answered; block_device::settle)
    // and, for a faulted remote child, for its old connection to be fenced
    // (nexus_child_fence.cc); the rebuild is refused (busy) after that.
    std::chrono::milliseconds settle_limit{30000};
    // Written into the health record as the incarnation's owner (the
    // node's name); free text, for operators and for a takeover's logs.
    std::string owner;
    // Take the nexus over from its previous incarnation (nexus_takeover.hh):
    // the record must exist. Without it, a record left running (not shut
    // down cleanly) by another named owner is refused (busy).
    bool takeover = false;
    // Claiming a child's reservation at creation: attempts when it fails
    // for another reason than a conflict (the child's node answers a moment
    // later), and the pause between them.
    unsigned claim_attempts = 3;
    std::chrono::milliseconds claim_retry_delay{100};
    // A nexus snapshot waits this long for in-flight I/O to drain, then
    // gives up (busy) and resumes.
    std::chrono::milliseconds snapshot_drain_limit{5000};
    // Then each child's snapshot may take this long before the child is
    // reported failed (its snapshot may still be taken: a retry with the
    // same txid finds it) and I/O resumes.
    std::chrono::milliseconds snapshot_child_limit{10000};
};

class nexus final : public block_device {
public:
    static constexpr unsigned max_children = 8;

    // On the owner shard: opens the children, reads the health record,
    // writes it back as "not cleanly shut down", and starts the rebuilds
    // the children need. Throws storage_error naming the child or the key.
    static future<std::unique_ptr<nexus>> create(std::string name, uuid id, std::vector<std::string> child_uris,
                                                 nexus_options opts);
    ~nexus() override;

    // ---- owner shard ----
    nexus_state state() const noexcept { return _state; }
    // This incarnation's epoch and the reservation identity derived from it.
    nexus_epoch epoch() const noexcept { return nexus_epoch{id(), _epoch, 0}; }
    nexus_info info() const;

    // Adds a child (opened from its URI) with I/O running; it is rebuilt
    // (full) unless `rebuild` is false, in which case it must already be in
    // sync (the caller says so) and goes online at once.
    future<> add_child(std::string uri, bool rebuild = true);
    // Removes a child (not the last online one): its rebuild stops, I/O is
    // paused while the view changes, and a child the nexus opened is closed.
    future<> remove_child(std::string uri);
    // Faults a child by request (reason by-client); its writes are logged so
    // that online_child() can rebuild only what changed.
    future<> offline_child(std::string uri);
    // Faults a child by request (reason by-client) without logging its
    // writes: online_child() then rebuilds it in full.
    future<> fault_child(std::string uri);
    // Brings a faulted child back: a partial rebuild when its dirty log is
    // complete, else a full one. A child that could not be opened at
    // creation (cannot-open) is opened first.
    future<> online_child(std::string uri);

    // Pauses I/O on every shard (new I/O waits; returns once in-flight I/O
    // has drained) / lifts one pause. Pauses are counted: I/O flows again
    // once every pause (this and a snapshot's) has been lifted.
    future<> pause();
    future<> resume();

    // A snapshot of every online child under one transaction id
    // (nexus_snapshot.cc, docs/nexus.md "Snapshots"): pauses and drains I/O
    // (throws busy after snapshot_drain_limit, resumed), snapshots each
    // online child (a local replica through its pool, anything else through
    // device_channel::snapshot), resumes, and reports per child. A child that
    // already has a snapshot with `txid` counts as done. An empty txid: a
    // random one.
    future<nexus_snapshot_result> snapshot(std::string snapshot_name, std::string txid);

    // Drains I/O, stops rebuilds, records a clean shutdown; the nexus then
    // refuses I/O (close() it afterwards).
    future<> shutdown();

    // Rebuilds (by child URI).
    future<> rebuild_start(std::string uri);
    future<> rebuild_stop(std::string uri);
    future<> rebuild_pause(std::string uri);
    future<> rebuild_resume(std::string uri);
    std::optional<rebuild_progress> rebuild_status(const std::string& uri) const;
    const std::deque<rebuild_progress>& rebuild_history() const noexcept { return _history; }
    // Resolves when no rebuild is running (tests, shutdown).
    future<> rebuilds_idle();

    // ---- any shard (the I/O path) ----
    // Faults child `slot` (if it is still the same child, `generation`) for
    // `reason`, marking [lba, lba + blocks) dirty for it; resolves once the
    // health record says so (or the nexus has faulted).
    future<> child_failed(unsigned slot, std::uint32_t generation, fault_reason reason, std::uint64_t lba,
                          std::uint64_t blocks);

    // Fenced: a target serving this nexus reports its path inaccessible.
    bool path_inaccessible() const noexcept override { return _path_gone.load(std::memory_order_relaxed); }

protected:
    std::unique_ptr<device_channel> open_channel() override;
    future<> close_backend() override;

private:
    friend class nexus_channel;
    struct rebuild_job;

    std::atomic<bool> _path_gone{false};  // fenced (read by targets on any shard)

    // A child, on the owner shard.
    struct child {
        std::string uri;
        block_device* dev = nullptr;
        std::unique_ptr<block_device> owned;  // opened by the nexus (else the registry's)
        uuid id;
        child_state state = child_state::online;
        fault_reason reason = fault_reason::none;
        std::uint32_t generation = 0;  // bumped whenever the slot gets a new child
        // The connection generation its device was opened under (its host
        // id and reservation key, nexus_epoch.hh); a faulted remote child
        // gets a new connection, of a new generation, before it comes back.
        std::uint32_t connection = 0;
        bool dirty_complete = false;   // its dirty log covers every write since it was faulted
        bool last_in_sync = false;     // faulted as the last online child: still recorded healthy
        std::shared_ptr<rebuild_job> rebuild;
        // A rebuild whose copy is over but whose outcome is still being
        // recorded: status() still shows it until it is in the history.
        std::shared_ptr<rebuild_job> finishing;
        bool snapshot_history_missing = false;   // see child_info
        bool recording = false;                  // its fault is being written to the store
        std::vector<promise<>> recorded_waiters;  // I/O waiting for that
    };

    // Per shard: the view of the children and the gates of the I/O path.
    struct alignas(64) shard_state {
        struct child_view {
            block_device* dev = nullptr;
            child_state state = child_state::faulted;
            std::uint32_t generation = 0;
            bool log_dirty = false;                // faulted: log writes for a later partial rebuild
            bool unrecorded = false;               // faulted, the health record does not say so yet
            std::vector<std::uint64_t> dirty;      // one bit per segment
        };
        std::array<child_view, max_children> children{};
        bool faulted = false;  // the nexus faulted: every I/O fails
        bool fenced = false;   // ... because a newer incarnation took over: with the ANA path status
        unsigned next_read = 0;
        // Pause gate: I/O waits while any pause holds it (pause(), a
        // snapshot's drain); each resume lifts one.
        unsigned pauses = 0;
        unsigned in_flight = 0;
        std::vector<promise<>> resume_waiters;
        std::vector<promise<>> drain_waiters;  // pausers waiting for in_flight == 0
        // Range locks (rebuild) and the writes they wait for.
        using range = segment_range;  // segments, inclusive
        std::vector<range> locked;
        std::vector<promise<>> unlock_waiters;
        std::vector<range> writing;  // in-flight writes' segment ranges (capacity reserved)
        std::vector<std::pair<range, promise<>>> write_drain_waiters;
    };

    nexus(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count, nexus_options opts);

    shard_state& local() noexcept;
    std::uint64_t segments() const noexcept;
    std::uint64_t blocks_per_segment() const noexcept { return _opts.segment_bytes / block_size(); }

    child* find_child(const std::string& uri);
    unsigned slot_of(const child* c) const noexcept;
    // Online children other than the one in `slot`.
    unsigned online_besides(unsigned slot) const noexcept;
    // Opens c.uri on the calling (owner) shard: bdev:/// through `registry`
    // (not owned), anything else through its backend (owned by the nexus).
    static future<> open_child(child& c, device_registry* registry, const nexus_epoch& identity);
    // Sends every shard the current view (children, states, faulted flag).
    future<> publish();
    void update_state();
    nexus_health_record health_record(bool clean) const;
    // Writes the record with bounded retries; false if it could not.
    future<bool> write_health(bool clean);
    // Claims every open child's reservation (nexus_fence.hh), retrying
    // errors other than a conflict claim_attempts times; a child not
    // claimed is faulted (its reason and why in `whys`). Writes no record.
    // False: no child in sync is left.
    future<bool> claim_children(std::string& whys);
    // The same for one child before it is rebuilt or brought back; throws
    // (busy when someone else holds it).
    future<> claim_child(child& c);
    // The identity child `c`'s device connects and reserves under.
    nexus_epoch identity_of(const child& c) const noexcept { return epoch().at_generation(c.connection); }
    // nexus_child_fence.cc. The next connection generation of this
    // incarnation; throws busy when they are used up.
    std::uint32_t next_connection();
    // A faulted remote child: opens its device again under the next
    // connection generation, puts it in place of the old one (every shard
    // sees it; it stays faulted and logging) and closes the old one, whose
    // I/O still in flight fails and is marked dirty. The caller then claims
    // the child (claim_child), which preempts-and-aborts the old
    // connection's key at the target and so waits for its commands there.
    future<> reconnect_child(std::string uri);
    // Before a faulted child is rebuilt or brought back: a remote one gets
    // a new connection (reconnect_child), then its reservation is claimed
    // (older generations preempted and aborted). An attempt that fails
    // unavailable (the old connection's commands still run at the target,
    // or the node cannot be reached) is made again, under a new generation,
    // up to settle_limit, then busy; a conflict or a fenced nexus throws at
    // once. Returns the child (its slot may have been looked up again).
    future<child*> fence_faulted_child(std::string uri);
    future<child*> fence_once(std::string uri);
    // Another incarnation owns the record: stop acknowledging, for good.
    future<> fence(std::string why);
    future<> fault(unsigned slot, fault_reason reason, bool log_dirty);
    future<> start_rebuild(unsigned slot, bool partial);
    future<> run_rebuild(std::shared_ptr<rebuild_job> job);
    // Range locks over segments [first, last] on every shard (rebuild).
    future<> lock_segments(std::uint64_t first, std::uint64_t last);
    future<> unlock_segments(std::uint64_t first);
    // Lifts one pause on shards 0 .. count-1.
    future<> resume_shards(unsigned count);
    // nexus_snapshot.cc: pauses this shard and waits for its I/O until
    // `deadline`; false when it did not drain in time.
    future<bool> drain_local(std::chrono::steady_clock::time_point deadline);
    // Flushes the online children before a snapshot's drain (nexus_snapshot.cc).
    future<> preflush_children();
    // Merges every shard's dirty log of `slot` (partial rebuild).
    future<std::vector<std::uint64_t>> collect_dirty(unsigned slot);

    nexus_options _opts;
    nexus_state _state = nexus_state::online;
    std::uint64_t _epoch = 0;  // this incarnation's, from the health record
    std::uint32_t _last_connection = 0;  // the highest connection generation taken
    std::array<child, max_children> _children;
    std::array<bool, max_children> _used{};
    std::vector<shard_state> _shards;
    std::deque<rebuild_progress> _history;
    unsigned _rebuilds_running = 0;
    std::vector<promise<>> _idle_waiters;
    unsigned _snapshots_taken = 0;  // nexus snapshots so far (complete or partial)
    bool _snapshotting = false;
};

}  // namespace ioe
