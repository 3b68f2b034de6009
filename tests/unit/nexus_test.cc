// The nexus over two (or three) malloc children wrapped in fault devices, on
// an engine with 2 shards, with an in-memory health store that logs every
// record it stores and can be told to fail: mirrored writes land on every
// child; a child that fails a write is faulted and recorded unhealthy
// before the write is acknowledged, reads go on from the other; a store
// that cannot be written faults the nexus instead of acknowledging; offline
// then online rebuilds only the segments written meanwhile; a full rebuild
// under concurrent writes from both shards ends with identical children
// (the range locks); an unclean shutdown reopens only healthy children and
// rebuilds the rest; a clean one reopens all; pause holds I/O until resume;
// add and remove with I/O running; errors carry their storage_errc.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/fault_device.hh"
#include "storage/nexus/nexus.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t k_block = 512;
constexpr std::uint64_t k_size_mb = 8;
constexpr std::uint64_t k_blocks = k_size_mb * 1024 * 1024 / k_block;
constexpr char k_key[] = "/ioengine/nexus/test";

// A health store in memory: every store() is appended to `log` (so a test
// can see what was recorded before an I/O completed); `fail` makes writes
// throw.
class memory_store final : public child_health_store {
public:
    std::map<std::string, nexus_health_record> records;
    std::vector<std::string>* log = nullptr;
    bool fail = false;
    // Set: every store() waits until release_held() (a slow etcd).
    bool held = false;
    std::vector<promise<>> held_stores;
    void release_held() {
        held = false;
        auto waiting = std::move(held_stores);
        held_stores.clear();
        for (auto& p : waiting) p.set_value();
    }

    future<std::optional<nexus_health_record>> load(std::string key) override {
        auto it = records.find(key);
        if (it == records.end()) return make_ready_future<std::optional<nexus_health_record>>(std::nullopt);
        return make_ready_future<std::optional<nexus_health_record>>(it->second);
    }
    future<> store(std::string key, nexus_health_record r) override {
        co_await sleep(1ms);  // a store takes time: the I/O must wait for it
        if (held) {
            held_stores.emplace_back();
            co_await held_stores.back().get_future();
        }
        if (fail) throw storage_error(storage_errc::unavailable, "the store is down (test)");
        if (auto it = records.find(key); it != records.end() && it->second.epoch > r.epoch)
            throw health_record_conflict("a higher epoch is recorded (test)");
        if (log) {
            std::string line = "store";
            for (auto& [id, healthy] : r.children) line += healthy ? " +" : " -";
            log->push_back(line);
        }
        records[key] = std::move(r);
    }
    future<> remove(std::string key) override {
        records.erase(key);
        return make_ready_future<>();
    }

    bool healthy(const std::string& key, const uuid& child) const {
        auto it = records.find(key);
        if (it == records.end()) return false;
        for (auto& [id, h] : it->second.children)
            if (id == child.to_string()) return h;
        return false;
    }
};

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 11 + seed * 29 + (i >> 9)) & 0xff);
    return v;
}

enum class op { read, write };

future<io_status> io_on(unsigned shard, block_device* dev, op o, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(20s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        const auto blocks = static_cast<std::uint32_t>(buf.size() / dev->block_size());
        co_return o == op::write ? co_await ch->write(lba, blocks, io_vecs(&v, 1))
                                 : co_await ch->read(lba, blocks, io_vecs(&v, 1));
    }));
}

// Reads the whole of dev (from shard 0) in 256 KiB pieces.
future<std::vector<std::byte>> whole(block_device* dev) {
    std::vector<std::byte> all(dev->block_count() * dev->block_size());
    const std::size_t piece = 256 * 1024;
    for (std::size_t off = 0; off < all.size(); off += piece) {
        std::vector<std::byte> b(std::min(piece, all.size() - off));
        EXPECT_EQ(co_await io_on(0, dev, op::read, off / dev->block_size(), b), io_status::success);
        std::memcpy(all.data() + off, b.data(), b.size());
    }
    co_return all;
}

// Two (or more) malloc children, each behind a fault device, in a registry.
struct rig {
    device_registry devices;
    std::vector<std::unique_ptr<fault_device>> faults;
    std::vector<block_device*> inner;
    memory_store store;
    std::vector<std::string> log;

    future<> make(unsigned n) {
        store.log = &log;
        for (unsigned i = 0; i < n; ++i) {
            inner.push_back(co_await devices.create(
                fmt::format("malloc:///m{}?size_mb={}&blk_size={}", i, k_size_mb, k_block)));
            faults.push_back(std::make_unique<fault_device>(fmt::format("c{}", i), inner.back()));
            co_await devices.add(faults.back().get());
        }
    }
    std::string uri(unsigned i) const { return fmt::format("bdev:///c{}", i); }
    nexus_options opts(std::uint32_t segment = 64 * 1024) {
        nexus_options o;
        o.health_key = k_key;
        o.health = &store;
        o.registry = &devices;
        o.segment_bytes = segment;
        o.health_retries = 1;
        o.health_retry_delay = 10ms;
        return o;
    }
    future<std::unique_ptr<nexus>> create(std::vector<std::string> uris, std::uint32_t segment = 64 * 1024) {
        return nexus::create("nx", uuid::random(), std::move(uris), opts(segment));
    }
    future<> close_all() {
        for (auto& f : faults) {
            co_await devices.remove(f->name());
            co_await f->close();
        }
        faults.clear();
        co_await devices.close_all();
    }
};

const child_info* child_of(const nexus_info& i, const std::string& uri) {
    for (auto& c : i.children)
        if (c.uri == uri) return &c;
    return nullptr;
}

future<> wait_rebuilds(nexus& n) { co_await with_timeout(60s, n.rebuilds_idle()); }

// ---- the tests' bodies -----------------------------------------------------

future<int> mirror_and_fault() {
    rig r;
    co_await r.make(2);
    auto n = co_await r.create({r.uri(0), r.uri(1)});
    EXPECT_EQ(n->state(), nexus_state::online);
    EXPECT_EQ(n->block_count(), k_blocks);
    auto a = pattern(64 * 1024, 1);
    EXPECT_EQ(co_await io_on(0, n.get(), op::write, 100, a), io_status::success);
    auto b = pattern(8 * 1024, 2);
    EXPECT_EQ(co_await io_on(1, n.get(), op::write, 5000, b), io_status::success);
    // Both children hold both writes.
    for (block_device* child : r.inner) {
        std::vector<std::byte> ra(a.size()), rb(b.size());
        EXPECT_EQ(co_await io_on(1, child, op::read, 100, ra), io_status::success);
        EXPECT_EQ(co_await io_on(0, child, op::read, 5000, rb), io_status::success);
        EXPECT_TRUE(ra == a) << child->name();
        EXPECT_TRUE(rb == b) << child->name();
    }

    // Child 1 fails writes: the write still succeeds (child 0 took it),
    // child 1 is faulted, and the store said so before the write returned.
    co_await r.faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault));
    r.log.clear();
    auto c = pattern(4096, 3);
    EXPECT_EQ(co_await io_on(1, n.get(), op::write, 2000, c), io_status::success);
    r.log.push_back("ack");
    EXPECT_GE(r.log.size(), 2u);
    EXPECT_EQ(r.log.front(), "store + -") << "child 1 recorded unhealthy before the write was acknowledged";
    EXPECT_EQ(r.log.back(), "ack");
    EXPECT_EQ(n->state(), nexus_state::degraded);
    auto info = n->info();
    const child_info* c1 = child_of(info, r.uri(1));
    EXPECT_NE(c1, nullptr);
    if (c1) {
        EXPECT_EQ(c1->state, child_state::faulted);
        EXPECT_EQ(c1->reason, fault_reason::io_error);
    }
    EXPECT_FALSE(r.store.healthy(k_key, r.inner[1]->id()));
    EXPECT_TRUE(r.store.healthy(k_key, r.inner[0]->id()));
    // Reads come from child 0, from both shards.
    for (unsigned shard = 0; shard < 2; ++shard) {
        std::vector<std::byte> rc(c.size());
        EXPECT_EQ(co_await io_on(shard, n.get(), op::read, 2000, rc), io_status::success);
        EXPECT_TRUE(rc == c);
    }

    // The last child fails too: nothing succeeded, the write fails with its status.
    co_await r.faults[0]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault));
    EXPECT_EQ(co_await io_on(0, n.get(), op::write, 3000, c), io_status::write_fault);
    EXPECT_EQ(n->state(), nexus_state::faulted);
    std::vector<std::byte> rd(4096);
    EXPECT_EQ(co_await io_on(1, n.get(), op::read, 2000, rd), io_status::namespace_not_ready);
    // Child 0 was the last in sync: it holds every acknowledged write and
    // stays recorded healthy, so a nexus created again opens it; child 1,
    // faulted while child 0 went on, does not.
    EXPECT_TRUE(r.store.healthy(k_key, r.inner[0]->id()));
    EXPECT_FALSE(r.store.healthy(k_key, r.inner[1]->id()));

    co_await n->close();
    n.reset();
    co_await r.close_all();
    co_return 0;
}

future<int> store_down_faults_nexus() {
    rig r;
    co_await r.make(2);
    auto n = co_await r.create({r.uri(0), r.uri(1)});
    r.store.fail = true;
    co_await r.faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault));
    auto c = pattern(4096, 4);
    // Child 1 failed and cannot be recorded: not acknowledged.
    EXPECT_NE(co_await io_on(0, n.get(), op::write, 10, c), io_status::success);
    EXPECT_EQ(n->state(), nexus_state::faulted);
    co_await n->close();
    n.reset();
    co_await r.close_all();
    co_return 0;
}

// A write that starts after a child's fault reached every shard, but before
// the record says so, misses that child: it must wait for the record too
// (else a crash in that window leaves a record calling the child healthy
// while it lacks an acknowledged write).
future<int> write_skipping_an_unrecorded_fault_waits_for_the_record() {
    rig r;
    co_await r.make(2);
    auto n = co_await r.create({r.uri(0), r.uri(1)});
    r.store.held = true;
    co_await r.faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault).at_most(1));
    auto a = pattern(4096, 21), b = pattern(4096, 22);
    auto first = io_on(0, n.get(), op::write, 100, a);  // fails on child 1: its fault is being recorded
    co_await sleep(50ms);
    EXPECT_FALSE(first.available()) << "acknowledged before child 1 was recorded unhealthy";
    auto second = io_on(1, n.get(), op::write, 300, b);  // child 1 already faulted on every shard
    co_await sleep(50ms);
    EXPECT_FALSE(second.available()) << "a write that missed child 1 was acknowledged before the record said so";
    EXPECT_TRUE(r.store.healthy(k_key, r.inner[1]->id()));
    r.store.release_held();
    EXPECT_EQ(co_await std::move(first), io_status::success);
    EXPECT_EQ(co_await std::move(second), io_status::success);
    EXPECT_FALSE(r.store.healthy(k_key, r.inner[1]->id()));
    // Once recorded, writes no longer wait.
    EXPECT_EQ(co_await io_on(1, n.get(), op::write, 500, b), io_status::success);
    co_await n->close();
    n.reset();
    co_await r.close_all();
    co_return 0;
}

future<int> offline_online_partial_rebuild() {
    rig r;
    co_await r.make(2);
    auto n = co_await r.create({r.uri(0), r.uri(1)});
    auto base = pattern(1024 * 1024, 5);
    EXPECT_EQ(co_await io_on(0, n.get(), op::write, 0, base), io_status::success);
    co_await n->offline_child(r.uri(1));
    EXPECT_EQ(n->state(), nexus_state::degraded);
    // Writes while it is away, from both shards, in three segments.
    auto w1 = pattern(4096, 6), w2 = pattern(4096, 7);
    EXPECT_EQ(co_await io_on(0, n.get(), op::write, 8, w1), io_status::success);
    EXPECT_EQ(co_await io_on(1, n.get(), op::write, 4096, w2), io_status::success);
    EXPECT_EQ(co_await io_on(1, n.get(), op::write, 9000, w2), io_status::success);
    co_await n->online_child(r.uri(1));
    co_await wait_rebuilds(*n);
    EXPECT_EQ(n->state(), nexus_state::online);
    EXPECT_EQ(n->rebuild_history().size(), 1u);
    const rebuild_progress h = n->rebuild_history().empty() ? rebuild_progress{} : n->rebuild_history().back();
    EXPECT_EQ(h.state, rebuild_state::completed);
    EXPECT_TRUE(h.partial);
    EXPECT_EQ(h.blocks_total, 3u * 64 * 1024 / k_block) << "only the three segments written meanwhile";
    EXPECT_TRUE(co_await whole(r.inner[0]) == co_await whole(r.inner[1]));
    EXPECT_TRUE(r.store.healthy(k_key, r.inner[1]->id()));
    co_await n->close();
    n.reset();
    co_await r.close_all();
    co_return 0;
}

// Full rebuild of a fresh child while both shards write continuously.
future<int> full_rebuild_under_writes() {
    rig r;
    co_await r.make(2);
    auto n = co_await r.create({r.uri(0)});
    auto base = pattern(k_blocks * k_block, 8);
    for (std::size_t off = 0; off < base.size(); off += 1024 * 1024) {
        std::vector<std::byte> piece(base.begin() + static_cast<std::ptrdiff_t>(off),
                                     base.begin() + static_cast<std::ptrdiff_t>(off + 1024 * 1024));
        EXPECT_EQ(co_await io_on(0, n.get(), op::write, off / k_block, piece), io_status::success);
    }
    // Slow the copy's reads from the source down, so that application
    // writes land between a segment's read and its write to the new child:
    // without the range lock the copy would then write stale data over them.
    co_await r.faults[0]->add_rule(fault_rule::delay_by(op_mask::read, 500us));
    co_await n->add_child(r.uri(1), true);
    EXPECT_EQ(n->state(), nexus_state::degraded);
    bool stop = false;
    unsigned writes = 0;
    auto writer = [&](unsigned shard) -> future<> {
        unsigned seed = 100 + shard;
        while (!stop) {
            auto w = pattern(8192, ++seed);
            const std::uint64_t lba = (seed * 7919u) % (k_blocks - 16);
            io_status s = co_await io_on(shard, n.get(), op::write, lba, w);
            EXPECT_EQ(s, io_status::success);
            ++writes;
            co_await yield();  // malloc writes complete at once: let the reactor run the rebuild

        }
    };
    auto w0 = writer(0);
    auto w1 = writer(1);
    // Bounded, without throwing: the writers must stop whatever happens.
    const auto deadline = steady_clock::now() + 60s;
    while (n->rebuild_status(r.uri(1)) && steady_clock::now() < deadline) co_await sleep(5ms);
    stop = true;
    co_await std::move(w0);
    co_await std::move(w1);
    EXPECT_FALSE(n->rebuild_status(r.uri(1))) << "the rebuild did not finish within 60 s";
    co_await wait_rebuilds(*n);
    EXPECT_GT(writes, 10u);
    co_await r.faults[0]->clear_rules();
    EXPECT_EQ(n->state(), nexus_state::online);
    EXPECT_EQ(n->rebuild_history().back().state, rebuild_state::completed);
    EXPECT_FALSE(n->rebuild_history().back().partial);
    EXPECT_TRUE(co_await whole(r.inner[0]) == co_await whole(r.inner[1])) << "the children differ after the rebuild";
    co_await n->close();
    n.reset();
    co_await r.close_all();
    co_return 0;
}

future<int> unclean_and_clean_restart() {
    rig r;
    co_await r.make(2);
    {
        auto n = co_await r.create({r.uri(0), r.uri(1)});
        co_await r.faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault).at_most(1));
        auto w = pattern(4096, 9);
        EXPECT_EQ(co_await io_on(0, n.get(), op::write, 77, w), io_status::success);
        co_await r.faults[1]->clear_rules();
        // "Crash": closed without shutdown(); the record says unclean, child 1 unhealthy.
        co_await n->close();
    }
    EXPECT_FALSE(r.store.records[k_key].clean_shutdown);
    {
        auto n = co_await r.create({r.uri(0), r.uri(1)});
        // Child 1 must not serve reads until rebuilt (it lacks block 77).
        auto info = n->info();
        EXPECT_NE(child_of(info, r.uri(1))->state, child_state::online);
        co_await wait_rebuilds(*n);
        EXPECT_EQ(n->state(), nexus_state::online);
        EXPECT_TRUE(co_await whole(r.inner[0]) == co_await whole(r.inner[1]));
        co_await n->shutdown();
        EXPECT_EQ(n->state(), nexus_state::shutdown);
        EXPECT_TRUE(r.store.records[k_key].clean_shutdown);
        std::vector<std::byte> b(512);
        EXPECT_EQ(co_await io_on(1, n.get(), op::read, 0, b), io_status::namespace_not_ready);
        co_await n->close();
    }
    {
        // Clean: both open online at once, nothing to rebuild.
        auto n = co_await r.create({r.uri(0), r.uri(1)});
        EXPECT_EQ(n->state(), nexus_state::online);
        EXPECT_TRUE(n->rebuild_history().empty());
        co_await n->close();
    }
    // A record where no child is healthy: refused (no stale read).
    r.store.records[k_key] = nexus_health_record{.epoch = 3, .clean_shutdown = false,
                                                 .children = {{r.inner[0]->id().to_string(), false}}};
    try {
        auto n = co_await r.create({r.uri(0)});
        ADD_FAILURE() << "a nexus with no healthy child was created";
        co_await n->close();
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::unavailable) << e.what();
    }
    co_await r.close_all();
    co_return 0;
}

future<int> pause_add_remove_and_errors() {
    rig r;
    co_await r.make(3);
    auto n = co_await r.create({r.uri(0), r.uri(1)});
    co_await n->pause();
    auto w = pattern(4096, 10);
    bool done = false;
    // A named lambda: a coroutine lambda's captures live in the closure,
    // which must outlive the suspended coroutine.
    auto held_io = [&]() -> future<> {
        EXPECT_EQ(co_await io_on(1, n.get(), op::write, 1, w), io_status::success);
        done = true;
    };
    auto held = held_io();
    co_await sleep(50ms);
    EXPECT_FALSE(done) << "I/O went through a paused nexus";
    co_await n->resume();
    co_await std::move(held);
    EXPECT_TRUE(done);

    // Add a third child (rebuilt), remove the first, with I/O in between.
    co_await n->add_child(r.uri(2));
    co_await wait_rebuilds(*n);
    EXPECT_EQ(co_await io_on(0, n.get(), op::write, 50, w), io_status::success);
    co_await n->remove_child(r.uri(0));
    EXPECT_EQ(n->info().children.size(), 2u);
    std::vector<std::byte> back(4096);
    EXPECT_EQ(co_await io_on(1, n.get(), op::read, 50, back), io_status::success);
    EXPECT_TRUE(back == w);
    EXPECT_TRUE(co_await whole(r.inner[1]) == co_await whole(r.inner[2]));

    // Errors carry their codes.
    auto code = [](future<> f) -> future<std::optional<storage_errc>> {
        try {
            co_await std::move(f);
        } catch (const storage_error& e) {
            co_return e.code;
        }
        co_return std::nullopt;
    };
    EXPECT_EQ(co_await code(n->add_child(r.uri(1))), storage_errc::already_exists);
    EXPECT_EQ(co_await code(n->remove_child("bdev:///none")), storage_errc::not_found);
    EXPECT_EQ(co_await code(n->rebuild_start(r.uri(1))), storage_errc::invalid_argument);
    co_await n->offline_child(r.uri(2));
    EXPECT_EQ(co_await code(n->remove_child(r.uri(1))), storage_errc::busy) << "the last child in sync";
    co_await n->close();
    n.reset();
    auto bad = [&](std::vector<std::string> uris) -> future<std::optional<storage_errc>> {
        try {
            auto x = co_await r.create(std::move(uris));
            co_await x->close();
        } catch (const storage_error& e) {
            co_return e.code;
        }
        co_return std::nullopt;
    };
    EXPECT_EQ(co_await bad({}), storage_errc::invalid_argument);
    EXPECT_EQ(co_await bad({r.uri(0), r.uri(0)}), storage_errc::invalid_argument);
    EXPECT_EQ(co_await bad({"bdev:///missing"}), storage_errc::unavailable);
    co_await r.close_all();
    co_return 0;
}

int run(future<int> (*body)()) {
    return test::run_engine(test::small_config(2), [body](engine*) { return body(); });
}

}  // namespace

TEST(nexus, mirrors_writes_and_faults_a_failing_child) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(mirror_and_fault), 0);
}
TEST(nexus, a_store_that_cannot_record_faults_the_nexus) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(store_down_faults_nexus), 0);
}
TEST(nexus, a_write_skipping_an_unrecorded_fault_waits_for_the_record) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(write_skipping_an_unrecorded_fault_waits_for_the_record), 0);
}
TEST(nexus, offline_then_online_rebuilds_only_what_changed) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(offline_online_partial_rebuild), 0);
}
TEST(nexus, full_rebuild_under_concurrent_writes) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(full_rebuild_under_writes), 0);
}
TEST(nexus, unclean_restart_opens_only_healthy_children) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(unclean_and_clean_restart), 0);
}
TEST(nexus, pause_add_remove_and_errors) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(pause_add_remove_and_errors), 0);
}
