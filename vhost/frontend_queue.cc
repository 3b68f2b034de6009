// frontend_queue: a virtio-blk driver's split virtqueue in shared guest
// memory (see frontend_queue.hh for the layout and the notification rules).
#include "vhost/frontend_queue.hh"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "vhost/spec/virtio_blk.hh"
#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost {

namespace {

std::uint16_t load_acquire(const std::byte* p) {
    return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(const_cast<std::byte*>(p)))
        .load(std::memory_order_acquire);
}
void store_release(std::byte* p, std::uint16_t v) {
    std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p)).store(v, std::memory_order_release);
}
void store_relaxed(std::byte* p, std::uint16_t v) {
    std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p)).store(v, std::memory_order_relaxed);
}
std::uint16_t load_relaxed(const std::byte* p) {
    return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(const_cast<std::byte*>(p)))
        .load(std::memory_order_relaxed);
}

}  // namespace

frontend_queue::frontend_queue(shared_memory& mem, std::uint16_t index, std::uint32_t size, std::uint32_t slots,
                               std::uint32_t max_io_bytes, bool event_idx)
    : _index(index), _size(size), _mask(size - 1), _slots(slots), _max_io(max_io_bytes), _event_idx(event_idx) {
    if (!virtio::valid_queue_size(size) || slots == 0 || std::uint64_t{slots} * 3 > size) {
        throw std::runtime_error("virtqueue " + std::to_string(index) + ": size " + std::to_string(size) +
                                 " must be a power of two of at least 3 x " + std::to_string(slots) +
                                 " slots (3 descriptors per request)");
    }
    if (max_io_bytes == 0 || max_io_bytes % blk::sector_bytes != 0) {
        throw std::runtime_error("virtqueue: the I/O size must be a multiple of 512 bytes");
    }
    _desc = mem.allocate(virtio::desc_table_bytes(size), virtio::desc_align).host;
    _avail = mem.allocate(virtio::avail_ring_bytes(size, true), virtio::avail_align).host;
    _used = mem.allocate(virtio::used_ring_bytes(size, true), 4096).host;  // own page: the device writes it
    const auto areas = mem.allocate(sizeof(slot_area) * slots, 64);
    _areas = reinterpret_cast<slot_area*>(areas.host);
    _areas_gpa = areas.gpa;
    const auto data = mem.allocate(std::uint64_t{max_io_bytes} * slots, 4096);
    _data = data.host;
    _data_gpa = data.gpa;

    // The fixed chains: header (readable) -> data -> status (writable).
    for (std::uint32_t s = 0; s < slots; ++s) {
        virtio::desc d[3]{};
        d[0] = {_areas_gpa + s * sizeof(slot_area), sizeof(blk::req_header), virtio::desc_flags::next,
                static_cast<std::uint16_t>(3 * s + 1)};
        d[1] = {_data_gpa + std::uint64_t{s} * max_io_bytes, max_io_bytes, virtio::desc_flags::next,
                static_cast<std::uint16_t>(3 * s + 2)};
        d[2] = {_areas_gpa + s * sizeof(slot_area) + offsetof(slot_area, status), 1, virtio::desc_flags::write, 0};
        std::memcpy(_desc + sizeof(virtio::desc) * 3 * s, d, sizeof(d));
    }
    // No interrupts wanted (see the header): NO_INTERRUPT, and used_event
    // half the index space ahead.
    virtio::avail_head ah{virtio::avail_f_no_interrupt, 0};
    std::memcpy(_avail, &ah, sizeof(ah));
    store_relaxed(_avail + virtio::used_event_offset(size), 0x8000);

    _kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    _call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (_kick_fd < 0 || _call_fd < 0) {
        const std::string err = std::strerror(errno);
        if (_kick_fd >= 0) close(_kick_fd);
        if (_call_fd >= 0) close(_call_fd);
        throw std::runtime_error("virtqueue " + std::to_string(index) + ": eventfd: " + err);
    }
}

frontend_queue::~frontend_queue() {
    if (_kick_fd >= 0) close(_kick_fd);
    if (_call_fd >= 0) close(_call_fd);
}

std::uint64_t frontend_queue::desc_user_addr() const noexcept { return reinterpret_cast<std::uint64_t>(_desc); }
std::uint64_t frontend_queue::avail_user_addr() const noexcept { return reinterpret_cast<std::uint64_t>(_avail); }
std::uint64_t frontend_queue::used_user_addr() const noexcept { return reinterpret_cast<std::uint64_t>(_used); }

void frontend_queue::prepare(std::uint32_t slot, driver_op op, std::uint64_t offset, std::uint32_t len) noexcept {
    slot_area& a = _areas[slot];
    a.type = op == driver_op::read ? blk::req_type::in : op == driver_op::write ? blk::req_type::out : blk::req_type::flush;
    a.reserved = 0;
    a.sector = op == driver_op::flush ? 0 : offset >> blk::sector_shift;
    a.status = 0xff;  // a device that answers without writing it is caught
    auto* d = reinterpret_cast<virtio::desc*>(_desc) + 3 * slot;
    if (op == driver_op::flush) {
        d[0].next = static_cast<std::uint16_t>(3 * slot + 2);
    } else {
        d[0].next = static_cast<std::uint16_t>(3 * slot + 1);
        d[1].len = len;
        d[1].flags = static_cast<std::uint16_t>(virtio::desc_flags::next |
                                                (op == driver_op::read ? virtio::desc_flags::write : 0));
    }
    auto* ring = reinterpret_cast<std::uint16_t*>(_avail + virtio::avail_ring_offset);
    ring[_avail_idx & _mask] = static_cast<std::uint16_t>(3 * slot);
    ++_avail_idx;
}

bool frontend_queue::submit() noexcept {
    const std::uint16_t old_idx = _avail_published;
    const std::uint16_t new_idx = _avail_idx;
    if (old_idx == new_idx) return false;
    store_release(_avail + offsetof(virtio::avail_head, idx), new_idx);
    _avail_published = new_idx;
    // The device may be deciding to sleep: our index must be visible before
    // we read what it asked for (the pairing fence is on its side).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool kick;
    if (_event_idx) {
        kick = virtio::need_event(load_relaxed(_used + virtio::avail_event_offset(_size)), new_idx, old_idx);
    } else {
        kick = !(load_relaxed(_used + offsetof(virtio::used_head, flags)) & virtio::used_f_no_notify);
    }
    if (kick) {
        const std::uint64_t one = 1;
        ssize_t n;
        do {
            n = write(_kick_fd, &one, sizeof(one));
        } while (n < 0 && errno == EINTR);
        ++_kicks;
    }
    return kick;
}

std::uint32_t frontend_queue::reap(std::span<blk_completion> out) noexcept {
    const std::uint16_t used_idx = load_acquire(_used + offsetof(virtio::used_head, idx));
    std::uint32_t n = 0;
    const auto* elems = reinterpret_cast<const virtio::used_elem*>(_used + virtio::used_ring_offset);
    while (_last_used != used_idx && n < out.size()) {
        virtio::used_elem e;
        std::memcpy(&e, &elems[_last_used & _mask], sizeof(e));
        ++_last_used;
        blk_completion& c = out[n++];
        if (e.id % 3 != 0 || e.id / 3 >= _slots) {
            c = {0, bad_used_element, e.len};
            continue;
        }
        c.slot = e.id / 3;
        c.written = e.len;
        c.status = std::atomic_ref<std::uint8_t>(_areas[c.slot].status).load(std::memory_order_relaxed);
    }
    if (n && _event_idx) store_relaxed(_avail + virtio::used_event_offset(_size), _last_used + 0x8000);
    return n;
}

}  // namespace ioe::vhost
