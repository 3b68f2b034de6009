// Timers: order of firing, sleep, periodic timers, with_timeout.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

TEST(timer, timers_fire_in_expiry_order) {
    std::vector<int> order;
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        const int delays_ms[] = {30, 5, 20, 1, 10, 25, 15};
        std::vector<std::unique_ptr<timer>> timers;
        auto now = steady_clock::now();
        for (int d : delays_ms) {
            timers.push_back(std::make_unique<timer>([&order, d] { order.push_back(d); }));
            timers.back()->arm(now + std::chrono::milliseconds(d));
        }
        co_await sleep(60ms);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(order, (std::vector<int>{1, 5, 10, 15, 20, 25, 30}));
}

TEST(timer, sleep_lasts_at_least_its_duration) {
    steady_clock::duration slept{};
    int rc = test::run_engine(test::small_config(1, poll_mode::event), [&](engine*) -> future<int> {
        auto t0 = steady_clock::now();
        co_await sleep(20ms);
        slept = steady_clock::now() - t0;
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_GE(slept, 20ms);
}

TEST(timer, cancelled_timer_does_not_fire) {
    bool fired = false;
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        timer t([&fired] { fired = true; });
        t.arm(5ms);
        t.cancel();
        co_await sleep(15ms);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_FALSE(fired);
}

TEST(timer, periodic_timer_fires_repeatedly_until_cancelled) {
    int count = 0;
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        timer t([&count] { ++count; });
        t.arm_periodic(2ms);
        while (count < 5) co_await sleep(1ms);
        t.cancel();
        int at_cancel = count;
        co_await sleep(10ms);
        co_return count == at_cancel ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_GE(count, 5);
}

TEST(timer, with_timeout_fails_a_late_future_and_passes_a_timely_one) {
    bool timed_out = false;
    int value = 0;
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        promise<int> never;
        try {
            co_await with_timeout(10ms, never.get_future());
        } catch (const timed_out_error&) {
            timed_out = true;
        }
        auto slow = [](int v) -> future<int> {
            co_await sleep(2ms);
            co_return v;
        };
        value = co_await with_timeout(1s, slow(9));
        never.set_value(0);  // completes after the timeout: nobody is waiting
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(value, 9);
}
