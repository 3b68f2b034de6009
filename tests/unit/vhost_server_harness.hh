// The harness of the vhost server tests (vhost_server_test.cc,
// vhost_server_errors_test.cc): an engine of two shards serving a 4 MiB
// malloc device "vt" over a fresh unix socket while a test front-end
// (vhost_test_frontend.hh) runs on a thread of its own; the features a
// Linux-like driver negotiates; data patterns.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "tests/unit/test_engine.hh"
#include "tests/unit/vhost_test_frontend.hh"
#include "vhost/blk_export.hh"

namespace ioe::vhost::test {

using virtio::bit;

struct export_options {
    unsigned queues = 1;
    bool read_only = false;
};

inline std::string socket_path() {
    static std::atomic<unsigned> n{0};
    return fmt::format("/tmp/ioe-vhost-test-{}-{}.sock", ::getpid(), n++);
}

// Serves a 4 MiB malloc device "vt" over a fresh socket, runs
// frontend(path) on a thread (bounded: 30 s), then hands the export's
// stats to `check` and stops it (the socket must be gone afterwards).
inline void with_export(export_options opt, std::function<void(const std::string&)> frontend,
                        std::function<void(const blk_export_stats&)> check = {}) {
    const std::string path = socket_path();
    std::string failure;
    int rc = ::ioe::test::run_engine(::ioe::test::small_config(2), [&](engine*) -> future<int> {
        device_registry reg;
        try {
            block_device* dev = co_await reg.create("malloc:///vt?size_mb=4");
            auto exp = co_await blk_export::create({"t", path, opt.queues, opt.read_only}, *dev);
            std::atomic<bool> done{false};
            std::thread t([&] {
                frontend(path);
                done = true;
            });
            const auto deadline = steady_clock::now() + std::chrono::seconds(30);
            while (!done && steady_clock::now() < deadline) co_await sleep(std::chrono::milliseconds(2));
            if (!done) {
                failure = "the front-end did not finish within 30 s";
                co_await exp->stop();  // its socket waits end: it finishes
            }
            while (!done) co_await sleep(std::chrono::milliseconds(2));
            t.join();
            // Let the server notice a front-end that just left.
            for (int i = 0; i < 500 && exp->connected(); ++i) co_await sleep(std::chrono::milliseconds(2));
            auto st = co_await exp->stats();
            if (check) check(st);
            co_await exp->stop();
        } catch (const std::exception& ex) {
            failure = ex.what();
        }
        co_await reg.close_all();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(failure, "");
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket was not removed";
}

constexpr std::uint64_t guest_features =
    bit(virtio::feature::version_1) | bit(user::f_protocol_features) | bit(blk::feature::flush) |
    bit(blk::feature::discard) | bit(blk::feature::write_zeroes) | bit(blk::feature::blk_size) |
    bit(blk::feature::seg_max) | bit(virtio::feature::event_idx) | bit(blk::feature::mq);
constexpr std::uint64_t guest_protocol = bit(user::protocol_feature::mq) | bit(user::protocol_feature::reply_ack) |
                                         bit(user::protocol_feature::config) |
                                         bit(user::protocol_feature::inflight_shmfd);

inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + seed * 31 + (i >> 9)) & 0xff);
    return v;
}

inline bool all_zero(std::span<const std::byte> v) {
    for (auto b : v)
        if (b != std::byte{0}) return false;
    return true;
}

// A DISCARD / WRITE_ZEROES request with one segment.
inline std::uint8_t dwz(test_frontend& fe, std::uint32_t type, std::uint64_t sector, std::uint32_t sectors,
                        std::uint32_t flags) {
    blk::dwz_segment seg{sector, sectors, flags};
    std::vector<std::byte> b(sizeof seg);
    std::memcpy(b.data(), &seg, sizeof seg);
    return fe.request(0, type, 0, b);
}


}  // namespace ioe::vhost::test
