// Fencing over NVMe/TCP with reservations: a nexus over two remote
// children (our initiator to our target, loopback, 2 shards) registers its
// epoch's key and holds Write Exclusive on each; another host's write is
// refused with reservation conflict (its read is not); a second incarnation (same nexus
// uuid, next epoch) preempts-and-aborts the first on every child, after
// which the first's writes are refused and it reports fenced, while the
// second serves and the data it wrote reads back; a child reserved by a
// foreign key is not taken, and a nexus with no other child is refused.
// A local child (bdev:/// on the engine whose target shares the device)
// is fenced the same way: the takeover claims it through the share, waits
// for the old incarnation's write held at the device, and the old one's
// next local write is refused. A fenced incarnation takes no snapshot
// (both children's reservations refuse it) and turns fenced.
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
#include "storage/fault_device.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "storage/pool.hh"
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

std::string child_uri(std::uint16_t port, unsigned i) {
    return fmt::format("nvmf://127.0.0.1:{}/{}?fast_io_fail_ms=200&reconnect_delay_ms=50", port, nqn(i));
}

// Shares each of `devs` as subsystem nqn(first + i), starts the target,
// and returns its port.
future<std::uint16_t> share_and_start(nvme::nvmf_target& target, unsigned first, std::vector<block_device*> devs) {
    for (unsigned i = 0; i < devs.size(); ++i) {
        nvme::subsystem_config c;
        c.nqn = nqn(first + i);
        c.namespaces = {devs[i]};
        co_await target.add_subsystem(std::move(c));
    }
    co_await target.start();
    co_return target.port();
}

// Shuts the nexuses down cleanly, then the devices and the target.
future<> stop_all(std::vector<std::unique_ptr<nexus>> nexuses, device_registry& devices, nvme::nvmf_target& target) {
    for (auto& n : nexuses) {
        co_await n->shutdown();
        co_await n->close();
    }
    nexuses.clear();
    co_await devices.close_all();
    co_await target.stop();
}

nexus_options fence_options(std::string key, memory_health_store& store, device_registry& devices) {
    nexus_options o;
    o.health_key = std::move(key);
    o.health = &store;
    o.registry = &devices;
    o.segment_bytes = 64 * 1024;
    o.health_retries = 1;
    o.health_retry_delay = 10ms;
    return o;
}

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
    auto uri = [&](unsigned i) { return child_uri(port, i); };
    memory_health_store store;
    auto opts = [&] { return fence_options("/nexus/fence", store, devices); };

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

    std::vector<std::unique_ptr<nexus>> left;
    left.push_back(std::move(b));
    co_await stop_all(std::move(left), devices, *target);
    co_return 0;
}

future<int> local_child_body() {
    nvme::register_nvmf_backend();
    device_registry devices;
    auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
    devices.set_reservation_authority(target.get());
    block_device* disk = co_await devices.create("malloc:///ld0?size_mb=4&blk_size=512");
    auto* slow = static_cast<fault_device*>(co_await devices.create("fault:///ld0slow?inner=ld0"));
    co_await slow->clear_rules();  // the URI's pass-through rule: it would act before the test's
    block_device* other = co_await devices.create("malloc:///ld1?size_mb=4&blk_size=512");
    const std::uint16_t port = co_await share_and_start(*target, 10, {slow, other});
    auto uri = [&](unsigned i) { return child_uri(port, 10 + i); };
    memory_health_store store;
    const nexus_options o = fence_options("/nexus/local-fence", store, devices);

    // A: the local child and a remote one. Its local claim is what hosts
    // of the share see.
    auto a = co_await nexus::create("nx-a", k_id, {"bdev:///ld0slow", uri(1)}, o);
    EXPECT_EQ(a->state(), nexus_state::online);
    block_device* observer = co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=lobs", port, nqn(10)));
    {
        auto r = co_await report_of(observer);
        EXPECT_EQ(r.type, reservation_type::write_exclusive);
        EXPECT_NE(r.holder(), nullptr) << "the local child's claim is not in the share's reservation";
        if (r.holder()) {
            EXPECT_EQ(r.holder()->key, a->epoch().reservation_key());
            EXPECT_EQ(r.holder()->host_id, a->epoch().host_id());
        }
    }
    std::vector<std::byte> foreign(8192, std::byte{0x77});
    EXPECT_EQ(co_await io_on(0, observer, true, 300, foreign), io_status::reservation_conflict)
        << "a host of the share wrote under the local child's Write Exclusive";

    // A's write, held 400 ms at the local device, while B takes over.
    const auto held = co_await slow->add_rule(fault_rule::delay_by(op_mask::write, 400ms).on_blocks(100, 116));
    std::vector<std::byte> old_data(8192, std::byte{0xa1});
    io_status a_status = io_status::internal_error;
    bool a_done = false;
    auto a_write = [&]() -> future<> {
        a_status = co_await io_on(1, a.get(), true, 100, old_data);
        a_done = true;
    };
    auto a_writing = a_write();
    while (co_await slow->hits(held) == 0) co_await sleep(1ms);

    auto b = co_await nexus::create("nx-b", k_id, {uri(0), uri(1)}, o);
    EXPECT_EQ(b->state(), nexus_state::online);
    {
        // Preempt-and-abort waited for the held write: it is on the disk
        // before B's claim completed, so it cannot land after B's writes.
        std::vector<std::byte> raw(8192);
        EXPECT_EQ(co_await io_on(0, disk, false, 100, raw), io_status::success);
        EXPECT_TRUE(raw == old_data) << "B's claim completed before A's held local write finished";
        auto r = co_await report_of(observer);
        EXPECT_NE(r.holder(), nullptr);
        if (r.holder()) EXPECT_EQ(r.holder()->key, b->epoch().reservation_key());
        for (const auto& reg : r.registrants)
            EXPECT_NE(reg.key, a->epoch().reservation_key()) << "the fenced epoch is still registered";
    }
    co_await std::move(a_writing);
    EXPECT_TRUE(a_done);
    EXPECT_EQ(a_status, io_status::success) << "admitted before the takeover: it completes";
    co_await slow->remove_rule(held);

    std::vector<std::byte> mine(8192, std::byte{0xb2});
    EXPECT_EQ(co_await io_on(1, b.get(), true, 100, mine), io_status::success);
    std::vector<std::byte> late(8192, std::byte{0x0d});
    EXPECT_NE(co_await io_on(0, a.get(), true, 100, late), io_status::success) << "the fenced nexus acknowledged";
    EXPECT_EQ(a->state(), nexus_state::fenced);
    std::vector<std::byte> raw(8192);
    EXPECT_EQ(co_await io_on(0, disk, false, 100, raw), io_status::success);
    EXPECT_TRUE(raw == mine) << "a write of the fenced nexus reached its local child";

    std::vector<std::unique_ptr<nexus>> left;
    left.push_back(std::move(a));
    left.push_back(std::move(b));
    co_await stop_all(std::move(left), devices, *target);
    co_return 0;
}


// A fenced incarnation takes no snapshot: A over a local replica (its
// target shares it) and a remote one takes a snapshot while it holds
// them; once B took over, A's snapshot is refused by both children's
// reservations (the local one through its port, the remote one by
// Snapshot Namespace's Reservation Conflict), A turns fenced and nothing
// is taken; B's snapshot goes through.
future<int> snapshot_body() {
    nvme::register_nvmf_backend();
    device_registry devices;
    auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
    devices.set_reservation_authority(target.get());
    block_device* disk = co_await devices.create("malloc:///sd0?size_mb=64&blk_size=4096");
    auto pl = co_await pool::create(disk, pool_create_options{.name = "fp"}, &devices);
    replica* ra = co_await pl->create_replica("fra", uuid::random(), 4 << 20, false);
    replica* rb = co_await pl->create_replica("frb", uuid::random(), 4 << 20, false);
    const std::uint16_t port = co_await share_and_start(*target, 20, {ra, rb});
    auto uri = [&](unsigned i) { return child_uri(port, 20 + i); };
    memory_health_store store;
    const nexus_options o = fence_options("/nexus/snap-fence", store, devices);

    auto a = co_await nexus::create("nx-a", k_id, {"bdev:///fra", uri(1)}, o);
    auto before = co_await a->snapshot("fs0", "tx-fs0");
    EXPECT_TRUE(before.complete) << "the holder's own snapshot was refused";
    EXPECT_EQ(a->info().snapshots_taken, 1u);

    auto b = co_await nexus::create("nx-b", k_id, {uri(0), uri(1)}, o);
    EXPECT_EQ(b->state(), nexus_state::online);
    const std::size_t volumes = pl->list_replicas().size();
    try {
        co_await a->snapshot("fs1", "tx-fs1");
        ADD_FAILURE() << "a fenced incarnation took a snapshot";
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::unavailable) << e.what();
        EXPECT_NE(std::string(e.what()).find("reservation conflict"), std::string::npos) << e.what();
    }
    EXPECT_EQ(a->state(), nexus_state::fenced);
    EXPECT_EQ(a->info().snapshots_taken, 1u);
    EXPECT_EQ(pl->list_replicas().size(), volumes) << "a child took the fenced incarnation's snapshot";
    EXPECT_EQ(pl->find_replica("fs1"), nullptr);
    std::vector<std::byte> late(4096, std::byte{0x0d});
    EXPECT_NE(co_await io_on(0, a.get(), true, 1, late), io_status::success) << "the fenced nexus acknowledged";

    auto after = co_await b->snapshot("fs2", "tx-fs2");
    EXPECT_TRUE(after.complete) << "the new incarnation's snapshot was refused";
    EXPECT_EQ(pl->list_replicas().size(), volumes + 2);

    std::vector<std::unique_ptr<nexus>> left;
    left.push_back(std::move(a));
    left.push_back(std::move(b));
    for (auto& n : left) {
        co_await n->shutdown();
        co_await n->close();
    }
    left.clear();
    co_await target->stop();
    co_await pl->export_pool();
    co_await devices.close_all();
    co_return 0;
}
}  // namespace

TEST(nexus_fence, a_local_child_is_fenced_through_the_same_reservation_as_its_share) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return local_child_body(); }), 0);
}

TEST(nexus_fence, a_fenced_incarnation_takes_no_snapshot) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return with_timeout(60s, snapshot_body()); }), 0);
}

TEST(nexus_fence, a_new_incarnation_preempts_the_old_on_every_remote_child) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return body(); }), 0);
}
