// The split virtqueue as plain data (virtio 1.1 section 2.6, virtio 1.2
// section 2.7): the descriptor, the available ring, the used ring and its
// element, their flags, the generic feature bits a vhost-user-blk device
// negotiates, and the EVENT_IDX "need an event" rule. Sizes and every field
// offset are pinned by static_asserts; docs/vhost.md has the tables.
//
// The rings are variable-length (their size is the queue size), so only the
// fixed heads are structs here; ring_bytes() gives each part's full size with
// or without the EVENT_IDX trailer. Everything is little-endian (VERSION_1).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace ioe::vhost::virtio {

static_assert(std::endian::native == std::endian::little, "virtio 1.x rings are little-endian");

// Largest split queue size (a power of two; virtio 1.1 2.6).
inline constexpr std::uint32_t max_queue_size = 32768;

// Generic feature bits (virtio 1.1 section 6, "Reserved Feature Bits").
namespace feature {
inline constexpr unsigned notify_on_empty = 24;
inline constexpr unsigned any_layout = 27;
inline constexpr unsigned indirect_desc = 28;  // VIRTIO_F_INDIRECT_DESC
inline constexpr unsigned event_idx = 29;      // VIRTIO_F_EVENT_IDX
inline constexpr unsigned version_1 = 32;      // VIRTIO_F_VERSION_1
inline constexpr unsigned access_platform = 33;
inline constexpr unsigned ring_packed = 34;
inline constexpr unsigned in_order = 35;
inline constexpr unsigned order_platform = 36;
inline constexpr unsigned sr_iov = 37;
inline constexpr unsigned notification_data = 38;
inline constexpr unsigned ring_reset = 40;
}  // namespace feature

constexpr std::uint64_t bit(unsigned b) { return std::uint64_t{1} << b; }

// Descriptor flags.
namespace desc_flags {
inline constexpr std::uint16_t next = 1;      // the chain continues at `next`
inline constexpr std::uint16_t write = 2;     // device-writable (else device-readable)
inline constexpr std::uint16_t indirect = 4;  // addr/len is a table of descriptors
}  // namespace desc_flags

// Available ring flags (driver -> device).
inline constexpr std::uint16_t avail_f_no_interrupt = 1;
// Used ring flags (device -> driver).
inline constexpr std::uint16_t used_f_no_notify = 1;

// One descriptor of the table (alignment 16).
struct desc {
    std::uint64_t addr;   // guest physical address of the buffer
    std::uint32_t len;    // bytes (for an indirect descriptor: bytes of the table)
    std::uint16_t flags;  // desc_flags
    std::uint16_t next;   // index of the next descriptor when flags has `next`
};
static_assert(sizeof(desc) == 16);
static_assert(offsetof(desc, addr) == 0);
static_assert(offsetof(desc, len) == 8);
static_assert(offsetof(desc, flags) == 12);
static_assert(offsetof(desc, next) == 14);
inline constexpr std::size_t desc_align = 16;

// The head of the available ring (alignment 2). Followed by ring[size] (u16
// descriptor heads) and, with EVENT_IDX, used_event (u16).
struct avail_head {
    std::uint16_t flags;  // avail_f_no_interrupt
    std::uint16_t idx;    // where the driver puts the next head (free-running)
};
static_assert(sizeof(avail_head) == 4);
static_assert(offsetof(avail_head, flags) == 0);
static_assert(offsetof(avail_head, idx) == 2);
inline constexpr std::size_t avail_align = 2;
inline constexpr std::size_t avail_ring_offset = 4;

// One element of the used ring.
struct used_elem {
    std::uint32_t id;   // head of the chain that was used (u32 for padding)
    std::uint32_t len;  // bytes the device wrote into the chain's writable buffers
};
static_assert(sizeof(used_elem) == 8);
static_assert(offsetof(used_elem, id) == 0);
static_assert(offsetof(used_elem, len) == 4);

// The head of the used ring (alignment 4). Followed by ring[size]
// (used_elem) and, with EVENT_IDX, avail_event (u16).
struct used_head {
    std::uint16_t flags;  // used_f_no_notify
    std::uint16_t idx;    // where the device puts the next element (free-running)
};
static_assert(sizeof(used_head) == 4);
static_assert(offsetof(used_head, flags) == 0);
static_assert(offsetof(used_head, idx) == 2);
inline constexpr std::size_t used_align = 4;
inline constexpr std::size_t used_ring_offset = 4;

// Byte sizes of the three parts for a queue of `size` entries.
constexpr std::uint64_t desc_table_bytes(std::uint32_t size) { return std::uint64_t{16} * size; }
constexpr std::uint64_t avail_ring_bytes(std::uint32_t size, bool event_idx) {
    return avail_ring_offset + std::uint64_t{2} * size + (event_idx ? 2 : 0);
}
constexpr std::uint64_t used_ring_bytes(std::uint32_t size, bool event_idx) {
    return used_ring_offset + std::uint64_t{8} * size + (event_idx ? 2 : 0);
}
// Offsets of the EVENT_IDX trailers.
constexpr std::uint64_t used_event_offset(std::uint32_t size) { return avail_ring_offset + std::uint64_t{2} * size; }
constexpr std::uint64_t avail_event_offset(std::uint32_t size) { return used_ring_offset + std::uint64_t{8} * size; }
static_assert(avail_ring_bytes(256, true) == 518);
static_assert(used_ring_bytes(256, true) == 2054);

// A valid split queue size: a power of two in 1..32768.
constexpr bool valid_queue_size(std::uint32_t size) {
    return size != 0 && size <= max_queue_size && std::has_single_bit(size);
}

// EVENT_IDX (virtio 1.1 2.6.7.2 / 2.6.10.2): the other side asked for an
// event when the index passes `event_idx`; the index moved from `old_idx` to
// `new_idx`. True when event_idx lies in [old_idx, new_idx) (mod 2^16).
constexpr bool need_event(std::uint16_t event_idx, std::uint16_t new_idx, std::uint16_t old_idx) {
    return static_cast<std::uint16_t>(new_idx - event_idx - 1) < static_cast<std::uint16_t>(new_idx - old_idx);
}
static_assert(need_event(5, 6, 5));
static_assert(!need_event(6, 6, 5));
static_assert(need_event(0xffff, 1, 0xfffe));

}  // namespace ioe::vhost::virtio
