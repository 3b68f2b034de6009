// The NVMe/TCP initiator's resilience and options against our own target,
// on 2 shards: reconnect with back-off after the target restarts on the same
// port (data written before is read back from both shards afterwards, and
// writes after it land), giving up after ctrl_loss_timeout (I/O then fails
// at once), header and data digests on every path (in-capsule, R2T, MDTS
// split), and the nvmf:// URI through the device registry with its
// parameters and the errors for bad ones. Every wait is bounded.
#include <gtest/gtest.h>

#include <chrono>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/initiator/nvmf_device.hh"
#include "nvme/target/target.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace ioe::nvme;
using namespace std::chrono_literals;

namespace {

constexpr char k_subnqn[] = "nqn.2026-11.io.ioengine:reconnect";
constexpr char k_host[] = "nqn.2014-08.org.nvmexpress:uuid:reconnect-host";
constexpr char k_ns_uri[] = "malloc:///ns?size_mb=16&blk_size=4096";
constexpr std::uint32_t k_block = 4096;

template <typename T>
future<T> bounded(future<T> f, steady_clock::duration d = 15s) {
    return with_timeout(d, std::move(f));
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + seed * 37 + (i >> 12)) & 0xff);
    return v;
}

// One read or write of buf (split into two io_vecs) on `shard`'s channel.
future<io_status> rw_on(unsigned shard, block_device* dev, bool write, std::uint64_t lba, std::vector<std::byte>& buf) {
    return bounded(submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        const auto blocks = static_cast<std::uint32_t>(buf.size() / dev->block_size());
        const std::uint32_t first = static_cast<std::uint32_t>(buf.size() / 4);
        io_vec iov[2] = {{buf.data(), first, -1}, {buf.data() + first, static_cast<std::uint32_t>(buf.size() - first), -1}};
        co_return write ? co_await ch->write(lba, blocks, io_vecs(iov, 2)) : co_await ch->read(lba, blocks, io_vecs(iov, 2));
    }));
}

future<std::unique_ptr<nvmf_target>> start_target(block_device* ns, std::uint16_t port) {
    auto t = std::make_unique<nvmf_target>("127.0.0.1", port);
    subsystem_config c;
    c.nqn = k_subnqn;
    c.namespaces.push_back(ns);
    co_await t->add_subsystem(std::move(c));
    co_await t->start();
    co_return t;
}

future<int> run_restart() {
    device_registry devices;
    block_device* ns = co_await devices.create(k_ns_uri);
    auto target = co_await start_target(ns, 0);
    const std::uint16_t port = target->port();
    nvmf_options opts;
    opts.reconnect_delay = 50ms;
    opts.max_reconnect_delay = 200ms;
    opts.ctrl_loss_timeout = 20s;
    opts.fast_io_fail = 5s;
    opts.kato = 2s;
    auto dev = co_await bounded(nvmf_device::connect("remote", "127.0.0.1", port, k_subnqn, k_host, opts));
    block_device* d = dev.get();
    const std::uint16_t first_cntlid = dev->cntlid();
    auto a = pattern(64 * 1024, 1), b = pattern(8 * 1024, 2);
    EXPECT_EQ(co_await rw_on(0, d, true, 10, a), io_status::success);
    EXPECT_EQ(co_await rw_on(1, d, true, 40, b), io_status::success);

    // The target goes away and comes back on the same port, same namespace.
    co_await bounded(target->stop(), 30s);
    target.reset();
    co_await sleep(300ms);  // a few failed reconnect attempts
    EXPECT_FALSE(dev->connected());
    EXPECT_FALSE(dev->lost());
    target = co_await start_target(ns, port);

    // I/O on both shards waits for the reconnect, then succeeds.
    std::vector<std::byte> ra(a.size()), rb(b.size());
    EXPECT_EQ(co_await rw_on(1, d, false, 10, ra), io_status::success);
    EXPECT_EQ(co_await rw_on(0, d, false, 40, rb), io_status::success);
    EXPECT_TRUE(ra == a);
    EXPECT_TRUE(rb == b);
    EXPECT_TRUE(dev->connected());
    EXPECT_GE(dev->reconnects(), 1u);
    EXPECT_NE(dev->cntlid(), 0);
    (void)first_cntlid;
    auto c = pattern(16 * 1024, 3);
    EXPECT_EQ(co_await rw_on(1, d, true, 80, c), io_status::success);
    std::vector<std::byte> rc(c.size());
    EXPECT_EQ(co_await rw_on(0, d, false, 80, rc), io_status::success);
    EXPECT_TRUE(rc == c);
    // The keep-alive keeps the new controller: still there after 2 KATOs.
    co_await sleep(4s);
    EXPECT_EQ(target->connected_hosts().size(), 1u);
    EXPECT_EQ(co_await rw_on(0, d, false, 80, rc), io_status::success);

    co_await bounded(dev->close());
    dev.reset();
    co_await bounded(target->stop(), 30s);
    target.reset();
    co_await devices.close_all();
    co_return 0;
}

future<int> run_give_up() {
    device_registry devices;
    block_device* ns = co_await devices.create(k_ns_uri);
    auto target = co_await start_target(ns, 0);
    nvmf_options opts;
    opts.reconnect_delay = 50ms;
    opts.ctrl_loss_timeout = 300ms;
    opts.fast_io_fail = 10s;
    auto dev = co_await bounded(nvmf_device::connect("remote", "127.0.0.1", target->port(), k_subnqn, k_host, opts));
    block_device* d = dev.get();
    co_await bounded(target->stop(), 30s);
    target.reset();
    const auto deadline = steady_clock::now() + 10s;
    while (!dev->lost() && steady_clock::now() < deadline) co_await sleep(20ms);
    EXPECT_TRUE(dev->lost());
    // Gave up: I/O fails at once, not after fast_io_fail.
    const auto t0 = steady_clock::now();
    std::vector<std::byte> r(k_block);
    EXPECT_EQ(co_await rw_on(1, d, false, 0, r), io_status::namespace_not_ready);
    EXPECT_LT(steady_clock::now() - t0, 2s);
    co_await bounded(dev->close());
    dev.reset();
    co_await devices.close_all();
    co_return 0;
}

future<int> run_digests() {
    device_registry devices;
    block_device* ns = co_await devices.create(k_ns_uri);
    auto target = co_await start_target(ns, 0);
    nvmf_options opts;
    opts.header_digest = true;
    opts.data_digest = true;
    auto dev = co_await bounded(nvmf_device::connect("remote", "127.0.0.1", target->port(), k_subnqn, k_host, opts));
    block_device* d = dev.get();
    // In-capsule (4 KiB), R2T (64 KiB) and MDTS split (256 KiB), each read
    // back on the other shard.
    unsigned seed = 10;
    for (std::size_t bytes : {std::size_t{4096}, std::size_t{65536}, std::size_t{262144}}) {
        for (unsigned shard = 0; shard < 2; ++shard) {
            auto w = pattern(bytes, ++seed);
            const std::uint64_t lba = 100 + seed * 64;
            EXPECT_EQ(co_await rw_on(shard, d, true, lba, w), io_status::success) << bytes;
            std::vector<std::byte> r(bytes);
            EXPECT_EQ(co_await rw_on(1 - shard, d, false, lba, r), io_status::success) << bytes;
            EXPECT_TRUE(r == w) << bytes << " bytes on shard " << shard;
        }
    }
    co_await bounded(dev->close());
    dev.reset();
    co_await bounded(target->stop(), 30s);
    target.reset();
    co_await devices.close_all();
    co_return 0;
}

// devices.create(uri) must fail with invalid_argument whose message has `part`.
future<> expect_bad_uri(device_registry& devices, std::string uri, std::string part) {
    try {
        co_await devices.create(uri);
        ADD_FAILURE() << uri << " was accepted";
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::invalid_argument) << uri << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << uri << ": " << e.what();
    }
}

future<int> run_uri() {
    register_nvmf_backend();
    device_registry devices;
    block_device* ns = co_await devices.create(k_ns_uri);
    auto target = co_await start_target(ns, 0);
    const std::string uri = fmt::format("nvmf://127.0.0.1:{}/{}?hostnqn={}&name=remote0&hdgst=1&ddgst=1&kato_ms=5000",
                                        target->port(), k_subnqn, k_host);
    block_device* d = co_await bounded(devices.create(uri));
    EXPECT_EQ(d->name(), "remote0");
    EXPECT_EQ(d->block_size(), k_block);
    EXPECT_EQ(d->block_count(), ns->block_count());
    auto* nd = dynamic_cast<nvmf_device*>(d);
    EXPECT_NE(nd, nullptr);
    if (nd) {
        EXPECT_EQ(nd->hostnqn(), k_host);
        EXPECT_EQ(nd->options().kato, 5000ms);
        EXPECT_TRUE(nd->options().header_digest);
    }
    auto w = pattern(32 * 1024, 9);
    EXPECT_EQ(co_await rw_on(1, d, true, 5, w), io_status::success);
    std::vector<std::byte> r(w.size());
    EXPECT_EQ(co_await rw_on(0, d, false, 5, r), io_status::success);
    EXPECT_TRUE(r == w);
    // Through bdev:/// like any device.
    block_device* again = co_await devices.find("remote0");
    EXPECT_EQ(again, d);
    co_await devices.destroy("remote0");

    co_await expect_bad_uri(devices, "nvmf:///nqn.2026-11.x", "missing host");
    co_await expect_bad_uri(devices, "nvmf://127.0.0.1:4420/", "missing subsystem NQN");
    co_await expect_bad_uri(devices, "nvmf://127.0.0.1:4420/not-an-nqn", "not an NQN");
    co_await expect_bad_uri(devices, "nvmf://127.0.0.1:4420/nqn.2026-11.x?bogus=1", "bogus");
    co_await expect_bad_uri(devices, "nvmf://127.0.0.1:4420/nqn.2026-11.x?hdgst=2", "hdgst");
    co_await expect_bad_uri(devices, "nvmf://127.0.0.1:4420/nqn.2026-11.x?kato_ms=soon", "kato_ms");
    // The default host NQN is a UUID NQN.
    EXPECT_EQ(default_host_nqn().rfind("nqn.2014-08.org.nvmexpress:uuid:", 0), 0u);

    co_await bounded(target->stop(), 30s);
    target.reset();
    co_await devices.close_all();
    co_return 0;
}

}  // namespace

TEST(nvmf_reconnect, target_restart_on_same_port) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return run_restart(); }), 0);
}

TEST(nvmf_reconnect, gives_up_after_ctrl_loss_timeout) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return run_give_up(); }), 0);
}

TEST(nvmf_reconnect, header_and_data_digests) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return run_digests(); }), 0);
}

TEST(nvmf_reconnect, nvmf_uri_through_the_registry) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return run_uri(); }), 0);
}
