// The steady-state path allocates nothing from the heap: a cross-shard round
// trip and an io_uring read, after warm-up, with every operator new counted.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "runtime/smp.hh"
#include "tests/unit/test_engine.hh"

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}

// Counting replacements of the global allocation functions (this binary only).
void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    std::size_t al = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace ioe;

TEST(allocations, none_per_steady_state_cross_shard_round_trip) {
    IOE_NEED_CORES(2);
    std::uint64_t during = ~0ull;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        int sum = 0;
        for (int i = 0; i < 10000; ++i) sum += co_await submit_to(1, [i] { return i & 1; });
        std::uint64_t before = g_allocs.load();
        for (int i = 0; i < 10000; ++i) sum += co_await submit_to(1, [i] { return i & 1; });
        during = g_allocs.load() - before;
        co_return sum == 10000 ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(during, 0u) << "heap allocations in 10,000 round trips";
}

TEST(allocations, none_per_steady_state_uring_read) {
    std::string path = "./alloc_test_" + std::to_string(::getpid()) + ".img";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    if (fd < 0) GTEST_SKIP() << "no O_DIRECT here";
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    std::uint64_t during = ~0ull;
    int rc = test::run_engine(test::small_config(1), [&](engine* e) -> future<int> {
        auto buf = e->dma().allocate(4096);
        if (!buf) co_return 1;
        uring& io = local_reactor()->io();
        int bad = 0;
        for (int i = 0; i < 2000; ++i) {
            auto r = co_await io.read(fd, buf->data(), 4096, (i % 256) * 4096ull, buf->buf_index());
            bad += !r.ok();
        }
        std::uint64_t before = g_allocs.load();
        for (int i = 0; i < 2000; ++i) {
            auto r = co_await io.read(fd, buf->data(), 4096, (i % 256) * 4096ull, buf->buf_index());
            bad += !r.ok();
        }
        during = g_allocs.load() - before;
        co_return bad;
    });
    ::close(fd);
    ::unlink(path.c_str());
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(during, 0u) << "heap allocations in 2,000 reads";
}
