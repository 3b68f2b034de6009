// The engine's control operations as one synchronous interface, the same
// whether the engine is reached over the RPC (rpc_client) or runs in this
// process (ioe::embedded): the methods of ioengine.capnp, node_service's
// structs, storage_error (code + message) on failure. Call it from an
// ordinary thread, never from a reactor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rpc/node_service.hh"

namespace ioe::rpc {

class node_api {
public:
    virtual ~node_api() = default;

    virtual node_info info() = 0;

    virtual device_entry create_device(const std::string& uri) = 0;
    virtual void destroy_device(const std::string& name) = 0;
    virtual std::vector<device_entry> list_devices() = 0;
    // nqn: the subsystem NQN ("": nqn.2019-05.io.ioengine:<name>).
    virtual share_info share_device(const std::string& name, const std::vector<std::string>& hosts,
                                    const std::string& nqn = "") = 0;
    virtual void unshare_device(const std::string& name) = 0;

    virtual pool_entry create_pool(const std::string& name, const std::string& uri, std::uint32_t cluster_size = 0) = 0;
    virtual pool_entry import_pool(const std::string& uri) = 0;
    virtual void export_pool(const std::string& name) = 0;
    virtual void destroy_pool(const std::string& name) = 0;
    virtual pool_entry grow_pool(const std::string& name) = 0;
    virtual std::vector<pool_entry> list_pools() = 0;

    virtual replica_entry create_replica(const std::string& pool, const std::string& name, std::uint64_t size_bytes,
                                         bool thin) = 0;
    virtual void destroy_replica(const std::string& name) = 0;
    virtual replica_entry resize_replica(const std::string& name, std::uint64_t size_bytes) = 0;
    virtual std::vector<replica_entry> list_replicas(const std::string& pool = "") = 0;
    virtual share_info share_replica(const std::string& name, const std::vector<std::string>& hosts) = 0;
    virtual void unshare_replica(const std::string& name) = 0;
    // Snapshots and clones (docs/pool-format.md, version 2). A snapshot
    // retried with the same name and txid answers the first one; uuid "":
    // a random one.
    virtual replica_entry snapshot_replica(const std::string& name, const std::string& snapshot_name,
                                           const std::string& txid = "", const std::string& id = "") = 0;
    virtual replica_entry clone_snapshot(const std::string& snapshot_name, const std::string& clone_name,
                                         const std::string& id = "") = 0;
    virtual replica_entry restore_replica(const std::string& name, const std::string& snapshot_name) = 0;
    virtual replica_entry inflate_replica(const std::string& name) = 0;

    virtual std::vector<nvmf_listener_info> nvmf_listeners() = 0;
    virtual std::vector<nvmf_subsystem_info> nvmf_subsystems() = 0;
    virtual std::vector<nvmf_host_info> nvmf_hosts() = 0;

    virtual std::vector<io_stats> stats(stats_kind kind, const std::string& name = "") = 0;
    virtual void reset_stats(stats_kind kind, const std::string& name = "") = 0;

    // Nexuses and their rebuilds.
    virtual nexus_entry create_nexus(const nexus_spec& spec) = 0;
    virtual void destroy_nexus(const std::string& name) = 0;
    virtual share_info publish_nexus(const std::string& name, const std::vector<std::string>& hosts,
                                     const std::string& nqn = "") = 0;
    virtual void unpublish_nexus(const std::string& name) = 0;
    // Standby paths and ANA states (docs/ana.md).
    // forward: a device URI (nvmf:// to the node that runs the nexus) makes
    // it a forwarding path, ANA non-optimized; empty: a standby.
    virtual share_info add_standby(const std::string& nqn, const std::string& uuid, std::uint64_t size_bytes,
                                   std::uint32_t block_size, const std::vector<std::string>& hosts,
                                   const std::string& forward = "") = 0;
    virtual void remove_standby(const std::string& nqn) = 0;
    virtual void set_nexus_ana(const std::string& name, const std::string& state) = 0;
    virtual void shutdown_nexus(const std::string& name) = 0;
    virtual nexus_snapshot_result snapshot_nexus(const std::string& name, const std::string& snapshot_name,
                                                 const std::string& txid = "") = 0;
    virtual std::vector<nexus_entry> list_nexuses(const std::string& name = "") = 0;
    virtual nexus_entry nexus_child(const std::string& name, const std::string& uri, child_action action) = 0;
    virtual void rebuild_control(const std::string& name, const std::string& child, rebuild_action action) = 0;
    virtual std::string rebuild_state(const std::string& name, const std::string& child) = 0;
    virtual std::vector<rebuild_progress> rebuild_stats(const std::string& name, const std::string& child = "") = 0;
    virtual std::vector<rebuild_progress> rebuild_history(const std::string& name) = 0;
    // vhost-user-blk exports.
    virtual vhost_entry create_vhost(const vhost_spec& spec) = 0;
    virtual void destroy_vhost(const std::string& name, bool force = false) = 0;
    virtual std::vector<vhost_entry> list_vhost(const std::string& name = "") = 0;
};

}  // namespace ioe::rpc
