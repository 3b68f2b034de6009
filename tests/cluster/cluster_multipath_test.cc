// Kill -9 of the nexus node under the Linux host's native NVMe multipath
// (issue 13, docs/ana.md): node a runs nexus "nx" over node b's and node
// c's replicas (nvmf:// shares) and publishes it under a volume NQN
// (optimized); node b publishes a standby path of the same NQN and volume
// (ANA inaccessible); the two engines hand out disjoint controller IDs. The
// guest (../shared/tools/kernel-initiator) connects to both, checks that
// the kernel sees one namespace with an optimized and an inaccessible path,
// and runs fio 4 KiB randwrite with crc32c verify. Mid-write, node a is
// SIGKILLed and node b runs `nexus create --takeover` under the NQN: its
// standby turns into the nexus (optimized, ANA Change event), the kernel's
// queued I/O goes to b, fio finishes with 0 errors and its verify passes.
// Printed: the time from the kill to the first write completed on b. The
// second test takes over while a is alive and writing: a is fenced, its
// refused writes carry the ANA path status, the kernel reads a's path as
// inaccessible and goes on through b. The third makes b a forwarding path
// (ANA non-optimized, its I/O sent on to a's nexus over NVMe/TCP): the
// kernel sees an optimized and a non-optimized path; mid-write the guest
// disconnects its controller to a, the kernel fails its I/O over to b,
// and fio finishes through the forwarding path with its verify passing,
// no takeover needed.
//
// Exits 77 (skipped) without the kernel-initiator tool. Bounded: every wait
// has a limit; ctest gives the whole 1200 s.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "tests/cluster/cluster.hh"

namespace {

using namespace ioe;
using namespace ioe::cluster_test;
using steady = std::chrono::steady_clock;

constexpr char k_uuid[] = "3a7a0000-0000-4000-8000-0000000a11a5";
constexpr char k_key[] = "/ioengine/nexus/3a7a0000-0000-4000-8000-0000000a11a5/health";
constexpr char k_nqn[] = "nqn.2026-12.io.example:volume-3a7a";
constexpr char k_params[] = "reconnect_delay_ms=100&fast_io_fail_ms=1000&io_timeout_ms=5000";

std::int64_t nexus_writes(const node& n) {
    auto r = n.ctl({"stats", "nexus", "nx", "--json"});
    if (r.status != 0) return -1;
    auto j = parse_json_output(r.out);
    const json::value* x = j.is_array() && !j.items().empty() ? &j.items()[0] : &j;
    const json::value* counters = x->find("counters");
    return num(counters ? counters->find("write_ops") : x->find("write_ops"));
}

enum class scenario {
    kill_old,     // node a is SIGKILLed, b takes over
    takeover,     // a stays alive and writing; b's takeover fences it
    forwarding,   // b is a forwarding path; the guest drops its path to a
};

void run_multipath(scenario how) {
    const bool kill_old = how == scenario::kill_old;
    const bool forwarding = how == scenario::forwarding;
    if (::access(KERNEL_INITIATOR, X_OK) != 0) {
        std::printf("SKIP: no kernel-initiator at %s\n", KERNEL_INITIATOR);
        std::exit(77);
    }
    work_dir work;
    test::etcd_server etcd;
    if (!etcd.available()) GTEST_SKIP() << "no etcd binary (scripts/deps.sh installs etcd-server)";
    auto prep = run({KERNEL_INITIATOR, "prepare"}, work.path + "/prepare.log", 600s);
    ASSERT_EQ(prep.status, 0) << "kernel-initiator prepare failed:\n" << tail(prep.out);

    std::vector<std::unique_ptr<node>> nodes;
    const char* ranges[] = {"1-999", "1000-1999", "2000-2999"};
    for (const char* name : {"a", "b", "c"}) {
        nodes.push_back(std::make_unique<node>(name, work.path, etcd.endpoint(), std::to_string(test_core(nodes.size()))));
        nodes.back()->pool_mb = 64;
        nodes.back()->extra_args = {"--nvmf-cntlid-range", ranges[nodes.size() - 1]};
        ASSERT_TRUE(nodes.back()->start());
    }
    node& a = *nodes[0];
    node& b = *nodes[1];
    node& c = *nodes[2];
    std::vector<std::string> create = {"nexus", "create", "nx", "--uuid", k_uuid, "--health-key", k_key};
    for (node* n : {&b, &c}) {
        const std::string r = "r" + n->name;
        ASSERT_EQ(n->ctl({"replica", "create", "--pool", "default", "--size", "32MiB", r}).status, 0);
        ASSERT_EQ(n->ctl({"replica", "share", r}).status, 0);
        create.push_back("--child");
        create.push_back(n->share_uri(r, k_params));
    }
    auto cr = a.ctl(create);
    ASSERT_EQ(cr.status, 0) << cr.out << a.log_tail();
    ASSERT_EQ(a.ctl({"nexus", "publish", "nx", "--nqn", k_nqn}).status, 0);
    auto info = a.ctl_json({"nexus", "list", "nx"});
    const json::value* nx = info.is_array() && !info.items().empty() ? &info.items()[0] : &info;
    const auto block_size = num(nx->find("block_size"));
    const auto bytes = block_size * num(nx->find("block_count"));
    ASSERT_GT(bytes, 16 << 20);
    std::vector<std::string> standby = {"nexus", "standby", k_nqn, "--uuid", k_uuid, "--size", std::to_string(bytes),
                                        "--block-size", std::to_string(block_size)};
    if (forwarding) {
        standby.push_back("--forward");
        standby.push_back("nvmf://127.0.0.1:" + std::to_string(a.nvmf_port) + "/" + k_nqn + "?" + k_params);
    }
    auto sb = b.ctl(standby);
    ASSERT_EQ(sb.status, 0) << sb.out << b.log_tail();

    // The guest: path a by the tool's own connect, path b by the script.
    const std::string script = work.path + "/mp.sh";
    {
        std::ofstream s(script);
        s << "echo \"multipath=$(cat /sys/module/nvme_core/parameters/multipath)\"\n"
          << "nvme connect -t tcp -a 10.0.2.2 -s " << b.nvmf_port << " -n " << k_nqn << " || echo CONNECT-B-FAILED\n"
          << "sleep 2\n"
          << "for p in /sys/block/nvme*c*n1; do echo \"path $p $(cat $p/ana_state)\"; done\n"
          << "nvme list-subsys 2>&1 | head -20\n"
          << "echo MP-READY\n"
          << "fio --name=mp --filename=$KI_DEV --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=8 "
             "--size=8M --rate_iops=250 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 --eta=never "
             "> /tmp/fio.log 2>&1 &\n"
          << "FIO=$!\n";
        if (forwarding) {
            // Mid-write: drop the optimized path (the controller to a).
            s << "sleep 3\n"
              << "for c in /sys/class/nvme/nvme*; do grep -q 'trsvcid=" << a.nvmf_port
              << "' $c/address 2>/dev/null && { echo \"DROP $(basename $c)\"; nvme disconnect -d $(basename $c); }; "
                 "done\n";
        }
        s << "wait $FIO\n"
          << "echo \"FIO-RC $?\"\n"
          << "grep -E 'err=|verify' /tmp/fio.log | head -5\n"
          << "for p in /sys/block/nvme*c*n1; do echo \"after $p $(cat $p/ana_state)\"; done\n";
    }
    proc vm;
    ASSERT_TRUE(vm.start({KERNEL_INITIATOR, "run", "--target", "127.0.0.1:" + std::to_string(a.nvmf_port), "--nqn",
                          k_nqn, "--no-discover", "--script", script, "--script-timeout", "600", "--timeout", "900"},
                         work.path + "/vm.log"));
    ASSERT_TRUE(vm.wait_for("MP-READY", 600s)) << tail(vm.output(), 60);
    const std::string ready = vm.output();
    EXPECT_NE(ready.find("multipath=Y"), std::string::npos) << tail(ready, 60);
    EXPECT_EQ(ready.find("CONNECT-B-FAILED"), std::string::npos) << tail(ready, 60);
    EXPECT_NE(ready.find(" optimized"), std::string::npos) << "path a optimized\n" << tail(ready, 60);
    if (forwarding) {
        EXPECT_NE(ready.find(" non-optimized"), std::string::npos) << "path b non-optimized\n" << tail(ready, 60);
        const int rc = vm.wait(900s);
        const std::string out = vm.output();
        EXPECT_EQ(rc, 0) << tail(out, 60);
        EXPECT_NE(out.find("DROP nvme"), std::string::npos) << "the guest did not drop path a\n" << tail(out, 60);
        EXPECT_NE(out.find("FIO-RC 0"), std::string::npos) << tail(out, 60);
        EXPECT_NE(out.find("err= 0"), std::string::npos) << tail(out, 60);
        // After the drop the only path left is b's, non-optimized: every
        // write fio made after it (about 5 s of its 8) went through the
        // forwarding path to a's nexus, and its verify read them back.
        unsigned paths = 0;
        for (std::size_t at = out.find("\nafter "); at != std::string::npos; at = out.find("\nafter ", at + 1)) {
            const std::string line = out.substr(at + 1, out.find('\n', at + 1) - at - 1);
            ++paths;
            EXPECT_NE(line.find(" non-optimized"), std::string::npos) << line;
        }
        EXPECT_EQ(paths, 1u) << tail(out, 60);
        EXPECT_GT(nexus_writes(a), 0) << a.log_tail();
        for (node* n : {&a, &b, &c}) EXPECT_EQ(n->stop(), 0) << n->log_tail();
        return;
    }
    EXPECT_NE(ready.find(" inaccessible"), std::string::npos) << "path b inaccessible\n" << tail(ready, 60);

    // fio writes at 250 IOPS for about 8 s: kill a 3 s in.
    std::this_thread::sleep_for(3s);
    const auto killed = steady::now();
    if (kill_old) a.kill9();
    std::vector<std::string> takeover = create;
    takeover.insert(takeover.end(), {"--takeover", "--nqn", k_nqn});
    auto t = b.ctl(takeover);
    const auto taken = steady::now();
    ASSERT_EQ(t.status, 0) << t.out << b.log_tail();
    std::int64_t first_write_ms = -1;
    while (steady::now() - killed < 120s) {
        if (nexus_writes(b) > 0) {
            first_write_ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - killed).count();
            break;
        }
        std::this_thread::sleep_for(20ms);
    }
    std::fprintf(stderr, "multipath %s: takeover call %lld ms after the start; first write on b %lld ms after it\n",
                 kill_old ? "failover (a killed)" : "takeover (a alive)",
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(taken - killed).count()),
                 static_cast<long long>(first_write_ms));
    EXPECT_GE(first_write_ms, 0) << "no write reached b's nexus\n" << b.log_tail();

    const int rc = vm.wait(900s);
    const std::string out = vm.output();
    EXPECT_EQ(rc, 0) << tail(out, 60);
    EXPECT_NE(out.find("FIO-RC 0"), std::string::npos) << tail(out, 60);
    EXPECT_NE(out.find("err= 0"), std::string::npos) << tail(out, 60);
    // After the takeover b's path reads optimized (the event); with a
    // killed, a's reads the last state the kernel saw, optimized too.
    EXPECT_NE(out.find("\nafter "), std::string::npos) << tail(out, 60);
    unsigned optimized = 0;
    for (std::size_t at = out.find("\nafter "); at != std::string::npos; at = out.find("\nafter ", at + 1)) {
        const std::string line = out.substr(at + 1, out.find('\n', at + 1) - at - 1);
        optimized += line.find(" optimized") != std::string::npos;
    }
    EXPECT_EQ(optimized, kill_old ? 2u : 1u) << tail(out, 60);
    auto v = query_nexus(b, "nx");
    EXPECT_NE(v.state, "fenced") << describe(v);
    if (!kill_old) {
        // a was fenced by the takeover and says so; the kernel stopped
        // using its path (its refused writes carried the path status).
        auto old = query_nexus(a, "nx");
        EXPECT_EQ(old.state, "fenced") << describe(old);
        EXPECT_NE(out.find(" inaccessible\n", out.find("\nafter ")), std::string::npos)
            << "a's path reads inaccessible after the takeover\n" << tail(out, 60);
        EXPECT_EQ(a.stop(), 0) << a.log_tail();
    }
    for (node* n : {&b, &c}) EXPECT_EQ(n->stop(), 0) << n->log_tail();
}

TEST(cluster, nexus_node_killed_under_kernel_multipath_fio) { run_multipath(scenario::kill_old); }

// Two nexuses race (issue 13) under the kernel's multipath: b takes over
// while a is alive and fio writes through a.
TEST(cluster, nexus_taken_over_alive_under_kernel_multipath_fio) { run_multipath(scenario::takeover); }

// A forwarding path (docs/ana.md, "Forwarding paths") under the kernel's
// multipath: the guest drops its optimized path mid-write and fio goes on
// through the non-optimized one, which sends its I/O on to a's nexus.
TEST(cluster, forwarding_path_serves_when_the_optimized_path_goes_under_kernel_multipath_fio) {
    run_multipath(scenario::forwarding);
}

}  // namespace
