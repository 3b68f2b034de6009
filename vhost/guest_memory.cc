// Guest memory regions and address translation (see guest_memory.hh).
#include "vhost/guest_memory.hh"

#include <algorithm>

namespace ioe::vhost {

std::string_view to_string(memory_error e) noexcept {
    switch (e) {
    case memory_error::ok: return "ok";
    case memory_error::empty_region: return "region of size 0";
    case memory_error::region_wraps: return "region passes the end of the address space";
    case memory_error::no_host_address: return "region has no host mapping";
    case memory_error::overlaps_guest: return "region overlaps another in guest physical addresses";
    case memory_error::overlaps_user: return "region overlaps another in user addresses";
    case memory_error::table_full: return "too many memory regions";
    case memory_error::not_found: return "no such memory region";
    case memory_error::unmapped: return "address outside every memory region";
    case memory_error::crosses_region: return "range crosses the end of its memory region";
    case memory_error::too_many_pieces: return "buffer spans too many memory regions";
    }
    return "unknown memory error";
}

namespace {

// [a, a + as) and [b, b + bs) intersect (both non-empty, neither passing
// 2^64; either may end exactly there, so compare last addresses).
bool overlap(std::uint64_t a, std::uint64_t as, std::uint64_t b, std::uint64_t bs) noexcept {
    return a <= b + (bs - 1) && b <= a + (as - 1);
}

// The last address of [start, start + len), or false when it passes 2^64.
bool last_address(std::uint64_t start, std::uint64_t len, std::uint64_t& last) noexcept {
    return !__builtin_add_overflow(start, len - 1, &last);
}

}  // namespace

memory_error guest_memory::add(const guest_region& r) noexcept {
    if (r.size == 0) return memory_error::empty_region;
    std::uint64_t last = 0;
    if (!last_address(r.guest_phys_addr, r.size, last) || !last_address(r.user_addr, r.size, last))
        return memory_error::region_wraps;
    if (r.host == nullptr) return memory_error::no_host_address;
    for (std::size_t i = 0; i < _count; ++i) {
        const auto& o = _regions[i];
        if (overlap(r.guest_phys_addr, r.size, o.guest_phys_addr, o.size)) return memory_error::overlaps_guest;
        if (overlap(r.user_addr, r.size, o.user_addr, o.size)) return memory_error::overlaps_user;
    }
    if (_count == max_regions) return memory_error::table_full;
    std::size_t at = 0;
    while (at < _count && _regions[at].guest_phys_addr < r.guest_phys_addr) ++at;
    for (std::size_t i = _count; i > at; --i) _regions[i] = _regions[i - 1];
    _regions[at] = r;
    ++_count;
    return memory_error::ok;
}

memory_error guest_memory::remove(std::uint64_t guest_phys_addr, std::uint64_t user_addr, std::uint64_t size,
                                  guest_region* removed) noexcept {
    for (std::size_t i = 0; i < _count; ++i) {
        const auto& o = _regions[i];
        if (o.guest_phys_addr != guest_phys_addr || o.user_addr != user_addr || o.size != size) continue;
        if (removed) *removed = o;
        for (std::size_t j = i + 1; j < _count; ++j) _regions[j - 1] = _regions[j];
        --_count;
        return memory_error::ok;
    }
    return memory_error::not_found;
}

std::size_t guest_memory::find_guest(std::uint64_t gpa) const noexcept {
    for (std::size_t i = 0; i < _count; ++i) {
        const auto& r = _regions[i];
        if (gpa >= r.guest_phys_addr && gpa - r.guest_phys_addr < r.size) return i;
    }
    return _count;
}

memory_error guest_memory::translate(std::uint64_t gpa, std::uint32_t len, std::span<io_vec> out,
                                     std::size_t& pieces) const noexcept {
    pieces = 0;
    if (len == 0) return memory_error::ok;
    std::uint64_t last = 0;
    if (!last_address(gpa, len, last)) return memory_error::unmapped;
    std::size_t i = find_guest(gpa);
    std::uint64_t left = len;
    while (true) {
        if (i == _count) return memory_error::unmapped;
        const auto& r = _regions[i];
        const std::uint64_t offset = gpa - r.guest_phys_addr;
        const std::uint64_t here = std::min(left, r.size - offset);
        if (pieces == out.size()) return memory_error::too_many_pieces;
        out[pieces++] = io_vec{r.host + offset, static_cast<std::uint32_t>(here), -1};
        left -= here;
        if (left == 0) return memory_error::ok;
        // Continue only into the region that starts right where this one ends
        // (sorted by guest address and non-overlapping: the next one, if any).
        gpa += here;
        i = (i + 1 < _count && _regions[i + 1].guest_phys_addr == gpa) ? i + 1 : _count;
    }
}

std::byte* guest_memory::contiguous(std::uint64_t gpa, std::uint64_t len, memory_error* why) const noexcept {
    memory_error e = memory_error::unmapped;
    const std::size_t i = find_guest(gpa);
    if (i != _count && len != 0) {
        const auto& r = _regions[i];
        const std::uint64_t offset = gpa - r.guest_phys_addr;
        if (len <= r.size - offset) return r.host + offset;
        e = memory_error::crosses_region;
    }
    if (why) *why = e;
    return nullptr;
}

std::byte* guest_memory::user(std::uint64_t uva, std::uint64_t len, memory_error* why) const noexcept {
    memory_error e = memory_error::unmapped;
    for (std::size_t i = 0; i < _count && len != 0; ++i) {
        const auto& r = _regions[i];
        if (uva < r.user_addr || uva - r.user_addr >= r.size) continue;
        const std::uint64_t offset = uva - r.user_addr;
        if (len <= r.size - offset) return r.host + offset;
        e = memory_error::crosses_region;
        break;
    }
    if (why) *why = e;
    return nullptr;
}

}  // namespace ioe::vhost
