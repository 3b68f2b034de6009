// Inflate (decouple): a clone, or a snapshotted replica, copies what it reads
// through its ancestors and becomes parentless. Content is identical before
// and after at every block (granules only an ancestor holds, the volume's
// own, holes), in thin and thick volumes, and after an import; the snapshot
// can then be deleted on its own; a discarded snapshot waiting for this
// child goes; a pool too full for the copy refuses with no_space and
// nothing changes; refusals have codes.
#include <gtest/gtest.h>

#include <map>

#include "tests/unit/pool_snapshot_util.hh"

using namespace ioe;
using namespace ioe::test::snapshots;

namespace {

const replica_info* info_of(const std::vector<replica_info>& all, const std::string& name) {
    for (const auto& i : all) {
        if (i.name == name) return &i;
    }
    return nullptr;
}

}  // namespace

TEST(pool_inflate, clone_and_thick_replica_keep_their_content_and_lose_their_parent) {
    std::map<std::string, int> bad, bad_after;
    std::map<std::string, std::string> parent;
    bool snapshot_gone = false, discarded_went = false;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        std::map<std::string, content> model;
        // A thin base written in parts of clusters 0..2 (cluster 3 a hole).
        replica* base = co_await p->create_replica("base", uuid::random(), 4 * MiB, true);
        content& m = model["base"];
        m.assign(4 * blocks_per_cluster, -1);
        if (co_await write_model(base, m, 3, 200, 1) != io_status::success) co_return 1;
        if (co_await write_model(base, m, 600, 20, 2) != io_status::success) co_return 2;
        co_await p->snapshot_replica("base", snap("s1"));
        model["s1"] = m;
        // A clone with writes of its own, one inside a granule the snapshot holds.
        replica* c = co_await p->clone_snapshot("s1", "c1");
        model["c1"] = model["s1"];
        if (co_await write_model(c, model["c1"], 10, 3, 3) != io_status::success) co_return 3;
        if (co_await write_model(c, model["c1"], 900, 5, 4) != io_status::success) co_return 4;
        // A thick replica, snapshotted, written a little after.
        replica* t = co_await p->create_replica("thick", uuid::random(), 2 * MiB, false);
        content& tm = model["thick"];
        tm.assign(2 * blocks_per_cluster, -1);
        if (co_await write_model(t, tm, 0, 400, 5) != io_status::success) co_return 5;
        co_await p->snapshot_replica("thick", snap("ts1"));
        model["ts1"] = tm;
        if (co_await write_model(t, tm, 130, 7, 6) != io_status::success) co_return 6;

        co_await p->inflate_replica("c1");
        co_await p->inflate_replica("thick");
        for (auto& [name, expect] : model) bad[name] = co_await mismatches(p->find_replica(name), expect);
        for (const auto& i : p->list_replicas()) parent[i.name] = i.parent;
        // The clone's writes after inflate stay its own.
        if (co_await write_model(p->find_replica("c1"), model["c1"], 0, 2, 7) != io_status::success) co_return 7;
        // ts1 has no child left now: deleting it frees it at once.
        co_await p->destroy_replica("ts1");
        model.erase("ts1");
        // s1 has base as its only child... make it two (a second clone),
        // discard s1, inflate the clone: s1 then merges into base.
        co_await p->clone_snapshot("s1", "c2");
        model["c2"] = model["s1"];
        co_await p->destroy_replica("s1");
        co_await p->inflate_replica("c2");
        model.erase("s1");
        discarded_went = info_of(p->list_replicas(), "s1") == nullptr;
        snapshot_gone = info_of(p->list_replicas(), "ts1") == nullptr;
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        for (auto& [name, expect] : model) bad_after[name] = co_await mismatches(q->find_replica(name), expect);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(bad.size(), 5u);
    for (auto& [name, n] : bad) EXPECT_EQ(n, 0) << name;
    EXPECT_EQ(bad_after.size(), 4u);
    for (auto& [name, n] : bad_after) EXPECT_EQ(n, 0) << name << " after import";
    EXPECT_EQ(parent["c1"], "");
    EXPECT_EQ(parent["thick"], "");
    EXPECT_EQ(parent["base"], "s1");
    EXPECT_TRUE(snapshot_gone);
    EXPECT_TRUE(discarded_went) << "the discarded snapshot stayed after its last clone decoupled";
}

TEST(pool_inflate, full_pool_refuses_and_nothing_changes_and_refusals_have_codes) {
    std::map<std::string, storage_errc> refused;
    int bad = -1;
    std::string parent_after;
    std::uint64_t used_before = 0, used_after = 0;
    // 8 MiB device: a 4 MiB snapshot fills most of it, its clone cannot inflate.
    int rc = with_device(
        [&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);
            replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
            content m(4 * blocks_per_cluster, -1);
            if (co_await write_model(r, m, 0, 4 * blocks_per_cluster, 1) != io_status::success) co_return 1;
            co_await p->snapshot_replica("r", snap("s"));
            co_await p->clone_snapshot("s", "c");
            used_before = p->info().used_bytes;
            auto attempt = [&](std::string what, future<> f) -> future<> {
                try {
                    co_await std::move(f);
                    refused[what] = storage_errc::internal;
                } catch (...) {
                    refused[what] = code_of(std::current_exception());
                }
            };
            co_await attempt("no space", p->inflate_replica("c"));
            co_await attempt("a snapshot", p->inflate_replica("s"));
            co_await attempt("missing", p->inflate_replica("nope"));
            used_after = p->info().used_bytes;
            bad = co_await mismatches(p->find_replica("c"), m);
            parent_after = info_of(p->list_replicas(), "c")->parent;
            co_await p->export_pool();
            co_return 0;
        },
        "malloc:///d1?size_mb=8&blk_size=4096");
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(refused["no space"], storage_errc::no_space);
    EXPECT_EQ(refused["a snapshot"], storage_errc::invalid_argument);
    EXPECT_EQ(refused["missing"], storage_errc::not_found);
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(parent_after, "s");
    EXPECT_EQ(used_after, used_before);
}
