// The driver side of vhost-user (vhost-perf and tests): one split virtqueue
// as a virtio-blk driver fills it, laid out in shared guest memory. The
// queue has `slots` request slots, each a fixed chain of three descriptors
// (header, data, status; 3s, 3s+1, 3s+2) with its own 16-byte header,
// status byte and data buffer, so submitting a request writes a header, two
// descriptor fields and one available-ring entry, and allocates nothing.
//
// Notifications. Kicks (driver -> device) go through the kick eventfd only
// when the device asked for one: EVENT_IDX's avail_event passed, or without
// EVENT_IDX used.flags lacking NO_NOTIFY. Interrupts (device -> driver) are
// not used: the driver busy-polls used.idx. With EVENT_IDX it keeps
// used_event half the index space ahead of what it reaped, so the device's
// need_event test stays false; without it, avail.flags says NO_INTERRUPT.
// A call eventfd is still handed to the device and never read: QEMU's
// libvhost-user (qemu-storage-daemon) signals it once unconditionally on
// its first notification and treats a missing call fd as an error.
//
// One thread drives a queue; nothing here locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "vhost/frontend_memory.hh"

namespace ioe::vhost {

enum class driver_op : std::uint8_t { read, write, flush };

struct blk_completion {
    std::uint32_t slot = 0;
    std::uint8_t status = 0;   // blk::status; 0xff: the device returned a head we never made available
    std::uint32_t written = 0; // used element's len: bytes the device wrote (data + status)
};

class frontend_queue {
public:
    static constexpr std::uint8_t bad_used_element = 0xff;

    // Lays the rings and `slots` request slots (data buffers of max_io_bytes,
    // 4 KiB-aligned) out in `mem`; size: a power of two with 3 * slots <= size.
    // Creates the kick and call eventfds. Throws on a bad size or no memory.
    frontend_queue(shared_memory& mem, std::uint16_t index, std::uint32_t size, std::uint32_t slots,
                   std::uint32_t max_io_bytes, bool event_idx);
    ~frontend_queue();
    frontend_queue(const frontend_queue&) = delete;
    frontend_queue& operator=(const frontend_queue&) = delete;

    std::uint16_t index() const noexcept { return _index; }
    std::uint32_t size() const noexcept { return _size; }
    std::uint32_t slots() const noexcept { return _slots; }
    std::uint32_t max_io_bytes() const noexcept { return _max_io; }
    std::byte* buffer(std::uint32_t slot) const noexcept { return _data + std::size_t{slot} * _max_io; }

    // SET_VRING_ADDR's user addresses and the eventfds for SET_VRING_KICK/CALL.
    std::uint64_t desc_user_addr() const noexcept;
    std::uint64_t avail_user_addr() const noexcept;
    std::uint64_t used_user_addr() const noexcept;
    int kick_fd() const noexcept { return _kick_fd; }
    int call_fd() const noexcept { return _call_fd; }

    // Puts slot's request in the available ring, not yet visible to the
    // device: `len` bytes at byte `offset` (both multiples of 512; len <=
    // max_io_bytes) from or into buffer(slot). The slot must be free.
    void prepare(std::uint32_t slot, driver_op op, std::uint64_t offset, std::uint32_t len) noexcept;
    // Makes every prepared request visible (avail.idx, release) and kicks
    // the device when it asked for it. Returns true when it kicked.
    bool submit() noexcept;
    // Takes up to out.size() completed requests. Never blocks.
    std::uint32_t reap(std::span<blk_completion> out) noexcept;

    std::uint64_t kicks() const noexcept { return _kicks; }

private:
    struct slot_area {
        std::uint32_t type;
        std::uint32_t reserved;
        std::uint64_t sector;
        std::uint8_t status;
        std::uint8_t pad[15];
    };
    static_assert(sizeof(slot_area) == 32);

    std::uint16_t _index;
    std::uint32_t _size, _mask, _slots, _max_io;
    bool _event_idx;
    std::byte* _desc = nullptr;   // virtio::desc[size]
    std::byte* _avail = nullptr;  // avail_head, ring, used_event
    std::byte* _used = nullptr;   // used_head, elems, avail_event
    slot_area* _areas = nullptr;
    std::uint64_t _areas_gpa = 0;
    std::byte* _data = nullptr;
    std::uint64_t _data_gpa = 0;
    std::uint16_t _avail_idx = 0;      // next available slot we fill
    std::uint16_t _avail_published = 0;
    std::uint16_t _last_used = 0;      // next used element we read
    std::uint64_t _kicks = 0;
    int _kick_fd = -1, _call_fd = -1;
};

}  // namespace ioe::vhost
