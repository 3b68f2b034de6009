// The stale-write fence of a faulted remote child (docs/nexus.md, "Fencing
// a faulted remote child"; storage/nexus/nexus_child_fence.cc):
// * reservation keys and host ids per connection generation: distinct per
//   generation, generation 0 keeps the host id of the layout before
//   generations, and an older generation of the same epoch (or any
//   generation of a lower epoch, or a key of the earlier layout) is older;
// * the dirty-log helpers, and writes in flight when a child is faulted
//   going into its dirty log (a partial rebuild copies their segments);
// * over NVMe/TCP (our initiator, our target, loopback): a write held at
//   the target's device when the child times out; the child is brought
//   back: a new connection of the next generation, which preempts-and-aborts
//   the old one; that waits for the held write (each attempt bounded by the
//   target's drain timeout, tried again under a new generation up to the
//   nexus's settle_limit: online is refused while it is held longer), and
//   the rebuilt child then equals the other one.
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
#include "storage/nexus/nexus_dirty.hh"
#include "storage/nexus/nexus_fence.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

const uuid k_id = *uuid::parse("0a1b2c3d-4e5f-4a6b-8c7d-8e9f00112233");

future<io_status> io_on(unsigned shard, block_device* dev, bool write, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(30s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        const auto blocks = static_cast<std::uint32_t>(buf.size() / dev->block_size());
        co_return write ? co_await ch->write(lba, blocks, io_vecs(&v, 1))
                        : co_await ch->read(lba, blocks, io_vecs(&v, 1));
    }));
}

future<std::vector<std::byte>> whole(block_device* dev) {
    std::vector<std::byte> all(dev->block_count() * dev->block_size());
    const std::size_t piece = 256 * 1024;
    for (std::size_t off = 0; off < all.size(); off += piece) {
        std::vector<std::byte> b(std::min(piece, all.size() - off));
        EXPECT_EQ(co_await io_on(0, dev, false, off / dev->block_size(), b), io_status::success);
        std::copy(b.begin(), b.end(), all.begin() + static_cast<std::ptrdiff_t>(off));
    }
    co_return all;
}

nexus_options options(memory_health_store& store, device_registry& devices, const char* key) {
    nexus_options o;
    o.health_key = key;
    o.health = &store;
    o.registry = &devices;
    o.segment_bytes = 64 * 1024;
    o.health_retries = 1;
    o.health_retry_delay = 10ms;
    o.settle_limit = 20000ms;
    return o;
}

const child_info* child_of(const nexus_info& i, const std::string& uri) {
    for (auto& c : i.children)
        if (c.uri == uri) return &c;
    return nullptr;
}

// ---- writes in flight at a fault go into the dirty log --------------------

future<int> in_flight_write_is_rebuilt() {
    device_registry devices;
    memory_health_store store;
    std::vector<block_device*> inner;
    std::vector<std::unique_ptr<fault_device>> faults;
    for (unsigned i = 0; i < 2; ++i) {
        inner.push_back(co_await devices.create(fmt::format("malloc:///g{}?size_mb=4&blk_size=512", i)));
        faults.push_back(std::make_unique<fault_device>(fmt::format("gc{}", i), inner.back()));
        co_await devices.add(faults.back().get());
    }
    auto n = co_await nexus::create("nx", uuid::random(), {"bdev:///gc0", "bdev:///gc1"},
                                    options(store, devices, "/nexus/inflight"));
    // A write to segment 3 is held 300 ms at child 1; the child is taken
    // offline meanwhile. The write then completes on both: still, its
    // segment is in the dirty log (it was in flight at the fault).
    co_await faults[1]->add_rule(fault_rule::delay_by(op_mask::write, 300ms).on_blocks(3 * 128, 4 * 128));
    std::vector<std::byte> w(4096, std::byte{0x3c});
    future<io_status> held = io_on(1, n.get(), true, 3 * 128 + 8, w);
    co_await sleep(50ms);
    co_await n->offline_child("bdev:///gc1");
    EXPECT_EQ(co_await std::move(held), io_status::success);
    co_await faults[1]->clear_rules();
    co_await n->online_child("bdev:///gc1");
    co_await with_timeout(30s, n->rebuilds_idle());
    EXPECT_EQ(n->rebuild_history().size(), 1u);
    if (!n->rebuild_history().empty()) {
        const rebuild_progress& h = n->rebuild_history().back();
        EXPECT_EQ(h.state, rebuild_state::completed);
        EXPECT_TRUE(h.partial);
        EXPECT_EQ(h.blocks_total, 128u) << "the segment of the write in flight at the fault";
    }
    co_await n->close();
    n.reset();
    for (auto& f : faults) {
        co_await devices.remove(f->name());
        co_await f->close();
    }
    co_await devices.close_all();
    co_return 0;
}

// ---- over NVMe/TCP: the old connection's held write ------------------------

std::string nqn() { return "nqn.2026-12.io.ioengine:generation"; }

future<reservation_report> report_of(block_device* dev) {
    reservation_report r;
    io_channel* ch = dev->channel();
    EXPECT_NE(ch, nullptr);
    if (ch) EXPECT_EQ(co_await ch->read_reservation(r), io_status::success);
    co_return r;
}

future<int> held_write_of_the_old_connection() {
    nvme::register_nvmf_backend();
    device_registry devices;
    block_device* local = co_await devices.create("malloc:///l0?size_mb=4&blk_size=512");
    block_device* remote_disk = co_await devices.create("malloc:///r0?size_mb=4&blk_size=512");
    auto hold = std::make_unique<fault_device>("r0.hold", remote_disk);
    nvme::target_limits limits;
    limits.drain_timeout_ms = 400;  // preempt-and-abort gives up (fails) after this
    auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0, limits);
    {
        nvme::subsystem_config c;
        c.nqn = nqn();
        c.namespaces = {hold.get()};
        co_await target->add_subsystem(std::move(c));
    }
    co_await target->start();
    const std::string remote = fmt::format(
        "nvmf://127.0.0.1:{}/{}?io_timeout_ms=300&fast_io_fail_ms=200&reconnect_delay_ms=50", target->port(), nqn());
    memory_health_store store;
    nexus_options o = options(store, devices, "/nexus/gen");
    o.settle_limit = 1000ms;  // online gives up (busy) after this
    auto n = co_await nexus::create("nx", k_id, {"bdev:///l0", remote}, std::move(o));
    EXPECT_EQ(n->state(), nexus_state::online);
    std::vector<std::byte> base(64 * 1024, std::byte{0x11});
    EXPECT_EQ(co_await io_on(0, n.get(), true, 256, base), io_status::success);

    // Write 1 is held 3 s at the target's device: the child times out,
    // is faulted, and the write is acknowledged from the local child.
    const std::uint64_t rule =
        co_await hold->add_rule(fault_rule::delay_by(op_mask::write, 3000ms).on_blocks(256, 384).at_most(1));
    std::vector<std::byte> w1(4096, std::byte{0xa1});
    EXPECT_EQ(co_await io_on(0, n.get(), true, 256, w1), io_status::success);
    EXPECT_EQ(child_of(n->info(), remote)->state, child_state::faulted);
    // Write 2, to the same blocks, reaches the local child only.
    std::vector<std::byte> w2(4096, std::byte{0xb2});
    EXPECT_EQ(co_await io_on(1, n.get(), true, 256, w2), io_status::success);

    // Back online while write 1 is still held: each new connection's
    // preempt-and-abort waits 300-400 ms for it, then fails; after 1 s of
    // that, refused.
    const auto online_from = steady_clock::now();
    bool refused = false;
    try {
        co_await n->online_child(remote);
    } catch (const storage_error& e) {
        refused = e.code == storage_errc::busy;
        EXPECT_NE(std::string(e.what()).find("not fenced within"), std::string::npos) << e.what();
    }
    EXPECT_LT(steady_clock::now() - online_from, 2500ms) << "online waited past its bound";
    EXPECT_TRUE(refused) << "a child was brought back while its old connection's write was still executing";
    EXPECT_EQ(child_of(n->info(), remote)->state, child_state::faulted);

    // Once it has finished at the device, the child comes back and is
    // rebuilt; write 1 landed before the copy, so it reads write 2.
    co_await sleep(2500ms);
    EXPECT_EQ(co_await hold->hits(rule), 1u);
    co_await n->online_child(remote);
    co_await with_timeout(30s, n->rebuilds_idle());
    EXPECT_EQ(n->state(), nexus_state::online);
    EXPECT_TRUE(co_await whole(local) == co_await whole(remote_disk)) << "the rebuilt child differs";
    std::vector<std::byte> back(4096);
    EXPECT_EQ(co_await io_on(0, remote_disk, false, 256, back), io_status::success);
    EXPECT_TRUE(back == w2);

    // The reservation is held by the newest generation; the old ones are gone.
    block_device* observer = co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=obs", target->port(),
                                                                 nqn()));
    auto r = co_await report_of(observer);
    EXPECT_NE(r.holder(), nullptr);
    if (r.holder()) {
        EXPECT_EQ(key_epoch(r.holder()->key), n->epoch().epoch);
        const std::uint32_t g = key_generation(r.holder()->key);
        EXPECT_GE(g, 2u) << "at least one refused connection, then the one that was accepted";
        EXPECT_EQ(r.holder()->host_id, n->epoch().at_generation(g).host_id());
    }
    for (const auto& reg : r.registrants) {
        EXPECT_NE(reg.key, n->epoch().reservation_key()) << "generation 0 is still registered";
    }

    co_await n->shutdown();
    co_await n->close();
    n.reset();
    co_await devices.destroy("obs");
    co_await target->stop();
    co_await hold->close();
    co_await devices.close_all();
    co_return 0;
}

int run(future<int> (*body)()) {
    return test::run_engine(test::small_config(2), [body](engine*) { return body(); });
}

}  // namespace

TEST(nexus_generation, key_and_host_id_per_connection_generation) {
    const nexus_epoch g0{k_id, 7, 0}, g1{k_id, 7, 1}, g9{k_id, 7, 9};
    EXPECT_EQ(g0.reservation_key(), 0x0a1b000000000007ull);
    EXPECT_EQ(g1.reservation_key(), 0x0a1b000100000007ull);
    EXPECT_EQ(g9.reservation_key(), 0x0a1b000900000007ull);
    EXPECT_EQ(key_epoch(g9.reservation_key()), 7u);
    EXPECT_EQ(key_generation(g9.reservation_key()), 9u);
    EXPECT_EQ(host_id_hex(g0.host_id()), "0a1b2c3d4e5f4a6b0000000000000007") << "generation 0: the earlier layout";
    EXPECT_EQ(host_id_hex(g1.host_id()), "0a1b2c3d4e5f4a6b0000000100000007");
    EXPECT_EQ(g1.at_generation(9).host_id(), g9.host_id());
    EXPECT_EQ((nexus_epoch{k_id, 7, nexus_epoch::max_generation}).reservation_key(), 0x0a1bffff00000007ull);
    EXPECT_EQ(g9.previous().generation, 0u);
    EXPECT_EQ(g9.previous().epoch, 6u);
}

TEST(nexus_generation, older_generations_of_the_same_epoch_are_older) {
    const nexus_epoch me{k_id, 5, 3};
    EXPECT_TRUE(older_incarnation_key(me.at_generation(2).reservation_key(), me));
    EXPECT_TRUE(older_incarnation_key(me.at_generation(0).reservation_key(), me));
    EXPECT_FALSE(older_incarnation_key(me.reservation_key(), me)) << "its own key";
    EXPECT_FALSE(older_incarnation_key(me.at_generation(4).reservation_key(), me)) << "a newer connection";
    EXPECT_TRUE(older_incarnation_key((nexus_epoch{k_id, 4, 200}).reservation_key(), me)) << "a lower epoch";
    EXPECT_FALSE(older_incarnation_key((nexus_epoch{k_id, 6, 0}).reservation_key(), me)) << "a higher epoch";
    EXPECT_TRUE(older_incarnation_key(0x0a1b2c3d00000004ull, me)) << "the earlier layout, a lower epoch";
    // The host identifier must be this nexus's too: a key of the right
    // shape from a host of another nexus (16 key bits shared) is not older.
    const nexus_epoch older = me.at_generation(2);
    reservation_registrant ours{older.host_id(), older.reservation_key(), true};
    EXPECT_TRUE(older_incarnation(ours, me));
    reservation_registrant stranger = ours;
    stranger.host_id[3] ^= 0xff;
    EXPECT_FALSE(older_incarnation(stranger, me)) << "another nexus whose uuid shares the key's 16 bits";
    EXPECT_FALSE(older_incarnation_key(0x0a1b2c3d00000009ull, me)) << "the earlier layout, a higher epoch";
    EXPECT_FALSE(older_incarnation_key(0x0a1c000000000001ull, me)) << "another nexus's prefix";
}

TEST(nexus_generation, dirty_log_marks_segments_and_in_flight_writes) {
    std::vector<std::uint64_t> bits(2, 0);  // 128 segments
    mark_segments(bits, 3, 5);
    EXPECT_EQ(bits[0], 0b111000u);
    mark_segments(bits, 63, 64);
    EXPECT_EQ(bits[0] >> 63, 1u);
    EXPECT_EQ(bits[1], 1u);
    mark_segments(bits, 127, 400);  // past the end: ignored
    EXPECT_EQ(bits[1] >> 63, 1u);
    std::vector<std::uint64_t> log(1, 0);
    mark_in_flight({{1, 1}, {10, 12}}, log);
    EXPECT_EQ(log[0], (1u << 1) | (7u << 10));
}

TEST(nexus_generation, writes_in_flight_at_a_fault_are_rebuilt) { EXPECT_EQ(run(in_flight_write_is_rebuilt), 0); }

TEST(nexus_generation, old_connection_write_is_drained_before_the_rebuild) {
    EXPECT_EQ(run(held_write_of_the_old_connection), 0);
}
