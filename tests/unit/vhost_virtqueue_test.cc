// vhost/virtqueue: the split-ring walker against a model guest
// (tests/unit/vhost_test_guest.hh). Normal chains (one descriptor per part,
// a buffer split across guest-adjacent regions, indirect tables, a direct
// prefix ending in an indirect table), every refusal the issue lists
// (ring sizes, index jumps, loops, over-long chains, nested / bad indirect
// tables, writable before readable, addresses outside or crossing regions),
// used elements with 16-bit wrap-around, and the EVENT_IDX and flag rules
// for interrupts and kicks.
#include <gtest/gtest.h>

#include <array>
#include <limits>

#include "tests/unit/vhost_test_guest.hh"

using namespace ioe;
using namespace ioe::vhost;
using namespace ioe::vhost::test;
namespace df = ioe::vhost::virtio::desc_flags;

namespace {

constexpr std::uint16_t R = 0;  // device-readable
constexpr std::uint16_t W = df::write;
constexpr std::uint16_t N = df::next;

struct walked {
    ring_error error;
    desc_chain chain;
    std::array<io_vec, 16> iov;
};

// Makes `head` available, pops it and walks it.
walked pop_walk(test_guest& g, std::uint16_t head, std::size_t iov_capacity = 16) {
    walked w{};
    g.make_available(head);
    std::uint16_t h = 0;
    EXPECT_EQ(g.queue.pop(h), ring_error::ok);
    EXPECT_EQ(h, head);
    w.error = g.queue.walk(h, std::span<io_vec>(w.iov).first(iov_capacity), w.chain);
    return w;
}

}  // namespace

TEST(vhost_virtqueue, setup_refuses_bad_sizes_and_rings) {
    for (std::uint32_t size : {0u, 3u, 6u, 100u, 32769u, 65536u}) {
        test_guest g(8);
        g.cfg.size = size;
        EXPECT_EQ(g.start(), ring_error::bad_size) << size;
    }
    test_guest g(8);
    const queue_config cfg = g.cfg;
    const auto start = [&](std::uint64_t desc, std::uint64_t avail, std::uint64_t used) {
        return g.queue.setup(g.mem, cfg, ring_addresses{user_base + desc, user_base + avail, user_base + used}, 0);
    };
    EXPECT_EQ(start(hole, g.avail_gpa, g.used_gpa), ring_error::ring_unmapped);
    EXPECT_EQ(start(g.desc_gpa, hole, g.used_gpa), ring_error::ring_unmapped);
    EXPECT_EQ(start(g.desc_gpa, g.avail_gpa, region_b - 8), ring_error::ring_unmapped);  // crosses A's end
    EXPECT_EQ(start(g.desc_gpa + 8, g.avail_gpa, g.used_gpa), ring_error::ring_misaligned);
    EXPECT_EQ(start(g.desc_gpa, g.avail_gpa + 1, g.used_gpa), ring_error::ring_misaligned);
    EXPECT_EQ(start(g.desc_gpa, g.avail_gpa, g.used_gpa + 2), ring_error::ring_misaligned);
    EXPECT_FALSE(g.queue.ready());
    EXPECT_EQ(g.start(), ring_error::ok);
    EXPECT_TRUE(g.queue.ready());
    // The largest ring size is accepted (in a 1 MiB region of its own).
    std::unique_ptr<std::byte, decltype(&std::free)> mib(static_cast<std::byte*>(std::aligned_alloc(4096, 1 << 20)),
                                                          &std::free);
    std::memset(mib.get(), 0, 1 << 20);
    const std::uint64_t big = 0x10000000;
    ASSERT_EQ(g.mem.add(guest_region{big, 1 << 20, user_base + big, 0, mib.get()}), memory_error::ok);
    queue_config large = cfg;
    large.size = 32768;
    EXPECT_EQ(g.queue.setup(g.mem, large,
                            ring_addresses{user_base + big, user_base + big + 0x80000, user_base + big + 0xa0000}, 0),
              ring_error::ok);
    EXPECT_EQ(g.queue.size(), 32768u);
}

TEST(vhost_virtqueue, pop_takes_heads_in_order_and_refuses_jumps) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    std::uint16_t h = 99;
    EXPECT_EQ(g.queue.pop(h), ring_error::empty);
    g.make_available(3);
    g.make_available(5);
    EXPECT_EQ(g.queue.pop(h), ring_error::ok);
    EXPECT_EQ(h, 3);
    EXPECT_EQ(g.queue.pop(h), ring_error::ok);
    EXPECT_EQ(h, 5);
    EXPECT_EQ(g.queue.pop(h), ring_error::empty);
    EXPECT_EQ(g.queue.next_avail(), 2);

    // A full ring (exactly `size` ahead) is fine; one more is a jump, and
    // the refused index is not consumed.
    g.set_avail_idx(2 + 8);
    EXPECT_EQ(g.queue.pop(h), ring_error::ok);
    test_guest j(8);
    ASSERT_EQ(j.start(), ring_error::ok);
    j.set_avail_idx(9);
    EXPECT_EQ(j.queue.pop(h), ring_error::avail_index_jump);
    EXPECT_EQ(j.queue.next_avail(), 0);
    j.set_avail_idx(0xffff);  // moved backwards
    EXPECT_EQ(j.queue.pop(h), ring_error::avail_index_jump);
}

TEST(vhost_virtqueue, pop_refuses_a_head_outside_the_table) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.make_available(8);
    std::uint16_t h = 0;
    EXPECT_EQ(g.queue.pop(h), ring_error::head_out_of_range);
    desc_chain c;
    std::array<io_vec, 4> iov;
    EXPECT_EQ(g.queue.walk(8, iov, c), ring_error::head_out_of_range);
}

TEST(vhost_virtqueue, walks_a_plain_chain) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, data_gpa, 16, R | N, 4);
    g.set_desc(4, data_gpa + 0x1000, 4096, W | N, 2);
    g.set_desc(2, data_gpa + 0x3000, 1, W);
    auto w = pop_walk(g, 0);
    ASSERT_EQ(w.error, ring_error::ok);
    EXPECT_EQ(w.chain.head, 0);
    EXPECT_EQ(w.chain.count, 3u);
    EXPECT_EQ(w.chain.readable, 1u);
    EXPECT_EQ(w.chain.descriptors, 3u);
    EXPECT_EQ(w.chain.readable_bytes, 16u);
    EXPECT_EQ(w.chain.writable_bytes, 4097u);
    EXPECT_EQ(w.chain.readable_iov()[0].data, g.host(data_gpa));
    EXPECT_EQ(w.chain.writable_iov()[0].data, g.host(data_gpa + 0x1000));
    EXPECT_EQ(w.chain.writable_iov()[1].len, 1u);
}

TEST(vhost_virtqueue, splits_a_buffer_across_adjacent_regions_and_skips_empty_ones) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, data_gpa, 16, R | N, 1);
    g.set_desc(1, 0xdead0000, 0, R | N, 2);  // empty: skipped, its address never checked
    g.set_desc(2, region_b - 512, 1024, W | N, 3);
    g.set_desc(3, data_gpa + 0x100, 1, W);
    auto w = pop_walk(g, 0);
    ASSERT_EQ(w.error, ring_error::ok);
    EXPECT_EQ(w.chain.count, 4u);
    EXPECT_EQ(w.chain.readable, 1u);
    EXPECT_EQ(w.chain.descriptors, 4u);
    EXPECT_EQ(w.iov[1].data, g.host(region_b - 512));
    EXPECT_EQ(w.iov[1].len, 512u);
    EXPECT_EQ(w.iov[2].data, g.host(region_b));
    EXPECT_EQ(w.iov[2].len, 512u);
}

TEST(vhost_virtqueue, walks_indirect_tables) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    const std::uint64_t table = data_gpa + 0x8000;
    g.set_table_desc(table, 0, data_gpa, 16, R | N, 2);  // any order inside the table
    g.set_table_desc(table, 2, data_gpa + 0x1000, 512, W | N, 1);
    g.set_table_desc(table, 1, data_gpa + 0x2000, 1, W);
    g.set_desc(6, table, 3 * 16, df::indirect | df::write);  // WRITE on it is ignored
    auto w = pop_walk(g, 6);
    ASSERT_EQ(w.error, ring_error::ok);
    EXPECT_EQ(w.chain.count, 3u);
    EXPECT_EQ(w.chain.readable, 1u);
    EXPECT_EQ(w.chain.descriptors, 3u);
    EXPECT_EQ(w.chain.writable_bytes, 513u);

    // A direct prefix that ends in an indirect table.
    g.set_table_desc(table + 0x100, 0, data_gpa + 0x1000, 512, W | N, 1);
    g.set_table_desc(table + 0x100, 1, data_gpa + 0x2000, 1, W);
    g.set_desc(1, data_gpa, 16, R | N, 7);
    g.set_desc(7, table + 0x100, 2 * 16, df::indirect);
    w = pop_walk(g, 1);
    ASSERT_EQ(w.error, ring_error::ok);
    EXPECT_EQ(w.chain.count, 3u);
    EXPECT_EQ(w.chain.readable, 1u);
    EXPECT_EQ(w.iov[0].data, g.host(data_gpa));
    EXPECT_EQ(w.iov[2].data, g.host(data_gpa + 0x2000));
}

TEST(vhost_virtqueue, refuses_loops_and_chains_longer_than_the_ring) {
    test_guest g(4);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, data_gpa, 16, R | N, 1);
    g.set_desc(1, data_gpa, 16, R | N, 0);  // 0 -> 1 -> 0 -> ...
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::chain_too_long);
    g.set_desc(2, data_gpa, 16, R | N, 2);  // a descriptor naming itself
    EXPECT_EQ(pop_walk(g, 2).error, ring_error::chain_too_long);

    // A loop inside an indirect table.
    const std::uint64_t table = data_gpa + 0x8000;
    g.set_table_desc(table, 0, data_gpa, 16, R | N, 1);
    g.set_table_desc(table, 1, data_gpa, 16, R | N, 0);
    g.set_desc(3, table, 2 * 16, df::indirect);
    EXPECT_EQ(pop_walk(g, 3).error, ring_error::chain_too_long);

    // One direct buffer plus a full table of 4: 5 buffers in a ring of 4.
    for (std::uint32_t i = 0; i < 4; ++i)
        g.set_table_desc(table + 0x100, i, data_gpa, 16, i < 3 ? R | N : R, static_cast<std::uint16_t>(i + 1));
    g.set_desc(1, data_gpa, 16, R | N, 3);
    g.set_desc(3, table + 0x100, 4 * 16, df::indirect);
    EXPECT_EQ(pop_walk(g, 1).error, ring_error::chain_too_long);
    // The same table alone is fine.
    EXPECT_EQ(pop_walk(g, 3).error, ring_error::ok);
}

TEST(vhost_virtqueue, refuses_next_outside_the_table) {
    test_guest g(4);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, data_gpa, 16, R | N, 4);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::next_out_of_range);
    const std::uint64_t table = data_gpa + 0x8000;
    g.set_table_desc(table, 0, data_gpa, 16, R | N, 2);  // table of 2
    g.set_desc(1, table, 2 * 16, df::indirect);
    EXPECT_EQ(pop_walk(g, 1).error, ring_error::next_out_of_range);
}

TEST(vhost_virtqueue, refuses_bad_indirect_descriptors) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    const std::uint64_t table = data_gpa + 0x8000;
    g.set_table_desc(table, 0, data_gpa, 16, R | N, 1);
    g.set_table_desc(table, 1, table + 0x100, 16, df::indirect);  // nested
    g.set_desc(0, table, 2 * 16, df::indirect);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::nested_indirect);

    g.set_desc(0, table, 16, df::indirect | N, 1);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::indirect_with_next);
    for (std::uint32_t len : {0u, 24u, 9u * 16u}) {  // empty, not a multiple of 16, more than the ring
        g.set_desc(0, table, len, df::indirect);
        EXPECT_EQ(pop_walk(g, 0).error, ring_error::indirect_bad_length) << len;
    }
    g.set_desc(0, hole, 16, df::indirect);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::indirect_unmapped);
    g.set_desc(0, region_b - 16, 32, df::indirect);  // crosses into B: not one pointer
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::indirect_unmapped);

    test_guest n(8, false, /*indirect=*/false);
    ASSERT_EQ(n.start(), ring_error::ok);
    n.set_desc(0, table, 16, df::indirect);
    EXPECT_EQ(pop_walk(n, 0).error, ring_error::indirect_not_negotiated);
}

TEST(vhost_virtqueue, refuses_readable_after_writable) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, data_gpa, 16, R | N, 1);
    g.set_desc(1, data_gpa + 0x1000, 512, W | N, 2);
    g.set_desc(2, data_gpa + 0x2000, 512, R);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::readable_after_writable);
    // Also across the step into an indirect table.
    const std::uint64_t table = data_gpa + 0x8000;
    g.set_table_desc(table, 0, data_gpa, 16, R);
    g.set_desc(3, data_gpa + 0x1000, 1, W | N, 4);
    g.set_desc(4, table, 16, df::indirect);
    EXPECT_EQ(pop_walk(g, 3).error, ring_error::readable_after_writable);
}

TEST(vhost_virtqueue, refuses_buffers_outside_guest_memory) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, hole + 0x1000, 16, R);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::buffer_unmapped);
    g.set_desc(0, hole - 8, 16, R);  // crossing B's end into the hole
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::buffer_unmapped);
    g.set_desc(0, std::numeric_limits<std::uint64_t>::max() - 4, 16, R);  // wraps
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::buffer_unmapped);
}

TEST(vhost_virtqueue, refuses_more_segments_than_the_caller_holds) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, data_gpa, 16, R | N, 1);
    g.set_desc(1, region_b - 8, 16, W);  // needs two pieces
    EXPECT_EQ(pop_walk(g, 0, 2).error, ring_error::too_many_segments);
    EXPECT_EQ(pop_walk(g, 0, 3).error, ring_error::ok);
}

TEST(vhost_virtqueue, refuses_chains_above_4_gib) {
    // Fake 8 GiB regions: the walker computes pointers but never touches them.
    test_guest g(8);
    static std::byte backing[16];
    ASSERT_EQ(g.mem.add(guest_region{0x100000000ull, 0x200000000ull, 0x100000000ull, 0, backing}),
              memory_error::ok);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_desc(0, 0x100000000ull, 0xffffffffu, R | N, 1);
    g.set_desc(1, 0x200000000ull, 1, R);
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::chain_too_large);
    g.set_desc(1, 0x200000000ull, 1, W);  // 4 GiB - 1 each way is fine
    EXPECT_EQ(pop_walk(g, 0).error, ring_error::ok);
}

TEST(vhost_virtqueue, used_elements_wrap_around_the_16_bit_index) {
    test_guest g(4);
    g.set_avail_idx(0xfffe);
    ASSERT_EQ(g.start(0xfffe), ring_error::ok);
    // The used index starts where the ring says it is.
    EXPECT_EQ(g.queue.used_idx(), 0);
    for (std::uint16_t i = 0; i < 10; ++i) {
        g.set_desc(i % 4, data_gpa, 16, R);
        g.make_available(i % 4);
        std::uint16_t h = 0;
        ASSERT_EQ(g.queue.pop(h), ring_error::ok);
        EXPECT_EQ(h, i % 4);
        g.queue.put_used(h, 100 + i);
        g.queue.publish_used();
        EXPECT_EQ(g.used_idx(), i + 1);
        EXPECT_EQ(g.used(i).id, i % 4u);
        EXPECT_EQ(g.used(i).len, 100u + i);
    }
    EXPECT_EQ(g.queue.next_avail(), static_cast<std::uint16_t>(0xfffe + 10));
}

TEST(vhost_virtqueue, interrupts_follow_no_interrupt_without_event_idx) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    EXPECT_FALSE(g.queue.publish_used());  // nothing to publish
    g.queue.put_used(0, 1);
    EXPECT_TRUE(g.queue.publish_used());
    g.set_avail_flags(virtio::avail_f_no_interrupt);
    g.queue.put_used(1, 1);
    g.queue.put_used(2, 1);
    EXPECT_FALSE(g.queue.publish_used());
    EXPECT_EQ(g.used_idx(), 3);
}

TEST(vhost_virtqueue, interrupts_follow_used_event_with_event_idx) {
    test_guest g(8, /*event_idx=*/true);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.set_avail_flags(virtio::avail_f_no_interrupt);  // ignored with EVENT_IDX
    g.set_used_event(0);
    g.queue.put_used(0, 1);
    EXPECT_TRUE(g.queue.publish_used());   // 0 -> 1 passes used_event 0
    g.set_used_event(3);
    g.queue.put_used(1, 1);
    EXPECT_FALSE(g.queue.publish_used());  // 1 -> 2
    g.queue.put_used(2, 1);
    EXPECT_FALSE(g.queue.publish_used());  // 2 -> 3
    g.queue.put_used(3, 1);
    g.queue.put_used(4, 1);
    EXPECT_TRUE(g.queue.publish_used());   // 3 -> 5 passes 3
    g.set_used_event(4);
    g.queue.put_used(5, 1);
    EXPECT_FALSE(g.queue.publish_used());  // 4 was passed already
}

TEST(vhost_virtqueue, kick_suppression_without_and_with_event_idx) {
    test_guest g(8);
    ASSERT_EQ(g.start(), ring_error::ok);
    g.queue.suppress_kicks();
    EXPECT_EQ(g.used_flags(), virtio::used_f_no_notify);
    EXPECT_FALSE(g.queue.arm_kicks());
    EXPECT_EQ(g.used_flags(), 0);
    g.make_available(1);
    EXPECT_TRUE(g.queue.arm_kicks());  // arrived meanwhile: poll again

    test_guest e(8, /*event_idx=*/true);
    ASSERT_EQ(e.start(), ring_error::ok);
    e.make_available(1);
    std::uint16_t h = 0;
    ASSERT_EQ(e.queue.pop(h), ring_error::ok);
    EXPECT_FALSE(e.queue.arm_kicks());
    EXPECT_EQ(e.avail_event(), 1);  // kick me when you publish past 1
    EXPECT_EQ(e.used_flags(), 0);
    e.queue.suppress_kicks();
    // Behind every index the driver moves from: need_event says no kick.
    EXPECT_FALSE(virtio::need_event(e.avail_event(), 2, 1));
    EXPECT_FALSE(virtio::need_event(e.avail_event(), 9, 1));
}

TEST(vhost_virtqueue, errors_have_messages) {
    for (int e = 0; e <= static_cast<int>(ring_error::chain_too_large); ++e)
        EXPECT_FALSE(to_string(static_cast<ring_error>(e)).empty());
}
