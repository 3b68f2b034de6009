// Scenario 1 of issue 6 with the Linux kernel initiator: three nodes, a
// 3-way nexus on node A (its local replica and B's and C's over NVMe/TCP),
// published; the kernel initiator (../shared/tools/kernel-initiator, a VM)
// runs rounds of fio with crc32c verify over the first 24 MiB of the 64 MiB
// volume while node B is SIGKILLed: every round must pass. Then the nexus is
// degraded, etcd calls B unhealthy; B restarts (its share comes back from its
// state file), the child is onlined, the rebuild is partial (fewer blocks
// than the volume) and the three replicas are byte-identical.
//
// Exits 77 (skipped) without the kernel-initiator tool. The VM is slow (TCG
// on this machine: a few MB/s), hence small rounds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "tests/cluster/cluster_setup.hh"

namespace {

using namespace ioe;
using namespace ioe::cluster_test;

constexpr int rounds = 6;  // of 4 MiB each

TEST(cluster, replica_node_killed_under_kernel_fio) {
    if (::access(KERNEL_INITIATOR, X_OK) != 0) {
        std::printf("SKIP: no kernel-initiator at %s\n", KERNEL_INITIATOR);
        std::exit(77);
    }
    cluster c;
    if (!c.etcd.available()) GTEST_SKIP() << "no etcd binary";
    auto prep = run({KERNEL_INITIATOR, "prepare"}, c.log("prepare.log"), 600s);
    ASSERT_EQ(prep.status, 0) << "kernel-initiator prepare failed:\n" << tail(prep.out);
    c.replica_size = "64MiB";
    c.add("A");
    c.add("B");
    c.add("C");
    ASSERT_TRUE(c.build()) << c.diagnose();
    const nexus_view before = query_nexus(c.at(0), c.nexus);
    const std::string uuid_b = before.child(c.child_uris[1])->uuid;

    const std::string script = c.log("fio.sh");
    {
        std::ofstream s(script);
        s << "for i in $(seq 1 " << rounds << "); do\n"
          << "  echo \"round $i start\"\n"
          << "  fio --name=r$i --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=16 "
             "--size=4M --offset=$(( (i - 1) * 4 ))M --verify=crc32c --do_verify=1 --verify_fatal=1 "
             "--randrepeat=0 --eta=never > /tmp/fio$i.log 2>&1\n"
          << "  if grep -q 'err= 0' /tmp/fio$i.log; then echo \"round $i OK\"; else echo \"round $i FAILED\"; "
             "tail -20 /tmp/fio$i.log; fi\n"
          << "done\n";
    }
    proc vm;
    const std::string nqn = "nqn.2019-05.io.ioengine:" + c.nexus;
    ASSERT_TRUE(vm.start({KERNEL_INITIATOR, "run", "--target", "127.0.0.1:" + std::to_string(c.at(0).nvmf_port),
                          "--nqn", nqn, "--no-discover", "--script", script, "--script-timeout", "900", "--timeout",
                          "1100"},
                         c.log("vm.log")));
    // B dies while round 2 runs.
    ASSERT_TRUE(vm.wait_for("round 2 start", 900s)) << tail(vm.output());
    std::this_thread::sleep_for(1500ms);
    c.at(1).kill9();
    const int rc = vm.wait(1100s);
    const std::string out = vm.output();
    EXPECT_EQ(rc, 0) << tail(out, 60);
    for (int i = 1; i <= rounds; ++i)
        EXPECT_NE(out.find("round " + std::to_string(i) + " OK"), std::string::npos) << "round " << i << "\n"
                                                                                      << tail(out, 60);

    auto v = query_nexus(c.at(0), c.nexus);
    EXPECT_EQ(v.state, "degraded") << c.diagnose();
    EXPECT_EQ(v.child(c.child_uris[1])->state, "faulted") << describe(v);
    auto rec = health_record(c.etcd.client_port(), c.health_key);
    ASSERT_TRUE(rec) << c.diagnose();
    EXPECT_EQ(recorded_healthy(*rec, uuid_b), std::optional<bool>(false));

    ASSERT_TRUE(c.at(1).start());
    // Online B once the nexus's initiator is back with it: a partial rebuild.
    ASSERT_TRUE(c.at(0).wait_log("ioengine:rB: reconnected", 60s)) << c.diagnose();
    auto on = c.at(0).ctl({"nexus", "child", "online", c.nexus, c.child_uris[1]});
    ASSERT_EQ(on.status, 0) << on.out;
    bool done = false;
    for (int i = 0; i < 600 && !done; ++i) {
        auto st = str(parse_json_output(c.at(0).ctl({"rebuild", "state", c.nexus, c.child_uris[1], "--json"}).out)
                          .find("state"));
        done = st == "completed";
        if (!done && st != "running" && st != "paused") break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(done) << c.diagnose();
    v = wait_nexus(c.at(0), c.nexus, [](const nexus_view& x) { return x.state == "online"; }, 20s);
    EXPECT_EQ(v.state, "online") << describe(v);
    auto h = c.at(0).ctl_json({"rebuild", "history", c.nexus});
    json::value rb;
    if (h.is_array())
        for (const auto& r : h.items())
            if (str(r.find("child")) == c.child_uris[1]) rb = r;
    ASSERT_TRUE(rb.is_object()) << "no rebuild of B in the history";
    EXPECT_TRUE(rb.find("partial") && rb.find("partial")->as_bool());
    EXPECT_GT(num(rb.find("blocks_total")), 0);
    EXPECT_LT(num(rb.find("blocks_total")), static_cast<std::int64_t>(v.block_count));
    std::fprintf(stderr, "partial rebuild of B: %lld of %llu blocks\n", static_cast<long long>(num(rb.find("blocks_total"))),
                 static_cast<unsigned long long>(v.block_count));

    std::vector<std::string> sums;
    for (std::size_t i = 0; i < 3; ++i)
        sums.push_back(checksum_of(blockstamp(c.work.path, "checksum", c.replica_uri(i), "")));
    EXPECT_EQ(sums[0].find("failed"), std::string::npos) << sums[0];
    EXPECT_EQ(sums[0], sums[1]);
    EXPECT_EQ(sums[0], sums[2]);
    for (auto& n : c.nodes) EXPECT_EQ(n->stop(), 0) << n->log_tail();
}

}  // namespace
