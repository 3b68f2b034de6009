// Fencing over NVMe/TCP with reservations: a nexus over two remote
// children (our initiator to our target, loopback, 2 shards) registers its
// epoch's key and holds Write Exclusive on each; another host's write is
// refused with reservation conflict (its read is not); a second incarnation (same nexus
// uuid, next epoch) preempts-and-aborts the first on every child, after
// which the first's writes are refused and it reports fenced, while the
// second serves and the data it wrote reads back; a child reserved by a
// foreign key is not taken, and a nexus with no other child is refused.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <memory>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/target/target.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

const uuid k_id = *uuid::parse("5eed0000-1111-4222-8333-444455556666");

future<io_status> io_on(unsigned shard, block_device* dev, bool write, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(30s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        const auto blocks = static_cast<std::uint32_t>(buf.size() / dev->block_size());
        co_return write ? co_await ch->write(lba, blocks, io_vecs(&v, 1)) : co_await ch->read(lba, blocks, io_vecs(&v, 1));
    }));
}

future<reservation_report> report_of(block_device* dev) {
    reservation_report r;
    io_channel* ch = dev->channel();
    EXPECT_NE(ch, nullptr);
    if (ch) EXPECT_EQ(co_await ch->read_reservation(r), io_status::success);
    co_return r;
}

std::string nqn(unsigned i) { return fmt::format("nqn.2026-12.io.ioengine:fence-{}", i); }

future<int> body() {
    nvme::register_nvmf_backend();
    device_registry devices;
    std::vector<block_device*> disks;
    auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
    for (unsigned i = 0; i < 3; ++i) {
        disks.push_back(co_await devices.create(fmt::format("malloc:///d{}?size_mb=4&blk_size=512", i)));
        nvme::subsystem_config c;
        c.nqn = nqn(i);
        c.namespaces = {disks.back()};
        co_await target->add_subsystem(std::move(c));
    }
    co_await target->start();
    const std::uint16_t port = target->port();
    auto uri = [&](unsigned i) {
        return fmt::format("nvmf://127.0.0.1:{}/{}?fast_io_fail_ms=200&reconnect_delay_ms=50", port, nqn(i));
    };
    memory_health_store store;
    auto opts = [&] {
        nexus_options o;
        o.health_key = "/nexus/fence";
        o.health = &store;
        o.registry = &devices;
        o.segment_bytes = 64 * 1024;
        o.health_retries = 1;
        o.health_retry_delay = 10ms;
        return o;
    };

    auto a = co_await nexus::create("nx-a", k_id, {uri(0), uri(1)}, opts());
    EXPECT_EQ(a->state(), nexus_state::online);
    block_device* observer = co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=obs", port, nqn(0)));
    {
        auto r = co_await report_of(observer);
        EXPECT_EQ(r.type, reservation_type::write_exclusive);
        EXPECT_NE(r.holder(), nullptr);
        if (r.holder()) {
            EXPECT_EQ(r.holder()->key, a->epoch().reservation_key());
            EXPECT_EQ(r.holder()->host_id, a->epoch().host_id());
        }
    }
    std::vector<std::byte> buf(8192, std::byte{0xa1});
    EXPECT_EQ(co_await io_on(1, a.get(), true, 100, buf), io_status::success);
    EXPECT_EQ(co_await io_on(0, observer, true, 100, buf), io_status::reservation_conflict)
        << "another host wrote under Write Exclusive";
    std::vector<std::byte> peek(8192);
    EXPECT_EQ(co_await io_on(0, observer, false, 100, peek), io_status::success) << "another host may read";
    EXPECT_TRUE(peek == buf);

    // B: the next incarnation, while A is alive.
    auto b = co_await nexus::create("nx-b", k_id, {uri(0), uri(1)}, opts());
    EXPECT_EQ(b->info().epoch, 2u);
    for (unsigned i = 0; i < 2; ++i) {
        block_device* obs = i == 0 ? observer : nullptr;
        if (!obs) {
            obs = co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=obs{}", port, nqn(i), i));
        }
        auto r = co_await report_of(obs);
        EXPECT_NE(r.holder(), nullptr);
        if (r.holder()) EXPECT_EQ(r.holder()->key, b->epoch().reservation_key()) << "child " << i;
        for (const auto& reg : r.registrants)
            EXPECT_NE(reg.key, a->epoch().reservation_key()) << "the fenced epoch is still registered on child " << i;
    }
    std::vector<std::byte> late(8192, std::byte{0x0d});
    EXPECT_NE(co_await io_on(0, a.get(), true, 100, late), io_status::success) << "the fenced nexus acknowledged";
    EXPECT_EQ(a->state(), nexus_state::fenced);
    std::vector<std::byte> mine(8192, std::byte{0xb2});
    EXPECT_EQ(co_await io_on(1, b.get(), true, 200, mine), io_status::success);
    std::vector<std::byte> back(8192);
    EXPECT_EQ(co_await io_on(0, b.get(), false, 100, back), io_status::success);
    EXPECT_TRUE(back == buf) << "the block A wrote before it was fenced";
    EXPECT_EQ(co_await io_on(0, b.get(), false, 200, back), io_status::success);
    EXPECT_TRUE(back == mine);
    co_await a->shutdown();
    co_await a->close();
    a.reset();

    // A foreign host holds child 2: a new nexus does not take it.
    block_device* foreign = co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=foreign", port, nqn(2)));
    {
        io_channel* ch = foreign->channel();
        reservation_register_request reg;
        reg.new_key = 0x1234;
        EXPECT_EQ(co_await ch->reservation_register(reg), io_status::success);
        reservation_acquire_request acq;
        acq.current_key = 0x1234;
        acq.type = reservation_type::write_exclusive;
        EXPECT_EQ(co_await ch->reservation_acquire(acq), io_status::success);
    }
    nexus_options o = opts();
    o.health_key = "/nexus/other";
    try {
        auto c = co_await nexus::create("nx-c", uuid::random(), {uri(2)}, o);
        ADD_FAILURE() << "a nexus took a child another host holds";
        co_await c->close();
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::unavailable) << e.what();
    }

    co_await b->shutdown();
    co_await b->close();
    b.reset();
    co_await devices.close_all();
    co_await target->stop();
    co_return 0;
}

}  // namespace

TEST(nexus_fence, a_new_incarnation_preempts_the_old_on_every_remote_child) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return body(); }), 0);
}
