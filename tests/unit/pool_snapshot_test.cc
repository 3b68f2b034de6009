// Snapshots, clones and granule copy-on-write on malloc devices (1 MiB
// clusters, so 16 KiB granules of four 4 KiB blocks): point-in-time content,
// a chain of ten snapshots with clones of clones read back at every level
// (before and after export/import), COW at every granule offset of a
// cluster and across cluster edges, thick replicas staying thick, a full
// pool during COW over recycled clusters, the in-place upgrade to format
// version 2, and the errors (not found, read-only, capacity, discarded).
#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "runtime/timer.hh"

#include "storage/device_registry.hh"
#include "storage/pool.hh"
#include "tests/unit/pool_snapshot_util.hh"
#include "tests/unit/pool_test_util.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;

using namespace ioe::test::snapshots;

TEST(pool_snapshot, snapshot_keeps_its_point_in_time_while_the_replica_moves_on) {
    int bad_snap = -2, bad_rep = -2, bad_snap_after = -2, bad_rep_after = -2;
    io_status to_snapshot = io_status::success;
    std::vector<replica_info> list;
    std::uint32_t version_before = 0, version_after = 0, version_reimport = 0;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r", uuid::random(), 8 * MiB, true);
        content rm(8 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, 1000, 1) != io_status::success) co_return 1;
        version_before = p->info().format_version;
        replica* s = co_await p->snapshot_replica("r", snap("s1", "tx-42"));
        version_after = p->info().format_version;
        content sm = rm;
        if (co_await write_model(r, rm, 10, 3, 2) != io_status::success) co_return 2;    // partial granule
        if (co_await write_model(r, rm, 250, 12, 3) != io_status::success) co_return 3;  // across a cluster edge
        if (co_await write_model(r, rm, 1500, 4, 4) != io_status::success) co_return 4;  // where s1 has nothing
        to_snapshot = co_await test::write_stamped(s, 0, 1, 9);
        bad_snap = co_await mismatches(s, sm);
        bad_rep = co_await mismatches(r, rm);
        list = p->list_replicas();
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        version_reimport = q->info().format_version;
        bad_snap_after = co_await mismatches(q->find_replica("s1"), sm);
        bad_rep_after = co_await mismatches(q->find_replica("r"), rm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(version_before, 1u);
    EXPECT_EQ(version_after, 2u);
    EXPECT_EQ(version_reimport, 2u);
    EXPECT_EQ(to_snapshot, io_status::namespace_write_protected);
    EXPECT_EQ(bad_snap, 0);
    EXPECT_EQ(bad_rep, 0);
    EXPECT_EQ(bad_snap_after, 0);
    EXPECT_EQ(bad_rep_after, 0);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].name, "r");
    EXPECT_EQ(list[0].parent, "s1");
    EXPECT_FALSE(list[0].snapshot);
    EXPECT_EQ(list[1].name, "s1");
    EXPECT_TRUE(list[1].snapshot);
    EXPECT_EQ(list[1].txid, "tx-42");
    EXPECT_GT(list[1].created_ns, 1600000000ull * 1000000000ull);
    EXPECT_EQ(list[1].allocated_bytes, 4ull * MiB);  // the clusters r had written (1000 blocks)
    EXPECT_EQ(list[0].allocated_bytes, 3ull * MiB);  // COW clusters 0, 1 and 5
}

TEST(pool_snapshot, chain_of_ten_snapshots_with_clones_of_clones_reads_back_at_every_level) {
    std::map<std::string, int> bad, bad_after;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        const std::uint64_t n = 4 * blocks_per_cluster;
        std::map<std::string, content> model;
        model["r"] = content(n, -1);
        co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        for (int i = 0; i < 10; ++i) {
            replica* r = p->find_replica("r");
            // A region of its own per level (crossing cluster edges), and a
            // block every level overwrites.
            if (co_await write_model(r, model["r"], 100 * i + 3, 90, 10 + i) != io_status::success) co_return 1;
            if (co_await write_model(r, model["r"], 1020, 2, 10 + i) != io_status::success) co_return 2;
            std::string s = "s" + std::to_string(i);
            co_await p->snapshot_replica("r", snap(s, "tx" + std::to_string(i)));
            model[s] = model["r"];
        }
        // Clones of clones: c0 of s9, snapshot cs0 of c0, c1 of cs0, c2 of
        // cs1 (snapshot of c1); and cm of the middle of the chain.
        std::string parent = "s9";
        for (int k = 0; k < 3; ++k) {
            std::string c = "c" + std::to_string(k), cs = "cs" + std::to_string(k);
            replica* cr = co_await p->clone_snapshot(parent, c);
            model[c] = model[parent];
            if (co_await write_model(cr, model[c], 200 * k + 50, 70, 30 + k) != io_status::success) co_return 3;
            co_await p->snapshot_replica(c, snap(cs));
            model[cs] = model[c];
            if (co_await write_model(cr, model[c], 900, 5, 40 + k) != io_status::success) co_return 4;
            parent = cs;
        }
        replica* cm = co_await p->clone_snapshot("s4", "cm");
        model["cm"] = model["s4"];
        if (co_await write_model(cm, model["cm"], 0, n, 50) != io_status::success) co_return 5;  // every granule
        if (co_await write_model(p->find_replica("r"), model["r"], 500, 30, 60) != io_status::success) co_return 6;
        for (auto& [name, expect] : model) bad[name] = co_await mismatches(p->find_replica(name), expect);
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        for (auto& [name, expect] : model) bad_after[name] = co_await mismatches(q->find_replica(name), expect);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(bad.size(), 1u + 10 + 6 + 1);
    for (auto& [name, n] : bad) EXPECT_EQ(n, 0) << name;
    for (auto& [name, n] : bad_after) EXPECT_EQ(n, 0) << name << " after import";
}

TEST(pool_snapshot, cow_at_every_granule_offset_and_across_cluster_edges) {
    int bad_rep = -2, bad_snap = -2, bad_rep_after = -2;
    std::uint64_t used_before = 0, used_after = 0;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r", uuid::random(), 3 * MiB, true);
        content rm(3 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, 3 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        content sm = rm;
        used_before = p->info().used_bytes;
        // One block in each of the 64 granules of cluster 1, at each of the
        // four offsets inside a granule in turn.
        for (std::uint64_t g = 0; g < 64; ++g) {
            const std::uint64_t lba = blocks_per_cluster + g * 4 + g % 4;
            if (co_await write_model(r, rm, lba, 1, static_cast<std::uint16_t>(100 + g)) != io_status::success) {
                co_return 2;
            }
        }
        // Across the edges 0|1 (already materialized on the right) and 1|2.
        if (co_await write_model(r, rm, blocks_per_cluster - 3, 6, 7) != io_status::success) co_return 3;
        if (co_await write_model(r, rm, 2 * blocks_per_cluster - 1, 2, 8) != io_status::success) co_return 4;
        used_after = p->info().used_bytes;
        bad_rep = co_await mismatches(r, rm);
        bad_snap = co_await mismatches(p->find_replica("s"), sm);
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        bad_rep_after = co_await mismatches(q->find_replica("r"), rm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(used_before, 3ull * MiB);
    EXPECT_EQ(used_after, 6ull * MiB);  // one COW cluster per touched logical cluster
    EXPECT_EQ(bad_rep, 0);
    EXPECT_EQ(bad_snap, 0);
    EXPECT_EQ(bad_rep_after, 0);
}

TEST(pool_snapshot, thick_replica_stays_thick_after_a_snapshot) {
    std::uint64_t used0 = 0, used1 = 0, used2 = 0, used_refused = 0;
    std::uint64_t rep_alloc = 0;
    storage_errc third = storage_errc::internal;
    io_status filler_full = io_status::success, cow_after_full = io_status::internal_error;
    int bad = -2;
    int rc = with_device(
        [&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);  // 31 clusters
            replica* r = co_await p->create_replica("r", uuid::random(), 8 * MiB, false);
            content rm(8 * blocks_per_cluster, -1);
            if (co_await write_model(r, rm, 0, 8 * blocks_per_cluster, 1) != io_status::success) co_return 1;
            used0 = p->info().used_bytes;
            co_await p->snapshot_replica("r", snap("s1"));
            used1 = p->info().used_bytes;
            for (auto& i : p->list_replicas()) {
                if (i.name == "r") rep_alloc = i.allocated_bytes;
            }
            co_await p->snapshot_replica("r", snap("s2"));
            used2 = p->info().used_bytes;
            try {
                co_await p->snapshot_replica("r", snap("s3"));  // needs 8, 7 free
            } catch (...) {
                third = code_of(std::current_exception());
            }
            used_refused = p->info().used_bytes;
            // Fill the rest of the pool with a thin volume.
            replica* f = co_await p->create_replica("filler", uuid::random(), 16 * MiB, true);
            for (std::uint64_t c = 0; c < 16; ++c) {
                io_status st = co_await test::write_stamped(f, c * blocks_per_cluster, 1, 5);
                if (st != io_status::success) {
                    filler_full = st;
                    break;
                }
            }
            // The thick replica's reserved clusters take its COW writes.
            cow_after_full = io_status::success;
            for (std::uint64_t c = 0; c < 8 && cow_after_full == io_status::success; ++c) {
                cow_after_full = co_await write_model(r, rm, c * blocks_per_cluster + 17, 2, 2);
            }
            bad = co_await mismatches(r, rm);
            co_await p->export_pool();
            co_return 0;
        },
        "malloc:///d0?size_mb=32&blk_size=4096");
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(used0, 8ull * MiB);
    EXPECT_EQ(used1, 16ull * MiB);  // the snapshot's 8 and the replica's fresh 8
    EXPECT_EQ(rep_alloc, 8ull * MiB);
    EXPECT_EQ(used2, 24ull * MiB);
    EXPECT_EQ(third, storage_errc::no_space);
    EXPECT_EQ(used_refused, used2);
    EXPECT_EQ(filler_full, io_status::capacity_exceeded);
    EXPECT_EQ(cow_after_full, io_status::success);
    EXPECT_EQ(bad, 0);
}

TEST(pool_snapshot, full_pool_during_cow_fails_cleanly_and_recycled_clusters_never_show_through) {
    std::vector<io_status> results;
    int bad_rep = -2, bad_snap = -2, bad_rep_after = -2;
    int rc = with_device(
        [&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);  // 15 clusters
            replica* r = co_await p->create_replica("r", uuid::random(), 8 * MiB, true);
            content rm(8 * blocks_per_cluster, -1);
            if (co_await write_model(r, rm, 0, 7 * blocks_per_cluster, 1) != io_status::success) co_return 1;
            co_await p->snapshot_replica("r", snap("s"));
            content sm = rm;
            // Stale data in every free cluster, then 7 of the 8 freed again.
            replica* f = co_await p->create_replica("filler", uuid::random(), 8 * MiB, true);
            for (std::uint64_t c = 0; c < 8; ++c) {
                if (co_await test::write_stamped_range(f, c * blocks_per_cluster, blocks_per_cluster, 9) !=
                    io_status::success) {
                    co_return 2;
                }
            }
            co_await p->destroy_replica("filler");
            replica* f2 = co_await p->create_replica("filler2", uuid::random(), 1 * MiB, true);
            if (co_await test::write_stamped(f2, 0, 1, 9) != io_status::success) co_return 3;
            // COW writes: cluster 7 (nothing in the snapshot), then 0..6.
            for (std::uint64_t c : {7, 0, 1, 2, 3, 4, 5, 6}) {
                results.push_back(co_await write_model(r, rm, c * blocks_per_cluster + 37, 1, 2));
            }
            bad_rep = co_await mismatches(r, rm);
            bad_snap = co_await mismatches(p->find_replica("s"), sm);
            co_await p->export_pool();
            p.reset();
            auto q = co_await pool::import(dev, reg);
            bad_rep_after = co_await mismatches(q->find_replica("r"), rm);
            co_await q->export_pool();
            co_return 0;
        },
        "malloc:///d0?size_mb=16&blk_size=4096");
    EXPECT_EQ(rc, 0);
    ASSERT_EQ(results.size(), 8u);
    for (int i = 0; i < 7; ++i) EXPECT_EQ(results[i], io_status::success) << i;
    EXPECT_EQ(results[7], io_status::capacity_exceeded);
    EXPECT_EQ(bad_rep, 0);  // zeros around the write in cluster 7, the snapshot's data elsewhere
    EXPECT_EQ(bad_snap, 0);
    EXPECT_EQ(bad_rep_after, 0);
}

TEST(pool_snapshot, errors_have_codes) {
    std::map<std::string, storage_errc> got;
    io_status write_snap = io_status::success, unmap_snap = io_status::success;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        replica* s = co_await p->snapshot_replica("r", snap("s"));
        co_await p->clone_snapshot("s", "c");
        auto attempt = [&](std::string what, future<> f) -> future<> {
            try {
                co_await std::move(f);
                got[what] = storage_errc::internal;  // no error: the test fails below
            } catch (...) {
                got[what] = code_of(std::current_exception());
            }
        };
        auto snapshot_of = [&](std::string rep, std::string name) -> future<> {
            co_await p->snapshot_replica(rep, snap(name));
        };
        auto clone_of = [&](std::string s, std::string name) -> future<> { co_await p->clone_snapshot(s, name); };
        co_await attempt("snapshot of missing", snapshot_of("nope", "x"));
        co_await attempt("snapshot name taken", snapshot_of("r", "c"));
        co_await attempt("snapshot of snapshot", snapshot_of("s", "x"));
        co_await attempt("txid too long", [&]() -> future<> {
            snapshot_options o = snap("x", std::string(64, 't'));
            co_await p->snapshot_replica("r", o);
        }());
        co_await attempt("clone of missing", clone_of("nope", "x"));
        co_await attempt("clone of a replica", clone_of("r", "x"));
        co_await attempt("resize a snapshot", p->resize_replica("s", 8 * MiB));
        write_snap = co_await test::write_stamped(s, 0, 1, 1);
        unmap_snap = co_await s->channel()->unmap(0, 256);
        // A snapshot with two children is discarded: no new clones from it.
        co_await p->destroy_replica("s");
        co_await attempt("clone of a discarded snapshot", clone_of("s", "x"));
        // The refusals changed nothing: the chain still works; the last
        // child but one going takes the discarded snapshot with it.
        co_await p->destroy_replica("c");
        co_await attempt("destroy a merged snapshot", p->destroy_replica("s"));
        co_await p->destroy_replica("r");
        co_await p->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(got["snapshot of missing"], storage_errc::not_found);
    EXPECT_EQ(got["snapshot name taken"], storage_errc::already_exists);
    EXPECT_EQ(got["snapshot of snapshot"], storage_errc::invalid_argument);
    EXPECT_EQ(got["txid too long"], storage_errc::invalid_argument);
    EXPECT_EQ(got["clone of missing"], storage_errc::not_found);
    EXPECT_EQ(got["clone of a replica"], storage_errc::invalid_argument);
    EXPECT_EQ(got["clone of a discarded snapshot"], storage_errc::not_found);
    EXPECT_EQ(got["destroy a merged snapshot"], storage_errc::not_found);
    EXPECT_EQ(got["resize a snapshot"], storage_errc::invalid_argument);
    EXPECT_EQ(write_snap, io_status::namespace_write_protected);
    EXPECT_EQ(unmap_snap, io_status::namespace_write_protected);
}

TEST(pool_snapshot, version_1_pool_stays_version_1_until_its_first_snapshot) {
    std::uint32_t v_created = 0, v_reimport = 0, v_clone = 0;
    int bad = -2;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        if (co_await test::write_stamped(r, 0, 8, 1) != io_status::success) co_return 1;
        v_created = p->info().format_version;
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        v_reimport = q->info().format_version;
        co_await q->snapshot_replica("r", snap("s"));
        replica* c = co_await q->clone_snapshot("s", "c");
        v_clone = q->info().format_version;
        bad = co_await test::count_bad(c, 0, 8, 1) + co_await test::count_bad(c, 8, 248, -1);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(v_created, 1u);
    EXPECT_EQ(v_reimport, 1u);
    EXPECT_EQ(v_clone, 2u);
    EXPECT_EQ(bad, 0);
}

namespace {

// The seed each block of [lba, lba+blocks) holds (at most 1 MiB): -1 for
// zeros, -2 for anything that is not one whole stamped block.
future<std::vector<int>> seeds_of(block_device* dev, std::uint64_t lba, std::uint32_t blocks) {
    const std::uint32_t bs = dev->block_size();
    std::vector<int> out(blocks, -2);
    auto buf = engine::current()->dma().allocate(std::uint64_t(blocks) * bs);
    if (!buf) co_return out;
    io_vec v = to_io_vec(*buf);
    if (!ok(co_await dev->channel()->read(lba, blocks, io_vecs(&v, 1)))) co_return out;
    std::vector<std::byte> expect(bs), zero(bs);
    for (std::uint32_t b = 0; b < blocks; ++b) {
        const std::byte* p = buf->data() + std::uint64_t(b) * bs;
        if (std::memcmp(p, zero.data(), bs) == 0) {
            out[b] = -1;
            continue;
        }
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        test::stamp(expect.data(), bs, lba + b, static_cast<std::uint16_t>(word & 0xffff));
        if (std::memcmp(p, expect.data(), bs) == 0) out[b] = static_cast<int>(word & 0xffff);
    }
    co_return out;
}

}  // namespace

// Shard 1 rewrites the replica in batches while shard 0 takes a snapshot:
// the snapshot is one point in time (every batch before the newest one it
// shows is whole in it), holds only whole blocks, and stays put afterwards.
TEST(pool_snapshot, snapshot_under_writes_from_another_shard_is_one_point_in_time) {
    IOE_NEED_CORES(2);
    std::vector<int> in_snap, in_snap_later, in_rep;
    int rc = with_device(
        [&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);
            replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
            if (co_await test::write_stamped_range(r, 0, 1024, 1) != io_status::success) co_return 1;
            auto writer = [](replica* r, std::atomic<int>* done) -> future<int> {
                int failed = 0;
                for (std::uint64_t batch = 0; batch < 64; ++batch) {
                    std::vector<future<io_status>> ios;
                    for (std::uint64_t i = 0; i < 16; ++i) ios.push_back(test::write_stamped(r, batch * 16 + i, 1, 2));
                    for (auto& f : ios) failed += (co_await std::move(f)) != io_status::success;
                    done->fetch_add(1);
                    co_await sleep(std::chrono::microseconds(500));  // a stream, not a burst
                }
                co_return failed;
            };
            std::atomic<int> batches{0};
            auto other = submit_to(1, [r, writer, b = &batches] { return writer(r, b); });
            // Snapshot in the middle of the stream (bounded: 5 s).
            for (int i = 0; i < 5000 && batches.load() < 8; ++i) co_await sleep(std::chrono::milliseconds(1));
            replica* s = co_await p->snapshot_replica("r", snap("s"));
            if (co_await std::move(other) != 0) co_return 2;
            for (std::uint64_t at = 0; at < 1024; at += 256) {
                auto part = co_await seeds_of(s, at, 256);
                in_snap.insert(in_snap.end(), part.begin(), part.end());
                auto rp = co_await submit_to(1, [r, at] { return seeds_of(r, at, 256); });
                in_rep.insert(in_rep.end(), rp.begin(), rp.end());
            }
            if (co_await test::write_stamped_range(r, 0, 1024, 3) != io_status::success) co_return 3;
            for (std::uint64_t at = 0; at < 1024; at += 256) {
                auto part = co_await submit_to(1, [s, at] { return seeds_of(s, at, 256); });
                in_snap_later.insert(in_snap_later.end(), part.begin(), part.end());
            }
            co_await p->export_pool();
            co_return 0;
        },
        "malloc:///d0?size_mb=64&blk_size=4096", 2);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(in_snap.size(), 1024u);
    int newest = -1;  // the last batch with a new block in the snapshot
    for (std::size_t b = 0; b < 1024; ++b) {
        EXPECT_TRUE(in_snap[b] == 1 || in_snap[b] == 2) << "block " << b << " holds " << in_snap[b];
        if (in_snap[b] == 2) newest = static_cast<int>(b / 16);
        EXPECT_EQ(in_rep[b], 2) << b;
    }
    for (int b = 0; b < newest * 16; ++b) EXPECT_EQ(in_snap[b], 2) << "batch " << b / 16 << " is torn in the snapshot";
    std::printf("the snapshot shows %d of the 64 batches\n", newest + 1);
    EXPECT_EQ(in_snap_later, in_snap);
}
