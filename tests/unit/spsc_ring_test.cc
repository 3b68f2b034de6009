// The SPSC ring under two real threads: batches far larger than the ring,
// tiny capacities, every item arrives once and in order.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "runtime/spsc_ring.hh"

using ioe::spsc_ring;

namespace {

// Pushes `count` distinct pointers in batches of `batch` through a ring of
// `capacity`; returns how many arrived out of order (0 expected).
std::uint64_t stress(std::size_t capacity, std::size_t batch, std::uint64_t count) {
    spsc_ring<std::uint64_t> ring(capacity);
    std::vector<std::uint64_t> values(count);
    for (std::uint64_t i = 0; i < count; ++i) values[i] = i;
    std::uint64_t wrong = 0;
    std::thread consumer([&] {
        std::uint64_t expect = 0;
        std::uint64_t* out[64];
        while (expect < count) {
            std::size_t n = ring.pop(out, 64);
            for (std::size_t i = 0; i < n; ++i, ++expect) wrong += *out[i] != expect;
        }
    });
    std::vector<std::uint64_t*> items(batch);
    for (std::uint64_t next = 0; next < count;) {
        std::size_t n = 0;
        while (n < batch && next + n < count) {
            items[n] = &values[next + n];
            ++n;
        }
        std::size_t pushed = ring.push(items.data(), n);
        EXPECT_LE(pushed, capacity);
        next += pushed;
    }
    consumer.join();
    return wrong;
}

}  // namespace

TEST(spsc_ring, batches_larger_than_a_tiny_ring_lose_nothing) {
    EXPECT_EQ(stress(2, 32, 2'000'000), 0u);
    EXPECT_EQ(stress(4, 7, 1'000'000), 0u);
    EXPECT_EQ(stress(256, 1000, 2'000'000), 0u);
}

TEST(spsc_ring, push_reports_what_fits_and_pop_what_is_there) {
    spsc_ring<int> ring(4);
    int v[6] = {1, 2, 3, 4, 5, 6};
    int* in[6] = {&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]};
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.push(in, 6), 4u);  // capacity
    EXPECT_TRUE(ring.full());
    int* out[8];
    EXPECT_EQ(ring.pop(out, 2), 2u);
    EXPECT_EQ(*out[0], 1);
    EXPECT_EQ(*out[1], 2);
    EXPECT_EQ(ring.push(in + 4, 2), 2u);
    EXPECT_EQ(ring.pop(out, 8), 4u);
    EXPECT_EQ(*out[0], 3);
    EXPECT_EQ(*out[3], 6);
    EXPECT_TRUE(ring.empty());
    EXPECT_THROW(spsc_ring<int>(3), std::invalid_argument);
}
