// A split virtqueue seen from the device: takes the heads the driver made
// available, walks each descriptor chain into host pieces of guest memory,
// and returns used chains, with the EVENT_IDX notification rules. One queue
// is served by one shard; nothing here locks or allocates.
//
// The guest writes these rings concurrently and may be hostile. Every value
// read from a ring is read once into a local and checked before use: a
// descriptor is copied whole (memcpy, then a compiler barrier, so it is
// never re-read), indexes are atomic loads. What the walk refuses (each a
// ring_error, for the one log line; the caller marks the queue broken):
//  * an available index more than the ring size ahead of ours, a head or a
//    `next` outside the table;
//  * a chain of more buffer descriptors than the ring size (a loop, or too
//    long: virtio 1.1 2.6.5.3.1), counting through an indirect table;
//  * INDIRECT without the feature, with NEXT, inside an indirect table
//    (nested), or naming a table of 0 bytes, of a length not a multiple of
//    16, of more entries than the ring size, or not inside one region;
//  * a device-readable descriptor after a device-writable one;
//  * a buffer not covered by guest memory (see guest_memory::translate),
//    more pieces than the caller's array holds, or more than 2^32 - 1
//    readable or writable bytes.
// Zero-length buffers are skipped (no piece, no address check). An
// indirect descriptor may end a chain of direct ones; its WRITE flag is
// ignored, as the specification says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "storage/io_vec.hh"
#include "vhost/guest_memory.hh"

namespace ioe::vhost {

enum class ring_error : std::uint8_t {
    ok,
    empty,                    // pop: nothing available (not a fault)
    bad_size,                 // setup: size not a power of two in 1..32768
    ring_unmapped,            // setup: a ring part not inside one region
    ring_misaligned,          // setup: descriptors not 16-, avail not 2-, used not 4-byte aligned
    avail_index_jump,         // avail.idx more than the ring size ahead of what we took
    head_out_of_range,        // an available head >= the ring size
    next_out_of_range,        // a `next` outside its table
    chain_too_long,           // more descriptors than allowed: a loop, or longer than the ring
    indirect_not_negotiated,  // INDIRECT without VIRTIO_F_INDIRECT_DESC
    indirect_with_next,       // INDIRECT and NEXT on one descriptor
    nested_indirect,          // INDIRECT inside an indirect table
    indirect_bad_length,      // table of 0 bytes, not a multiple of 16, or above the ring size
    indirect_unmapped,        // table not inside one region
    readable_after_writable,  // a device-readable descriptor after a device-writable one
    buffer_unmapped,          // a buffer outside guest memory
    too_many_segments,        // more pieces than the caller's array holds
    chain_too_large,          // readable or writable bytes above 2^32 - 1
};

std::string_view to_string(ring_error e) noexcept;

struct queue_config {
    std::uint32_t size = 0;   // SET_VRING_NUM
    bool event_idx = false;   // VIRTIO_F_EVENT_IDX negotiated
    bool indirect = false;    // VIRTIO_F_INDIRECT_DESC negotiated
};

// The ring addresses of SET_VRING_ADDR: front-end user addresses.
struct ring_addresses {
    std::uint64_t desc = 0;
    std::uint64_t avail = 0;
    std::uint64_t used = 0;
};

// One walked chain: iov[0, readable) are the device-readable pieces,
// iov[readable, count) the device-writable ones, in chain order.
struct desc_chain {
    std::uint16_t head = 0;
    std::uint32_t readable = 0;
    std::uint32_t count = 0;
    std::uint32_t descriptors = 0;  // buffer descriptors walked (indirect ones not counted)
    std::uint32_t readable_bytes = 0;
    std::uint32_t writable_bytes = 0;
    std::span<io_vec> iov;  // the caller's storage

    std::span<io_vec> readable_iov() const noexcept { return iov.subspan(0, readable); }
    std::span<io_vec> writable_iov() const noexcept { return iov.subspan(readable, count - readable); }
};

class split_queue {
public:
    // Translates the ring addresses through `mem` (which must outlive the
    // queue's use, or until the next setup) and starts taking heads at
    // `next_avail` (SET_VRING_BASE). The used index is read from the ring.
    ring_error setup(const guest_memory& mem, const queue_config& cfg, const ring_addresses& addr,
                     std::uint16_t next_avail) noexcept;
    bool ready() const noexcept { return _mem != nullptr; }

    // The next available head: ok (head set), empty, avail_index_jump or
    // head_out_of_range. A refused index is not consumed.
    ring_error pop(std::uint16_t& head) noexcept;

    // Walks the chain at `head` into `iov`; `chain` describes the result.
    ring_error walk(std::uint16_t head, std::span<io_vec> iov, desc_chain& chain) const noexcept;

    // Writes a used element (head, bytes written); invisible to the driver
    // until publish_used().
    void put_used(std::uint16_t head, std::uint32_t len) noexcept;
    // Makes every element put so far visible (used.idx, release) and says
    // whether the driver asked to be interrupted for them (EVENT_IDX:
    // used_event passed; otherwise: NO_INTERRUPT clear).
    bool publish_used() noexcept;

    // Kick (driver -> device notification) control for a polling device:
    // suppress_kicks() while polling; arm_kicks() before sleeping on the kick
    // fd, which returns true when more heads arrived meanwhile (poll again).
    void suppress_kicks() noexcept;
    bool arm_kicks() noexcept;

    std::uint16_t next_avail() const noexcept { return _next_avail; }  // GET_VRING_BASE
    std::uint16_t used_idx() const noexcept { return _used_idx; }
    std::uint32_t size() const noexcept { return _cfg.size; }

private:
    std::uint16_t load_avail_idx() const noexcept;

    const guest_memory* _mem = nullptr;
    queue_config _cfg{};
    const std::byte* _desc = nullptr;
    std::byte* _avail = nullptr;
    std::byte* _used = nullptr;
    std::uint16_t _next_avail = 0;      // next available slot we take
    std::uint16_t _avail_cache = 0;     // last avail.idx read
    std::uint16_t _used_idx = 0;        // next used slot we fill
    std::uint16_t _used_published = 0;  // used.idx the driver can see
};

}  // namespace ioe::vhost
