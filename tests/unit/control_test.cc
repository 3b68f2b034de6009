// The control thread's bridge to the shards, and reactor pollers.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "runtime/control.hh"
#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

TEST(control, call_on_shard_returns_the_outcome_on_the_control_thread) {
    IOE_NEED_CORES(2);
    std::atomic<int> answers{0};
    int value = 0;
    std::string error;
    std::thread::id control_id, value_thread, error_thread;
    engine e(test::small_config());
    control_thread control(e);
    control.start();
    control.post([&] { control_id = std::this_thread::get_id(); });
    int rc = e.run([&]() -> future<int> {
        control.call_on_shard<int>(
            1,
            []() -> future<int> {
                co_await sleep(1ms);
                co_return static_cast<int>(this_shard_id()) + 10;
            },
            [&](outcome<int> o) {
                value = o.take();
                value_thread = std::this_thread::get_id();
                answers.fetch_add(1);
            });
        control.call_on_shard<void>(
            0, []() -> future<> { throw std::runtime_error("pool p0: no such device"); },
            [&](outcome<void> o) {
                try {
                    o.take();
                } catch (const std::exception& ex) {
                    error = ex.what();
                }
                error_thread = std::this_thread::get_id();
                answers.fetch_add(1);
            });
        // Stay up until both answers reached the control thread (bounded).
        for (int i = 0; i < 5000 && answers.load() < 2; ++i) co_await sleep(1ms);
        co_return 0;
    });
    control.stop();
    EXPECT_EQ(rc, 0);
    ASSERT_EQ(answers.load(), 2);
    EXPECT_EQ(value, 11);
    EXPECT_EQ(error, "pool p0: no such device");
    EXPECT_EQ(value_thread, control_id);
    EXPECT_EQ(error_thread, control_id);
}

namespace {
class counting_poller final : public poller {
public:
    unsigned calls = 0;
    bool poll() noexcept override {
        ++calls;
        return false;
    }
};
}  // namespace

TEST(reactor, pollers_run_every_loop_and_keep_the_reactor_awake) {
    auto cfg = test::small_config(1, poll_mode::event);
    unsigned calls = 0;
    std::uint64_t sleeps_during = 99;
    int rc = test::run_engine(cfg, [&](engine*) -> future<int> {
        counting_poller p;
        local_reactor()->register_poller(&p);
        std::uint64_t before = local_reactor()->stats().sleeps;
        co_await sleep(20ms);
        sleeps_during = local_reactor()->stats().sleeps - before;
        local_reactor()->unregister_poller(&p);
        calls = p.calls;
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_GT(calls, 100u);          // polled continuously for 20 ms
    EXPECT_EQ(sleeps_during, 0u);    // a device queue needs the CPU
}

TEST(engine, stop_from_another_thread_runs_hooks_and_returns_the_code) {
    std::vector<std::string> hooks;
    engine e(test::small_config(1));
    std::thread stopper;
    promise<> stopped;
    int rc = e.run([&]() -> future<int> {
        e.at_stop([&] {
            hooks.push_back("first registered");
            stopped.set_value();  // lets main finish (the daemon's pattern)
            return make_ready_future<>();
        });
        e.at_stop([&]() -> future<> {
            co_await sleep(2ms);  // a hook may wait (drain)
            hooks.push_back("last registered");
        });
        stopper = std::thread([&e] { e.stop(3); });
        auto f = stopped.get_future();
        co_await std::move(f);
        co_return 0;  // ignored: the first stop() set the code
    });
    stopper.join();
    EXPECT_EQ(rc, 3);
    EXPECT_EQ(hooks, (std::vector<std::string>{"last registered", "first registered"}));
}
