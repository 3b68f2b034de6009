// Nexus snapshots (storage/nexus/nexus_snapshot.cc, docs/nexus.md
// "Snapshots"): a nexus over a local replica (bdev:///), a remote replica
// (nvmf:// to our own target in this process, snapshotted by the vendor
// Snapshot Namespace command) and a malloc device (which cannot take
// snapshots), under 8 writers on shard 1. After the snapshot: the two
// replicas' snapshots are byte-identical and hold, per block, a write no
// older than the last one acknowledged before the snapshot began and no
// newer than the last acknowledged when it returned; the malloc child is
// reported failed and marked as missing history; a retry with the same txid
// succeeds with no new snapshot on either pool; a child added later is
// marked as missing history; the same name under another txid fails on
// every child. nvmf_device::snapshot_namespace refuses an empty name before
// sending, and the target refuses it to a host outside the nexus's
// reservation (Reservation Conflict). And a nexus whose I/O does not
// drain within snapshot_drain_limit fails the snapshot (busy) and resumes;
// a child that does not answer within snapshot_child_limit is reported
// failed, and a retry with the same txid finds the snapshot it took late.
// Two local children in one pool both take the snapshot: the first under
// its name, the other under "<name>@<replica>"; both hold the data of the
// snapshot's time, a retry finds both (existed), another txid under the
// name is refused on both. A replica in another pool of the node, taken
// after the first, also gets "<name>@<replica>"; two pools snapshotted at
// once take distinct names too. A nexus its user paused stays paused
// across a snapshot.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/initiator/nvmf_device.hh"
#include "nvme/target/target.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/fault_device.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "storage/pool.hh"
#include "storage/replica_snapshot.hh"
#include "tests/unit/pool_test_util.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t bs = 4096;
constexpr unsigned writers = 8;
constexpr std::uint64_t region_blocks = 256;  // the writers' blocks: 1 MiB

// Shard 1's writers: writer w owns the blocks b with b % writers == w and
// writes them in turn, each with (block, seq) in its first 16 bytes.
struct write_load {
    nexus* nx = nullptr;
    bool stop = false;
    std::vector<std::uint64_t> acked = std::vector<std::uint64_t>(region_blocks, 0);
    std::uint64_t errors = 0;
};

future<> writer(write_load* l, unsigned w) {
    auto buf = engine::current()->dma().allocate(bs);
    if (!buf) co_return;
    io_channel* ch = l->nx->channel();
    std::uint64_t seq = 0;
    while (!l->stop && ch) {
        for (std::uint64_t b = w; b < region_blocks && !l->stop; b += writers) {
            ++seq;
            std::memset(buf->data(), static_cast<int>(seq & 0xff), bs);
            std::memcpy(buf->data(), &b, 8);
            std::memcpy(buf->data() + 8, &seq, 8);
            io_vec v = to_io_vec(*buf);
            if (ok(co_await ch->write(b, 1, io_vecs(&v, 1)))) {
                l->acked[b] = seq;
            } else {
                ++l->errors;
            }
        }
    }
}

future<> run_writers(write_load* l) {
    std::vector<future<>> running;
    for (unsigned w = 0; w < writers; ++w) running.push_back(writer(l, w));
    for (auto& f : running) co_await std::move(f);
}

// Every block of the region, from `dev` on the calling shard.
future<std::vector<std::byte>> read_region(block_device* dev) {
    std::vector<std::byte> out(region_blocks * bs);
    auto buf = engine::current()->dma().allocate(region_blocks * bs);
    EXPECT_TRUE(static_cast<bool>(buf));
    if (!buf) co_return out;
    io_vec v = to_io_vec(*buf);
    io_channel* ch = dev->channel();
    EXPECT_NE(ch, nullptr);
    if (!ch) co_return out;
    EXPECT_EQ(co_await ch->read(0, region_blocks, io_vecs(&v, 1)), io_status::success) << dev->name();
    std::memcpy(out.data(), buf->data(), out.size());
    co_return out;
}

std::uint64_t seq_of(const std::vector<std::byte>& region, std::uint64_t b) {
    std::uint64_t block = 0, seq = 0;
    std::memcpy(&block, region.data() + b * bs, 8);
    std::memcpy(&seq, region.data() + b * bs + 8, 8);
    EXPECT_EQ(block, b) << "block " << b << " holds another block's data";
    return seq;
}

// The options of a nexus over local children: its health in `store`, its
// children found in `devices`.
nexus_options local_options(std::string key, memory_health_store& store, device_registry& devices) {
    nexus_options o;
    o.health_key = std::move(key);
    o.health = &store;
    o.registry = &devices;
    return o;
}

const nexus_snapshot_child* child_result(const nexus_snapshot_result& r, const std::string& prefix) {
    for (const auto& c : r.children)
        if (c.uri.rfind(prefix, 0) == 0) return &c;
    return nullptr;
}

future<int> body() {
    nvme::register_nvmf_backend();
    // `devices` is this node's registry, `remote_devices` the node that
    // serves rb (device names are per node: both pools get a volume "s1").
    device_registry devices, remote_devices;
    block_device* da = co_await devices.create("malloc:///snap_pa?size_mb=64&blk_size=4096");
    block_device* db = co_await remote_devices.create("malloc:///snap_pb?size_mb=64&blk_size=4096");
    auto pa = co_await pool::create(da, pool_create_options{.name = "pa"}, &devices);
    auto pb = co_await pool::create(db, pool_create_options{.name = "pb"}, &remote_devices);
    co_await pa->create_replica("ra", uuid::random(), 16 << 20, false);
    replica* rb = co_await pb->create_replica("rb", uuid::random(), 16 << 20, false);
    co_await devices.create("malloc:///snap_mx?size_mb=16&blk_size=4096");
    co_await devices.create("malloc:///snap_my?size_mb=16&blk_size=4096");

    auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
    const std::string nqn = "nqn.2026-12.io.ioengine:snap-rb";
    co_await target->add_subsystem(nvme::subsystem_config{.nqn = nqn, .namespaces = {rb}});
    co_await target->start();
    const std::string remote = fmt::format("nvmf://127.0.0.1:{}/{}?fast_io_fail_ms=200", target->port(), nqn);

    memory_health_store store;
    nexus_options o = local_options("/nexus/snap", store, devices);
    const uuid nx_id = uuid::random();
    auto nx = co_await nexus::create("nx-snap", nx_id, {"bdev:///ra", remote, "bdev:///snap_mx"}, o);
    EXPECT_EQ(nx->state(), nexus_state::online);

    write_load load;
    load.nx = nx.get();
    future<> running = submit_to(1, [l = &load] { return run_writers(l); });
    co_await sleep(100ms);
    const std::vector<std::uint64_t> before = co_await submit_to(1, [l = &load] { return l->acked; });
    const nexus_snapshot_result r = co_await nx->snapshot("s1", "tx-1");
    const std::vector<std::uint64_t> after = co_await submit_to(1, [l = &load] { return l->acked; });
    co_await sleep(50ms);  // the writers run again after the resume
    const std::vector<std::uint64_t> later = co_await submit_to(1, [l = &load] { return l->acked; });
    co_await submit_to(1, [l = &load] { l->stop = true; });
    co_await std::move(running);
    EXPECT_EQ(load.errors, 0u);
    EXPECT_GT(later[0], after[0]) << "I/O did not resume after the snapshot";

    EXPECT_FALSE(r.complete) << "the malloc child cannot take snapshots";
    EXPECT_EQ(r.txid, "tx-1");
    EXPECT_EQ(r.children.size(), 3u);
    const nexus_snapshot_child* local = child_result(r, "bdev:///ra");
    const nexus_snapshot_child* far = child_result(r, "nvmf://");
    const nexus_snapshot_child* mx = child_result(r, "bdev:///snap_mx");
    EXPECT_TRUE(local && local->ok && !local->existed) << (local ? local->error : "missing");
    EXPECT_TRUE(far && far->ok && !far->existed) << (far ? far->error : "missing");
    EXPECT_TRUE(mx && !mx->ok && mx->error.find("cannot take snapshots") != std::string::npos)
        << (mx ? mx->error : "missing");
    EXPECT_LT(r.pause_ms, 5000.0);

    replica* sa = pa->find_replica("s1");
    replica* sb = pb->find_replica("s1");
    EXPECT_NE(sa, nullptr);
    EXPECT_NE(sb, nullptr);
    if (sa && sb) {
        EXPECT_EQ(pa->list_replicas().size(), 2u);
        const std::vector<std::byte> a = co_await read_region(sa);
        const std::vector<std::byte> b = co_await read_region(sb);
        EXPECT_TRUE(a == b) << "the two children's snapshots differ";
        for (std::uint64_t blk = 0; blk < region_blocks; ++blk) {
            const std::uint64_t s = seq_of(a, blk);
            EXPECT_GE(s, before[blk]) << "block " << blk << ": an acknowledged write is missing from the snapshot";
            EXPECT_LE(s, after[blk]) << "block " << blk << ": the snapshot holds a write acknowledged after it";
        }
        for (const auto& i : pa->list_replicas())
            if (i.name == "s1") EXPECT_EQ(i.txid, "tx-1");
    }

    // History: the malloc child missed the snapshot.
    for (const auto& c : nx->info().children) {
        EXPECT_EQ(c.snapshot_history_missing, c.uri == "bdev:///snap_mx") << c.uri;
    }

    // Retry with the same txid: success on both replicas, nothing new taken.
    const std::size_t na = pa->list_replicas().size(), nb = pb->list_replicas().size();
    const nexus_snapshot_result again = co_await nx->snapshot("s1", "tx-1");
    local = child_result(again, "bdev:///ra");
    far = child_result(again, "nvmf://");
    EXPECT_TRUE(local && local->ok && local->existed) << (local ? local->error : "missing");
    EXPECT_TRUE(far && far->ok && far->existed) << (far ? far->error : "missing");
    EXPECT_EQ(pa->list_replicas().size(), na);
    EXPECT_EQ(pb->list_replicas().size(), nb);

    // The same name under another txid is refused on both replicas; a
    // snapshot no child took does not count (no history is missing for it).
    const nexus_snapshot_result clash = co_await nx->snapshot("s1", "tx-2");
    for (const auto& c : clash.children) EXPECT_FALSE(c.ok) << c.uri;
    EXPECT_EQ(pa->list_replicas().size(), na);
    EXPECT_EQ(pb->list_replicas().size(), nb);

    // A child added after the snapshots lacks their history.
    co_await nx->add_child("bdev:///snap_my", false);
    for (const auto& c : nx->info().children) {
        if (c.uri == "bdev:///snap_my") EXPECT_TRUE(c.snapshot_history_missing);
        if (c.uri == "bdev:///ra") EXPECT_FALSE(c.snapshot_history_missing);
    }
    EXPECT_EQ(nx->info().snapshots_taken, 2u);  // tx-1 and its retry

    // An empty name is refused before it is sent; a host outside the
    // reservation is refused by the target.
    {
        auto* dev = dynamic_cast<nvme::nvmf_device*>(co_await devices.create(remote + "&name=snap_probe"));
        EXPECT_NE(dev, nullptr);
        if (dev) {
            auto [st, existed] = co_await dev->snapshot_namespace("", "tx-3");
            EXPECT_EQ(st, io_status::invalid_field) << "an empty name is refused before it is sent";
            (void)existed;
            // The nexus holds Write Exclusive on the namespace: another
            // host may not snapshot it (docs/nvmf-vendor.md), not even a
            // retry of a transaction the nexus took.
            auto [st2, existed2] = co_await dev->snapshot_namespace("s1", "tx-1");
            EXPECT_EQ(st2, io_status::reservation_conflict) << "a host outside the reservation took a snapshot";
            EXPECT_FALSE(existed2);
        }
    }

    co_await nx->shutdown();
    co_await nx->close();
    nx.reset();

    // The history is in the health record: the next incarnation (a
    // restart here, a takeover elsewhere) reports it as this one did.
    {
        const auto rec = co_await store.load("/nexus/snap");
        EXPECT_TRUE(rec && rec->snapshots == 2u);
        auto again =
            co_await nexus::create("nx-snap", nx_id, {"bdev:///ra", remote, "bdev:///snap_mx", "bdev:///snap_my"}, o);
        EXPECT_EQ(again->info().snapshots_taken, 2u);
        EXPECT_EQ(again->info().children.size(), 4u);
        for (const auto& c : again->info().children) {
            EXPECT_EQ(c.snapshot_history_missing, c.uri == "bdev:///snap_mx" || c.uri == "bdev:///snap_my") << c.uri;
        }
        co_await again->shutdown();
        co_await again->close();
    }
    co_await target->stop();
    co_await pa->export_pool();
    co_await pb->export_pool();
    co_await devices.close_all();
    co_await remote_devices.close_all();
    co_return 0;
}

// A write held 600 ms by a fault device keeps the nexus from draining: with
// a 100 ms drain limit the snapshot fails with busy well before the write
// completes, nothing is snapshotted, and I/O flows again at once.
future<int> drain_limit_body() {
    device_registry devices;
    block_device* inner = co_await devices.create("malloc:///slow_m?size_mb=8&blk_size=4096");
    auto slow = std::make_unique<fault_device>("slow", inner);
    co_await devices.add(slow.get());
    memory_health_store store;
    nexus_options o = local_options("/nexus/slow", store, devices);
    o.snapshot_drain_limit = 100ms;
    auto nx = co_await nexus::create("nx-slow", uuid::random(), {"bdev:///slow"}, o);
    co_await slow->add_rule(fault_rule::delay_by(op_mask::write, 600ms));

    auto buf = engine::current()->dma().allocate(bs);
    EXPECT_TRUE(static_cast<bool>(buf));
    if (!buf) co_return 1;
    io_vec v = to_io_vec(*buf);
    future<io_status> held = nx->channel()->write(0, 1, io_vecs(&v, 1));
    co_await sleep(10ms);
    const auto t0 = std::chrono::steady_clock::now();
    try {
        co_await nx->snapshot("never", "tx-slow");
        ADD_FAILURE() << "the snapshot did not give up on a nexus that could not drain";
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::busy) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 400ms) << "the drain limit was not kept";
    EXPECT_EQ(co_await std::move(held), io_status::success);
    co_await slow->clear_rules();
    io_vec v2 = to_io_vec(*buf);
    EXPECT_EQ(co_await with_timeout(1s, nx->channel()->write(1, 1, io_vecs(&v2, 1))), io_status::success)
        << "I/O did not resume after the failed snapshot";
    EXPECT_EQ(nx->info().snapshots_taken, 0u);

    co_await nx->shutdown();
    co_await nx->close();
    nx.reset();
    co_await devices.remove("slow");
    co_await slow->close();
    co_await devices.close_all();
    co_return 0;
}

// A child whose pool is slow (its device delays writes, so the snapshot's
// metadata update takes 800 ms) is reported failed after the 150 ms child
// limit and I/O resumes; the snapshot still completes in the pool, and a
// retry with the same txid finds it (existed) instead of taking another.
future<int> child_limit_body() {
    device_registry devices;
    block_device* inner = co_await devices.create("malloc:///slowpool_m?size_mb=64&blk_size=4096");
    auto slow = std::make_unique<fault_device>("slowpool", inner);
    auto pl = co_await pool::create(slow.get(), pool_create_options{.name = "ps"}, &devices);
    co_await pl->create_replica("rs", uuid::random(), 8 << 20, false);
    memory_health_store store;
    nexus_options o = local_options("/nexus/slowpool", store, devices);
    o.snapshot_child_limit = 150ms;
    auto nx = co_await nexus::create("nx-slowpool", uuid::random(), {"bdev:///rs"}, o);
    const std::uint64_t rule = co_await slow->add_rule(fault_rule::delay_by(op_mask::write, 800ms));

    const auto t0 = std::chrono::steady_clock::now();
    const nexus_snapshot_result r = co_await nx->snapshot("late", "tx-late");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 700ms) << "the child limit was not kept";
    EXPECT_EQ(r.children.size(), 1u);
    if (!r.children.empty()) {
        EXPECT_FALSE(r.children[0].ok);
        EXPECT_NE(r.children[0].error.find("no answer within 150 ms"), std::string::npos) << r.children[0].error;
    }
    auto buf = engine::current()->dma().allocate(bs);
    io_vec v = to_io_vec(*buf);
    EXPECT_EQ(co_await with_timeout(2s, nx->channel()->read(0, 1, io_vecs(&v, 1))), io_status::success)
        << "I/O did not resume";
    co_await sleep(1500ms);  // the pool finishes the snapshot
    co_await slow->remove_rule(rule);
    EXPECT_NE(pl->find_replica("late"), nullptr) << "the late snapshot was not taken";
    const std::size_t volumes = pl->list_replicas().size();
    const nexus_snapshot_result again = co_await nx->snapshot("late", "tx-late");
    EXPECT_TRUE(again.complete);
    if (!again.children.empty()) EXPECT_TRUE(again.children[0].ok && again.children[0].existed) << again.children[0].error;
    EXPECT_EQ(pl->list_replicas().size(), volumes);

    co_await nx->shutdown();
    co_await nx->close();
    nx.reset();
    co_await pl->export_pool();
    co_await slow->close();
    co_await devices.close_all();
    co_return 0;
}

// Two local children, r1 and r2, in one pool: the snapshot "s" succeeds on
// both, one of them under "s@<replica>".
future<int> sibling_names_body() {
    device_registry devices;
    block_device* d1 = co_await devices.create("malloc:///sib_d1?size_mb=64&blk_size=4096");
    auto p1 = co_await pool::create(d1, pool_create_options{.name = "p1"}, &devices);
    co_await p1->create_replica("r1", uuid::random(), 8 << 20, false);
    co_await p1->create_replica("r2", uuid::random(), 8 << 20, false);
    memory_health_store store;
    nexus_options o = local_options("/nexus/siblings", store, devices);
    auto nx = co_await nexus::create("nx-sib", uuid::random(), {"bdev:///r1", "bdev:///r2"}, o);
    EXPECT_EQ(nx->state(), nexus_state::online);

    EXPECT_EQ(co_await test::write_stamped_range(nx.get(), 0, region_blocks, 1), io_status::success);
    const nexus_snapshot_result r = co_await nx->snapshot("s", "tx-a");
    EXPECT_TRUE(r.complete);
    for (const auto& c : r.children) EXPECT_TRUE(c.ok && !c.existed) << c.uri << ": " << c.error;
    EXPECT_EQ(co_await test::write_stamped_range(nx.get(), 0, region_blocks, 2), io_status::success);

    // Each replica's parent is a snapshot of tx-a: "s" for one, "s@<itself>"
    // for the other.
    std::vector<std::string> parents;
    for (const auto& i : p1->list_replicas()) {
        if (i.name == "r1" || i.name == "r2") parents.push_back(i.parent);
        if (i.snapshot) EXPECT_EQ(i.txid, "tx-a") << i.name;
    }
    std::sort(parents.begin(), parents.end());
    const std::vector<std::string> r1_plain{"s", "s@r2"}, r2_plain{"s", "s@r1"};
    const bool r1_first = parents == r1_plain;
    EXPECT_TRUE(r1_first || parents == r2_plain)
        << (parents.size() == 2 ? parents[0] + ", " + parents[1] : "parents missing");
    replica* s_plain = p1->find_replica("s");
    replica* s_named = p1->find_replica(r1_first ? "s@r2" : "s@r1");
    EXPECT_NE(s_plain, nullptr);
    EXPECT_NE(s_named, nullptr);
    if (s_plain && s_named) {
        EXPECT_EQ(co_await test::count_bad(s_plain, 0, region_blocks, 1), 0) << "snapshot s";
        EXPECT_EQ(co_await test::count_bad(s_named, 0, region_blocks, 1), 0) << "snapshot " << s_named->name();
        const std::vector<std::byte> a = co_await read_region(s_plain);
        const std::vector<std::byte> b = co_await read_region(s_named);
        EXPECT_TRUE(a == b) << "the two snapshots differ";
    }
    EXPECT_EQ(co_await test::count_bad(p1->find_replica("r1"), 0, region_blocks, 2), 0);
    EXPECT_EQ(co_await test::count_bad(p1->find_replica("r2"), 0, region_blocks, 2), 0);

    // A retry finds both; the name under another txid is refused on both.
    const std::size_t volumes = p1->list_replicas().size();
    EXPECT_EQ(volumes, 4u);
    const nexus_snapshot_result again = co_await nx->snapshot("s", "tx-a");
    EXPECT_TRUE(again.complete);
    EXPECT_EQ(again.children.size(), 2u);
    for (const auto& c : again.children) EXPECT_TRUE(c.ok && c.existed) << c.uri << ": " << c.error;
    const nexus_snapshot_result clash = co_await nx->snapshot("s", "tx-b");
    EXPECT_EQ(clash.children.size(), 2u);
    for (const auto& c : clash.children) {
        EXPECT_FALSE(c.ok) << c.uri;
        EXPECT_NE(c.error.find("exists and is not a snapshot"), std::string::npos) << c.error;
    }
    EXPECT_EQ(p1->list_replicas().size(), volumes);

    co_await nx->shutdown();
    co_await nx->close();
    nx.reset();
    co_await p1->export_pool();
    co_await devices.close_all();
    co_return 0;
}

// Two pools of one registry, one replica each, snapshotted one after the
// other (snapshot_replica_once, as a nexus child or the target does): the
// second finds the name held by the first's snapshot of the same txid on
// this node and takes "t@r2"; a retry finds it; the name under another
// txid, or a name held by a device that is not a snapshot, is refused.
future<int> two_pools_body() {
    device_registry devices;
    block_device* d1 = co_await devices.create("malloc:///two_d1?size_mb=64&blk_size=4096");
    block_device* d2 = co_await devices.create("malloc:///two_d2?size_mb=64&blk_size=4096");
    co_await devices.create("malloc:///u?size_mb=4&blk_size=4096");
    auto p1 = co_await pool::create(d1, pool_create_options{.name = "p1"}, &devices);
    auto p2 = co_await pool::create(d2, pool_create_options{.name = "p2"}, &devices);
    replica* r1 = co_await p1->create_replica("r1", uuid::random(), 8 << 20, false);
    replica* r2 = co_await p2->create_replica("r2", uuid::random(), 8 << 20, false);
    EXPECT_EQ(co_await test::write_stamped_range(r2, 0, region_blocks, 3), io_status::success);

    EXPECT_FALSE((co_await snapshot_replica_once(r1, device_snapshot_request{"t", "tx-t"})).existed);
    EXPECT_FALSE((co_await snapshot_replica_once(r2, device_snapshot_request{"t", "tx-t"})).existed);
    EXPECT_NE(p1->find_replica("t"), nullptr);
    EXPECT_EQ(p2->find_replica("t"), nullptr);
    replica* t2 = p2->find_replica("t@r2");
    EXPECT_NE(t2, nullptr);
    if (t2) EXPECT_EQ(co_await test::count_bad(t2, 0, region_blocks, 3), 0);
    EXPECT_TRUE((co_await snapshot_replica_once(r2, device_snapshot_request{"t", "tx-t"})).existed);
    auto refusal = [](replica* r, std::string name, std::string txid) -> future<storage_errc> {
        try {
            co_await snapshot_replica_once(r, device_snapshot_request{std::move(name), std::move(txid)});
        } catch (const storage_error& e) {
            co_return e.code;
        }
        co_return storage_errc::internal;
    };
    EXPECT_EQ(co_await refusal(r2, "t", "tx-other"), storage_errc::invalid_argument);
    EXPECT_EQ(co_await refusal(r1, "u", "tx-u"), storage_errc::invalid_argument);
    EXPECT_EQ(p1->list_replicas().size(), 2u);
    EXPECT_EQ(p2->list_replicas().size(), 2u);

    co_await p1->export_pool();
    co_await p2->export_pool();
    co_await devices.close_all();
    co_return 0;
}

// Two pools of one registry snapshotted at once under one name and txid:
// the first pool's flushes are slowed (50 ms each), so the second asks
// while the first holds the name but has not registered its snapshot.
// The second waits for it and takes "s@r2"; before the registry
// reservation, both took "s" and the second one's registration failed.
future<int> two_pools_at_once_body() {
    device_registry devices;
    co_await devices.create("malloc:///once_d1?size_mb=64&blk_size=4096");
    block_device* slow = co_await devices.create("fault:///once_slow?inner=once_d1&ops=flush&delay_ms=50");
    block_device* d2 = co_await devices.create("malloc:///once_d2?size_mb=64&blk_size=4096");
    auto p1 = co_await pool::create(slow, pool_create_options{.name = "p1"}, &devices);
    auto p2 = co_await pool::create(d2, pool_create_options{.name = "p2"}, &devices);
    replica* r1 = co_await p1->create_replica("r1", uuid::random(), 8 << 20, false);
    replica* r2 = co_await p2->create_replica("r2", uuid::random(), 8 << 20, false);
    EXPECT_EQ(co_await test::write_stamped_range(r1, 0, region_blocks, 5), io_status::success);
    EXPECT_EQ(co_await test::write_stamped_range(r2, 0, region_blocks, 3), io_status::success);

    future<device_snapshot_reply> first = snapshot_replica_once(r1, device_snapshot_request{"s", "tx-s"});
    future<device_snapshot_reply> second = snapshot_replica_once(r2, device_snapshot_request{"s", "tx-s"});
    std::string errors;
    for (future<device_snapshot_reply>* f : {&first, &second}) {
        try {
            EXPECT_FALSE((co_await std::move(*f)).existed);
        } catch (const std::exception& e) {
            errors += e.what();
        }
    }
    EXPECT_EQ(errors, "");
    // One pool holds "s", the other "s@<its replica>"; both registered.
    replica* s1 = p1->find_replica("s") ? p1->find_replica("s") : p1->find_replica("s@r1");
    replica* s2 = p2->find_replica("s") ? p2->find_replica("s") : p2->find_replica("s@r2");
    EXPECT_NE(s1, nullptr);
    EXPECT_NE(s2, nullptr);
    if (s1 && s2) {
        EXPECT_NE(s1->name(), s2->name());
        EXPECT_TRUE(s1->name() == "s" || s2->name() == "s");
        EXPECT_EQ(co_await devices.find(s1->name()), static_cast<block_device*>(s1));
        EXPECT_EQ(co_await devices.find(s2->name()), static_cast<block_device*>(s2));
        EXPECT_EQ(co_await test::count_bad(s1, 0, region_blocks, 5), 0);
        EXPECT_EQ(co_await test::count_bad(s2, 0, region_blocks, 3), 0);
    }
    EXPECT_TRUE((co_await snapshot_replica_once(r1, device_snapshot_request{"s", "tx-s"})).existed);
    EXPECT_TRUE((co_await snapshot_replica_once(r2, device_snapshot_request{"s", "tx-s"})).existed);
    EXPECT_EQ(p1->list_replicas().size(), 2u);
    EXPECT_EQ(p2->list_replicas().size(), 2u);

    co_await p1->export_pool();
    co_await p2->export_pool();
    co_await devices.destroy("once_slow");
    co_await devices.close_all();
    co_return 0;
}

// Pauses are counted: a nexus its user paused stays paused across a
// snapshot (whose resume lifts only the snapshot's own pause), and two
// pauses need two resumes. Before, the snapshot's resume let I/O through
// a nexus its user still held.
future<int> counted_pauses_body() {
    device_registry devices;
    block_device* d = co_await devices.create("malloc:///pz_d?size_mb=64&blk_size=4096");
    auto pl = co_await pool::create(d, pool_create_options{.name = "pz"}, &devices);
    co_await pl->create_replica("rz", uuid::random(), 8 << 20, false);
    memory_health_store store;
    nexus_options o = local_options("/nexus/pz", store, devices);
    auto nx = co_await nexus::create("nx-pz", uuid::random(), {"bdev:///rz"}, o);
    auto buf = engine::current()->dma().allocate(bs);
    EXPECT_TRUE(static_cast<bool>(buf));
    if (!buf) co_return 1;
    io_vec v = to_io_vec(*buf);

    co_await nx->pause();
    auto taken = co_await nx->snapshot("pz-s", "tx-pz");
    EXPECT_TRUE(taken.complete);
    future<io_status> held = nx->channel()->write(0, 1, io_vecs(&v, 1));
    co_await sleep(50ms);
    EXPECT_FALSE(held.available()) << "a write went through a nexus its user paused, after a snapshot";
    co_await nx->resume();
    EXPECT_EQ(co_await with_timeout(1s, std::move(held)), io_status::success);

    co_await nx->pause();
    co_await nx->pause();
    future<io_status> twice = nx->channel()->write(1, 1, io_vecs(&v, 1));
    co_await nx->resume();
    co_await sleep(50ms);
    EXPECT_FALSE(twice.available()) << "one resume lifted two pauses";
    co_await nx->resume();
    EXPECT_EQ(co_await with_timeout(1s, std::move(twice)), io_status::success);

    co_await nx->shutdown();
    co_await nx->close();
    nx.reset();
    co_await pl->export_pool();
    co_await devices.close_all();
    co_return 0;
}
}  // namespace

TEST(nexus_snapshot, a_nexus_its_user_paused_stays_paused_across_a_snapshot) {
    EXPECT_EQ(test::run_engine(test::small_config(1), [](engine*) { return with_timeout(30s, counted_pauses_body()); }), 0);
}

TEST(nexus_snapshot, two_pools_of_one_node_snapshotted_at_once_take_distinct_names) {
    EXPECT_EQ(test::run_engine(test::small_config(1), [](engine*) { return with_timeout(30s, two_pools_at_once_body()); }), 0);
}

TEST(nexus_snapshot, a_child_that_does_not_answer_in_time_is_reported_and_a_retry_finds_its_snapshot) {
    EXPECT_EQ(test::run_engine(test::small_config(1), [](engine*) { return with_timeout(30s, child_limit_body()); }), 0);
}

TEST(nexus_snapshot, a_nexus_that_does_not_drain_in_time_fails_busy_and_resumes) {
    EXPECT_EQ(test::run_engine(test::small_config(1), [](engine*) { return with_timeout(30s, drain_limit_body()); }), 0);
}

TEST(nexus_snapshot, local_and_nvmf_children_snapshot_the_same_point_in_time) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return with_timeout(60s, body()); }), 0);
}

TEST(nexus_snapshot, two_children_in_one_pool_both_take_it_under_distinct_names) {
    EXPECT_EQ(test::run_engine(test::small_config(1), [](engine*) { return with_timeout(30s, sibling_names_body()); }), 0);
}

TEST(nexus_snapshot, a_replica_in_another_pool_of_the_node_takes_the_name_with_its_own) {
    EXPECT_EQ(test::run_engine(test::small_config(1), [](engine*) { return with_timeout(30s, two_pools_body()); }), 0);
}
