// Conversions between the schema and node_service's structs (convert.hh).
#include "rpc/convert.hh"

#include <capnp/list.h>

namespace ioe::rpc {

namespace {
std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
kj::StringPtr text(const std::string& s) { return kj::StringPtr(s.c_str(), s.size()); }

constexpr storage_errc all_codes[] = {storage_errc::not_found,   storage_errc::already_exists,
                                      storage_errc::invalid_argument, storage_errc::busy,
                                      storage_errc::no_space,    storage_errc::io_error,
                                      storage_errc::unavailable, storage_errc::internal};
}  // namespace

std::vector<std::string> read_texts(capnp::List<capnp::Text>::Reader l) {
    std::vector<std::string> out;
    for (auto t : l) out.push_back(str(t));
    return out;
}

void fill_texts(capnp::List<capnp::Text>::Builder b, const std::vector<std::string>& v) {
    for (unsigned i = 0; i < v.size(); ++i) b.set(i, text(v[i]));
}

void fill(s::NodeInfo::Builder b, const node_info& v) {
    b.setName(text(v.name));
    b.setVersion(text(v.version));
    b.setApiVersion(s::API_VERSION);
    b.setShards(v.shards);
    auto c = b.initCores(static_cast<unsigned>(v.cores.size()));
    for (unsigned i = 0; i < v.cores.size(); ++i) c.set(i, v.cores[i]);
    b.setPollMode(text(v.poll_mode));
    b.setMemory(text(v.memory));
    fill_texts(b.initFeatures(static_cast<unsigned>(v.features.size())), v.features);
    b.setDataDir(text(v.data_dir));
}

node_info read(s::NodeInfo::Reader r) {
    node_info v;
    v.name = str(r.getName());
    v.version = str(r.getVersion());
    v.shards = r.getShards();
    for (auto c : r.getCores()) v.cores.push_back(c);
    v.poll_mode = str(r.getPollMode());
    v.memory = str(r.getMemory());
    v.features = read_texts(r.getFeatures());
    v.data_dir = str(r.getDataDir());
    return v;
}

void fill(s::DeviceInfo::Builder b, const device_entry& v) {
    b.setName(text(v.device.name));
    b.setProduct(text(v.device.product));
    b.setUri(text(v.device.uri));
    b.setUuid(text(v.device.id.to_string()));
    b.setBlockSize(v.device.block_size);
    b.setBlockCount(v.device.block_count);
    b.setOwnerShard(v.device.owner_shard);
    b.setShareNqn(text(v.share_nqn));
}

device_entry read(s::DeviceInfo::Reader r) {
    device_entry v;
    v.device.name = str(r.getName());
    v.device.product = str(r.getProduct());
    v.device.uri = str(r.getUri());
    if (auto id = uuid::parse(str(r.getUuid()))) v.device.id = *id;
    v.device.block_size = r.getBlockSize();
    v.device.block_count = r.getBlockCount();
    v.device.owner_shard = r.getOwnerShard();
    v.share_nqn = str(r.getShareNqn());
    return v;
}

void fill(s::ShareInfo::Builder b, const share_info& v) {
    b.setNqn(text(v.nqn));
    b.setAddress(text(v.address));
    b.setPort(v.port);
    fill_texts(b.initAllowedHosts(static_cast<unsigned>(v.allowed_hosts.size())), v.allowed_hosts);
}

share_info read(s::ShareInfo::Reader r) {
    return {str(r.getNqn()), str(r.getAddress()), r.getPort(), read_texts(r.getAllowedHosts())};
}

void fill(s::PoolInfo::Builder b, const pool_entry& v) {
    b.setName(text(v.pool.name));
    b.setUuid(text(v.pool.id.to_string()));
    b.setDevice(text(v.uri));
    b.setClusterSize(v.pool.cluster_size);
    b.setCapacityBytes(v.pool.capacity_bytes);
    b.setUsedBytes(v.pool.used_bytes);
    b.setCommittedBytes(v.pool.committed_bytes);
    b.setReplicaCount(static_cast<std::uint32_t>(v.pool.replica_count));
}

pool_entry read(s::PoolInfo::Reader r) {
    pool_entry v;
    v.pool.name = str(r.getName());
    if (auto id = uuid::parse(str(r.getUuid()))) v.pool.id = *id;
    v.uri = str(r.getDevice());
    v.pool.device = v.uri;
    v.pool.cluster_size = r.getClusterSize();
    v.pool.capacity_bytes = r.getCapacityBytes();
    v.pool.used_bytes = r.getUsedBytes();
    v.pool.committed_bytes = r.getCommittedBytes();
    v.pool.replica_count = r.getReplicaCount();
    return v;
}

void fill(s::ReplicaInfo::Builder b, const replica_entry& v) {
    b.setName(text(v.replica.name));
    b.setUuid(text(v.replica.id.to_string()));
    b.setPool(text(v.replica.pool));
    b.setSizeBytes(v.replica.size_bytes);
    b.setThin(v.replica.thin);
    b.setAllocatedBytes(v.replica.allocated_bytes);
    b.setShareNqn(text(v.share_nqn));
    fill_texts(b.initAllowedHosts(static_cast<unsigned>(v.allowed_hosts.size())), v.allowed_hosts);
    b.setReferencedBytes(v.replica.referenced_bytes);
    b.setFreedByDeleteBytes(v.replica.freed_by_delete_bytes);
    b.setSnapshot(v.replica.snapshot);
    b.setDiscarded(v.replica.discarded);
    b.setParent(text(v.replica.parent));
    b.setCreatedUnixNs(v.replica.created_ns);
    b.setTxid(text(v.replica.txid));
}

replica_entry read(s::ReplicaInfo::Reader r) {
    replica_entry v;
    v.replica.name = str(r.getName());
    if (auto id = uuid::parse(str(r.getUuid()))) v.replica.id = *id;
    v.replica.pool = str(r.getPool());
    v.replica.size_bytes = r.getSizeBytes();
    v.replica.thin = r.getThin();
    v.replica.allocated_bytes = r.getAllocatedBytes();
    v.share_nqn = str(r.getShareNqn());
    v.allowed_hosts = read_texts(r.getAllowedHosts());
    v.replica.referenced_bytes = r.getReferencedBytes();
    v.replica.freed_by_delete_bytes = r.getFreedByDeleteBytes();
    v.replica.snapshot = r.getSnapshot();
    v.replica.discarded = r.getDiscarded();
    v.replica.parent = str(r.getParent());
    v.replica.created_ns = r.getCreatedUnixNs();
    v.replica.txid = str(r.getTxid());
    return v;
}

void fill(s::Subsystem::Builder b, const nvmf_subsystem_info& v) {
    b.setNqn(text(v.nqn));
    b.setSerial(text(v.serial));
    b.setModel(text(v.model));
    auto ns = b.initNamespaces(static_cast<unsigned>(v.namespaces.size()));
    for (unsigned i = 0; i < v.namespaces.size(); ++i) {
        ns[i].setNsid(v.namespaces[i].nsid);
        ns[i].setDevice(text(v.namespaces[i].device));
        ns[i].setBlockSize(v.namespaces[i].block_size);
        ns[i].setBlockCount(v.namespaces[i].block_count);
        ns[i].setAna(text(v.namespaces[i].ana));
    }
    fill_texts(b.initAllowedHosts(static_cast<unsigned>(v.allowed_hosts.size())), v.allowed_hosts);
}

nvmf_subsystem_info read(s::Subsystem::Reader r) {
    nvmf_subsystem_info v;
    v.nqn = str(r.getNqn());
    v.serial = str(r.getSerial());
    v.model = str(r.getModel());
    for (auto ns : r.getNamespaces()) {
        v.namespaces.push_back(
            {ns.getNsid(), str(ns.getDevice()), ns.getBlockSize(), ns.getBlockCount(), str(ns.getAna())});
    }
    v.allowed_hosts = read_texts(r.getAllowedHosts());
    return v;
}

void fill(s::ConnectedHost::Builder b, const nvmf_host_info& v) {
    b.setCntlid(v.cntlid);
    b.setSubnqn(text(v.subnqn));
    b.setHostnqn(text(v.hostnqn));
    b.setIoQueues(v.io_queues);
}

nvmf_host_info read(s::ConnectedHost::Reader r) {
    return {r.getCntlid(), str(r.getSubnqn()), str(r.getHostnqn()), r.getIoQueues()};
}

void fill(s::Listener::Builder b, const nvmf_listener_info& v) {
    b.setTransport(text(v.transport));
    b.setAddress(text(v.address));
    b.setPort(v.port);
}

nvmf_listener_info read(s::Listener::Reader r) { return {str(r.getTransport()), str(r.getAddress()), r.getPort()}; }

s::StatsKind to_schema(stats_kind k) {
    switch (k) {
        case stats_kind::replica: return s::StatsKind::REPLICA;
        case stats_kind::nexus: return s::StatsKind::NEXUS;
        default: return s::StatsKind::DEVICE;
    }
}
stats_kind from_schema(s::StatsKind k) {
    switch (k) {
        case s::StatsKind::REPLICA: return stats_kind::replica;
        case s::StatsKind::NEXUS: return stats_kind::nexus;
        default: return stats_kind::device;
    }
}

void fill(s::IoStats::Builder b, const io_stats& v) {
    const auto& c = v.counters;
    b.setName(text(v.name));
    b.setKind(to_schema(v.kind));
    b.setReadOps(c.read_ops);
    b.setWriteOps(c.write_ops);
    b.setUnmapOps(c.unmap_ops);
    b.setFlushOps(c.flush_ops);
    b.setWriteZeroesOps(c.zeroes_ops);
    b.setReadBytes(c.read_bytes);
    b.setWriteBytes(c.write_bytes);
    b.setErrors(c.errors);
    b.setLatencySumNs(c.latency_ns_sum);
    b.setLatencyMinNs(c.latency_ns_min);
    b.setLatencyMaxNs(c.latency_ns_max);
}

io_stats read(s::IoStats::Reader r) {
    io_stats v;
    v.name = str(r.getName());
    v.kind = from_schema(r.getKind());
    auto& c = v.counters;
    c.read_ops = r.getReadOps();
    c.write_ops = r.getWriteOps();
    c.unmap_ops = r.getUnmapOps();
    c.flush_ops = r.getFlushOps();
    c.zeroes_ops = r.getWriteZeroesOps();
    c.read_bytes = r.getReadBytes();
    c.write_bytes = r.getWriteBytes();
    c.errors = r.getErrors();
    c.latency_ns_sum = r.getLatencySumNs();
    c.latency_ns_min = r.getLatencyMinNs();
    c.latency_ns_max = r.getLatencyMaxNs();
    return v;
}

kj::Exception to_kj_exception(storage_errc code, const std::string& message) {
    return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                         kj::str(std::string(to_string(code)).c_str(), ": ", message.c_str()));
}

storage_error from_kj_exception(const kj::Exception& e) {
    std::string d(e.getDescription().cStr());
    const std::string remote = "remote exception: ";
    if (d.rfind(remote, 0) == 0) d = d.substr(remote.size());
    for (auto c : all_codes) {
        std::string prefix = std::string(to_string(c)) + ": ";
        if (d.rfind(prefix, 0) == 0) return storage_error(c, d.substr(prefix.size()));
    }
    if (e.getType() == kj::Exception::Type::DISCONNECTED) {
        return storage_error(storage_errc::unavailable, "lost the connection to the engine: " + d);
    }
    return storage_error(storage_errc::internal, d);
}

}  // namespace ioe::rpc
