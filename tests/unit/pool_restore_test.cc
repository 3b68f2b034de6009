// Restore in place (rollback to an ancestor snapshot) and the per-volume
// accounting of snapshots and clones: allocated, referenced through
// ancestors, and what destroying each volume frees, adding up to the pool's.
#include <gtest/gtest.h>

#include <map>

#include "tests/unit/pool_snapshot_util.hh"

using namespace ioe;
using namespace ioe::test::snapshots;

TEST(pool_restore, restore_returns_to_an_ancestor_and_later_snapshots_stay_valid) {
    std::map<std::string, int> bad, bad_after;
    std::uint64_t used_before = 0, used_after = 0, thick_used_before = 0, thick_used_after = 0;
    std::map<std::string, storage_errc> refused;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        std::map<std::string, content> model;
        for (std::string name : {"thin", "thick"}) {
            const bool thin = name == "thin";
            replica* r = co_await p->create_replica(name, uuid::random(), 4 * MiB, thin);
            content& m = model[name];
            m.assign(4 * blocks_per_cluster, thin ? -1 : -1);
            if (co_await write_model(r, m, 0, 300, 1) != io_status::success) co_return 1;
            co_await p->snapshot_replica(name, snap(name + "-s1"));
            model[name + "-s1"] = m;
            if (co_await write_model(r, m, 100, 400, 2) != io_status::success) co_return 2;
            co_await p->snapshot_replica(name, snap(name + "-s2"));
            model[name + "-s2"] = m;
            if (co_await write_model(r, m, 50, 900, 3) != io_status::success) co_return 3;
        }
        used_before = p->info().used_bytes;
        thick_used_before = 0;
        for (auto& i : p->list_replicas()) {
            if (i.name == "thick") thick_used_before = i.allocated_bytes;
        }
        co_await p->restore_replica("thin", "thin-s1");
        model["thin"] = model["thin-s1"];
        co_await p->restore_replica("thick", "thick-s1");
        model["thick"] = model["thick-s1"];
        used_after = p->info().used_bytes;
        for (auto& i : p->list_replicas()) {
            if (i.name == "thick") thick_used_after = i.allocated_bytes;
        }
        // Then more writes: they go over the restored content.
        for (std::string name : {"thin", "thick"}) {
            if (co_await write_model(p->find_replica(name), model[name], 250, 20, 4) != io_status::success) co_return 4;
        }
        auto attempt = [&](std::string what, future<> f) -> future<> {
            try {
                co_await std::move(f);
                refused[what] = storage_errc::internal;
            } catch (...) {
                refused[what] = code_of(std::current_exception());
            }
        };
        co_await attempt("not an ancestor", p->restore_replica("thin", "thick-s1"));
        co_await attempt("a snapshot", p->restore_replica("thin-s2", "thin-s1"));
        co_await attempt("missing snapshot", p->restore_replica("thin", "nope"));
        co_await attempt("missing replica", p->restore_replica("nope", "thin-s1"));
        for (auto& [name, expect] : model) bad[name] = co_await mismatches(p->find_replica(name), expect);
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        for (auto& [name, expect] : model) bad_after[name] = co_await mismatches(q->find_replica(name), expect);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(bad.size(), 6u);
    for (auto& [name, n] : bad) EXPECT_EQ(n, 0) << name;
    for (auto& [name, n] : bad_after) EXPECT_EQ(n, 0) << name << " after import";
    // The thin replica's own clusters (0..3 written by seed 3 and 4) went
    // back to the pool; the thick one keeps its reserved set.
    EXPECT_EQ(used_before - used_after, 4ull * MiB);
    EXPECT_EQ(thick_used_before, 4ull * MiB);
    EXPECT_EQ(thick_used_after, 4ull * MiB);
    EXPECT_EQ(refused["not an ancestor"], storage_errc::invalid_argument);
    EXPECT_EQ(refused["a snapshot"], storage_errc::invalid_argument);
    EXPECT_EQ(refused["missing snapshot"], storage_errc::not_found);
    EXPECT_EQ(refused["missing replica"], storage_errc::not_found);
}

TEST(pool_restore, accounting_adds_up_after_each_step) {
    struct step {
        std::string what;
        std::map<std::string, replica_info> volumes;
        std::uint64_t used = 0;
    };
    std::vector<step> steps;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        auto record = [&](std::string what) {
            step s{std::move(what), {}, p->info().used_bytes};
            for (auto& i : p->list_replicas()) s.volumes[i.name] = i;
            steps.push_back(std::move(s));
        };
        replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        if (co_await test::write_stamped_range(r, 0, 3 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        record("written");
        co_await p->snapshot_replica("r", snap("s"));
        record("snapshot");
        if (co_await test::write_stamped(r, 10, 1, 2) != io_status::success) co_return 2;  // one granule of cluster 0
        record("cow");
        replica* c = co_await p->clone_snapshot("s", "c");
        if (co_await test::write_stamped(c, blocks_per_cluster + 4, 8, 3) != io_status::success) co_return 3;
        record("clone");
        co_await p->destroy_replica("c");
        record("clone destroyed");
        co_await p->export_pool();
        co_return 0;
    });
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(steps.size(), 5u);
    const std::uint64_t granule = MiB / 64, cluster = MiB;
    for (const auto& s : steps) {
        std::uint64_t sum = 0;
        for (auto& [n, v] : s.volumes) sum += v.allocated_bytes;
        EXPECT_EQ(sum, s.used) << s.what;
    }
    auto& w = steps[0].volumes;
    EXPECT_EQ(w["r"].allocated_bytes, 3 * cluster);
    EXPECT_EQ(w["r"].referenced_bytes, 0u);
    EXPECT_EQ(w["r"].freed_by_delete_bytes, 3 * cluster);
    auto& sn = steps[1].volumes;
    EXPECT_EQ(sn["r"].allocated_bytes, 0u);
    EXPECT_EQ(sn["r"].referenced_bytes, 3 * cluster);  // everything through s
    EXPECT_EQ(sn["s"].allocated_bytes, 3 * cluster);
    EXPECT_EQ(sn["s"].freed_by_delete_bytes, 0u);  // it has a child
    auto& cw = steps[2].volumes;
    EXPECT_EQ(cw["r"].allocated_bytes, cluster);  // one COW cluster ...
    // ... holding the one 4 KiB block written (redirected: the rest of its
    // granule is still read through s)
    EXPECT_EQ(cw["r"].referenced_bytes, 3 * cluster - 4096);
    auto& cl = steps[3].volumes;
    EXPECT_EQ(cl["c"].allocated_bytes, cluster);
    EXPECT_EQ(cl["c"].referenced_bytes, 3 * cluster - 2 * granule);  // 8 blocks at +4: granules 1 and 2
    EXPECT_EQ(cl["c"].freed_by_delete_bytes, cluster);
    EXPECT_EQ(cl["c"].parent, "s");
    EXPECT_EQ(steps[4].used, steps[2].used);
}
