// Every control operation against a real engine, twice: through the RPC
// (rpc_client over TCP to the engine's Cap'n Proto server) and through the
// embedded handle directly; success and each error code. Plus: 8 clients at
// once, a malformed Cap'n Proto message, the unix socket, and a restart that
// re-imports pools and re-shares replicas from the state file.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "rpc/client.hh"
#include "rpc/embedded.hh"
#include "tests/rpc/rpc_fixture.hh"
#include "runtime/cores.hh"
#include "storage/block_device.hh"

namespace {

using namespace ioe;
using namespace ioe::rpc;
using namespace ioe::test;

TEST_P(control, node_info) {
    auto n = api->info();
    EXPECT_EQ(n.name, "embedded");
    EXPECT_EQ(n.version, engine_version);
    EXPECT_EQ(n.shards, test_shards());
    EXPECT_EQ(n.cores.size(), test_shards());
    EXPECT_EQ(n.poll_mode, "adaptive");
    EXPECT_NE(n.memory.find("DMA pool"), std::string::npos);
    EXPECT_NE(std::find(n.features.begin(), n.features.end(), "nvmf-target"), n.features.end());
}

TEST_P(control, devices) {
    auto d = api->create_device("malloc:///m0?size_mb=8&blk_size=512");
    EXPECT_EQ(d.device.name, "m0");
    EXPECT_EQ(d.device.product, "malloc");
    EXPECT_EQ(d.device.block_size, 512u);
    EXPECT_EQ(d.device.block_count, 8u * 2048);
    api->create_device("null:///n0?size_mb=16");
    auto list = api->list_devices();
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].device.name, "m0");
    EXPECT_EQ(list[1].device.name, "n0");

    EXPECT_CODE(api->create_device("malloc:///m0?size_mb=8"), storage_errc::already_exists);
    EXPECT_CODE(api->create_device("nope:///x"), storage_errc::invalid_argument);
    EXPECT_CODE(api->create_device("malloc:///m1?size_mb=x"), storage_errc::invalid_argument);
    EXPECT_CODE(api->create_device("uring://" + dir.path + "/missing.img"), storage_errc::not_found);
    EXPECT_CODE(api->destroy_device("nope"), storage_errc::not_found);

    auto s = api->share_device("n0", {"nqn.2014-08.org.nvmexpress:uuid:0000"});
    EXPECT_EQ(s.nqn, std::string(share_nqn_prefix) + "n0");
    EXPECT_EQ(s.port, eng->nvmf_port());
    EXPECT_EQ(api->list_devices()[1].share_nqn, s.nqn);
    auto subs = api->nvmf_subsystems();
    ASSERT_EQ(subs.size(), 1u);
    EXPECT_EQ(subs[0].nqn, s.nqn);
    ASSERT_EQ(subs[0].namespaces.size(), 1u);
    EXPECT_EQ(subs[0].namespaces[0].device, "n0");
    EXPECT_EQ(subs[0].allowed_hosts, std::vector<std::string>{"nqn.2014-08.org.nvmexpress:uuid:0000"});
    EXPECT_CODE(api->share_device("nope", {}), storage_errc::not_found);
    EXPECT_CODE(api->share_device("m0", {"not-an-nqn"}), storage_errc::invalid_argument);
    api->unshare_device("n0");
    EXPECT_TRUE(api->nvmf_subsystems().empty());
    EXPECT_CODE(api->unshare_device("n0"), storage_errc::not_found);
    EXPECT_CODE(api->unshare_device("nope"), storage_errc::not_found);

    api->destroy_device("m0");
    api->destroy_device("n0");
    EXPECT_TRUE(api->list_devices().empty());
}

TEST_P(control, pools) {
    std::string img = dir.path + "/p.img";
    make_file(img, 64 << 20);
    std::string uri = "uring://" + img;
    auto p = api->create_pool("p1", uri);
    EXPECT_EQ(p.pool.name, "p1");
    EXPECT_EQ(p.uri, uri);
    EXPECT_GT(p.pool.capacity_bytes, 32u << 20);
    EXPECT_EQ(p.pool.replica_count, 0u);
    auto cap = p.pool.capacity_bytes;

    EXPECT_CODE(api->create_pool("p1", "malloc:///other?size_mb=64"), storage_errc::already_exists);
    EXPECT_CODE(api->create_pool("p2", uri), storage_errc::already_exists);
    EXPECT_CODE(api->create_pool("p3", "bogus"), storage_errc::invalid_argument);
    EXPECT_CODE(api->create_pool("bad/name", "malloc:///b?size_mb=64"), storage_errc::invalid_argument);
    EXPECT_TRUE(api->list_devices().size() == 1) << "a failed create leaves no device behind";
    EXPECT_CODE(api->export_pool("nope"), storage_errc::not_found);
    EXPECT_CODE(api->destroy_pool("nope"), storage_errc::not_found);
    EXPECT_CODE(api->grow_pool("nope"), storage_errc::not_found);
    EXPECT_CODE(api->import_pool("malloc:///empty?size_mb=8"), storage_errc::not_found);
    EXPECT_CODE(api->destroy_device(img), storage_errc::busy);

    api->create_replica("p1", "r1", 8 << 20, false);
    make_file(img, 128 << 20);
    auto grown = api->grow_pool("p1");
    EXPECT_GT(grown.pool.capacity_bytes, cap);

    api->export_pool("p1");
    EXPECT_TRUE(api->list_pools().empty());
    EXPECT_TRUE(api->list_devices().empty());
    auto back = api->import_pool(uri);
    EXPECT_EQ(back.pool.name, "p1");
    EXPECT_EQ(back.pool.capacity_bytes, grown.pool.capacity_bytes);
    EXPECT_EQ(back.pool.replica_count, 1u);
    EXPECT_CODE(api->import_pool(uri), storage_errc::already_exists);
    ASSERT_EQ(api->list_replicas("p1").size(), 1u);

    api->destroy_pool("p1");
    EXPECT_TRUE(api->list_pools().empty());
    EXPECT_CODE(api->import_pool(uri), storage_errc::not_found);
}

TEST_P(control, replicas) {
    api->create_pool("p1", "malloc:///pm?size_mb=64");
    auto r = api->create_replica("p1", "r1", 8 << 20, false);
    EXPECT_EQ(r.replica.name, "r1");
    EXPECT_EQ(r.replica.pool, "p1");
    EXPECT_EQ(r.replica.size_bytes, 8u << 20);
    EXPECT_FALSE(r.replica.thin);
    EXPECT_EQ(r.replica.allocated_bytes, 8u << 20);
    auto t = api->create_replica("p1", "t1", 16 << 20, true);
    EXPECT_TRUE(t.replica.thin);
    EXPECT_EQ(t.replica.allocated_bytes, 0u);

    EXPECT_CODE(api->create_replica("p1", "r1", 4 << 20, false), storage_errc::already_exists);
    EXPECT_CODE(api->create_replica("nope", "r2", 4 << 20, false), storage_errc::not_found);
    EXPECT_CODE(api->create_replica("p1", "big", 1ull << 30, false), storage_errc::no_space);
    EXPECT_CODE(api->create_replica("p1", "zero", 0, false), storage_errc::invalid_argument);
    EXPECT_CODE(api->create_replica("p1", "pm", 4 << 20, false), storage_errc::already_exists);  // a device's name

    auto grown = api->resize_replica("r1", 12 << 20);
    EXPECT_EQ(grown.replica.size_bytes, 12u << 20);
    EXPECT_CODE(api->resize_replica("r1", 4 << 20), storage_errc::invalid_argument);
    EXPECT_CODE(api->resize_replica("nope", 4 << 20), storage_errc::not_found);
    EXPECT_CODE(api->resize_replica("r1", 1ull << 30), storage_errc::no_space);

    auto all = api->list_replicas();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(api->list_replicas("p1").size(), 2u);
    EXPECT_CODE(api->list_replicas("nope"), storage_errc::not_found);

    const std::string host = "nqn.2014-08.org.nvmexpress:uuid:1111";
    auto s = api->share_replica("r1", {host});
    EXPECT_EQ(s.nqn, std::string(share_nqn_prefix) + "r1");
    EXPECT_EQ(s.address, "127.0.0.1");
    EXPECT_EQ(s.port, eng->nvmf_port());
    EXPECT_EQ(s.allowed_hosts, std::vector<std::string>{host});
    auto listed = api->list_replicas("p1");
    auto it = std::find_if(listed.begin(), listed.end(), [](auto& e) { return e.replica.name == "r1"; });
    ASSERT_NE(it, listed.end());
    EXPECT_EQ(it->share_nqn, s.nqn);
    EXPECT_EQ(it->allowed_hosts, std::vector<std::string>{host});
    // Sharing again changes the allowed hosts.
    auto again = api->share_replica("r1", {});
    EXPECT_TRUE(again.allowed_hosts.empty());
    EXPECT_TRUE(api->nvmf_subsystems().at(0).allowed_hosts.empty());
    EXPECT_CODE(api->share_replica("nope", {}), storage_errc::not_found);
    EXPECT_CODE(api->share_replica("r1", {"bad host"}), storage_errc::invalid_argument);
    EXPECT_CODE(api->share_device("r1", {}), storage_errc::invalid_argument);  // replica share is the way
    EXPECT_CODE(api->destroy_device("r1"), storage_errc::invalid_argument);

    api->unshare_replica("r1");
    EXPECT_TRUE(api->nvmf_subsystems().empty());
    EXPECT_CODE(api->unshare_replica("r1"), storage_errc::not_found);
    EXPECT_CODE(api->unshare_replica("nope"), storage_errc::not_found);

    // Destroying a shared replica unshares it.
    api->share_replica("t1", {});
    api->destroy_replica("t1");
    EXPECT_TRUE(api->nvmf_subsystems().empty());
    EXPECT_CODE(api->destroy_replica("t1"), storage_errc::not_found);
    api->destroy_replica("r1");
    EXPECT_TRUE(api->list_replicas().empty());
}

TEST_P(control, nvmf_listeners_and_hosts) {
    auto l = api->nvmf_listeners();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].transport, "tcp");
    EXPECT_EQ(l[0].address, "127.0.0.1");
    EXPECT_EQ(l[0].port, eng->nvmf_port());
    EXPECT_NE(l[0].port, 0);
    EXPECT_TRUE(api->nvmf_hosts().empty());
}

TEST_P(control, stats_count_io_and_reset) {
    api->create_pool("p1", "malloc:///pm?size_mb=64");
    api->create_replica("p1", "r1", 8 << 20, false);
    api->reset_stats(stats_kind::device);
    // Two 4 KiB writes and one read on the replica.
    eng->run([](node_service& svc) -> future<> {
        block_device* dev = co_await svc.devices().find("r1");
        auto buf = engine::current()->dma().allocate(4096);
        EXPECT_TRUE(buf.ok());
        std::memset(buf.value().data(), 0x5a, 4096);
        io_vec v = to_io_vec(buf.value());
        auto blocks = 4096 / dev->block_size();
        EXPECT_EQ(co_await dev->channel()->write(0, blocks, {&v, 1}), io_status::success);
        EXPECT_EQ(co_await dev->channel()->write(blocks, blocks, {&v, 1}), io_status::success);
        EXPECT_EQ(co_await dev->channel()->read(0, blocks, {&v, 1}), io_status::success);
    });
    auto s = api->stats(stats_kind::replica, "r1");
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].name, "r1");
    EXPECT_EQ(s[0].counters.write_ops, 2u);
    EXPECT_EQ(s[0].counters.read_ops, 1u);
    EXPECT_EQ(s[0].counters.write_bytes, 8192u);
    EXPECT_EQ(s[0].counters.read_bytes, 4096u);
    EXPECT_GT(s[0].counters.latency_ns_sum, 0u);
    EXPECT_GT(s[0].counters.latency_ns_min, 0u);
    EXPECT_LE(s[0].counters.latency_ns_min, s[0].counters.latency_ns_max);
    EXPECT_LE(s[0].counters.latency_ns_max, s[0].counters.latency_ns_sum);
    auto all = api->stats(stats_kind::device);
    EXPECT_EQ(all.size(), 2u);  // pm and r1
    api->reset_stats(stats_kind::replica, "r1");
    s = api->stats(stats_kind::replica, "r1");
    EXPECT_EQ(s[0].counters.write_ops, 0u);
    EXPECT_EQ(s[0].counters.latency_ns_sum, 0u);
    EXPECT_EQ(s[0].counters.read_bytes, 0u);
    EXPECT_CODE(api->stats(stats_kind::replica, "nope"), storage_errc::not_found);
    EXPECT_CODE(api->stats(stats_kind::device, "nope"), storage_errc::not_found);
    EXPECT_CODE(api->reset_stats(stats_kind::replica, "nope"), storage_errc::not_found);
}

TEST_P(control, state_write_failure_is_an_io_error) {
    // The state file cannot be replaced: a directory with something in it
    // stands where it goes.
    std::filesystem::remove(dir.path + "/state");
    std::filesystem::create_directories(dir.path + "/state/x");
    EXPECT_CODE(api->create_pool("p1", "malloc:///pm?size_mb=64"), storage_errc::io_error);
    std::filesystem::remove_all(dir.path + "/state");
}

INSTANTIATE_TEST_SUITE_P(faces, control, ::testing::Values(face::rpc, face::embedded),
                         [](const auto& info) { return info.param == face::rpc ? "rpc" : "embedded"; });

TEST(rpc, share_without_a_target_is_unavailable) {
    embedded_options o;
    o.dma_mb = 16;
    o.rpc = {"127.0.0.1:0"};
    embedded eng(o);
    rpc_client c(eng.rpc_addresses().at(0));
    c.create_device("null:///n0?size_mb=8");
    EXPECT_CODE(c.share_device("n0", {}), storage_errc::unavailable);
    EXPECT_TRUE(c.nvmf_listeners().empty());
}

TEST(rpc, unreachable_engine_is_unavailable) {
    rpc_client c("127.0.0.1:1");
    EXPECT_CODE(c.info(), storage_errc::unavailable);
}

TEST(rpc, unix_socket) {
    temp_dir dir;
    embedded eng(options_for(dir.path));
    rpc_client c("unix:" + dir.path + "/rpc.sock");
    EXPECT_EQ(c.info().name, "embedded");
    EXPECT_EQ(eng.rpc_addresses().at(1), "unix:" + dir.path + "/rpc.sock");
}

TEST(rpc, eight_clients_at_once) {
    temp_dir dir;
    embedded eng(options_for(dir.path));
    eng.create_pool("p1", "malloc:///pm?size_mb=128");
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            try {
                rpc_client c(eng.rpc_addresses().at(0));
                for (int i = 0; i < 10; ++i) {
                    std::string name = "r" + std::to_string(t) + "-" + std::to_string(i);
                    c.create_replica("p1", name, 4 << 20, i % 2 == 0);
                    if (c.info().shards == 0) ++failures;
                    c.share_replica(name, {});
                    c.destroy_replica(name);
                }
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
                ++failures;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_TRUE(eng.list_replicas().empty());
    EXPECT_TRUE(eng.nvmf_subsystems().empty());
}

TEST(rpc, malformed_message_is_refused_and_the_server_keeps_serving) {
    temp_dir dir;
    embedded eng(options_for(dir.path));
    auto addr = eng.rpc_addresses().at(0);
    auto port = static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
    const std::vector<std::string> garbage = {
        std::string("\xff\xff\xff\x7f\x00\x00\x00\x00", 8),                 // 2^31 segments
        std::string("\x00\x00\x00\x00\xff\xff\xff\x0f", 8) + "abcdefgh",    // a segment far larger than sent
        std::string("\x00\x00\x00\x00\x02\x00\x00\x00", 8) + std::string(16, '\xee'),  // a bogus message
        std::string(4096, '\x41'),
    };
    for (const auto& g : garbage) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        ASSERT_EQ(::send(fd, g.data(), g.size(), MSG_NOSIGNAL), static_cast<ssize_t>(g.size()));
        ::shutdown(fd, SHUT_WR);
        // The server drops the connection (EOF or reset) instead of waiting forever.
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[4096];
        ssize_t n;
        do {
            n = ::recv(fd, buf, sizeof buf, 0);
        } while (n > 0);
        EXPECT_TRUE(n == 0 || errno == ECONNRESET) << "errno " << errno;
        ::close(fd);
        rpc_client c(addr);
        EXPECT_EQ(c.info().name, "embedded");
    }
}

TEST(rpc, restart_reimports_pools_and_reshares_replicas) {
    temp_dir dir;
    std::string img = dir.path + "/p.img";
    make_file(img, 64 << 20);
    const std::string host = "nqn.2014-08.org.nvmexpress:uuid:2222";
    {
        embedded eng(options_for(dir.path));
        eng.create_pool("p1", "uring://" + img);
        eng.create_replica("p1", "r1", 8 << 20, false);
        eng.create_replica("p1", "r2", 8 << 20, true);
        eng.share_replica("r1", {host});
    }
    embedded eng(options_for(dir.path));
    auto pools = eng.list_pools();
    ASSERT_EQ(pools.size(), 1u);
    EXPECT_EQ(pools[0].pool.name, "p1");
    auto reps = eng.list_replicas();
    ASSERT_EQ(reps.size(), 2u);
    EXPECT_EQ(reps[0].replica.name, "r1");
    EXPECT_EQ(reps[0].share_nqn, std::string(share_nqn_prefix) + "r1");
    EXPECT_EQ(reps[0].allowed_hosts, std::vector<std::string>{host});
    EXPECT_TRUE(reps[1].share_nqn.empty());
    auto subs = eng.nvmf_subsystems();
    ASSERT_EQ(subs.size(), 1u);
    EXPECT_EQ(subs[0].allowed_hosts, std::vector<std::string>{host});
    // Unshare and export are remembered too.
    eng.unshare_replica("r1");
    eng.export_pool("p1");
    eng.stop();
    embedded third(options_for(dir.path));
    EXPECT_TRUE(third.list_pools().empty());
    EXPECT_TRUE(third.nvmf_subsystems().empty());
}

TEST(rpc, a_pool_missing_at_restart_stays_in_the_state) {
    temp_dir dir;
    std::string img = dir.path + "/p.img";
    make_file(img, 64 << 20);
    {
        embedded eng(options_for(dir.path));
        eng.create_pool("p1", "uring://" + img);
    }
    std::filesystem::rename(img, img + ".away");
    {
        embedded eng(options_for(dir.path));
        EXPECT_TRUE(eng.list_pools().empty());
    }
    std::filesystem::rename(img + ".away", img);
    embedded eng(options_for(dir.path));
    ASSERT_EQ(eng.list_pools().size(), 1u);
}

}  // namespace
