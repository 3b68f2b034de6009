// future/promise/coroutine semantics, without a reactor: tasks are drained
// with run_ready_tasks().
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "runtime/future.hh"
#include "runtime/result.hh"

using namespace ioe;

namespace {

future<int> add_one(future<int> f) {
    int v = co_await std::move(f);
    co_return v + 1;
}

future<> fail_after(future<int> f) {
    co_await std::move(f);
    throw std::runtime_error("boom");
}

future<std::string> catch_it(future<> f) {
    try {
        co_await std::move(f);
    } catch (const std::runtime_error& e) {
        co_return std::string("caught ") + e.what();
    }
    co_return "nothing";
}

}  // namespace

TEST(future, ready_value_is_available_at_once) {
    auto f = make_ready_future<int>(42);
    ASSERT_TRUE(f.available());
    ASSERT_FALSE(f.failed());
    EXPECT_EQ(f.get(), 42);
}

TEST(future, coroutine_on_ready_future_completes_without_suspending) {
    auto f = add_one(make_ready_future<int>(1));
    ASSERT_TRUE(f.available());  // nothing was queued
    EXPECT_EQ(run_ready_tasks(), 0u);
    EXPECT_EQ(f.get(), 2);
}

TEST(future, coroutine_resumes_when_promise_is_fulfilled) {
    promise<int> p;
    auto f = add_one(add_one(p.get_future()));
    EXPECT_FALSE(f.available());
    p.set_value(40);
    EXPECT_FALSE(f.available());  // continuations run as tasks, not inline
    run_ready_tasks();
    ASSERT_TRUE(f.available());
    EXPECT_EQ(f.get(), 42);
}

TEST(future, exception_travels_through_awaits) {
    promise<int> p;
    auto f = catch_it(fail_after(p.get_future()));
    p.set_value(1);
    run_ready_tasks();
    ASSERT_TRUE(f.available());
    EXPECT_EQ(f.get(), "caught boom");
}

TEST(future, failed_future_rethrows_on_get) {
    auto f = make_exception_future<int>(std::logic_error("bad"));
    ASSERT_TRUE(f.failed());
    EXPECT_THROW(f.get(), std::logic_error);
}

TEST(future, broken_promise_fails_the_future) {
    future<int> f = [] {
        promise<int> p;
        return p.get_future();
    }();
    ASSERT_TRUE(f.available());
    EXPECT_THROW(f.get(), broken_promise);
}

TEST(future, then_chains_values_and_futures) {
    promise<int> p;
    auto f = p.get_future().then([](int v) { return v * 2; }).then([](int v) {
        return make_ready_future<std::string>(std::to_string(v));
    });
    p.set_value(21);
    run_ready_tasks();
    ASSERT_TRUE(f.available());
    EXPECT_EQ(f.get(), "42");
}

TEST(future, then_skips_the_function_on_error) {
    bool called = false;
    auto f = make_exception_future<int>(std::runtime_error("x")).then([&](int) {
        called = true;
        return 0;
    });
    run_ready_tasks();
    ASSERT_TRUE(f.failed());
    EXPECT_FALSE(called);
    EXPECT_THROW(f.get(), std::runtime_error);
}

TEST(future, dropped_future_does_not_stop_the_coroutine) {
    promise<int> p;
    int seen = 0;
    {
        auto body = [](future<int> f, int* out) -> future<> { *out = co_await std::move(f); };
        body(p.get_future(), &seen).ignore();
    }
    p.set_value(7);
    run_ready_tasks();
    EXPECT_EQ(seen, 7);
}

TEST(future, yield_becomes_ready_after_queued_tasks) {
    std::vector<int> order;
    auto a = [](std::vector<int>* o) -> future<> {
        co_await yield();
        o->push_back(2);
    }(&order);
    order.push_back(1);
    EXPECT_FALSE(a.available());
    run_ready_tasks();
    ASSERT_TRUE(a.available());
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(result, carries_value_or_error_code) {
    result<int> ok = 5;
    result<int> bad = errno_error(EIO);
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok.value(), 5);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error(), std::errc::io_error);
    status s;
    EXPECT_TRUE(s.ok());
    status e = errno_error(ENOSPC);
    EXPECT_EQ(e.error().value(), ENOSPC);
}
