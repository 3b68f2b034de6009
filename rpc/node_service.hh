// The engine's control operations, one object on shard 0: what the RPC
// server, the embedded handle and the daemon's start-up all call. It owns the
// device registry, the pools (all on shard 0 for now) and the shares (NVMe/TCP
// subsystems on the target), and keeps the engine's state file up to date:
// an operation that changes what must survive a restart (a pool created,
// imported, exported or destroyed; a replica shared or unshared) returns only
// after the new state is durable.
//
// Every method runs on shard 0 and throws storage_error (code + message) on
// failure. Operations that change something hold one async mutex, so that a
// pool or share cannot vanish under another call suspended on it. Objects on other shards are reached through their actors.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nvme/spec/nvme_ana.hh"
#include "rpc/node_state.hh"
#include "runtime/async_mutex.hh"
#include "runtime/engine.hh"
#include "storage/device_registry.hh"
#include "storage/nexus/nexus.hh"
#include "storage/pool.hh"
#include "storage/standby_device.hh"
#include "vhost/blk_export.hh"

namespace ioe::nvme {
class nvmf_target;
}

namespace ioe::rpc {

inline constexpr const char* engine_version = "0.1.0";
inline constexpr const char* share_nqn_prefix = "nqn.2019-05.io.ioengine:";

struct node_identity {
    std::string name = "ioengine";
    std::string data_dir;
};

struct node_info {
    std::string name, version, data_dir, poll_mode, memory;
    unsigned shards = 0;
    std::vector<unsigned> cores;
    std::vector<std::string> features;
};

struct share_info {
    std::string nqn;
    std::string address;
    std::uint16_t port = 0;
    std::vector<std::string> allowed_hosts;
};

struct device_entry {
    device_info device;
    std::string share_nqn;  // empty: not shared
};

struct replica_entry {
    replica_info replica;
    std::string share_nqn;
    std::vector<std::string> allowed_hosts;
};

struct pool_entry {
    pool_info pool;
    std::string uri;  // the device URI it lives on
};

enum class stats_kind { device, replica, nexus };

// What nexus create takes (ioengine.capnp NexusSpec).
struct nexus_spec {
    std::string name;
    std::string uuid;        // empty: a new random one
    std::vector<std::string> children;
    std::string health_key;  // empty: /ioengine/nexus/<uuid>
    std::uint32_t segment_bytes = 0;     // 0: the default
    std::uint32_t rebuild_parallel = 0;  // 0: the default
    bool verify = false;
    // Takeover (NexusSpec.takeover): take the nexus over from its previous
    // incarnation and publish it under `takeover_nqn` ("" : the default
    // for the name) for `takeover_hosts` (none: any host).
    bool takeover = false;
    std::string takeover_nqn{};
    std::vector<std::string> takeover_hosts{};
};

struct nexus_entry {
    nexus_info nexus;
    std::string health_key;
    std::string share_nqn;  // empty: not published
    std::vector<std::string> allowed_hosts;
};

enum class child_action { add, add_in_sync, remove, online, offline, fault };
enum class rebuild_action { start, stop, pause, resume };

struct io_stats {
    std::string name;
    stats_kind kind = stats_kind::device;
    channel_stats counters;
};

struct nvmf_namespace_info {
    std::uint32_t nsid = 0;
    std::string device;
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    std::string ana;  // its ANA state through this engine: optimized, non-optimized, inaccessible
};
struct nvmf_subsystem_info {
    std::string nqn, serial, model;
    std::vector<nvmf_namespace_info> namespaces;
    std::vector<std::string> allowed_hosts;
};
struct nvmf_host_info {
    std::uint16_t cntlid = 0;
    std::string subnqn, hostnqn;
    std::uint32_t io_queues = 0;
};
struct nvmf_listener_info {
    std::string transport = "tcp", address;
    std::uint16_t port = 0;
};

// A vhost-user-blk export (ioengine.capnp VhostSpec): a registered device
// (by name: a device, replica or nexus) served on a unix socket.
struct vhost_spec {
    std::string name;
    std::string socket_path;
    std::string device;
    std::uint32_t queues = 1;
    bool read_only = false;
    bool persistent = true;  // kept in the state file (the daemon's --vhost-blk exports are not)
};

// An export as listed: its spec and its live state and counters.
struct vhost_entry {
    vhost_spec spec;
    bool connected = false;              // a front-end (QEMU) is connected now
    std::uint64_t connections = 0;       // front-ends accepted so far
    std::uint64_t refused = 0;           // second front-ends turned away
    std::uint64_t protocol_errors = 0;
    std::uint32_t queues_active = 0;
    std::uint64_t mapped_bytes = 0;      // guest memory mapped now
    std::uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;
    std::uint64_t read_bytes = 0, write_bytes = 0;
    std::uint64_t ioerr = 0, unsupported = 0;
    std::uint64_t ring_faults = 0;       // queues marked broken (a bad ring from the guest)
    std::uint64_t bounced = 0;           // requests copied through a DMA buffer (misaligned guest buffers)
};

// Writes the state durably; the future completes once it is on disk. Called
// on shard 0, in order; an implementation must not block the reactor.
using state_writer = std::function<future<>(node_state)>;

class node_service {
public:
    // `target` (optional) serves the shares; `writer` (optional) persists
    // the state. Constructed on shard 0.
    node_service(engine& e, node_identity id, nvme::nvmf_target* target, state_writer writer);
    ~node_service();
    node_service(const node_service&) = delete;
    node_service& operator=(const node_service&) = delete;

    device_registry& devices() noexcept { return _devices; }
    nvme::nvmf_target* target() const noexcept { return _target; }

    // Start-up (before the RPC server runs). Re-applies a saved state: imports its pools and re-shares
    // its replicas. What fails is logged and kept in the state, so that it is
    // retried at the next start; returns the messages of what failed.
    future<std::vector<std::string>> apply(node_state state);
    // Creates pool `name` on `uri` unless a pool of that name is there
    // already; imports it when the device already holds it (the default pool).
    future<pool_entry> ensure_pool(std::string name, std::string uri);

    node_info info() const;

    future<device_entry> create_device(std::string uri);
    future<> destroy_device(std::string name);
    future<std::vector<device_entry>> list_devices();
    // nqn "": share_nqn_prefix + name; otherwise validated (nvme/spec/nqn.hh).
    future<share_info> share_device(std::string name, std::vector<std::string> hosts, std::string nqn = "");
    future<> unshare_device(std::string name);

    future<pool_entry> create_pool(std::string name, std::string uri, std::uint32_t cluster_size);
    future<pool_entry> import_pool(std::string uri);
    future<> export_pool(std::string name);
    future<> destroy_pool(std::string name);
    future<pool_entry> grow_pool(std::string name);
    std::vector<pool_entry> list_pools() const;

    future<replica_entry> create_replica(std::string pool, std::string name, std::uint64_t size_bytes, bool thin);
    future<> destroy_replica(std::string name);
    future<replica_entry> resize_replica(std::string name, std::uint64_t size_bytes);
    std::vector<replica_entry> list_replicas(const std::string& pool) const;
    future<share_info> share_replica(std::string name, std::vector<std::string> hosts);
    future<> unshare_replica(std::string name);
    // node_service_snapshot.cc
    future<replica_entry> snapshot_replica(std::string name, std::string snapshot_name, std::string txid,
                                           std::string id);
    future<replica_entry> clone_snapshot(std::string snapshot_name, std::string clone_name, std::string id);
    future<replica_entry> restore_replica(std::string name, std::string snapshot_name);
    future<replica_entry> inflate_replica(std::string name);

    // Nexuses (node_service_nexus.cc), owned by shard 0 like the pools. The
    // child health store must be set before the first create (the daemon
    // sets etcd's, or a memory store when no etcd is given).
    void set_health_store(child_health_store* store, std::string description);
    future<nexus_entry> create_nexus(nexus_spec spec);
    future<> destroy_nexus(std::string name);
    future<share_info> publish_nexus(std::string name, std::vector<std::string> hosts, std::string nqn = "");
    future<> unpublish_nexus(std::string name);
    // The ANA state this engine serves a published nexus in (docs/ana.md):
    // "optimized", "non-optimized" or "inaccessible" (a planned move).
    future<> set_nexus_ana(std::string name, std::string state);
    // Standby paths (node_service_standby.cc, docs/ana.md): volume `id`'s
    // subsystem `nqn` published here in ANA state inaccessible, before any
    // nexus of it runs here, so that a multipath host has this path
    // connected; a nexus created or published here under that NQN (a
    // takeover) takes its place, optimized.
    // `forward` (a device URI): a forwarding path instead (forward_device.hh),
    // published ANA non-optimized; the device must be the volume (its uuid,
    // block size and count), else invalid_argument.
    future<share_info> add_standby(std::string nqn, std::string id, std::uint64_t size_bytes,
                                   std::uint32_t block_size, std::vector<std::string> hosts,
                                   std::string forward = "");
    future<> remove_standby(std::string nqn);
    future<> shutdown_nexus(std::string name);
    // A nexus snapshot (nexus::snapshot); the result reports every child.
    future<nexus_snapshot_result> snapshot_nexus(std::string name, std::string snapshot_name, std::string txid);
    std::vector<nexus_entry> list_nexuses(const std::string& name) const;
    future<nexus_entry> nexus_child(std::string name, std::string uri, child_action action);
    future<> rebuild_control(std::string name, std::string child, rebuild_action action);
    std::string rebuild_state(const std::string& name, const std::string& child) const;
    std::vector<rebuild_progress> rebuild_stats(const std::string& name, const std::string& child) const;
    std::vector<rebuild_progress> rebuild_history(const std::string& name) const;

    // vhost-user-blk exports (node_service_vhost.cc), owned by shard 0.
    // create: the device must be registered and not exported already; the
    // socket path must not exist. destroy: refused (busy) while a front-end
    // is connected unless `force`. Exports are started again at start from
    // the state file; a device, replica or nexus is refused for destroy
    // while exported.
    future<vhost_entry> create_vhost(vhost_spec spec);
    future<> destroy_vhost(std::string name, bool force);
    future<std::vector<vhost_entry>> list_vhost(std::string name);  // name "": every export
    std::vector<nvmf_listener_info> nvmf_listeners() const;
    std::vector<nvmf_subsystem_info> nvmf_subsystems() const;
    std::vector<nvmf_host_info> nvmf_hosts() const;

    // Counters since the last reset (per device: the sum over its shards).
    future<std::vector<io_stats>> stats(stats_kind kind, std::string name);
    future<> reset_stats(stats_kind kind, std::string name);

    // For /metrics: every registered device (replicas included) with its
    // counters and, per shard, the I/O in flight on its channel there.
    struct device_snapshot {
        std::string name, product;
        channel_stats counters;
        std::vector<unsigned> in_flight;  // by shard
    };
    future<std::vector<device_snapshot>> snapshot_devices();

    // Engine stop: unshares everything, exports the pools (the state file
    // keeps them: they are imported again at the next start), closes devices.
    future<> shutdown();

private:
    struct pool_slot {
        std::unique_ptr<pool> p;
        std::string uri;
        std::string device_name;
    };
    struct nexus_slot {
        std::unique_ptr<nexus> n;
        nexus_spec spec;  // as created; children follow add/remove
    };
    enum class share_kind { device, replica, nexus };
    struct share_slot {
        share_kind kind = share_kind::device;
        std::string nqn;
        std::vector<std::string> hosts;
        std::string ana;  // a published nexus: its ANA state as `nexus ana` set it; empty: optimized
    };

    pool_slot& find_pool(const std::string& name);
    replica* find_replica(const std::string& name, pool** owner = nullptr) const;
    pool_entry entry_of(const pool_slot& s) const;
    replica_entry entry_of(const replica_info& r) const;
    replica_entry entry_named(pool& owner, const std::string& name) const;
    share_info share_info_of(const std::string& name) const;
    std::vector<std::string> names_of(stats_kind kind, const std::string& name);
    // `ana`: a nexus's ANA state from the state file (empty: optimized),
    // in effect from the moment the subsystem is visible.
    future<share_info> share(std::string name, block_device* dev, share_kind kind, std::vector<std::string> hosts,
                             std::string nqn = "", std::string ana = "");
    future<> unshare_quietly(const std::string& name);
    // A standby of `nqn` here: `dev` takes its namespace (optimized); true
    // when there was one.
    future<bool> take_standby(const std::string& nqn, block_device* dev, const std::vector<std::string>& hosts,
                              nvme::ana_state state);
    // at_start: a forwarding path whose far side cannot be reached is
    // published as a standby (its record keeps the forward) instead of
    // refused.
    future<> add_standby_locked(standby_record r, bool at_start = false);
    // A forwarding path's device: r.forward opened and checked against the
    // volume's identity (storage_error otherwise).
    future<std::unique_ptr<block_device>> open_forward(const standby_record& r, uuid id);
    // A published nexus's ANA state (valid: optimized, non-optimized or
    // inaccessible), kept in its share for the state file.
    future<> set_nexus_ana_locked(const std::string& name, const std::string& state);
    // At start: false when a nexus here serves its NQN already.
    future<bool> add_standby_again(standby_record r);
    // At stop: every standby path goes.
    future<> remove_standbys();
    future<> remove_pool_shares(pool& p);
    node_state current_state() const;
    future<> persist();
    future<pool_entry> import_pool_quietly(std::string uri);
    void check_not_busy(const std::string& verb) const;
    nexus_slot& find_nexus(const std::string& name);
    const nexus_slot& find_nexus(const std::string& name) const;
    nexus_entry entry_of(const nexus_slot& s) const;
    // The nexus whose bdev:/// child is device `name`, if any.
    std::string nexus_using(const std::string& device) const;
    // Throws busy when a nexus has device `name` as a child.
    void check_not_a_child(const std::string& name, const std::string& verb) const;
    future<nexus_entry> create_nexus_locked(nexus_spec spec);
    struct vhost_slot {
        std::unique_ptr<vhost::blk_export> x;
        vhost_spec spec;
    };
    future<vhost_entry> create_vhost_locked(vhost_spec spec);
    // Throws busy when device `name` is exported over vhost-user-blk.
    void check_not_exported(const std::string& name, const std::string& verb) const;
    future<> stop_vhost_exports();
    future<> close_nexus(const std::string& name);

    engine& _engine;
    node_identity _id;
    nvme::nvmf_target* _target;
    state_writer _writer;
    device_registry _devices;
    std::map<std::string, pool_slot> _pools;
    std::map<std::string, share_slot> _shares;          // by device/replica name
    std::vector<pool_record> _pending_pools;            // in the state, not imported
    std::vector<share_record> _pending_shares;
    std::map<std::string, nexus_slot> _nexuses;
    struct standby_slot {
        std::unique_ptr<block_device> dev;  // a standby_device or a forward_device
        standby_record record;
    };
    std::map<std::string, standby_slot> _standbys;     // by NQN
    std::vector<nexus_record> _pending_nexuses;       // in the state, not created (a child missing)
    std::map<std::string, vhost_slot> _vhost;          // by export name
    std::vector<vhost_record> _pending_vhost;           // in the state, not started (device missing)
    child_health_store* _health = nullptr;
    std::string _health_description;
    std::map<std::string, channel_stats> _stats_base;   // counters at the last reset
    async_mutex _mutex;  // one changing operation at a time
    bool _shutting_down = false;
};

}  // namespace ioe::rpc
