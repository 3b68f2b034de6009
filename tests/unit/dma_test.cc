// The DMA pool: size classes, alignment, exhaustion as a clean error, the
// per-shard caches, and the huge-page and ordinary-memory sources.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <set>

#include "runtime/dma.hh"
#include "runtime/smp.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;

namespace {
long read_long(const char* path) {
    std::ifstream f(path);
    long v = -1;
    if (f) f >> v;
    return v;
}
void write_long(const char* path, long v) {
    std::ofstream f(path);
    f << v;
}
constexpr const char* nr_path = "/proc/sys/vm/nr_hugepages";
constexpr const char* free_path = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";

// The machine's huge pages are one pool: the tests that reserve or take
// them run one at a time, also when ctest runs them in parallel (one took
// the pages the other had just reserved, in CI).
class huge_page_lock {
public:
    huge_page_lock() : _fd(::open("/tmp/ioengine-test-huge-pages.lock", O_CREAT | O_RDWR, 0666)) {
        if (_fd >= 0) ::flock(_fd, LOCK_EX);
    }
    ~huge_page_lock() {
        if (_fd >= 0) ::close(_fd);  // releases the lock
    }
    huge_page_lock(const huge_page_lock&) = delete;
    huge_page_lock& operator=(const huge_page_lock&) = delete;

private:
    int _fd;
};
}  // namespace

TEST(dma, buffers_are_aligned_and_rounded_to_their_class) {
    dma_config cfg;
    cfg.size_mb = 8;
    dma_pool pool(cfg);
    for (std::size_t size : {1ul, 512ul, 4096ul, 5000ul, 65536ul, 1ul << 20}) {
        auto b = pool.allocate(size);
        ASSERT_TRUE(b.ok()) << size;
        EXPECT_EQ(b->size(), size);
        EXPECT_GE(b->capacity(), size);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b->data()) % 4096, 0u) << size;
        std::memset(b->data(), 0xab, b->capacity());  // the whole class is ours
    }
    EXPECT_FALSE(pool.allocate(0).ok());
    auto too_big = pool.allocate((1 << 20) + 1);
    ASSERT_FALSE(too_big.ok());
    EXPECT_EQ(too_big.error().value(), EINVAL);
}

TEST(dma, exhaustion_is_an_error_and_freeing_makes_room) {
    dma_config cfg;
    cfg.size_mb = 2;  // one 2 MiB chunk: two 1 MiB buffers
    dma_pool pool(cfg);
    auto a = pool.allocate(1 << 20);
    auto b = pool.allocate(1 << 20);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    EXPECT_NE(a->data(), b->data());
    auto c = pool.allocate(1 << 20);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().value(), ENOMEM);
    auto small = pool.allocate(4096);  // no chunk left for another class either
    EXPECT_FALSE(small.ok());
    a->reset();
    auto d = pool.allocate(1 << 20);
    EXPECT_TRUE(d.ok());
}

TEST(dma, no_buffer_is_handed_out_twice_across_shards) {
    IOE_NEED_CORES(2);
    auto cfg = test::small_config();
    cfg.memory.size_mb = 4;  // 1024 4 KiB buffers at most
    std::set<std::byte*> all;
    int rc = test::run_engine(cfg, [&](engine* e) -> future<int> {
        auto grab = [](dma_pool* pool, unsigned n) {
            std::vector<dma_buffer> held;
            for (unsigned i = 0; i < n; ++i) {
                auto b = pool->allocate(4096);
                if (!b) break;
                held.push_back(std::move(*b));
            }
            return held;
        };
        // Both shards take buffers through their caches, then free them and
        // take again (the second round comes from the caches).
        for (int round = 0; round < 2; ++round) {
            auto mine = grab(&e->dma(), 300);
            auto theirs = co_await submit_to(1, [&] {
                auto v = grab(&e->dma(), 300);
                std::vector<std::byte*> ptrs;
                for (auto& b : v) ptrs.push_back(b.data());
                return ptrs;  // buffers freed on shard 1 when v dies
            });
            if (mine.size() != 300 || theirs.size() != 300) co_return 1;
            std::set<std::byte*> s;
            for (auto& b : mine) s.insert(b.data());
            for (auto* p : theirs) s.insert(p);
            // Shard 1 freed its buffers already; none of shard 0's live ones
            // may be among them.
            if (s.size() != 600) co_return 2;
            all.insert(s.begin(), s.end());
        }
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(dma, ordinary_memory_when_huge_pages_are_not_requested) {
    dma_config cfg;
    cfg.size_mb = 4;
    dma_pool pool(cfg);
    if (::geteuid() == 0) {
        EXPECT_EQ(pool.source(), dma_source::locked_memory) << pool.description();
    } else {
        EXPECT_NE(pool.source(), dma_source::huge_pages);
    }
    EXPECT_NE(pool.description().find("ordinary memory"), std::string::npos);
    EXPECT_EQ(pool.size_bytes(), 4u << 20);
}

TEST(dma, huge_pages_when_requested_and_available) {
    if (::geteuid() != 0) GTEST_SKIP() << "reserving huge pages needs root";
    huge_page_lock lock;
    long saved = read_long(nr_path);
    if (saved < 0) GTEST_SKIP() << "no " << nr_path;
    write_long(nr_path, saved + 4);
    if (read_long(free_path) < 4) {
        write_long(nr_path, saved);
        GTEST_SKIP() << "the kernel could not reserve 4 huge pages";
    }
    {
        dma_config cfg;
        cfg.huge_mb = 8;
        dma_pool pool(cfg);
        EXPECT_EQ(pool.source(), dma_source::huge_pages) << pool.description();
        auto b = pool.allocate(1 << 20);
        ASSERT_TRUE(b.ok());
        std::memset(b->data(), 1, b->capacity());
    }
    write_long(nr_path, saved);
}

TEST(dma, too_few_huge_pages_falls_back_with_a_reason) {
    huge_page_lock lock;
    long free_pages = read_long(free_path);
    if (free_pages < 0) GTEST_SKIP() << "no huge page support";
    dma_config cfg;
    cfg.huge_mb = static_cast<std::size_t>(free_pages + 1) * 2 + 2;  // more than the machine has
    dma_pool pool(cfg);
    EXPECT_NE(pool.source(), dma_source::huge_pages);
    EXPECT_NE(pool.description().find("nr_hugepages"), std::string::npos) << pool.description();
    EXPECT_TRUE(pool.allocate(4096).ok());
}
