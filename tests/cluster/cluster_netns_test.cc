// Scenario 6 of issue 6: a replica node cut off from the network rather than
// killed. Node C runs inside a network namespace, reached from the host over
// a veth pair with 10.x addresses; the nexus on node A (host namespace) has
// C's replica as an nvmf:// child with short timeouts. The host end of the
// veth goes down with writes running: nothing answers any more and nothing
// resets the connection, so only a timeout can tell. The nexus must fault
// the child (reason timeout, or io-error when the initiator's keep-alive
// notices first and the connection is torn down) and keep acknowledging
// writes on A's replica.
//
// Needs root (ip netns); exits 77 (skipped) when a namespace cannot be made.
// The namespace and the veth pair are removed whatever happens.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "tests/cluster/cluster_setup.hh"
#include "tests/cluster/netns.hh"

namespace {

using namespace ioe;
using namespace ioe::cluster_test;

TEST(cluster, node_cut_off_by_network) {
    if (::geteuid() != 0) {
        std::printf("SKIP: network namespaces need root\n");
        std::exit(77);
    }
    // Declared before the cluster: removed after node C has been killed.
    netns ns;
    if (!ns.make()) {
        std::printf("SKIP: cannot set up network namespace %s with a veth pair\n", ns.name.c_str());
        if (!ns.made) std::exit(77);
        FAIL() << "the namespace exists but the veth pair could not be set up";
    }
    cluster c;
    if (!c.etcd.available()) GTEST_SKIP() << "no etcd binary";
    // Commands time out after 1 s; keep-alive every second (KATO 2 s).
    c.child_params = "reconnect_delay_ms=100&fast_io_fail_ms=1000&io_timeout_ms=1000&kato_ms=2000";
    c.add("A");
    node& cn = c.add("C");
    cn.netns = ns.name;
    cn.address = ns.ns_ip;
    cn.etcd.clear();  // it holds no nexus, and the host's loopback is not reachable from inside
    ASSERT_TRUE(c.build()) << c.diagnose();
    const std::string vol = c.volume_uri();
    const std::string log = c.log("stamp.log");
    auto fill = blockstamp(c.work.path, "write", vol, log, {"--fill-only", "--fail-on-error"});
    ASSERT_EQ(fill.status, 0) << fill.out;
    const std::string uuid_c = query_nexus(c.at(0), c.nexus).child(c.child_uris[1])->uuid;

    stamp_run w;
    ASSERT_TRUE(w.p.start(blockstamp_args("write", vol, log, {"--resume", "--fail-on-error", "--progress-ms", "100"}),
                          c.log("writer.out")));
    ASSERT_TRUE(w.advance(300, 20s)) << tail(w.p.output());
    const auto cut = steady::now();
    ASSERT_EQ(sh("ip link set " + ns.host_if + " down"), 0);
    // Writes carry on once the child has timed out.
    EXPECT_TRUE(w.advance(1000, 30s)) << "writes did not go on without C\n" << tail(w.p.output()) << c.diagnose();
    auto v = wait_nexus(c.at(0), c.nexus,
                        [&](const nexus_view& x) { return x.child(c.child_uris[1])->state == "faulted"; }, 20s);
    const double detected = std::chrono::duration<double>(steady::now() - cut).count();
    EXPECT_EQ(v.state, "degraded") << c.diagnose();
    const child_view* cc = v.child(c.child_uris[1]);
    EXPECT_EQ(cc->state, "faulted") << describe(v);
    // What the nexus saw: a command timeout ("timeout") or the keep-alive
    // noticing and the connection being dropped ("io-error").
    EXPECT_TRUE(cc->reason == "timeout" || cc->reason == "io-error") << cc->reason;
    std::fprintf(stderr, "network cut: child C faulted (%s), seen within %.1f s\n", cc->reason.c_str(), detected);
    auto rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec);
    EXPECT_EQ(recorded_healthy(*rec, uuid_c), std::optional<bool>(false));

    w.p.signal(SIGTERM);
    EXPECT_EQ(w.p.wait(30s), 0) << "a write failed while C was cut off\n" << tail(w.p.output());
    auto ver = blockstamp(c.work.path, "verify", vol, log);
    EXPECT_EQ(ver.status, 0) << ver.out;
    EXPECT_EQ(c.at(0).stop(), 0) << c.at(0).log_tail();
    c.at(1).kill9();
}

}  // namespace
