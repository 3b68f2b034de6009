// Deleting snapshots in every position of a chain: the oldest, one in the
// middle and the newest each merge into their single child; a snapshot
// with several clones is discarded and goes with the last clone but one;
// the content of every remaining volume is unchanged, before and after
// export/import, and the freed space comes back to the pool.
#include <gtest/gtest.h>

#include <map>

#include "tests/unit/pool_snapshot_util.hh"

using namespace ioe;
using namespace ioe::test::snapshots;

namespace {

future<bool> all_match(pool& p, const std::map<std::string, content>& model, std::map<std::string, int>& bad) {
    bool good = true;
    for (auto& [name, expect] : model) {
        replica* r = p.find_replica(name);
        bad[name] = r ? co_await mismatches(r, expect) : -3;
        good &= bad[name] == 0;
    }
    co_return good;
}

}  // namespace

TEST(pool_delete, snapshots_in_every_position_of_a_chain_merge_into_their_child) {
    for (bool thin : {true, false}) {
        std::map<std::string, int> bad, bad_after;
        std::vector<std::uint64_t> used;
        std::size_t left = 0;
        int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);
            std::map<std::string, content> model;
            replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, thin);
            model["r"] = content(4 * blocks_per_cluster, -1);
            for (int i = 0; i < 5; ++i) {
                if (co_await write_model(r, model["r"], 150 * i + 7, 200, 10 + i) != io_status::success) co_return 1;
                std::string s = "s" + std::to_string(i);
                co_await p->snapshot_replica("r", snap(s));
                model[s] = model["r"];
            }
            if (co_await write_model(r, model["r"], 900, 50, 20) != io_status::success) co_return 2;
            used.push_back(p->info().used_bytes);
            for (std::string victim : {"s0", "s2", "s4"}) {  // oldest, middle, newest
                co_await p->destroy_replica(victim);
                model.erase(victim);
                used.push_back(p->info().used_bytes);
                if (!co_await all_match(*p, model, bad)) co_return 3;
            }
            // Writes after the merges still go where they should.
            if (co_await write_model(p->find_replica("r"), model["r"], 0, 1024, 30) != io_status::success) co_return 4;
            left = p->list_replicas().size();
            co_await p->export_pool();
            p.reset();
            auto q = co_await pool::import(dev, reg);
            co_await all_match(*q, model, bad_after);
            co_await q->export_pool();
            co_return 0;
        });
        EXPECT_EQ(rc, 0) << (thin ? "thin" : "thick");
        for (auto& [name, n] : bad) EXPECT_EQ(n, 0) << name;
        for (auto& [name, n] : bad_after) EXPECT_EQ(n, 0) << name << " after import";
        EXPECT_EQ(left, 3u);  // r, s1, s3
        ASSERT_EQ(used.size(), 4u);
        for (std::size_t i = 1; i < used.size(); ++i) EXPECT_LE(used[i], used[i - 1]) << i;
        EXPECT_LT(used.back(), used.front());
    }
}

TEST(pool_delete, snapshot_with_clones_is_discarded_and_goes_with_the_last_clone_but_one) {
    std::map<std::string, int> bad;
    bool discarded = false, gone = false;
    std::uint64_t used_base = 0, used_end = 1;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        used_base = p->info().used_bytes;
        std::map<std::string, content> model;
        replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        model["r"] = content(4 * blocks_per_cluster, -1);
        if (co_await write_model(r, model["r"], 0, 600, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        for (std::string c : {"c1", "c2"}) {
            replica* cr = co_await p->clone_snapshot("s", c);
            model[c] = model["r"];
            if (co_await write_model(cr, model[c], c == "c1" ? 100 : 500, 40, c == "c1" ? 2 : 3) != io_status::success) {
                co_return 2;
            }
        }
        co_await p->destroy_replica("s");  // three children: r, c1, c2
        for (auto& i : p->list_replicas()) {
            if (i.name == "s") discarded = i.discarded;
        }
        co_await p->destroy_replica("c1");  // two left: stays
        co_await p->destroy_replica("r");   // one left: merged into c2
        gone = p->find_replica("s") == nullptr;
        model.erase("r");
        model.erase("c1");
        co_await all_match(*p, model, bad);
        co_await p->destroy_replica("c2");
        used_end = p->info().used_bytes;
        co_await p->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(discarded);
    EXPECT_TRUE(gone);
    EXPECT_EQ(bad["c2"], 0);
    EXPECT_EQ(used_end, used_base);  // everything came back
}
