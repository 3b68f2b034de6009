// A nexus with a local child (bdev:///) and a remote one (nvmf://, through
// our initiator to our target serving a malloc device over loopback), on 2
// shards: writes reach both; the target going away faults the remote child
// (the write still succeeds on the local one, recorded first); after the
// target is back on the same port, online_child rebuilds only the segments
// written meanwhile, over NVMe/TCP, and both copies are identical. Then the
// nexus itself is published by the target and read back through a second
// initiator.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/target/target.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

constexpr char k_remote_nqn[] = "nqn.2026-11.io.ioengine:remote-replica";
constexpr char k_nexus_nqn[] = "nqn.2026-11.io.ioengine:nexus";

future<io_status> io_on(unsigned shard, block_device* dev, bool write, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(30s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        const auto blocks = static_cast<std::uint32_t>(buf.size() / dev->block_size());
        co_return write ? co_await ch->write(lba, blocks, io_vecs(&v, 1)) : co_await ch->read(lba, blocks, io_vecs(&v, 1));
    }));
}

future<std::vector<std::byte>> whole(block_device* dev) {
    std::vector<std::byte> all(dev->block_count() * dev->block_size());
    for (std::size_t off = 0; off < all.size(); off += 128 * 1024) {
        std::vector<std::byte> b(std::min<std::size_t>(128 * 1024, all.size() - off));
        EXPECT_EQ(co_await io_on(0, dev, false, off / dev->block_size(), b), io_status::success);
        std::memcpy(all.data() + off, b.data(), b.size());
    }
    co_return all;
}

future<std::unique_ptr<nvme::nvmf_target>> serve(std::uint16_t port, const char* nqn, block_device* dev) {
    auto t = std::make_unique<nvme::nvmf_target>("127.0.0.1", port);
    nvme::subsystem_config c;
    c.nqn = nqn;
    c.namespaces.push_back(dev);
    co_await t->add_subsystem(std::move(c));
    co_await t->start();
    co_return t;
}

future<int> body() {
    nvme::register_nvmf_backend();
    device_registry devices;
    block_device* local = co_await devices.create("malloc:///local?size_mb=4&blk_size=512");
    block_device* remote_disk = co_await devices.create("malloc:///remote?size_mb=4&blk_size=512");
    auto target = co_await serve(0, k_remote_nqn, remote_disk);
    const std::uint16_t port = target->port();
    memory_health_store store;
    nexus_options o;
    o.health_key = "/nexus/remote";
    o.health = &store;
    o.registry = &devices;
    o.segment_bytes = 64 * 1024;
    const std::string remote_uri =
        fmt::format("nvmf://127.0.0.1:{}/{}?fast_io_fail_ms=200&reconnect_delay_ms=50", port, k_remote_nqn);
    auto n = co_await nexus::create("nxr", uuid::random(), {"bdev:///local", remote_uri}, o);
    EXPECT_EQ(n->state(), nexus_state::online);

    std::vector<std::byte> a(64 * 1024);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::byte>(i * 7 + 1);
    EXPECT_EQ(co_await io_on(1, n.get(), true, 256, a), io_status::success);
    std::vector<std::byte> ra(a.size());
    EXPECT_EQ(co_await io_on(0, remote_disk, false, 256, ra), io_status::success);
    EXPECT_TRUE(ra == a) << "the write did not reach the remote replica";

    // The remote target goes away: writes go on, the remote child faults.
    co_await target->stop();
    target.reset();
    std::vector<std::byte> b(8192, std::byte{0x42});
    EXPECT_EQ(co_await io_on(0, n.get(), true, 1000, b), io_status::success);
    EXPECT_EQ(co_await io_on(1, n.get(), true, 3000, b), io_status::success);
    EXPECT_EQ(n->state(), nexus_state::degraded);
    auto info = n->info();
    EXPECT_EQ(info.children[1].state, child_state::faulted);

    // Back on the same port: a partial rebuild over NVMe/TCP.
    target = co_await serve(port, k_remote_nqn, remote_disk);
    co_await sleep(300ms);  // the initiator reconnects
    co_await n->online_child(remote_uri);
    co_await with_timeout(30s, n->rebuilds_idle());
    EXPECT_EQ(n->state(), nexus_state::online);
    EXPECT_FALSE(n->rebuild_history().empty());
    if (!n->rebuild_history().empty()) {
        EXPECT_EQ(n->rebuild_history().back().state, rebuild_state::completed);
        EXPECT_TRUE(n->rebuild_history().back().partial);
    }
    EXPECT_TRUE(co_await whole(local) == co_await whole(remote_disk)) << "the replicas differ after the rebuild";

    // The nexus published over NVMe/TCP, read back through an initiator.
    co_await target->add_subsystem(nvme::subsystem_config{k_nexus_nqn, "nexus01", "ioengine nexus", {n.get()}, {}, {}});
    block_device* front = co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=front", port, k_nexus_nqn));
    std::vector<std::byte> rb(8192);
    EXPECT_EQ(co_await io_on(1, front, false, 3000, rb), io_status::success);
    EXPECT_TRUE(rb == b);
    co_await devices.destroy("front");

    co_await target->remove_subsystem(k_nexus_nqn);
    co_await n->shutdown();
    co_await n->close();
    n.reset();
    co_await target->stop();
    target.reset();
    co_await devices.close_all();
    co_return 0;
}

}  // namespace

TEST(nexus_remote, local_and_nvmf_children_with_partial_rebuild_over_tcp) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return body(); }), 0);
}
