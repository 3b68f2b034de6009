// A nexus over several nodes, as the cluster tests build it: one etcd, one
// daemon per node, a thick replica "r<NODE>" in each node's default pool,
// the remote ones shared over NVMe/TCP, and on the first node a nexus "nx"
// with the local replica (bdev:///) and the remote shares (nvmf://) as
// children, its health record at /ioengine/nexus/<uuid>/health, published.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/cluster/cluster.hh"

namespace ioe::cluster_test {

// The nexus's initiator options towards its remote children: a lost
// connection is retried every 100 ms, an I/O waits 1 s for a reconnect, a
// command times out after 5 s (set lower where a test wants timeouts).
inline constexpr char default_child_params[] = "reconnect_delay_ms=100&fast_io_fail_ms=1000&io_timeout_ms=5000";

struct cluster {
    work_dir work;
    test::etcd_server etcd;
    std::vector<std::unique_ptr<node>> nodes;
    std::string nexus = "nx";
    std::string uuid = "5e0c1a55-0000-4000-8000-00000000c1a5";
    std::string health_key = "/ioengine/nexus/5e0c1a55-0000-4000-8000-00000000c1a5/health";
    std::string replica_size = "32MiB";
    std::vector<std::string> child_uris;  // in node order
    std::string child_params = default_child_params;
    // Per node index: when set, that node shares "r<NAME>.hold", a fault
    // device (storage/fault_uri.hh) over its replica with these URI
    // parameters (e.g. "ops=write&delay_ms=9000&skip=1&count=1"), instead
    // of the replica itself.
    std::map<std::size_t, std::string> hold;

    node& at(std::size_t i) { return *nodes[i]; }

    // Adds a node (not started). Nodes take turns on the first two cores
    // the process may use.
    node& add(const std::string& name) {
        const std::string core = std::to_string(test_core(nodes.size()));
        nodes.push_back(std::make_unique<node>(name, work.path, etcd.endpoint(), core));
        return *nodes.back();
    }

    // The children's URIs as the nexus on node 0 sees them.
    std::string child_uri(std::size_t i) const {
        if (i == 0) return "bdev:///r" + nodes[0]->name;
        return nodes[i]->share_uri("r" + nodes[i]->name + (hold.count(i) ? ".hold" : ""), child_params);
    }

    // Starts every node not running, creates and shares the replicas,
    // creates and publishes the nexus on node 0.
    ::testing::AssertionResult build() {
        for (auto& n : nodes) {
            if (!n->running()) {
                if (auto r = n->start(); !r) return r;
            }
        }
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            node& n = *nodes[i];
            const std::string r = "r" + n.name;
            auto c = n.ctl({"replica", "create", "--pool", "default", "--size", replica_size, r});
            if (c.status != 0) return ::testing::AssertionFailure() << n.name << ": replica create: " << c.out;
            if (i > 0 && hold.count(i)) {
                c = n.ctl({"device", "create", "fault:///" + r + ".hold?inner=" + r + "&" + hold.at(i)});
                if (c.status != 0) return ::testing::AssertionFailure() << n.name << ": device create: " << c.out;
                c = n.ctl({"device", "share", r + ".hold"});
                if (c.status != 0) return ::testing::AssertionFailure() << n.name << ": device share: " << c.out;
            } else if (i > 0) {
                c = n.ctl({"replica", "share", r});
                if (c.status != 0) return ::testing::AssertionFailure() << n.name << ": replica share: " << c.out;
            }
        }
        std::vector<std::string> create = {"nexus", "create", nexus, "--uuid", uuid, "--health-key", health_key};
        child_uris.clear();
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            child_uris.push_back(child_uri(i));
            create.push_back("--child");
            create.push_back(child_uris.back());
        }
        auto c = at(0).ctl(create);
        if (c.status != 0) return ::testing::AssertionFailure() << "nexus create: " << c.out << "\n" << at(0).log_tail();
        c = at(0).ctl({"nexus", "publish", nexus});
        if (c.status != 0) return ::testing::AssertionFailure() << "nexus publish: " << c.out;
        auto v = query_nexus(at(0), nexus);
        if (v.state != "online" || v.children.size() != nodes.size())
            return ::testing::AssertionFailure() << "after create: " << describe(v);
        return ::testing::AssertionSuccess();
    }

    // The published nexus as blockstamp reaches it (through node 0's target).
    std::string volume_uri(const std::string& params = "io_timeout_ms=30000") const {
        return nodes[0]->share_uri(nexus, params);
    }
    // A replica read straight over its node's share (node 0 shares its
    // local replica for that first).
    std::string replica_uri(std::size_t i) {
        if (i == 0) at(0).ctl({"replica", "share", "r" + at(0).name});
        return nodes[i]->share_uri("r" + nodes[i]->name, "io_timeout_ms=30000");
    }
    std::string log(const std::string& name) const { return work.path + "/" + name; }

    // What a test prints when something is off: the nexus and the node logs.
    std::string diagnose() {
        std::string s = describe(query_nexus(at(0), nexus));
        std::string raw;
        health_record(etcd.client_port(), health_key, &raw);
        s += "\netcd record: " + raw;
        for (auto& n : nodes) s += "\n--- " + n->name + " log tail:\n" + n->log_tail();
        return s;
    }
};

}  // namespace ioe::cluster_test
