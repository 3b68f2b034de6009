// The NVMe/TCP initiator (nvme/initiator/nvmf_device.hh) against our own
// target over loopback, on an engine with 2 shards: connect and identify,
// writes in-capsule (4 KiB), by R2T (64 KiB in two io_vecs) and split at MDTS
// (256 KiB) from one shard read back from the other and compared with the
// malloc device's memory; flush, write zeroes, unmap; the checked front's LBA
// range; an error that comes from the target (a fault_device namespace fails
// a read with a media error); a command timeout (a delayed write completes as
// aborted); keep-alive with a short KATO; Connect refusals (unknown NQN, host
// not allowed) and a refused TCP connection as storage_error; and a target
// that goes away under an open device. Every wait is bounded.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nvme/initiator/nvmf_device.hh"
#include "nvme/target/target.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/fault_device.hh"
#include "storage/malloc_device.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace ioe::nvme;
using namespace std::chrono_literals;

namespace {

constexpr char k_subnqn[] = "nqn.2026-11.io.ioengine:init-test";
constexpr char k_fault_nqn[] = "nqn.2026-11.io.ioengine:init-fault";
constexpr char k_host[] = "nqn.2014-08.org.nvmexpress:uuid:init-test-host";
constexpr char k_ns_uri[] = "malloc:///ns?size_mb=16&blk_size=4096";
constexpr std::uint32_t k_block = 4096;
constexpr std::uint64_t k_blocks = 16ull * 1024 * 1024 / k_block;

template <typename T>
future<T> bounded(future<T> f, steady_clock::duration d = 10s) {
    return with_timeout(d, std::move(f));
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 13 + seed * 101 + (i >> 12)) & 0xff);
    return v;
}

bool all_zero(const std::byte* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] != std::byte{0}) return false;
    return true;
}

enum class op { read, write, flush, zeroes, unmap };

// One I/O on `shard`'s channel of dev; buf split into `pieces` io_vecs.
future<io_status> io_on(unsigned shard, block_device* dev, op o, std::uint64_t lba, std::uint32_t blocks,
                        std::byte* buf = nullptr, unsigned pieces = 1) {
    return bounded(submit_to(shard, [=]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        const std::uint32_t bytes = blocks * dev->block_size();
        std::vector<io_vec> iov;
        if (buf) {
            // Uneven pieces: the first one is a quarter of the transfer.
            const std::uint32_t first = pieces > 1 ? bytes / 4 : bytes;
            iov.push_back(io_vec{buf, first, -1});
            if (pieces > 1) iov.push_back(io_vec{buf + first, bytes - first, -1});
        }
        switch (o) {
            case op::read: co_return co_await ch->read(lba, blocks, io_vecs(iov));
            case op::write: co_return co_await ch->write(lba, blocks, io_vecs(iov));
            case op::flush: co_return co_await ch->flush();
            case op::zeroes: co_return co_await ch->write_zeroes(lba, blocks);
            case op::unmap: co_return co_await ch->unmap(lba, blocks);
        }
        co_return io_status::internal_error;
    }));
}

// connect() must fail with a storage_error; returns it (code, message).
future<std::optional<storage_error>> connect_error(std::uint16_t port, std::string subnqn, std::string hostnqn) {
    try {
        auto dev = co_await bounded(nvmf_device::connect("bad", "127.0.0.1", port, subnqn, hostnqn));
        co_await dev->close();
        ADD_FAILURE() << "connect to " << subnqn << " as " << hostnqn << " succeeded";
    } catch (const storage_error& e) {
        co_return e;
    }
    co_return std::nullopt;
}

future<int> run_test() {
    device_registry devices;
    block_device* ns = co_await devices.create(k_ns_uri);
    auto* mem = dynamic_cast<malloc_device*>(ns);
    EXPECT_NE(mem, nullptr);
    auto faulty = std::make_unique<fault_device>("faulty", ns);

    auto target = std::make_unique<nvmf_target>("127.0.0.1", 0);
    subsystem_config a;
    a.nqn = k_subnqn;
    a.allowed_hosts = {k_host};
    a.namespaces.push_back(ns);
    co_await target->add_subsystem(std::move(a));
    subsystem_config b;
    b.nqn = k_fault_nqn;
    b.namespaces.push_back(faulty.get());
    co_await target->add_subsystem(std::move(b));
    co_await target->start();
    const std::uint16_t port = target->port();
    EXPECT_NE(port, 0);

    auto dev = co_await bounded(nvmf_device::connect("remote0", "127.0.0.1", port, k_subnqn, k_host));
    EXPECT_EQ(dev->product(), "nvmf");
    EXPECT_EQ(dev->block_size(), k_block);
    EXPECT_EQ(dev->block_count(), k_blocks);
    EXPECT_TRUE(dev->id().bytes == ns->id().bytes) << "uuid from the namespace descriptor list";
    EXPECT_GE(dev->in_capsule_bytes(), 4096u);
    EXPECT_LT(dev->in_capsule_bytes(), 65536u);
    EXPECT_EQ(dev->max_transfer_bytes(), 1024u * 1024);  // the target's MDTS
    EXPECT_EQ(dev->io_queues(), 2);
    block_device* d = dev.get();

    // 4 KiB in-capsule from shard 0, read back on shard 1.
    auto a4 = pattern(k_block, 1);
    EXPECT_EQ(co_await io_on(0, d, op::write, 10, 1, a4.data()), io_status::success);
    std::vector<std::byte> r4(k_block);
    EXPECT_EQ(co_await io_on(1, d, op::read, 10, 1, r4.data()), io_status::success);
    EXPECT_TRUE(r4 == a4);
    EXPECT_EQ(std::memcmp(mem->memory() + 10 * k_block, a4.data(), k_block), 0);

    // 64 KiB by R2T from shard 1 (two io_vecs), read back on shard 0 (two io_vecs).
    auto b64 = pattern(65536, 2);
    EXPECT_EQ(co_await io_on(1, d, op::write, 100, 16, b64.data(), 2), io_status::success);
    std::vector<std::byte> r64(65536);
    EXPECT_EQ(co_await io_on(0, d, op::read, 100, 16, r64.data(), 2), io_status::success);
    EXPECT_TRUE(r64 == b64);
    EXPECT_EQ(std::memcmp(mem->memory() + 100 * k_block, b64.data(), b64.size()), 0);

    // 256 KiB: split at MDTS (128 KiB) into two commands each way.
    auto c256 = pattern(256 * 1024, 3);
    EXPECT_EQ(co_await io_on(0, d, op::write, 200, 64, c256.data(), 2), io_status::success);
    std::vector<std::byte> r256(c256.size());
    EXPECT_EQ(co_await io_on(1, d, op::read, 200, 64, r256.data()), io_status::success);
    EXPECT_TRUE(r256 == c256);
    EXPECT_EQ(std::memcmp(mem->memory() + 200 * k_block, c256.data(), c256.size()), 0);

    // Several commands in flight on one channel.
    {
        std::vector<std::vector<std::byte>> bufs;
        std::vector<future<io_status>> fs;
        for (unsigned i = 0; i < 8; ++i) bufs.push_back(pattern(2 * k_block, 10 + i));
        for (unsigned i = 0; i < 8; ++i) fs.push_back(io_on(1, d, op::write, 400 + 2 * i, 2, bufs[i].data()));
        for (auto& f : fs) EXPECT_EQ(co_await std::move(f), io_status::success);
        for (unsigned i = 0; i < 8; ++i) {
            EXPECT_EQ(std::memcmp(mem->memory() + (400 + 2 * i) * k_block, bufs[i].data(), 2 * k_block), 0) << i;
        }
    }

    EXPECT_EQ(co_await io_on(0, d, op::flush, 0, 0), io_status::success);
    EXPECT_EQ(co_await io_on(1, d, op::flush, 0, 0), io_status::success);

    // Write Zeroes, then zeros on the other shard and in memory.
    EXPECT_EQ(co_await io_on(1, d, op::zeroes, 100, 16), io_status::success);
    EXPECT_EQ(co_await io_on(0, d, op::read, 100, 16, r64.data()), io_status::success);
    EXPECT_TRUE(all_zero(r64.data(), r64.size()));
    EXPECT_TRUE(all_zero(mem->memory() + 100 * k_block, 65536));

    // Unmap (Dataset Management deallocate), then zeros.
    EXPECT_EQ(co_await io_on(0, d, op::unmap, 200, 64), io_status::success);
    EXPECT_EQ(co_await io_on(1, d, op::read, 200, 64, r256.data()), io_status::success);
    EXPECT_TRUE(all_zero(r256.data(), r256.size()));
    EXPECT_TRUE(all_zero(mem->memory() + 200 * k_block, r256.size()));
    // What was not unmapped is still there.
    EXPECT_EQ(co_await io_on(1, d, op::read, 10, 1, r4.data()), io_status::success);
    EXPECT_TRUE(r4 == a4);

    // Past the end: the checked front refuses it.
    EXPECT_EQ(co_await io_on(0, d, op::read, k_blocks, 1, r4.data()), io_status::lba_out_of_range);
    EXPECT_EQ(co_await io_on(1, d, op::write, k_blocks - 1, 2, r64.data()), io_status::lba_out_of_range);

    // The fault subsystem: errors and delays that come from the target side,
    // a short command timeout and a short KATO (keep-alive every 500 ms).
    nvmf_options opts;
    opts.io_timeout = 500ms;
    opts.kato = 1000ms;
    auto dev2 = co_await bounded(nvmf_device::connect("remote1", "127.0.0.1", port, k_fault_nqn, k_host, opts));
    block_device* d2 = dev2.get();
    {
        const std::uint64_t rule = co_await faulty->add_rule(
            fault_rule::fail(op_mask::read, io_status::unrecovered_read_error).on_blocks(50, 51));
        EXPECT_EQ(co_await io_on(1, d2, op::read, 50, 1, r4.data()), io_status::unrecovered_read_error);
        EXPECT_EQ(co_await io_on(0, d2, op::read, 49, 2, r64.data()), io_status::unrecovered_read_error);
        EXPECT_EQ(co_await io_on(0, d2, op::read, 10, 1, r4.data()), io_status::success);
        EXPECT_TRUE(r4 == a4);
        co_await faulty->remove_rule(rule);
    }
    {
        const std::uint64_t rule =
            co_await faulty->add_rule(fault_rule::delay_by(op_mask::write, 1500ms).on_blocks(60, 61));
        auto w = pattern(k_block, 5);
        const auto t0 = steady_clock::now();
        EXPECT_EQ(co_await io_on(1, d2, op::write, 60, 1, w.data()), io_status::aborted);
        const auto took = steady_clock::now() - t0;
        EXPECT_GE(took, 450ms);
        EXPECT_LT(took, 1400ms);
        co_await faulty->remove_rule(rule);
        // The queue still works; the late completion is dropped when it comes.
        EXPECT_EQ(co_await io_on(1, d2, op::read, 10, 1, r4.data()), io_status::success);
        EXPECT_TRUE(r4 == a4);
    }
    // Longer than KATO: the keep-alive keeps the controller (and its queues).
    co_await sleep(2200ms);
    EXPECT_EQ(co_await io_on(1, d2, op::read, 10, 1, r4.data()), io_status::success);
    EXPECT_EQ(co_await io_on(0, d2, op::read, 10, 1, r4.data()), io_status::success);
    EXPECT_TRUE(r4 == a4);

    // Connect refusals.
    if (auto e = co_await connect_error(port, "nqn.2026-11.io.ioengine:nobody", k_host)) {
        EXPECT_EQ(e->code, storage_errc::not_found) << e->what();
        EXPECT_NE(std::string(e->what()).find("nqn.2026-11.io.ioengine:nobody"), std::string::npos) << e->what();
        EXPECT_NE(std::string(e->what()).find("SC 0x82"), std::string::npos) << e->what();
    } else {
        ADD_FAILURE() << "no error for an unknown NQN";
    }
    if (auto e = co_await connect_error(port, k_subnqn, "nqn.host:intruder")) {
        EXPECT_EQ(e->code, storage_errc::unavailable) << e->what();
        EXPECT_NE(std::string(e->what()).find("nqn.host:intruder"), std::string::npos) << e->what();
        EXPECT_NE(std::string(e->what()).find(k_subnqn), std::string::npos) << e->what();
        EXPECT_NE(std::string(e->what()).find("SC 0x84"), std::string::npos) << e->what();
    } else {
        ADD_FAILURE() << "no error for a host not allowed";
    }
    // Nothing listens on port 1.
    if (auto e = co_await connect_error(1, k_subnqn, k_host)) {
        EXPECT_EQ(e->code, storage_errc::unavailable) << e->what();
        EXPECT_NE(std::string(e->what()).find("127.0.0.1:1"), std::string::npos) << e->what();
    } else {
        ADD_FAILURE() << "no error for a refused TCP connection";
    }
    // The first device was not disturbed.
    EXPECT_EQ(co_await io_on(0, d, op::read, 10, 1, r4.data()), io_status::success);
    EXPECT_TRUE(r4 == a4);

    // Close the initiators before the target; then I/O is refused.
    co_await bounded(dev2->close());
    co_await bounded(dev->close());
    EXPECT_EQ(d->channel(), nullptr);
    co_await faulty->close();
    co_await bounded(target->stop(), 30s);
    target.reset();
    dev2.reset();
    dev.reset();
    faulty.reset();
    co_await devices.close_all();
    co_return 0;
}

// The target goes away under an open device: I/O in flight and after it
// fails (namespace not ready) instead of hanging, and close() still works.
future<int> run_target_lost() {
    device_registry devices;
    block_device* ns = co_await devices.create(k_ns_uri);
    auto target = std::make_unique<nvmf_target>("127.0.0.1", 0);
    subsystem_config a;
    a.nqn = k_subnqn;
    a.namespaces.push_back(ns);
    co_await target->add_subsystem(std::move(a));
    co_await target->start();
    nvmf_options opts;
    opts.fast_io_fail = 200ms;  // I/O gives up waiting for a reconnect quickly
    auto dev = co_await bounded(
        nvmf_device::connect("remote0", "127.0.0.1", target->port(), k_subnqn, k_host, opts));
    block_device* d = dev.get();
    auto w = pattern(k_block, 7);
    EXPECT_EQ(co_await io_on(0, d, op::write, 1, 1, w.data()), io_status::success);
    EXPECT_EQ(co_await io_on(1, d, op::write, 2, 1, w.data()), io_status::success);
    co_await bounded(target->stop(), 30s);
    std::vector<std::byte> r(k_block);
    EXPECT_EQ(co_await io_on(0, d, op::read, 1, 1, r.data()), io_status::namespace_not_ready);
    EXPECT_EQ(co_await io_on(1, d, op::read, 2, 1, r.data()), io_status::namespace_not_ready);
    co_await bounded(dev->close());
    dev.reset();
    target.reset();
    co_await devices.close_all();
    co_return 0;
}

}  // namespace

TEST(nvmf_initiator, target_lost_fails_io) {
    IOE_NEED_CORES(2);
    int rc = test::run_engine(test::small_config(2), [](engine*) -> future<int> { return run_target_lost(); });
    EXPECT_EQ(rc, 0);
}

TEST(nvmf_initiator, against_own_target) {
    IOE_NEED_CORES(2);
    int rc = test::run_engine(test::small_config(2), [](engine*) -> future<int> { return run_test(); });
    EXPECT_EQ(rc, 0);
}
