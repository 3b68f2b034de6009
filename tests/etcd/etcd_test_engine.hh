// Runs a test body on shard 0 of a small engine with a control thread (the
// etcd client's home); an exception from the body fails the test.
#pragma once

#include <gtest/gtest.h>

#include <functional>

#include "runtime/control.hh"
#include "runtime/etcd_client.hh"
#include "tests/unit/test_engine.hh"

namespace ioe::test {

inline void run_with_control(unsigned shards, std::function<future<>(engine&, control_thread&)> body) {
    engine e(small_config(shards));
    control_thread control(e);
    control.start();
    std::string error;
    int rc = e.run([&]() -> future<int> {
        try {
            co_await body(e, control);
        } catch (const std::exception& ex) {
            error = ex.what();
        }
        co_return 0;
    });
    control.stop();
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(error, "") << "the test body threw";
}

inline etcd_config etcd_config_for(std::vector<std::string> endpoints, int timeout_ms = 3000) {
    etcd_config c;
    c.endpoints = std::move(endpoints);
    c.request_timeout = std::chrono::milliseconds(timeout_ms);
    c.connect_timeout = std::chrono::milliseconds(500);
    return c;
}

// Awaits f and returns the etcd_error it failed with (fails the test if it did not).
template <typename T>
future<std::optional<etcd_error>> expect_etcd_error(future<T> f) {
    try {
        co_await std::move(f);
    } catch (const etcd_error& e) {
        co_return e;
    }
    ADD_FAILURE() << "expected an etcd_error";
    co_return std::nullopt;
}

}  // namespace ioe::test
