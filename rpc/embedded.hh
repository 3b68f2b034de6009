// ioe::embedded: an engine inside another process (a test harness, a tool),
// with the chosen number of shards, and a handle with the same operations as
// the RPC (rpc::node_api). Optionally an NVMe/TCP target (to share replicas),
// an RPC server (so that ioengine-ctl or rpc_client reach it) and a data
// directory with the state file (so that a new embedded engine on the same
// directory imports the pools and shares again). docs/embedding.md has a
// complete example.
//
//   ioe::embedded eng({.shards = 2});
//   eng.create_pool("p0", "malloc:///m0?size_mb=64");
//   eng.create_replica("p0", "r1", 16 << 20, false);
//   eng.run([](ioe::rpc::node_service& svc) -> ioe::future<> { ...I/O on shard 0... });
//   eng.stop();  // or let the destructor do it
//
// The constructor returns once everything listens; it throws (with the
// reason) if the engine cannot start. Operations are synchronous: call them
// from ordinary threads (never from a reactor); several threads may call at
// once. stop() unshares, exports the pools, closes the devices, stops the
// shards and joins their threads.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "rpc/node_api.hh"
#include "runtime/engine.hh"

namespace ioe {

struct embedded_options {
    unsigned shards = 1;              // on the first `shards` allowed cores
    std::vector<unsigned> cores;      // instead of `shards`, when given
    std::size_t dma_mb = 64;          // DMA pool of ordinary memory
    poll_mode poll = poll_mode::adaptive;
    std::string name = "embedded";
    std::string nvmf_listen;          // "127.0.0.1:0": a target on any free port; empty: none
    std::vector<std::string> rpc;     // RPC addresses ("127.0.0.1:0", "unix:PATH"); empty: none
    std::string data_dir;             // state file here; empty: the state is not kept
    std::string etcd;                 // nexus child health: "host:port,..."; empty: in memory
};

class embedded final : public rpc::node_api {
public:
    explicit embedded(embedded_options opts = {});
    ~embedded() override;
    embedded(const embedded&) = delete;
    embedded& operator=(const embedded&) = delete;

    void stop();

    engine& get_engine();
    std::vector<std::string> rpc_addresses() const;  // as bound
    std::uint16_t nvmf_port() const;                   // 0 without a target
    // Runs fn on shard 0 and waits for its future (tests do I/O this way:
    // svc.devices().find(name) gives a device or replica).
    void run(std::function<future<>(rpc::node_service&)> fn);

    rpc::node_info info() override;
    rpc::device_entry create_device(const std::string& uri) override;
    void destroy_device(const std::string& name) override;
    std::vector<rpc::device_entry> list_devices() override;
    rpc::share_info share_device(const std::string& name, const std::vector<std::string>& hosts,
                                 const std::string& nqn = "") override;
    void unshare_device(const std::string& name) override;
    rpc::pool_entry create_pool(const std::string& name, const std::string& uri, std::uint32_t cluster_size = 0) override;
    rpc::pool_entry import_pool(const std::string& uri) override;
    void export_pool(const std::string& name) override;
    void destroy_pool(const std::string& name) override;
    rpc::pool_entry grow_pool(const std::string& name) override;
    std::vector<rpc::pool_entry> list_pools() override;
    rpc::replica_entry create_replica(const std::string& pool, const std::string& name, std::uint64_t size_bytes,
                                      bool thin) override;
    void destroy_replica(const std::string& name) override;
    rpc::replica_entry resize_replica(const std::string& name, std::uint64_t size_bytes) override;
    std::vector<rpc::replica_entry> list_replicas(const std::string& pool = "") override;
    rpc::share_info share_replica(const std::string& name, const std::vector<std::string>& hosts) override;
    void unshare_replica(const std::string& name) override;
    rpc::replica_entry snapshot_replica(const std::string& name, const std::string& snapshot_name, const std::string& txid,
                                   const std::string& id) override;
    rpc::replica_entry clone_snapshot(const std::string& snapshot_name, const std::string& clone_name,
                                 const std::string& id) override;
    rpc::replica_entry restore_replica(const std::string& name, const std::string& snapshot_name) override;
    rpc::replica_entry inflate_replica(const std::string& name) override;
    std::vector<rpc::nvmf_listener_info> nvmf_listeners() override;
    std::vector<rpc::nvmf_subsystem_info> nvmf_subsystems() override;
    std::vector<rpc::nvmf_host_info> nvmf_hosts() override;
    std::vector<rpc::io_stats> stats(rpc::stats_kind kind, const std::string& name = "") override;
    void reset_stats(rpc::stats_kind kind, const std::string& name = "") override;

    // Nexuses and their rebuilds.
    rpc::nexus_entry create_nexus(const rpc::nexus_spec& spec) override;
    rpc::vhost_entry create_vhost(const rpc::vhost_spec& spec) override;
    void destroy_vhost(const std::string& name, bool force = false) override;
    std::vector<rpc::vhost_entry> list_vhost(const std::string& name = "") override;
    void destroy_nexus(const std::string& name) override;
    rpc::share_info publish_nexus(const std::string& name, const std::vector<std::string>& hosts,
                                  const std::string& nqn = "") override;
    void unpublish_nexus(const std::string& name) override;
    rpc::share_info add_standby(const std::string& nqn, const std::string& uuid, std::uint64_t size_bytes,
                           std::uint32_t block_size, const std::vector<std::string>& hosts,
                           const std::string& forward = "") override;
    void remove_standby(const std::string& nqn) override;
    void set_nexus_ana(const std::string& name, const std::string& state) override;
    void shutdown_nexus(const std::string& name) override;
    nexus_snapshot_result snapshot_nexus(const std::string& name, const std::string& snapshot_name,
                                         const std::string& txid = "") override;
    std::vector<rpc::nexus_entry> list_nexuses(const std::string& name = "") override;
    rpc::nexus_entry nexus_child(const std::string& name, const std::string& uri, rpc::child_action action) override;
    void rebuild_control(const std::string& name, const std::string& child, rpc::rebuild_action action) override;
    std::string rebuild_state(const std::string& name, const std::string& child) override;
    std::vector<rebuild_progress> rebuild_stats(const std::string& name, const std::string& child = "") override;
    std::vector<rebuild_progress> rebuild_history(const std::string& name) override;

    struct impl;  // embedded.cc

private:
    // Runs fn(node_service&) on shard 0 and waits for its outcome.
    template <typename T, typename Fn>
    T call(Fn fn);

    std::unique_ptr<impl> _impl;
};

}  // namespace ioe
