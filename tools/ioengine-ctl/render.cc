// ioengine-ctl: JSON objects and table rows of the RPC's answers (render.hh).
#include "tools/ioengine-ctl/render.hh"

#include <fmt/format.h>

namespace ioe::ctl {

namespace {
std::string join(const std::vector<std::string>& v, const char* sep = ",") {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}
std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }
}  // namespace

json to_json(const rpc::node_info& v) {
    json cores = json::array();
    for (auto c : v.cores) cores.push(json::num(c));
    return json::object()
        .set("name", json::str(v.name))
        .set("version", json::str(v.version))
        .set("shards", json::num(v.shards))
        .set("cores", cores)
        .set("poll_mode", json::str(v.poll_mode))
        .set("memory", json::str(v.memory))
        .set("data_dir", json::str(v.data_dir))
        .set("features", json::strings(v.features));
}

table node_table(const rpc::node_info& v) {
    std::vector<std::string> cores;
    for (auto c : v.cores) cores.push_back(std::to_string(c));
    return {{"FIELD", "VALUE"},
            {{"name", v.name},
             {"version", v.version},
             {"shards", std::to_string(v.shards)},
             {"cores", join(cores)},
             {"poll mode", v.poll_mode},
             {"memory", v.memory},
             {"data dir", or_dash(v.data_dir)},
             {"features", join(v.features)}}};
}

json to_json(const rpc::device_entry& v) {
    return json::object()
        .set("name", json::str(v.device.name))
        .set("product", json::str(v.device.product))
        .set("uri", json::str(v.device.uri))
        .set("uuid", json::str(v.device.id.to_string()))
        .set("block_size", json::num(v.device.block_size))
        .set("block_count", json::num(v.device.block_count))
        .set("size_bytes", json::num(v.device.block_count * v.device.block_size))
        .set("owner_shard", json::num(v.device.owner_shard))
        .set("share_nqn", json::str(v.share_nqn));
}

table device_table(const std::vector<rpc::device_entry>& v) {
    table t{{"NAME", "PRODUCT", "SIZE", "BLOCK", "SHARD", "SHARED AS", "URI"}, {}};
    for (const auto& d : v) {
        t.rows.push_back({d.device.name, d.device.product, human_bytes(d.device.block_count * d.device.block_size),
                          std::to_string(d.device.block_size), std::to_string(d.device.owner_shard),
                          or_dash(d.share_nqn), or_dash(d.device.uri)});
    }
    return t;
}

json to_json(const rpc::share_info& v) {
    return json::object()
        .set("nqn", json::str(v.nqn))
        .set("address", json::str(v.address))
        .set("port", json::num(v.port))
        .set("allowed_hosts", json::strings(v.allowed_hosts));
}

table share_table(const rpc::share_info& v) {
    return {{"NQN", "ADDRESS", "ALLOWED HOSTS"},
            {{v.nqn, fmt::format("{}:{}", v.address, v.port), v.allowed_hosts.empty() ? "any" : join(v.allowed_hosts)}}};
}

json to_json(const rpc::pool_entry& v) {
    return json::object()
        .set("name", json::str(v.pool.name))
        .set("uuid", json::str(v.pool.id.to_string()))
        .set("device", json::str(v.uri))
        .set("cluster_size", json::num(v.pool.cluster_size))
        .set("capacity_bytes", json::num(v.pool.capacity_bytes))
        .set("used_bytes", json::num(v.pool.used_bytes))
        .set("committed_bytes", json::num(v.pool.committed_bytes))
        .set("replica_count", json::num(v.pool.replica_count));
}

table pool_table(const std::vector<rpc::pool_entry>& v) {
    table t{{"NAME", "CAPACITY", "USED", "COMMITTED", "REPLICAS", "DEVICE"}, {}};
    for (const auto& p : v) {
        t.rows.push_back({p.pool.name, human_bytes(p.pool.capacity_bytes), human_bytes(p.pool.used_bytes),
                          human_bytes(p.pool.committed_bytes), std::to_string(p.pool.replica_count), p.uri});
    }
    return t;
}

json to_json(const rpc::replica_entry& v) {
    return json::object()
        .set("name", json::str(v.replica.name))
        .set("uuid", json::str(v.replica.id.to_string()))
        .set("pool", json::str(v.replica.pool))
        .set("size_bytes", json::num(v.replica.size_bytes))
        .set("thin", json::boolean(v.replica.thin))
        .set("allocated_bytes", json::num(v.replica.allocated_bytes))
        .set("share_nqn", json::str(v.share_nqn))
        .set("allowed_hosts", json::strings(v.allowed_hosts))
        .set("referenced_bytes", json::num(v.replica.referenced_bytes))
        .set("freed_by_delete_bytes", json::num(v.replica.freed_by_delete_bytes))
        .set("snapshot", json::boolean(v.replica.snapshot))
        .set("discarded", json::boolean(v.replica.discarded))
        .set("parent", json::str(v.replica.parent))
        .set("created_unix_ns", json::num(v.replica.created_ns))
        .set("txid", json::str(v.replica.txid));
}

table replica_table(const std::vector<rpc::replica_entry>& v) {
    table t{{"NAME", "POOL", "KIND", "PARENT", "SIZE", "THIN", "ALLOCATED", "REFERENCED", "FREED BY DELETE",
             "SHARED AS", "ALLOWED HOSTS"},
            {}};
    for (const auto& r : v) {
        const std::string kind = r.replica.snapshot ? (r.replica.discarded ? "snapshot (deleted)" : "snapshot")
                                 : r.replica.parent.empty() ? "replica"
                                                            : "clone";
        t.rows.push_back({r.replica.name, r.replica.pool, kind, or_dash(r.replica.parent),
                          human_bytes(r.replica.size_bytes), r.replica.thin ? "yes" : "no",
                          human_bytes(r.replica.allocated_bytes), human_bytes(r.replica.referenced_bytes),
                          human_bytes(r.replica.freed_by_delete_bytes), or_dash(r.share_nqn),
                          r.share_nqn.empty() ? "-" : (r.allowed_hosts.empty() ? "any" : join(r.allowed_hosts))});
    }
    return t;
}

json to_json(const rpc::nvmf_listener_info& v) {
    return json::object()
        .set("transport", json::str(v.transport))
        .set("address", json::str(v.address))
        .set("port", json::num(v.port));
}

table listener_table(const std::vector<rpc::nvmf_listener_info>& v) {
    table t{{"TRANSPORT", "ADDRESS", "PORT"}, {}};
    for (const auto& l : v) t.rows.push_back({l.transport, l.address, std::to_string(l.port)});
    return t;
}

json to_json(const rpc::nvmf_subsystem_info& v) {
    json ns = json::array();
    for (const auto& n : v.namespaces) {
        ns.push(json::object()
                    .set("nsid", json::num(n.nsid))
                    .set("device", json::str(n.device))
                    .set("block_size", json::num(n.block_size))
                    .set("block_count", json::num(n.block_count))
                    .set("ana", json::str(n.ana)));
    }
    return json::object()
        .set("nqn", json::str(v.nqn))
        .set("serial", json::str(v.serial))
        .set("model", json::str(v.model))
        .set("namespaces", ns)
        .set("allowed_hosts", json::strings(v.allowed_hosts));
}

table subsystem_table(const std::vector<rpc::nvmf_subsystem_info>& v) {
    table t{{"NQN", "SERIAL", "MODEL", "NAMESPACES", "ALLOWED HOSTS"}, {}};
    for (const auto& s : v) {
        std::vector<std::string> ns;
        // "1:v1" when optimized, "1:v1(inaccessible)" otherwise.
        for (const auto& n : s.namespaces)
            ns.push_back(n.ana.empty() || n.ana == "optimized" ? fmt::format("{}:{}", n.nsid, n.device)
                                                               : fmt::format("{}:{}({})", n.nsid, n.device, n.ana));
        t.rows.push_back({s.nqn, s.serial, s.model, ns.empty() ? "-" : join(ns, " "),
                          s.allowed_hosts.empty() ? "any" : join(s.allowed_hosts)});
    }
    return t;
}

json to_json(const rpc::nvmf_host_info& v) {
    return json::object()
        .set("cntlid", json::num(v.cntlid))
        .set("subnqn", json::str(v.subnqn))
        .set("hostnqn", json::str(v.hostnqn))
        .set("io_queues", json::num(v.io_queues));
}

table host_table(const std::vector<rpc::nvmf_host_info>& v) {
    table t{{"CNTLID", "SUBSYSTEM", "HOST", "IO QUEUES"}, {}};
    for (const auto& h : v) t.rows.push_back({std::to_string(h.cntlid), h.subnqn, h.hostnqn, std::to_string(h.io_queues)});
    return t;
}

json to_json(const rpc::io_stats& v) {
    const auto& c = v.counters;
    return json::object()
        .set("name", json::str(v.name))
        .set("kind", json::str(v.kind == rpc::stats_kind::replica ? "replica"
                               : v.kind == rpc::stats_kind::nexus ? "nexus"
                                                                  : "device"))
        .set("read_ops", json::num(c.read_ops))
        .set("write_ops", json::num(c.write_ops))
        .set("unmap_ops", json::num(c.unmap_ops))
        .set("flush_ops", json::num(c.flush_ops))
        .set("write_zeroes_ops", json::num(c.zeroes_ops))
        .set("read_bytes", json::num(c.read_bytes))
        .set("write_bytes", json::num(c.write_bytes))
        .set("errors", json::num(c.errors))
        .set("latency_sum_ns", json::num(c.latency_ns_sum))
        .set("latency_min_ns", json::num(c.latency_ns_min))
        .set("latency_max_ns", json::num(c.latency_ns_max));
}

table stats_table(const std::vector<rpc::io_stats>& v) {
    table t{{"NAME", "READS", "WRITES", "UNMAPS", "FLUSHES", "READ", "WRITTEN", "ERRORS", "AVG US", "MAX US"}, {}};
    for (const auto& s : v) {
        const auto& c = s.counters;
        std::uint64_t ops = c.read_ops + c.write_ops + c.unmap_ops + c.flush_ops + c.zeroes_ops;
        t.rows.push_back({s.name, std::to_string(c.read_ops), std::to_string(c.write_ops), std::to_string(c.unmap_ops),
                          std::to_string(c.flush_ops), human_bytes(c.read_bytes), human_bytes(c.write_bytes),
                          std::to_string(c.errors), ops ? fmt::format("{:.1f}", c.latency_ns_sum / 1000.0 / ops) : "-",
                          ops ? fmt::format("{:.1f}", c.latency_ns_max / 1000.0) : "-"});
    }
    return t;
}

}  // namespace ioe::ctl
