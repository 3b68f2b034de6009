// vhost/guest_memory: the region table refuses empty, wrapping, hostless and
// overlapping regions and a full table; translate() splits a buffer across
// guest-adjacent regions and refuses one that meets a hole, wraps, or needs
// more pieces than given; contiguous() and user() refuse a range crossing
// its region's end even into an adjacent region.
#include <gtest/gtest.h>

#include <array>
#include <limits>

#include "tests/unit/vhost_test_guest.hh"

using namespace ioe;
using namespace ioe::vhost;
using namespace ioe::vhost::test;

namespace {

constexpr std::uint64_t max64 = std::numeric_limits<std::uint64_t>::max();

std::byte fake[64];

guest_region region(std::uint64_t gpa, std::uint64_t size, std::uint64_t uva) {
    return guest_region{gpa, size, uva, 0, fake};
}

}  // namespace

TEST(vhost_guest_memory, translate_within_one_region) {
    test_guest g;
    std::array<io_vec, 4> out;
    std::size_t n = 0;
    ASSERT_EQ(g.mem.translate(data_gpa, 4096, out, n), memory_error::ok);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(out[0].data, g.host(data_gpa));
    EXPECT_EQ(out[0].len, 4096u);
    EXPECT_EQ(out[0].buf_index, -1);
    // The last byte of a region, and a region that starts after a hole.
    ASSERT_EQ(g.mem.translate(region_b + region_size - 1, 1, out, n), memory_error::ok);
    EXPECT_EQ(n, 1u);
    ASSERT_EQ(g.mem.translate(region_c, 512, out, n), memory_error::ok);
    EXPECT_EQ(out[0].data, g.host(region_c));
}

TEST(vhost_guest_memory, translate_splits_across_adjacent_regions) {
    test_guest g;
    std::array<io_vec, 4> out;
    std::size_t n = 0;
    ASSERT_EQ(g.mem.translate(region_b - 100, 300, out, n), memory_error::ok);
    ASSERT_EQ(n, 2u);
    EXPECT_EQ(out[0].data, g.host(region_b - 100));
    EXPECT_EQ(out[0].len, 100u);
    EXPECT_EQ(out[1].data, g.host(region_b));
    EXPECT_EQ(out[1].len, 200u);
    // Guest-adjacent, not host-adjacent: two pieces really are needed.
    EXPECT_NE(out[0].data + 100, out[1].data);
}

TEST(vhost_guest_memory, translate_refuses_holes_wraps_and_too_many_pieces) {
    test_guest g;
    std::array<io_vec, 4> out;
    std::size_t n = 0;
    EXPECT_EQ(g.mem.translate(hole, 1, out, n), memory_error::unmapped);              // in the hole
    EXPECT_EQ(g.mem.translate(hole - 10, 20, out, n), memory_error::unmapped);        // crossing B's end into it
    EXPECT_EQ(g.mem.translate(region_c - 1, 2, out, n), memory_error::unmapped);      // from the hole into C
    EXPECT_EQ(g.mem.translate(region_c + region_size - 1, 2, out, n), memory_error::unmapped);  // past C
    EXPECT_EQ(g.mem.translate(max64 - 10, 100, out, n), memory_error::unmapped);      // wraps 2^64
    EXPECT_EQ(g.mem.translate(region_b - 1, 2, std::span<io_vec>(out).first(1), n), memory_error::too_many_pieces);
    ASSERT_EQ(g.mem.translate(hole, 0, out, n), memory_error::ok);                    // nothing to translate
    EXPECT_EQ(n, 0u);
}

TEST(vhost_guest_memory, contiguous_and_user_stay_inside_one_region) {
    test_guest g;
    EXPECT_EQ(g.mem.contiguous(data_gpa, 64), g.host(data_gpa));
    memory_error why = memory_error::ok;
    EXPECT_EQ(g.mem.contiguous(region_b - 8, 16, &why), nullptr);
    EXPECT_EQ(why, memory_error::crosses_region);
    EXPECT_EQ(g.mem.contiguous(hole, 16, &why), nullptr);
    EXPECT_EQ(why, memory_error::unmapped);
    EXPECT_EQ(g.mem.contiguous(data_gpa, 0, &why), nullptr);

    EXPECT_EQ(g.mem.user(user_base + region_c + 8, 8), g.host(region_c + 8));
    EXPECT_EQ(g.mem.user(user_base + region_b - 8, 16, &why), nullptr);
    EXPECT_EQ(why, memory_error::crosses_region);
    EXPECT_EQ(g.mem.user(region_c + 8, 8, &why), nullptr);  // a guest address is not a user address
    EXPECT_EQ(why, memory_error::unmapped);
}

TEST(vhost_guest_memory, add_refuses_bad_regions) {
    guest_memory m;
    EXPECT_EQ(m.add(region(0x1000, 0, 0x10000)), memory_error::empty_region);
    EXPECT_EQ(m.add(region(max64 - 10, 100, 0x10000)), memory_error::region_wraps);
    EXPECT_EQ(m.add(region(0x1000, 100, max64 - 10)), memory_error::region_wraps);
    EXPECT_EQ(m.add(guest_region{0x1000, 0x1000, 0x10000, 0, nullptr}), memory_error::no_host_address);
    ASSERT_EQ(m.add(region(0x1000, 0x1000, 0x10000)), memory_error::ok);
    EXPECT_EQ(m.add(region(0x1fff, 0x10, 0x90000)), memory_error::overlaps_guest);
    EXPECT_EQ(m.add(region(0x0, 0x1001, 0x90000)), memory_error::overlaps_guest);
    EXPECT_EQ(m.add(region(0x8000, 0x1000, 0x10fff)), memory_error::overlaps_user);
    ASSERT_EQ(m.add(region(0x2000, 0x1000, 0x20000)), memory_error::ok);  // adjacent is fine
    // A region that ends exactly at 2^64 is valid, and overlap checks see it.
    ASSERT_EQ(m.add(region(max64 - 0xfff, 0x1000, 0x30000)), memory_error::ok);
    EXPECT_EQ(m.add(region(max64, 1, 0x40000)), memory_error::overlaps_guest);
    EXPECT_EQ(m.regions().size(), 3u);
}

TEST(vhost_guest_memory, table_is_sorted_bounded_and_removable) {
    guest_memory m;
    for (std::uint64_t i = guest_memory::max_regions; i > 0; --i)
        ASSERT_EQ(m.add(region(i * 0x10000, 0x1000, i * 0x10000)), memory_error::ok);
    EXPECT_EQ(m.add(region(0x1000000, 0x1000, 0x1000000)), memory_error::table_full);
    const auto r = m.regions();
    for (std::size_t i = 1; i < r.size(); ++i) EXPECT_LT(r[i - 1].guest_phys_addr, r[i].guest_phys_addr);

    guest_region removed;
    EXPECT_EQ(m.remove(0x20000, 0x20000, 0x2000), memory_error::not_found);  // wrong size
    EXPECT_EQ(m.remove(0x20000, 0x30000, 0x1000), memory_error::not_found);  // wrong user address
    ASSERT_EQ(m.remove(0x20000, 0x20000, 0x1000, &removed), memory_error::ok);
    EXPECT_EQ(removed.guest_phys_addr, 0x20000u);
    EXPECT_EQ(m.regions().size(), guest_memory::max_regions - 1);
    EXPECT_EQ(m.contiguous(0x20000, 1), nullptr);
    EXPECT_NE(m.contiguous(0x30000, 1), nullptr);
    m.clear();
    EXPECT_TRUE(m.empty());
}

TEST(vhost_guest_memory, errors_have_messages) {
    for (int e = 0; e <= static_cast<int>(memory_error::too_many_pieces); ++e)
        EXPECT_FALSE(to_string(static_cast<memory_error>(e)).empty());
}
