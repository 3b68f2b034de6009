// The RPC client library (client.hh): EzRpcClient on the caller's thread.
#include "rpc/client.hh"

#include <capnp/ez-rpc.h>

#include "rpc/convert.hh"

namespace ioe::rpc {

namespace {
kj::StringPtr text(const std::string& s) { return kj::StringPtr(s.c_str(), s.size()); }
}  // namespace

struct rpc_client::impl {
    capnp::EzRpcClient ez;
    s::Engine::Client engine;
    explicit impl(const std::string& address)
        : ez(address.c_str(), default_port), engine(ez.getMain<s::Engine>()) {}
    static constexpr unsigned default_port = 10124;

    kj::WaitScope& ws() { return ez.getWaitScope(); }
};

rpc_client::rpc_client(std::string address) : _address(std::move(address)) {}
rpc_client::~rpc_client() = default;

namespace {
// Runs `fn` and turns what the transport or the server raised into a
// storage_error.
template <typename Fn>
auto guarded(const std::string& address, Fn&& fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const kj::Exception& e) {
        // The server's errors arrive as "remote exception: <code>: ...";
        // anything raised here on our side (connect, a lost connection) means
        // the engine was not reached.
        std::string d(e.getDescription().cStr());
        if (d.rfind("remote exception: ", 0) != 0) {
            throw storage_error(storage_errc::unavailable, "cannot reach the engine at " + address + ": " + d +
                                                               " (is ioengine running? --rpc ADDRESS reaches another one)");
        }
        throw from_kj_exception(e);
    }
}
}  // namespace

#define IOE_RPC_CALL(body)                                        \
    return guarded(_address, [&] {                                \
        if (!_impl) _impl = std::make_unique<impl>(_address);     \
        auto& ws = _impl->ws();                                   \
        (void)ws;                                                 \
        body                                                      \
    })

node_info rpc_client::info() {
    IOE_RPC_CALL({
        auto node = _impl->engine.nodeRequest().send().wait(ws).getNode();
        return read(node.infoRequest().send().wait(ws).getInfo());
    });
}

device_entry rpc_client::create_device(const std::string& uri) {
    IOE_RPC_CALL({
        auto svc = _impl->engine.devicesRequest().send().getDevices();
        auto req = svc.createRequest();
        req.setUri(text(uri));
        return read(req.send().wait(ws).getDevice());
    });
}

void rpc_client::destroy_device(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.devicesRequest().send().getDevices().destroyRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

std::vector<device_entry> rpc_client::list_devices() {
    IOE_RPC_CALL({
        auto r = _impl->engine.devicesRequest().send().getDevices().listRequest().send().wait(ws);
        std::vector<device_entry> out;
        for (auto d : r.getDevices()) out.push_back(read(d));
        return out;
    });
}

share_info rpc_client::share_device(const std::string& name, const std::vector<std::string>& hosts,
                                     const std::string& nqn) {
    IOE_RPC_CALL({
        auto req = _impl->engine.devicesRequest().send().getDevices().shareRequest();
        req.setName(text(name));
        req.setNqn(text(nqn));
        fill_texts(req.initAllowedHosts(static_cast<unsigned>(hosts.size())), hosts);
        return read(req.send().wait(ws).getShare());
    });
}

void rpc_client::unshare_device(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.devicesRequest().send().getDevices().unshareRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

pool_entry rpc_client::create_pool(const std::string& name, const std::string& uri, std::uint32_t cluster_size) {
    IOE_RPC_CALL({
        auto req = _impl->engine.poolsRequest().send().getPools().createRequest();
        req.setName(text(name));
        req.setUri(text(uri));
        req.setClusterSize(cluster_size);
        return read(req.send().wait(ws).getPool());
    });
}

pool_entry rpc_client::import_pool(const std::string& uri) {
    IOE_RPC_CALL({
        auto req = _impl->engine.poolsRequest().send().getPools().importRequest();
        req.setUri(text(uri));
        return read(req.send().wait(ws).getPool());
    });
}

void rpc_client::export_pool(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.poolsRequest().send().getPools().exportRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

void rpc_client::destroy_pool(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.poolsRequest().send().getPools().destroyRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

pool_entry rpc_client::grow_pool(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.poolsRequest().send().getPools().growRequest();
        req.setName(text(name));
        return read(req.send().wait(ws).getPool());
    });
}

std::vector<pool_entry> rpc_client::list_pools() {
    IOE_RPC_CALL({
        auto r = _impl->engine.poolsRequest().send().getPools().listRequest().send().wait(ws);
        std::vector<pool_entry> out;
        for (auto p : r.getPools()) out.push_back(read(p));
        return out;
    });
}

replica_entry rpc_client::create_replica(const std::string& pool, const std::string& name, std::uint64_t size_bytes,
                                         bool thin) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().createRequest();
        req.setPool(text(pool));
        req.setName(text(name));
        req.setSizeBytes(size_bytes);
        req.setThin(thin);
        return read(req.send().wait(ws).getReplica());
    });
}

void rpc_client::destroy_replica(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().destroyRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

replica_entry rpc_client::resize_replica(const std::string& name, std::uint64_t size_bytes) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().resizeRequest();
        req.setName(text(name));
        req.setSizeBytes(size_bytes);
        return read(req.send().wait(ws).getReplica());
    });
}

std::vector<replica_entry> rpc_client::list_replicas(const std::string& pool) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().listRequest();
        req.setPool(text(pool));
        auto r = req.send().wait(ws);
        std::vector<replica_entry> out;
        for (auto x : r.getReplicas()) out.push_back(read(x));
        return out;
    });
}

share_info rpc_client::share_replica(const std::string& name, const std::vector<std::string>& hosts) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().shareRequest();
        req.setName(text(name));
        fill_texts(req.initAllowedHosts(static_cast<unsigned>(hosts.size())), hosts);
        return read(req.send().wait(ws).getShare());
    });
}

void rpc_client::unshare_replica(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().unshareRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

replica_entry rpc_client::snapshot_replica(const std::string& name, const std::string& snapshot_name,
                                           const std::string& txid, const std::string& id) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().snapshotRequest();
        req.setName(text(name));
        req.setSnapshotName(text(snapshot_name));
        req.setTxid(text(txid));
        req.setUuid(text(id));
        return read(req.send().wait(ws).getReplica());
    });
}

replica_entry rpc_client::clone_snapshot(const std::string& snapshot_name, const std::string& clone_name,
                                         const std::string& id) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().cloneRequest();
        req.setSnapshot(text(snapshot_name));
        req.setName(text(clone_name));
        req.setUuid(text(id));
        return read(req.send().wait(ws).getReplica());
    });
}

replica_entry rpc_client::inflate_replica(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().inflateRequest();
        req.setName(text(name));
        return read(req.send().wait(ws).getReplica());
    });
}

replica_entry rpc_client::restore_replica(const std::string& name, const std::string& snapshot_name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.replicasRequest().send().getReplicas().restoreRequest();
        req.setName(text(name));
        req.setSnapshot(text(snapshot_name));
        return read(req.send().wait(ws).getReplica());
    });
}

std::vector<nvmf_listener_info> rpc_client::nvmf_listeners() {
    IOE_RPC_CALL({
        auto r = _impl->engine.nvmfRequest().send().getNvmf().listenersRequest().send().wait(ws);
        std::vector<nvmf_listener_info> out;
        for (auto x : r.getListeners()) out.push_back(read(x));
        return out;
    });
}

std::vector<nvmf_subsystem_info> rpc_client::nvmf_subsystems() {
    IOE_RPC_CALL({
        auto r = _impl->engine.nvmfRequest().send().getNvmf().subsystemsRequest().send().wait(ws);
        std::vector<nvmf_subsystem_info> out;
        for (auto x : r.getSubsystems()) out.push_back(read(x));
        return out;
    });
}

std::vector<nvmf_host_info> rpc_client::nvmf_hosts() {
    IOE_RPC_CALL({
        auto r = _impl->engine.nvmfRequest().send().getNvmf().hostsRequest().send().wait(ws);
        std::vector<nvmf_host_info> out;
        for (auto x : r.getHosts()) out.push_back(read(x));
        return out;
    });
}

std::vector<io_stats> rpc_client::stats(stats_kind kind, const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.statsRequest().send().getStats().getRequest();
        req.setKind(to_schema(kind));
        req.setName(text(name));
        auto r = req.send().wait(ws);
        std::vector<io_stats> out;
        for (auto x : r.getStats()) out.push_back(read(x));
        return out;
    });
}

void rpc_client::reset_stats(stats_kind kind, const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.statsRequest().send().getStats().resetRequest();
        req.setKind(to_schema(kind));
        req.setName(text(name));
        req.send().wait(ws);
    });
}

// ---- nexus and rebuild ------------------------------------------------------

nexus_entry rpc_client::create_nexus(const nexus_spec& spec) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().createRequest();
        fill(req.initSpec(), spec);
        return read(req.send().wait(ws).getNexus());
    });
}

void rpc_client::destroy_nexus(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().destroyRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

share_info rpc_client::publish_nexus(const std::string& name, const std::vector<std::string>& hosts,
                                      const std::string& nqn) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().publishRequest();
        req.setName(text(name));
        req.setNqn(text(nqn));
        fill_texts(req.initAllowedHosts(static_cast<unsigned>(hosts.size())), hosts);
        return read(req.send().wait(ws).getShare());
    });
}

share_info rpc_client::add_standby(const std::string& nqn, const std::string& uuid, std::uint64_t size_bytes,
                                   std::uint32_t block_size, const std::vector<std::string>& hosts,
                                   const std::string& forward) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().standbyRequest();
        req.setForward(text(forward));
        req.setNqn(text(nqn));
        req.setUuid(text(uuid));
        req.setSizeBytes(size_bytes);
        req.setBlockSize(block_size);
        fill_texts(req.initAllowedHosts(static_cast<unsigned>(hosts.size())), hosts);
        return read(req.send().wait(ws).getShare());
    });
}

void rpc_client::remove_standby(const std::string& nqn) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().standbyRemoveRequest();
        req.setNqn(text(nqn));
        req.send().wait(ws);
    });
}

void rpc_client::set_nexus_ana(const std::string& name, const std::string& state) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().setAnaRequest();
        req.setName(text(name));
        req.setState(text(state));
        req.send().wait(ws);
    });
}

void rpc_client::unpublish_nexus(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().unpublishRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

void rpc_client::shutdown_nexus(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().shutdownRequest();
        req.setName(text(name));
        req.send().wait(ws);
    });
}

nexus_snapshot_result rpc_client::snapshot_nexus(const std::string& name, const std::string& snapshot_name,
                                                 const std::string& txid) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().snapshotRequest();
        req.setName(text(name));
        req.setSnapshotName(text(snapshot_name));
        req.setTxid(text(txid));
        auto r = req.send().wait(ws);
        return read(r.getResult());
    });
}

std::vector<nexus_entry> rpc_client::list_nexuses(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().listRequest();
        req.setName(text(name));
        auto r = req.send().wait(ws);
        std::vector<nexus_entry> out;
        for (auto x : r.getNexuses()) out.push_back(read(x));
        return out;
    });
}

nexus_entry rpc_client::nexus_child(const std::string& name, const std::string& uri, child_action action) {
    IOE_RPC_CALL({
        auto req = _impl->engine.nexusRequest().send().getNexus().childRequest();
        req.setName(text(name));
        req.setUri(text(uri));
        req.setAction(to_schema(action));
        return read(req.send().wait(ws).getNexus());
    });
}

void rpc_client::rebuild_control(const std::string& name, const std::string& child, rebuild_action action) {
    IOE_RPC_CALL({
        auto req = _impl->engine.rebuildRequest().send().getRebuild().controlRequest();
        req.setName(text(name));
        req.setChild(text(child));
        req.setAction(to_schema(action));
        req.send().wait(ws);
    });
}

std::string rpc_client::rebuild_state(const std::string& name, const std::string& child) {
    IOE_RPC_CALL({
        auto req = _impl->engine.rebuildRequest().send().getRebuild().stateRequest();
        req.setName(text(name));
        req.setChild(text(child));
        auto r = req.send().wait(ws);
        return std::string(r.getState().cStr());
    });
}

std::vector<rebuild_progress> rpc_client::rebuild_stats(const std::string& name, const std::string& child) {
    IOE_RPC_CALL({
        auto req = _impl->engine.rebuildRequest().send().getRebuild().statsRequest();
        req.setName(text(name));
        req.setChild(text(child));
        auto r = req.send().wait(ws);
        std::vector<rebuild_progress> out;
        for (auto x : r.getRebuilds()) out.push_back(read(x));
        return out;
    });
}

std::vector<rebuild_progress> rpc_client::rebuild_history(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.rebuildRequest().send().getRebuild().historyRequest();
        req.setName(text(name));
        auto r = req.send().wait(ws);
        std::vector<rebuild_progress> out;
        for (auto x : r.getRebuilds()) out.push_back(read(x));
        return out;
    });
}

// ---- vhost-user-blk exports ---------------------------------------------------

vhost_entry rpc_client::create_vhost(const vhost_spec& spec) {
    IOE_RPC_CALL({
        auto req = _impl->engine.vhostRequest().send().getVhost().createRequest();
        fill(req.initSpec(), spec);
        return read(req.send().wait(ws).getInfo());
    });
}

void rpc_client::destroy_vhost(const std::string& name, bool force) {
    IOE_RPC_CALL({
        auto req = _impl->engine.vhostRequest().send().getVhost().destroyRequest();
        req.setName(text(name));
        req.setForce(force);
        req.send().wait(ws);
    });
}

std::vector<vhost_entry> rpc_client::list_vhost(const std::string& name) {
    IOE_RPC_CALL({
        auto req = _impl->engine.vhostRequest().send().getVhost().listRequest();
        req.setName(text(name));
        auto res = req.send().wait(ws);
        std::vector<vhost_entry> out;
        for (auto e : res.getExports()) out.push_back(read(e));
        return out;
    });
}

}  // namespace ioe::rpc
