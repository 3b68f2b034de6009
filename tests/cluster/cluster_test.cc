// Multi-process nexus scenarios of issue 6 (numbers as there), each with
// real daemons on loopback, a real etcd and blockstamp writing stamped blocks
// through the published nexus:
//   1. a replica node SIGKILLed mid-write: writes go on, the child is
//      recorded unhealthy, the node comes back and a partial rebuild copies
//      only what changed; the replicas end up byte-identical;
//   3. the nexus node SIGKILLed mid-write: the daemon re-creates the nexus
//      from its state file over the etcd record: a child recorded unhealthy
//      does not come online (neither while its node is down nor when it is
//      up: then it is rebuilt in full first), and every block reads its last
//      acknowledged generation or later, from every healthy replica;
//   4. etcd frozen while a child fails: writes wait (acknowledgements stop)
//      and resume when etcd does; nothing acknowledged is lost.
// Scenario 6 (network namespaces) is in cluster_netns_test.cc, scenario 1
// with the kernel initiator in cluster_vm_test.cc.
#include <gtest/gtest.h>

#include "tests/cluster/cluster_setup.hh"

namespace {

using namespace ioe;
using namespace ioe::cluster_test;

#define NEED_ETCD(c)                                                                         \
    do {                                                                                     \
        if (!(c).etcd.available()) GTEST_SKIP() << "no etcd binary (scripts/deps.sh installs etcd-server)"; \
    } while (0)

std::string rebuild_state(const node& n, const std::string& nexus, const std::string& child) {
    auto r = n.ctl({"rebuild", "state", nexus, child, "--json"});
    return str(parse_json_output(r.out).find("state"));
}

// Brings `child` online once its initiator on `n` has reconnected (its
// log says so: an online before that would fail the rebuild's first I/O,
// fault the child rebuild-failed and lose its dirty log), and waits for the
// rebuild to complete.
::testing::AssertionResult online_and_rebuild(node& n, const std::string& nexus, const std::string& child,
                                              const std::string& replica, std::chrono::seconds limit) {
    if (!n.wait_log("ioengine:" + replica + ": reconnected", limit))
        return ::testing::AssertionFailure() << "the nexus's initiator did not reconnect to " << replica;
    auto r = n.ctl({"nexus", "child", "online", nexus, child});
    if (r.status != 0) return ::testing::AssertionFailure() << "child online: " << r.out;
    const auto until = steady::now() + limit;
    std::string st;
    while (steady::now() < until) {
        st = rebuild_state(n, nexus, child);
        if (st == "completed") return ::testing::AssertionSuccess();
        if (st == "failed" || st == "stopped") break;
        std::this_thread::sleep_for(100ms);
    }
    return ::testing::AssertionFailure() << "rebuild of " << child << ": " << st;
}

// The last rebuild of `child` in `rebuild history --json`, waiting up to
// 10 s for one: the nexus (and the child) turn online before the finished
// rebuild's health record is written to etcd, and the history entry comes
// after that write (a fast rebuild made a query fall in between).
json::value last_rebuild(const node& n, const std::string& nexus, const std::string& child) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        auto h = n.ctl_json({"rebuild", "history", nexus});
        json::value found;
        if (h.is_array()) {
            for (const auto& r : h.items())
                if (str(r.find("child")) == child) found = r;
        }
        if (found.is_object() || std::chrono::steady_clock::now() >= deadline) return found;
        std::this_thread::sleep_for(100ms);
    }
}

std::string stamp_out(const stamp_run& s) { return tail(s.p.output(), 15); }

// ---- scenario 1 (without the VM) ----

TEST(cluster, replica_node_killed_mid_write_partial_rebuild) {
    cluster c;
    NEED_ETCD(c);
    c.add("A");
    c.add("B");
    c.add("C");
    ASSERT_TRUE(c.build());
    const std::string vol = c.volume_uri();
    const std::string log = c.log("stamp.log");

    auto fill = blockstamp(c.work.path, "write", vol, log, {"--fill-only", "--fail-on-error"});
    ASSERT_EQ(fill.status, 0) << fill.out;
    const nexus_view before = query_nexus(c.at(0), c.nexus);
    ASSERT_GT(before.block_count, 0u);
    const std::string uuid_b = before.child(c.child_uris[1])->uuid;

    // Writes to the first quarter only: what B misses is a quarter at most.
    const std::uint64_t region = before.block_count / 4;
    stamp_run w;
    ASSERT_TRUE(w.p.start(blockstamp_args("write", vol, log,
                                          {"--resume", "--fail-on-error", "--region-blocks", std::to_string(region)}),
                          c.log("writer.out")));
    ASSERT_TRUE(w.advance(300, 20s)) << stamp_out(w);
    c.at(1).kill9();
    ASSERT_TRUE(w.advance(1000, 20s)) << "writes stopped after B was killed\n" << stamp_out(w) << c.diagnose();
    std::this_thread::sleep_for(1s);  // B stays away a while, writes going on

    auto v = wait_nexus(c.at(0), c.nexus, [&](const nexus_view& x) { return x.state == "degraded"; }, 10s);
    EXPECT_EQ(v.state, "degraded") << c.diagnose();
    EXPECT_EQ(v.child(c.child_uris[1])->state, "faulted");
    EXPECT_EQ(v.child(c.child_uris[0])->state, "online");
    EXPECT_EQ(v.child(c.child_uris[2])->state, "online");
    auto rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec) << c.diagnose();
    EXPECT_EQ(recorded_healthy(*rec, uuid_b), std::optional<bool>(false)) << "etcd still calls B healthy";
    EXPECT_EQ(recorded_healthy(*rec, v.child(c.child_uris[0])->uuid), std::optional<bool>(true));
    EXPECT_EQ(recorded_healthy(*rec, v.child(c.child_uris[2])->uuid), std::optional<bool>(true));

    w.p.signal(SIGTERM);
    EXPECT_EQ(w.p.wait(30s), 0) << "a write failed while B was down\n" << stamp_out(w);
    EXPECT_NE(w.p.output().find("failed=0 first_error=none"), std::string::npos) << stamp_out(w);

    // B comes back with its share (from its state file); a partial rebuild.
    ASSERT_TRUE(c.at(1).start());
    ASSERT_TRUE(online_and_rebuild(c.at(0), c.nexus, c.child_uris[1], "rB", 60s)) << c.diagnose();
    v = wait_nexus(c.at(0), c.nexus, [](const nexus_view& x) { return x.state == "online"; }, 20s);
    EXPECT_EQ(v.state, "online") << c.diagnose();
    auto rb = last_rebuild(c.at(0), c.nexus, c.child_uris[1]);
    ASSERT_TRUE(rb.is_object()) << "no rebuild of B in the history";
    EXPECT_EQ(str(rb.find("state")), "completed");
    EXPECT_TRUE(rb.find("partial") && rb.find("partial")->as_bool()) << "the rebuild was not partial";
    const auto total = num(rb.find("blocks_total"));
    EXPECT_GT(total, 0);
    EXPECT_LT(total, static_cast<std::int64_t>(v.block_count)) << "a partial rebuild copied every block";
    EXPECT_LE(total, static_cast<std::int64_t>(region + v.block_count / 8)) << "copied more than was written";
    rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec);
    EXPECT_EQ(recorded_healthy(*rec, uuid_b), std::optional<bool>(true));

    auto ver = blockstamp(c.work.path, "verify", vol, log);
    EXPECT_EQ(ver.status, 0) << ver.out;
    std::vector<std::string> sums;
    for (std::size_t i = 0; i < 3; ++i) sums.push_back(checksum_of(blockstamp(c.work.path, "checksum", c.replica_uri(i), "")));
    std::fprintf(stderr, "partial rebuild of B: %lld of %llu blocks; replica checksums %s %s %s\n",
                 static_cast<long long>(total), static_cast<unsigned long long>(v.block_count), sums[0].c_str(),
                 sums[1].c_str(), sums[2].c_str());
    EXPECT_EQ(sums[0], sums[1]) << "replica B differs from A after the rebuild";
    EXPECT_EQ(sums[0], sums[2]) << "replica C differs from A";
    EXPECT_EQ(sums[0].find("failed"), std::string::npos) << sums[0];
    for (auto& n : c.nodes) EXPECT_EQ(n->stop(), 0) << n->log_tail();
}

// ---- scenario 3 ----

TEST(cluster, nexus_node_killed_recreated_from_etcd) {
    cluster c;
    NEED_ETCD(c);
    c.add("A");
    c.add("B");
    c.add("C");
    ASSERT_TRUE(c.build());
    // The writer gives up on a dead nexus quickly.
    const std::string vol = c.volume_uri("io_timeout_ms=5000&fast_io_fail_ms=500&ctrl_loss_timeout_ms=1500");
    const std::string log = c.log("stamp.log");
    auto fill = blockstamp(c.work.path, "write", vol, log, {"--fill-only", "--fail-on-error"});
    ASSERT_EQ(fill.status, 0) << fill.out;
    const nexus_view before = query_nexus(c.at(0), c.nexus);
    const std::string uuid_c = before.child(c.child_uris[2])->uuid;

    stamp_run w;
    ASSERT_TRUE(w.p.start(blockstamp_args("write", vol, log, {"--resume"}), c.log("writer.out")));
    ASSERT_TRUE(w.advance(300, 20s)) << stamp_out(w);
    // C fails first: the record calls it unhealthy, and it misses writes.
    c.at(2).kill9();
    ASSERT_TRUE(w.advance(1000, 20s)) << stamp_out(w) << c.diagnose();
    auto v = query_nexus(c.at(0), c.nexus);
    EXPECT_EQ(v.state, "degraded") << describe(v);
    auto rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec);
    EXPECT_EQ(recorded_healthy(*rec, uuid_c), std::optional<bool>(false));
    // Then the nexus node dies with writes in flight.
    ASSERT_TRUE(w.advance(500, 20s)) << stamp_out(w);
    c.at(0).kill9();
    std::this_thread::sleep_for(2s);  // the writer's I/O fails (nothing listens)
    w.p.signal(SIGTERM);
    EXPECT_EQ(w.p.wait(30s), 0) << stamp_out(w);
    EXPECT_NE(w.p.output().find("blockstamp: done"), std::string::npos) << stamp_out(w);

    // A restarts (C still down): the daemon re-creates the nexus over the
    // record. A and B were recorded healthy, C not: C must not come online.
    ASSERT_TRUE(c.at(0).start());
    v = wait_nexus(c.at(0), c.nexus, [](const nexus_view& x) { return x.found && !x.state.empty(); }, 20s);
    ASSERT_TRUE(v.found) << c.diagnose();
    EXPECT_EQ(v.state, "degraded") << describe(v);
    ASSERT_EQ(v.children.size(), 3u) << describe(v);
    EXPECT_EQ(v.child(c.child_uris[0])->state, "online") << describe(v);
    EXPECT_EQ(v.child(c.child_uris[1])->state, "online") << describe(v);
    const child_view* cc = v.child(c.child_uris[2]);
    EXPECT_EQ(cc->state, "faulted") << describe(v);
    EXPECT_TRUE(cc->reason == "out-of-sync" || cc->reason == "cannot-open") << "C's reason: " << cc->reason;
    rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec);
    EXPECT_FALSE(rec->clean_shutdown);
    // C could not be opened (no uuid known to this nexus): the record leaves
    // it out, which means not healthy just as well.
    EXPECT_NE(recorded_healthy(*rec, uuid_c), std::optional<bool>(true));

    // Every block holds its last acknowledged generation or a later one:
    // through the nexus, and on each healthy replica on its own.
    auto ver = blockstamp(c.work.path, "verify", vol, log);
    EXPECT_EQ(ver.status, 0) << ver.out << c.diagnose();
    ver = blockstamp(c.work.path, "verify", c.replica_uri(0), log);
    EXPECT_EQ(ver.status, 0) << "replica A: " << ver.out;
    ver = blockstamp(c.work.path, "verify", c.replica_uri(1), log);
    EXPECT_EQ(ver.status, 0) << "replica B: " << ver.out;

    std::fprintf(stderr, "after the restart with C down: C %s (%s)\n", cc->state.c_str(), cc->reason.c_str());

    // Now with C reachable: the nexus node dies again and comes back while C
    // runs. C opens, but the record does not call it healthy, so it must be
    // rebuilt in full before it serves a read.
    c.at(0).kill9();
    ASSERT_TRUE(c.at(2).start());
    ASSERT_TRUE(c.at(0).start());
    v = wait_nexus(c.at(0), c.nexus, [](const nexus_view& x) { return x.state == "online"; }, 30s);
    EXPECT_EQ(v.state, "online") << c.diagnose();
    const std::string restart_log = c.at(0).output();
    EXPECT_NE(restart_log.find("full rebuild of " + c.child_uris[2]), std::string::npos)
        << "C was not rebuilt in full after the restart:\n" << tail(restart_log);
    EXPECT_EQ(restart_log.find("partial rebuild of"), std::string::npos) << tail(restart_log);
    auto rb = last_rebuild(c.at(0), c.nexus, c.child_uris[2]);
    ASSERT_TRUE(rb.is_object()) << "no rebuild of C in the history";
    EXPECT_EQ(str(rb.find("state")), "completed");
    EXPECT_FALSE(rb.find("partial") && rb.find("partial")->as_bool()) << "C was rebuilt partially";
    EXPECT_EQ(num(rb.find("blocks_total")), static_cast<std::int64_t>(v.block_count));
    EXPECT_EQ(str(rb.find("source")), c.child_uris[0]) << "not rebuilt from the local replica";
    rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec);
    EXPECT_EQ(recorded_healthy(*rec, uuid_c), std::optional<bool>(true)) << "C rebuilt but not recorded healthy";
    ver = blockstamp(c.work.path, "verify", c.replica_uri(2), log);
    EXPECT_EQ(ver.status, 0) << "replica C after its rebuild: " << ver.out;
    // Rebuilt from A's replica: a copy of it.
    EXPECT_EQ(checksum_of(blockstamp(c.work.path, "checksum", c.replica_uri(0), "")),
              checksum_of(blockstamp(c.work.path, "checksum", c.replica_uri(2), "")));
    // Writes go on after the recreation.
    auto more = blockstamp(c.work.path, "write", vol, log, {"--resume", "--seconds", "1", "--fail-on-error"});
    EXPECT_EQ(more.status, 0) << more.out;
    ver = blockstamp(c.work.path, "verify", vol, log);
    EXPECT_EQ(ver.status, 0) << ver.out;
    for (auto& n : c.nodes) EXPECT_EQ(n->stop(), 0) << n->log_tail();
}

// ---- scenario 4 ----

// The freeze: 3 s. The nexus tries its record write 1 + health_retries (5)
// times, health_retry_delay (200 ms) apart, and each attempt against a
// frozen etcd lasts the etcd client's request_timeout (5 s: the kernel
// accepts the connection, the answer never comes), so the nexus would fault
// only after about 6 x 5 s + 5 x 0.2 s = 31 s. 3 s is well inside the first
// attempt: the writes must wait and then succeed, none fail.
constexpr auto etcd_freeze = 3s;

// Two writers on the two halves of the volume (each with its own log): the
// first has writes in flight when C dies (they fail on C and must wait for
// the record); the second starts only once C has been seen to fail, so its
// writes go to A alone. Neither may be acknowledged while the record still
// calls C healthy: if the nexus node crashed then, C would come back as a
// healthy copy that lacks them.
TEST(cluster, etcd_frozen_while_child_fails) {
    cluster c;
    NEED_ETCD(c);
    c.add("A");
    c.add("C");
    ASSERT_TRUE(c.build());
    const std::string vol = c.volume_uri();
    const std::string log1 = c.log("stamp1.log"), log2 = c.log("stamp2.log");
    auto fill = blockstamp(c.work.path, "write", vol, log1, {"--fill-only", "--fail-on-error"});
    ASSERT_EQ(fill.status, 0) << fill.out;
    std::filesystem::copy_file(log1, log2);
    const nexus_view before = query_nexus(c.at(0), c.nexus);
    const std::string uuid_c = before.child(c.child_uris[1])->uuid;
    const std::string half = std::to_string(before.block_count / 2);
    const std::vector<std::string> first_half = {"--region-first", "0", "--region-blocks", half};
    const std::vector<std::string> second_half = {"--region-first", half, "--region-blocks", half};
    auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };

    stamp_run w1, w2;
    ASSERT_TRUE(w1.p.start(blockstamp_args("write", vol, log1,
                                           with({"--resume", "--fail-on-error", "--progress-ms", "100"}, first_half)),
                           c.log("writer1.out")));
    ASSERT_TRUE(w1.advance(300, 20s)) << stamp_out(w1);
    c.etcd.pause();
    c.at(1).kill9();
    const auto frozen_at = steady::now();
    // The nexus has seen C fail (its log says so) and waits for etcd.
    EXPECT_TRUE(c.at(0).wait_log("faulted", 5s)) << c.at(0).log_tail();
    std::this_thread::sleep_for(300ms);  // writer 1's progress line (every 100 ms) has caught up
    const auto a1 = w1.acked();
    ASSERT_TRUE(w2.p.start(blockstamp_args("write", vol, log2,
                                           with({"--resume", "--fail-on-error", "--progress-ms", "100"}, second_half)),
                           c.log("writer2.out")));
    EXPECT_TRUE(w2.p.wait_for("blockstamp: writing", 10s)) << stamp_out(w2);
    std::this_thread::sleep_for(etcd_freeze - (steady::now() - frozen_at));
    const auto b1 = w1.acked(), b2 = w2.acked();
    EXPECT_EQ(b1, a1) << "writes in flight on the failed child were acknowledged before it was recorded unhealthy";
    EXPECT_LE(b2, 0) << "new writes (to the healthy child only) were acknowledged while etcd still called the "
                        "failed child healthy";
    c.etcd.resume();
    EXPECT_TRUE(w1.advance(300, 20s)) << "writes did not resume with etcd\n" << stamp_out(w1) << c.diagnose();
    EXPECT_TRUE(w2.advance(300, 20s)) << "writes did not resume with etcd\n" << stamp_out(w2);
    std::fprintf(stderr, "acks during the %.1f s freeze: writer 1 %lld -> %lld, writer 2 (started in it) %lld\n",
                 std::chrono::duration<double>(steady::now() - frozen_at).count(), static_cast<long long>(a1),
                 static_cast<long long>(b1), static_cast<long long>(b2));

    auto v = query_nexus(c.at(0), c.nexus);
    EXPECT_EQ(v.state, "degraded") << describe(v);
    EXPECT_EQ(v.child(c.child_uris[1])->state, "faulted") << describe(v);
    auto rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec);
    EXPECT_EQ(recorded_healthy(*rec, uuid_c), std::optional<bool>(false));
    w1.p.signal(SIGTERM);
    w2.p.signal(SIGTERM);
    EXPECT_EQ(w1.p.wait(30s), 0) << "a write failed\n" << stamp_out(w1);
    EXPECT_EQ(w2.p.wait(30s), 0) << "a write failed\n" << stamp_out(w2);
    for (const auto& uri : {vol, c.replica_uri(0)}) {
        auto ver = blockstamp(c.work.path, "verify", uri, log1, first_half);
        EXPECT_EQ(ver.status, 0) << uri << ": " << ver.out;
        ver = blockstamp(c.work.path, "verify", uri, log2, second_half);
        EXPECT_EQ(ver.status, 0) << uri << ": " << ver.out;
    }
    for (auto& n : c.nodes)
        if (n->running()) EXPECT_EQ(n->stop(), 0) << n->log_tail();
}

}  // namespace
