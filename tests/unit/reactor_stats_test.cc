// The reactor's busy/idle time and queue-depth snapshot (reactor::stats()):
// busy + idle adds up to the wall time the loop ran, a shard kept working
// counts as busy, an idle one as idle, and an io_uring operation waiting in
// the kernel shows in io_in_flight.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>

#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

TEST(reactor_stats, busy_and_idle_time_add_up) {
    IOE_NEED_CORES(2);
    int rc = test::run_engine(test::small_config(2), [](engine*) -> future<int> {
        auto snap = [] { return submit_to(1, [] { return local_reactor()->stats(); }); };
        reactor_stats a = co_await snap();
        const auto t0 = steady_clock::now();
        co_await sleep(200ms);  // shard 1 has nothing to do
        reactor_stats b = co_await snap();
        const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now() - t0).count();
        const double idle = static_cast<double>(b.idle_ns - a.idle_ns);
        const double busy = static_cast<double>(b.busy_ns - a.busy_ns);
        EXPECT_GT(idle, 0.8 * static_cast<double>(wall)) << "idle " << idle << " ns of " << wall;
        EXPECT_LT(busy, 0.2 * static_cast<double>(wall)) << "busy " << busy << " ns of " << wall;
        EXPECT_LE(idle + busy, 1.1 * static_cast<double>(wall) + 5e6);

        // Shard 1 kept busy for 100 ms (a loop of tasks that always find work).
        reactor_stats c = co_await snap();
        co_await submit_to(1, []() -> future<> {
            const auto until = steady_clock::now() + 100ms;
            while (steady_clock::now() < until) co_await yield();
        });
        reactor_stats d = co_await snap();
        EXPECT_GT(d.busy_ns - c.busy_ns, 60'000'000u) << "a working shard was not counted busy";

        // An operation waiting in the kernel counts as in flight.
        const std::uint64_t in_flight = co_await submit_to(1, []() -> future<std::uint64_t> {
            auto slept = sleep(50ms);  // a timer, not a kernel operation
            std::uint64_t before = local_reactor()->stats().io_in_flight;
            int fds[2];
            if (::pipe(fds) != 0) co_return 0;
            std::byte buf[8];
            auto read = local_reactor()->io().read(fds[0], buf, sizeof buf, 0);
            local_reactor()->io().submit();
            std::uint64_t during = local_reactor()->stats().io_in_flight;
            if (::write(fds[1], "x", 1) != 1) ADD_FAILURE() << "pipe write";
            io_result got = co_await std::move(read);
            if (!got) ADD_FAILURE() << "pipe read";
            ::close(fds[0]);
            ::close(fds[1]);
            co_await std::move(slept);
            co_return during - before;
        });
        EXPECT_EQ(in_flight, 1u);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}
