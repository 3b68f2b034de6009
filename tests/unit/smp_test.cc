// Cross-shard calls: values, errors, ordering, a 1,000,000-message stress in
// both directions, and the overflow path with a deliberately tiny ring.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

TEST(smp, submit_to_returns_the_value_computed_on_the_target) {
    IOE_NEED_CORES(2);
    unsigned ran_on = 99;
    int value = 0;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        value = co_await submit_to(1, [&ran_on] {
            ran_on = this_shard_id();
            return 41 + 1;
        });
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(ran_on, 1u);
    EXPECT_EQ(value, 42);
}

TEST(smp, exceptions_come_back_to_the_caller) {
    IOE_NEED_CORES(2);
    std::string what;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        try {
            co_await submit_to(1, []() -> int { throw std::out_of_range("lba 9 beyond 8"); });
        } catch (const std::out_of_range& e) {
            what = e.what();
        }
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(what, "lba 9 beyond 8");
}

TEST(smp, asynchronous_target_work_is_awaited_there) {
    IOE_NEED_CORES(2);
    std::vector<unsigned> shards;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        int v = co_await submit_to(1, [&shards]() -> future<int> {
            shards.push_back(this_shard_id());
            co_await sleep(5ms);
            shards.push_back(this_shard_id());
            co_return 7;
        });
        co_return v;
    });
    EXPECT_EQ(rc, 7);
    EXPECT_EQ(shards, (std::vector<unsigned>{1, 1}));
}

TEST(smp, messages_from_one_shard_arrive_in_order) {
    IOE_NEED_CORES(2);
    constexpr int n = 20000;
    std::vector<int> seen;
    seen.reserve(n);
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        std::vector<future<>> pending;
        pending.reserve(n);
        for (int i = 0; i < n; ++i) {
            pending.push_back(submit_to(1, [&seen, i] { seen.push_back(i); }));
        }
        for (auto& f : pending) co_await std::move(f);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    ASSERT_EQ(seen.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], i) << "out of order at " << i;
}

namespace {

// Sends `count` messages from the current shard to `to`, each carrying its id;
// the target counts arrivals per id, and each reply must echo the id back.
future<std::uint64_t> blast(unsigned to, unsigned count, std::vector<std::uint8_t>* arrivals) {
    std::uint64_t bad_replies = 0;
    constexpr unsigned window = 4096;
    std::vector<future<unsigned>> inflight;
    inflight.reserve(window);
    unsigned base = 0;
    for (unsigned i = 0; i < count; ++i) {
        inflight.push_back(submit_to(to, [arrivals, i] {
            ++(*arrivals)[i];
            return i;
        }));
        if (inflight.size() == window || i + 1 == count) {
            for (unsigned k = 0; k < inflight.size(); ++k) {
                unsigned echoed = co_await std::move(inflight[k]);
                if (echoed != base + k) ++bad_replies;
            }
            base += static_cast<unsigned>(inflight.size());
            inflight.clear();
        }
    }
    co_return bad_replies;
}

}  // namespace

TEST(smp, million_messages_both_ways_without_loss_or_duplication) {
    IOE_NEED_CORES(2);
    constexpr unsigned per_direction = 500000;
    std::vector<std::uint8_t> to1(per_direction, 0), to0(per_direction, 0);
    std::uint64_t bad0 = 1, bad1 = 1;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        // Shard 1 blasts shard 0 while shard 0 blasts shard 1.
        auto other = submit_to(1, [&] { return blast(0, per_direction, &to0); });
        bad0 = co_await blast(1, per_direction, &to1);
        bad1 = co_await std::move(other);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(bad0, 0u);
    EXPECT_EQ(bad1, 0u);
    std::size_t lost = 0, dup = 0;
    for (unsigned i = 0; i < per_direction; ++i) {
        lost += (to1[i] == 0) + (to0[i] == 0);
        dup += (to1[i] > 1) + (to0[i] > 1);
    }
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(dup, 0u);
}

TEST(smp, full_ring_spills_to_the_overflow_list_and_keeps_order) {
    IOE_NEED_CORES(2);
    auto cfg = test::small_config();
    cfg.smp_ring_capacity = 2;  // deliberately tiny
    constexpr int n = 5000;
    std::vector<int> seen;
    std::uint64_t overflowed = 0;
    int rc = test::run_engine(cfg, [&](engine*) -> future<int> {
        std::vector<future<int>> pending;
        for (int i = 0; i < n; ++i) {
            pending.push_back(submit_to(1, [&seen, i] {
                seen.push_back(i);
                return i * 3;
            }));
        }
        int wrong = 0;
        for (int i = 0; i < n; ++i) {
            if (co_await std::move(pending[i]) != i * 3) ++wrong;
        }
        overflowed = local_smp()->stats(0).overflowed;
        co_return wrong;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_GT(overflowed, 0u) << "the overflow path was not exercised";
    ASSERT_EQ(seen.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], i);
}

TEST(smp, call_to_own_shard_runs_directly) {
    IOE_NEED_CORES(1);
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto f = submit_to(0, [] { return 5; });
        bool ready = f.available();
        int v = co_await std::move(f);
        co_return ready && v == 5 ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
}
