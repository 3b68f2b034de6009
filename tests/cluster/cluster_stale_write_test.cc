// Issue 13, the stale write: a write of the nexus held at a live target
// while the link to it is cut must not land on the child after the child
// was brought back and rebuilt (docs/nexus.md, "Fencing a faulted remote
// child").
//
// Node A (host namespace) runs the nexus over its own replica and node C's;
// C runs in a network namespace and shares its replica through a fault
// device (fault:// URI) that holds the second write to block `held_block`
// for `hold` seconds (the first is the fill's). A one-block writer starts:
// its first write is held at C; the link to C is cut, and the nexus's
// sockets to C are destroyed on the host (`ss -K`: the initiator sees its
// connection end and counts the held command as finished; C, cut off, sees
// nothing, and with a long keep-alive timeout its controller stays live).
// The child times out and is faulted; the writer goes on writing the block
// on A. The link comes back; `nexus child online` waits (the nexus tries
// to fence the old connection until settle_limit) or is retried until it
// is accepted, and the rebuild runs; then the hold ends. The held write must
// have been refused or aborted, or have finished before the rebuild copied
// its block: the volume verifies against the acknowledgement log and both
// replicas have the same checksum.
//
// Before the fence (one host id per incarnation): the initiator reconnected
// with the same host id, the target admitted the new controller at once
// (the old one was live, not draining), the rebuild copied the block, and
// the held write then landed on C with older data: the checksums differed.
//
// Needs root (ip netns, ss -K); exits 77 (skipped) when a namespace cannot
// be made.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "tests/cluster/cluster_setup.hh"
#include "tests/cluster/netns.hh"

namespace {

using namespace ioe;
using namespace ioe::cluster_test;

constexpr std::uint64_t held_block = 1000;
constexpr auto hold = 14s;  // longer than the target's 10 s drain bound: the first fencing attempts fail

std::string rebuild_state_of(const node& n, const std::string& nexus, const std::string& child) {
    auto r = n.ctl({"rebuild", "state", nexus, child, "--json"});
    return str(parse_json_output(r.out).find("state"));
}

TEST(cluster, stale_write_of_a_cut_child_is_fenced) {
    if (::geteuid() != 0) {
        std::printf("SKIP: network namespaces need root\n");
        std::exit(77);
    }
    netns ns;
    if (!ns.make()) {
        std::printf("SKIP: cannot set up network namespace %s with a veth pair\n", ns.name.c_str());
        if (!ns.made) std::exit(77);
        FAIL() << "the namespace exists but the veth pair could not be set up";
    }
    cluster c;
    if (!c.etcd.available()) GTEST_SKIP() << "no etcd binary";
    // Commands time out after 1 s; the controller's keep-alive timeout is
    // long (C keeps the cut-off controller live through the test).
    c.child_params = "reconnect_delay_ms=100&fast_io_fail_ms=1000&io_timeout_ms=1000&kato_ms=120000";
    c.hold[1] = "ops=write&delay_ms=" + std::to_string(std::chrono::milliseconds(hold).count()) +
                "&lba_begin=" + std::to_string(held_block) + "&lba_end=" + std::to_string(held_block + 1) +
                "&skip=1&count=1";
    c.add("A");
    node& cn = c.add("C");
    cn.netns = ns.name;
    cn.address = ns.ns_ip;
    cn.etcd.clear();
    ASSERT_TRUE(c.build()) << c.diagnose();
    const std::string vol = c.volume_uri();
    const std::string log = c.log("stamp.log");
    auto fill = blockstamp(c.work.path, "write", vol, log, {"--fill-only", "--fail-on-error"});
    ASSERT_EQ(fill.status, 0) << fill.out;

    // The writer's first write of the block is held at C.
    stamp_run w;
    ASSERT_TRUE(w.p.start(blockstamp_args("write", vol, log,
                                          {"--resume", "--fail-on-error", "--depth", "1", "--progress-ms", "100",
                                           "--region-first", std::to_string(held_block), "--region-blocks", "1"}),
                          c.log("writer.out")));
    ASSERT_TRUE(w.p.wait_for("progress", 10s)) << tail(w.p.output());
    const auto held_since = steady::now();
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(sh("ip link set " + ns.host_if + " down"), 0);
    ASSERT_EQ(sh("ss -K dst " + ns.ns_ip), 0) << "cannot destroy the sockets to C (ss -K)";

    auto v = wait_nexus(c.at(0), c.nexus,
                        [&](const nexus_view& x) { return x.child(c.child_uris[1])->state == "faulted"; }, 20s);
    ASSERT_EQ(v.child(c.child_uris[1])->state, "faulted") << c.diagnose();
    EXPECT_TRUE(w.advance(200, 20s)) << "writes did not go on without C\n" << tail(w.p.output());
    w.p.signal(SIGTERM);
    EXPECT_EQ(w.p.wait(30s), 0) << "a write failed\n" << tail(w.p.output());

    // The link comes back with the held write still executing at C.
    ASSERT_EQ(sh("ip link set " + ns.host_if + " up"), 0);
    ASSERT_LT(steady::now() - held_since, hold - 4s) << "too slow to bring C back while its write is held";
    std::string last;
    bool accepted = false;
    unsigned refused = 0;
    const auto until = steady::now() + 60s;
    while (!accepted && steady::now() < until) {
        auto r = c.at(0).ctl({"nexus", "child", "online", c.nexus, c.child_uris[1]});
        accepted = r.status == 0;
        if (!accepted) {
            ++refused;
            last = r.out;
            std::this_thread::sleep_for(1s);
        }
    }
    ASSERT_TRUE(accepted) << "child online: " << last << "\n" << c.diagnose();
    const double online_after = std::chrono::duration<double>(steady::now() - held_since).count();
    std::string st;
    for (const auto rb_until = steady::now() + 60s; steady::now() < rb_until;) {
        st = rebuild_state_of(c.at(0), c.nexus, c.child_uris[1]);
        if (st == "completed" || st == "failed" || st == "stopped") break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(st, "completed") << c.diagnose();
    std::fprintf(stderr, "stale write: child online accepted %.1f s after the write was held (%u refused: %s)\n",
                 online_after, refused, last.c_str());

    // The hold ends (if the write was still held, it lands now).
    const auto released = held_since + hold + 2s;
    if (steady::now() < released) std::this_thread::sleep_for(released - steady::now());

    auto ver = blockstamp(c.work.path, "verify", vol, log);
    EXPECT_EQ(ver.status, 0) << ver.out;
    const std::string sum_a = checksum_of(blockstamp(c.work.path, "checksum", c.replica_uri(0), ""));
    const std::string sum_c = checksum_of(blockstamp(
        c.work.path, "checksum", cn.share_uri("rC.hold", "io_timeout_ms=30000"), ""));
    std::fprintf(stderr, "stale write: replica checksums A %s C %s\n", sum_a.c_str(), sum_c.c_str());
    EXPECT_EQ(sum_a.find("failed"), std::string::npos) << sum_a;
    EXPECT_EQ(sum_a, sum_c) << "the held write landed on C after its rebuild\n" << c.diagnose();
    EXPECT_EQ(c.at(0).stop(), 0) << c.at(0).log_tail();
    c.at(1).kill9();
}

}  // namespace
