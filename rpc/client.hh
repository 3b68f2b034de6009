// The RPC client library: one synchronous call per RPC method of
// ioengine.capnp, returning node_service's structs and throwing
// storage_error with the server's code and message (or `unavailable` when
// the engine cannot be reached). Used by ioengine-ctl and the tests. Not for
// a reactor thread: each call waits on its own kj event loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rpc/node_api.hh"

namespace ioe::rpc {

class rpc_client final : public node_api {
public:
    // "HOST:PORT", "HOST" (port 10124) or "unix:PATH". Connects lazily.
    explicit rpc_client(std::string address);
    ~rpc_client() override;
    rpc_client(const rpc_client&) = delete;
    rpc_client& operator=(const rpc_client&) = delete;

    node_info info() override;

    device_entry create_device(const std::string& uri) override;
    void destroy_device(const std::string& name) override;
    std::vector<device_entry> list_devices() override;
    share_info share_device(const std::string& name, const std::vector<std::string>& hosts,
                                 const std::string& nqn = "") override;
    void unshare_device(const std::string& name) override;

    pool_entry create_pool(const std::string& name, const std::string& uri, std::uint32_t cluster_size = 0) override;
    pool_entry import_pool(const std::string& uri) override;
    void export_pool(const std::string& name) override;
    void destroy_pool(const std::string& name) override;
    pool_entry grow_pool(const std::string& name) override;
    std::vector<pool_entry> list_pools() override;

    replica_entry create_replica(const std::string& pool, const std::string& name, std::uint64_t size_bytes,
                                 bool thin) override;
    void destroy_replica(const std::string& name) override;
    replica_entry resize_replica(const std::string& name, std::uint64_t size_bytes) override;
    std::vector<replica_entry> list_replicas(const std::string& pool = "") override;
    share_info share_replica(const std::string& name, const std::vector<std::string>& hosts) override;
    void unshare_replica(const std::string& name) override;
    replica_entry snapshot_replica(const std::string& name, const std::string& snapshot_name, const std::string& txid,
                                   const std::string& id) override;
    replica_entry clone_snapshot(const std::string& snapshot_name, const std::string& clone_name,
                                 const std::string& id) override;
    replica_entry restore_replica(const std::string& name, const std::string& snapshot_name) override;
    replica_entry inflate_replica(const std::string& name) override;

    std::vector<nvmf_listener_info> nvmf_listeners() override;
    std::vector<nvmf_subsystem_info> nvmf_subsystems() override;
    std::vector<nvmf_host_info> nvmf_hosts() override;

    std::vector<io_stats> stats(stats_kind kind, const std::string& name = "") override;
    void reset_stats(stats_kind kind, const std::string& name = "") override;

    // Nexuses and their rebuilds.
    nexus_entry create_nexus(const nexus_spec& spec) override;
    void destroy_nexus(const std::string& name) override;
    share_info publish_nexus(const std::string& name, const std::vector<std::string>& hosts,
                                  const std::string& nqn = "") override;
    void unpublish_nexus(const std::string& name) override;
    share_info add_standby(const std::string& nqn, const std::string& uuid, std::uint64_t size_bytes,
                           std::uint32_t block_size, const std::vector<std::string>& hosts,
                           const std::string& forward = "") override;
    void remove_standby(const std::string& nqn) override;
    void set_nexus_ana(const std::string& name, const std::string& state) override;
    void shutdown_nexus(const std::string& name) override;
    nexus_snapshot_result snapshot_nexus(const std::string& name, const std::string& snapshot_name,
                                         const std::string& txid = "") override;
    std::vector<nexus_entry> list_nexuses(const std::string& name = "") override;
    nexus_entry nexus_child(const std::string& name, const std::string& uri, child_action action) override;
    void rebuild_control(const std::string& name, const std::string& child, rebuild_action action) override;
    std::string rebuild_state(const std::string& name, const std::string& child) override;
    std::vector<rebuild_progress> rebuild_stats(const std::string& name, const std::string& child = "") override;
    std::vector<rebuild_progress> rebuild_history(const std::string& name) override;

    const std::string& address() const noexcept { return _address; }

    vhost_entry create_vhost(const vhost_spec& spec) override;
    void destroy_vhost(const std::string& name, bool force = false) override;
    std::vector<vhost_entry> list_vhost(const std::string& name = "") override;

private:
    struct impl;
    std::string _address;
    std::unique_ptr<impl> _impl;
};

}  // namespace ioe::rpc
