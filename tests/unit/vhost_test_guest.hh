// A model of a guest for the vhost unit tests: 768 KiB of "guest RAM" in a
// test buffer, described to the engine by a fake region table, with a split
// virtqueue in it that the test fills as a driver would.
//
//   region A: gpa 0x00000-0x3ffff  at buf + 0         user 0x7f0000000000 + gpa
//   region B: gpa 0x40000-0x7ffff  at buf + 512 KiB   (guest-adjacent to A, not host-adjacent)
//   region C: gpa 0x100000-0x13ffff at buf + 256 KiB  (a hole from 0x80000 to 0x100000)
//
// Rings: descriptors at gpa 0x1000, the available ring right after them,
// the used ring on the next page. Buffers for requests go from 0x10000.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "vhost/guest_memory.hh"
#include "vhost/spec/virtio_ring.hh"
#include "vhost/virtqueue.hh"

namespace ioe::vhost::test {

inline constexpr std::uint64_t kib = 1024;
inline constexpr std::uint64_t user_base = 0x7f0000000000ull;
inline constexpr std::uint64_t region_a = 0x0, region_b = 0x40000, region_c = 0x100000;
inline constexpr std::uint64_t region_size = 256 * kib;
inline constexpr std::uint64_t hole = 0x80000;  // first unmapped guest address after B
inline constexpr std::uint64_t data_gpa = 0x10000;

class test_guest {
public:
    explicit test_guest(std::uint32_t size = 8, bool event_idx = false, bool indirect = true)
        : _buf(static_cast<std::byte*>(std::aligned_alloc(4096, 768 * kib))), _size(size) {
        std::memset(_buf.get(), 0, 768 * kib);
        add(region_a, 0);
        add(region_b, 512 * kib);
        add(region_c, 256 * kib);
        desc_gpa = 0x1000;
        avail_gpa = desc_gpa + 16 * std::uint64_t{size};
        used_gpa = (avail_gpa + virtio::avail_ring_bytes(size, true) + 4095) / 4096 * 4096;
        cfg = queue_config{size, event_idx, indirect};
    }

    // Sets the queue up on the rings (refusals come back to the caller).
    ring_error start(std::uint16_t next_avail = 0) {
        return queue.setup(mem, cfg, ring_addresses{user_base + desc_gpa, user_base + avail_gpa, user_base + used_gpa},
                           next_avail);
    }

    std::byte* host(std::uint64_t gpa) const {
        std::byte* p = mem.contiguous(gpa, 1);
        EXPECT_NE(p, nullptr) << "gpa " << gpa << " unmapped";
        return p;
    }
    void write(std::uint64_t gpa, const void* src, std::size_t n) {
        // Byte by byte through the table: a write may cross from A into B.
        for (std::size_t i = 0; i < n; ++i) *host(gpa + i) = static_cast<const std::byte*>(src)[i];
    }
    void fill(std::uint64_t gpa, std::size_t n, std::uint8_t v) {
        for (std::size_t i = 0; i < n; ++i) *host(gpa + i) = std::byte{v};
    }

    // Descriptor i of the ring's table, or of an indirect table at table_gpa.
    void set_desc(std::uint32_t i, std::uint64_t addr, std::uint32_t len, std::uint16_t flags, std::uint16_t next = 0) {
        set_table_desc(desc_gpa, i, addr, len, flags, next);
    }
    void set_table_desc(std::uint64_t table_gpa, std::uint32_t i, std::uint64_t addr, std::uint32_t len,
                        std::uint16_t flags, std::uint16_t next = 0) {
        const virtio::desc d{addr, len, flags, next};
        write(table_gpa + 16 * std::uint64_t{i}, &d, sizeof(d));
    }

    // The driver's side of the available ring.
    void make_available(std::uint16_t head) {
        const std::uint64_t slot = avail_idx & (_size - 1);
        write(avail_gpa + 4 + 2 * slot, &head, 2);
        set_avail_idx(static_cast<std::uint16_t>(avail_idx + 1));
    }
    void set_avail_idx(std::uint16_t idx) {
        avail_idx = idx;
        write(avail_gpa + 2, &idx, 2);
    }
    void set_avail_flags(std::uint16_t flags) { write(avail_gpa, &flags, 2); }
    void set_used_event(std::uint16_t v) { write(avail_gpa + virtio::used_event_offset(_size), &v, 2); }

    // The driver reading the used ring.
    std::uint16_t read16(std::uint64_t gpa) const {
        std::uint16_t v;
        std::memcpy(&v, host(gpa), 2);
        return v;
    }
    std::uint16_t used_idx() const { return read16(used_gpa + 2); }
    std::uint16_t used_flags() const { return read16(used_gpa); }
    std::uint16_t avail_event() const { return read16(used_gpa + virtio::avail_event_offset(_size)); }
    virtio::used_elem used(std::uint16_t slot) const {
        virtio::used_elem e;
        std::memcpy(&e, host(used_gpa + 4 + 8 * std::uint64_t{slot & (_size - 1)}), sizeof(e));
        return e;
    }

    guest_memory mem;
    queue_config cfg;
    split_queue queue;
    std::uint64_t desc_gpa = 0, avail_gpa = 0, used_gpa = 0;
    std::uint16_t avail_idx = 0;

private:
    struct free_deleter {
        void operator()(std::byte* p) const { std::free(p); }
    };
    void add(std::uint64_t gpa, std::uint64_t offset) {
        ASSERT_EQ(mem.add(guest_region{gpa, region_size, user_base + gpa, offset, _buf.get() + offset}),
                  memory_error::ok);
    }

    std::unique_ptr<std::byte, free_deleter> _buf;
    std::uint32_t _size;
};

}  // namespace ioe::vhost::test
