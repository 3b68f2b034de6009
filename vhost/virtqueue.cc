// The split virtqueue walker (see virtqueue.hh for the rules it enforces).
#include "vhost/virtqueue.hh"

#include <atomic>
#include <cstring>
#include <limits>

#include "vhost/spec/virtio_ring.hh"

namespace ioe::vhost {

std::string_view to_string(ring_error e) noexcept {
    switch (e) {
    case ring_error::ok: return "ok";
    case ring_error::empty: return "no available descriptor";
    case ring_error::bad_size: return "ring size is not a power of two in 1..32768";
    case ring_error::ring_unmapped: return "ring outside guest memory";
    case ring_error::ring_misaligned: return "ring not aligned";
    case ring_error::avail_index_jump: return "available index moved more than the ring size";
    case ring_error::head_out_of_range: return "available head outside the descriptor table";
    case ring_error::next_out_of_range: return "descriptor next outside its table";
    case ring_error::chain_too_long: return "descriptor chain longer than the ring (or a loop)";
    case ring_error::indirect_not_negotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case ring_error::indirect_with_next: return "indirect descriptor with NEXT";
    case ring_error::nested_indirect: return "indirect descriptor inside an indirect table";
    case ring_error::indirect_bad_length: return "indirect table length invalid";
    case ring_error::indirect_unmapped: return "indirect table outside guest memory";
    case ring_error::readable_after_writable: return "device-readable descriptor after a device-writable one";
    case ring_error::buffer_unmapped: return "buffer outside guest memory";
    case ring_error::too_many_segments: return "chain has more segments than supported";
    case ring_error::chain_too_large: return "chain carries more than 4 GiB";
    }
    return "unknown ring error";
}

namespace {

using virtio::desc;

// Loads and stores of ring fields the guest reads or writes concurrently.
std::uint16_t load16(const std::byte* p, int order = __ATOMIC_RELAXED) noexcept {
    return __atomic_load_n(reinterpret_cast<const std::uint16_t*>(p), order);
}
void store16(std::byte* p, std::uint16_t v, int order = __ATOMIC_RELAXED) noexcept {
    __atomic_store_n(reinterpret_cast<std::uint16_t*>(p), v, order);
}
void store32(std::byte* p, std::uint32_t v) noexcept {
    __atomic_store_n(reinterpret_cast<std::uint32_t*>(p), v, __ATOMIC_RELAXED);
}

// Descriptor i of a table, copied once: the barrier stops the compiler from
// reading the guest's copy again in place of ours (no alignment needed).
desc load_desc(const std::byte* table, std::uint32_t i) noexcept {
    desc d;
    std::memcpy(&d, table + std::size_t{i} * sizeof(desc), sizeof(desc));
    asm volatile("" ::: "memory");
    return d;
}

bool aligned(const void* p, std::size_t a) noexcept { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

}  // namespace

ring_error split_queue::setup(const guest_memory& mem, const queue_config& cfg, const ring_addresses& addr,
                              std::uint16_t next_avail) noexcept {
    _mem = nullptr;
    if (!virtio::valid_queue_size(cfg.size)) return ring_error::bad_size;
    auto* d = mem.user(addr.desc, virtio::desc_table_bytes(cfg.size));
    auto* a = mem.user(addr.avail, virtio::avail_ring_bytes(cfg.size, cfg.event_idx));
    auto* u = mem.user(addr.used, virtio::used_ring_bytes(cfg.size, cfg.event_idx));
    if (!d || !a || !u) return ring_error::ring_unmapped;
    if (!aligned(d, virtio::desc_align) || !aligned(a, virtio::avail_align) || !aligned(u, virtio::used_align))
        return ring_error::ring_misaligned;
    _cfg = cfg;
    _desc = d;
    _avail = a;
    _used = u;
    _next_avail = next_avail;
    _avail_cache = next_avail;
    _used_idx = load16(_used + offsetof(virtio::used_head, idx), __ATOMIC_ACQUIRE);
    _used_published = _used_idx;
    _mem = &mem;
    return ring_error::ok;
}

std::uint16_t split_queue::load_avail_idx() const noexcept {
    // Acquire: the ring entries the driver wrote before idx are seen after it.
    return load16(_avail + offsetof(virtio::avail_head, idx), __ATOMIC_ACQUIRE);
}

ring_error split_queue::pop(std::uint16_t& head) noexcept {
    if (_next_avail == _avail_cache) {
        const std::uint16_t idx = load_avail_idx();
        if (static_cast<std::uint16_t>(idx - _next_avail) > _cfg.size) return ring_error::avail_index_jump;
        _avail_cache = idx;
        if (_next_avail == idx) return ring_error::empty;
    }
    const std::uint32_t slot = _next_avail & (_cfg.size - 1);
    const std::uint16_t h = load16(_avail + virtio::avail_ring_offset + 2 * std::size_t{slot});
    if (h >= _cfg.size) return ring_error::head_out_of_range;
    head = h;
    ++_next_avail;
    return ring_error::ok;
}

ring_error split_queue::walk(std::uint16_t head, std::span<io_vec> iov, desc_chain& c) const noexcept {
    c = desc_chain{};
    c.head = head;
    c.iov = iov;
    if (head >= _cfg.size) return ring_error::head_out_of_range;
    const std::byte* table = _desc;
    std::uint32_t table_size = _cfg.size;
    std::uint32_t index = head;
    std::uint32_t visited = 0;  // descriptors visited in the current table (loop bound)
    bool indirect = false;
    bool writable = false;
    std::uint64_t readable_bytes = 0;
    std::uint64_t writable_bytes = 0;
    while (true) {
        if (++visited > table_size) return ring_error::chain_too_long;
        const desc d = load_desc(table, index);
        if (d.flags & virtio::desc_flags::indirect) {
            if (indirect) return ring_error::nested_indirect;
            if (!_cfg.indirect) return ring_error::indirect_not_negotiated;
            if (d.flags & virtio::desc_flags::next) return ring_error::indirect_with_next;
            if (d.len == 0 || d.len % sizeof(desc) != 0 || d.len / sizeof(desc) > _cfg.size)
                return ring_error::indirect_bad_length;
            table = _mem->contiguous(d.addr, d.len);
            if (!table) return ring_error::indirect_unmapped;
            table_size = d.len / sizeof(desc);
            index = 0;
            visited = 0;
            indirect = true;
            continue;
        }
        if (++c.descriptors > _cfg.size) return ring_error::chain_too_long;
        if (d.flags & virtio::desc_flags::write) {
            writable = true;
        } else if (writable) {
            return ring_error::readable_after_writable;
        }
        if (d.len != 0) {
            std::size_t pieces = 0;
            const auto e = _mem->translate(d.addr, d.len, iov.subspan(c.count), pieces);
            if (e == memory_error::too_many_pieces) return ring_error::too_many_segments;
            if (e != memory_error::ok) return ring_error::buffer_unmapped;
            c.count += static_cast<std::uint32_t>(pieces);
            (writable ? writable_bytes : readable_bytes) += d.len;
            if (readable_bytes > std::numeric_limits<std::uint32_t>::max() ||
                writable_bytes > std::numeric_limits<std::uint32_t>::max())
                return ring_error::chain_too_large;
            if (!writable) c.readable = c.count;
        }
        if (!(d.flags & virtio::desc_flags::next)) break;
        index = d.next;
        if (index >= table_size) return ring_error::next_out_of_range;
    }
    c.readable_bytes = static_cast<std::uint32_t>(readable_bytes);
    c.writable_bytes = static_cast<std::uint32_t>(writable_bytes);
    return ring_error::ok;
}

void split_queue::put_used(std::uint16_t head, std::uint32_t len) noexcept {
    const std::uint32_t slot = _used_idx & (_cfg.size - 1);
    std::byte* e = _used + virtio::used_ring_offset + sizeof(virtio::used_elem) * std::size_t{slot};
    store32(e + offsetof(virtio::used_elem, id), head);
    store32(e + offsetof(virtio::used_elem, len), len);
    ++_used_idx;
}

bool split_queue::publish_used() noexcept {
    if (_used_idx == _used_published) return false;
    // Release: the elements (and the data written into the chains) before idx.
    store16(_used + offsetof(virtio::used_head, idx), _used_idx, __ATOMIC_RELEASE);
    const std::uint16_t old = _used_published;
    _used_published = _used_idx;
    // Full fence: the driver's used_event / flags are read after our idx is
    // visible, or an interrupt it asked for meanwhile could be missed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (_cfg.event_idx) {
        const std::uint16_t used_event = load16(_avail + virtio::used_event_offset(_cfg.size));
        return virtio::need_event(used_event, _used_idx, old);
    }
    return (load16(_avail + offsetof(virtio::avail_head, flags)) & virtio::avail_f_no_interrupt) == 0;
}

void split_queue::suppress_kicks() noexcept {
    if (_cfg.event_idx) {
        // An avail_event behind every index the driver will move from: no kick
        // until the index wraps 2^16 entries later.
        store16(_used + virtio::avail_event_offset(_cfg.size), static_cast<std::uint16_t>(_next_avail - 1));
    } else {
        store16(_used + offsetof(virtio::used_head, flags), virtio::used_f_no_notify);
    }
}

bool split_queue::arm_kicks() noexcept {
    if (_cfg.event_idx) {
        store16(_used + virtio::avail_event_offset(_cfg.size), _next_avail);
    } else {
        store16(_used + offsetof(virtio::used_head, flags), 0);
    }
    // Full fence: our request for a kick is visible before we look again, so
    // a head added meanwhile is either seen now or kicked.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return load_avail_idx() != _next_avail;
}

}  // namespace ioe::vhost
