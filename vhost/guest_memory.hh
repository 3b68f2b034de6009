// The table of guest memory regions a vhost-user front-end shared with us
// (SET_MEM_TABLE, ADD_MEM_REG), and the translation of guest addresses to
// our pointers. It maps nothing itself: whoever mmaps a region's fd hands
// the table the resulting pointer (`host`, already advanced by mmap_offset)
// and unmaps it after removing the region.
//
// Three translations, none of which allocates:
//  * translate(gpa, len, out): a buffer named by a descriptor. The range
//    must be covered byte for byte by regions. When it runs past the end of
//    one region into another that starts exactly there (guest-physically
//    adjacent, e.g. two memory backends), it is split into one piece per
//    region: the pieces are contiguous for the guest, not for us. A range
//    that meets a hole, or wraps around 2^64, is refused.
//  * contiguous(gpa, len): structures we access through one pointer (an
//    indirect descriptor table). The whole range must lie in one region.
//  * user(uva, len): the rings of SET_VRING_ADDR, which are named by the
//    front-end's own virtual addresses; the whole range in one region.
//
// Regions may not overlap, neither in guest physical nor in user address
// space, and none may wrap around 2^64. The table is kept sorted by guest
// address. At most max_regions regions (what GET_MAX_MEM_SLOTS will offer).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "storage/io_vec.hh"

namespace ioe::vhost {

struct guest_region {
    std::uint64_t guest_phys_addr = 0;
    std::uint64_t size = 0;
    std::uint64_t user_addr = 0;    // the front-end's virtual address of guest_phys_addr
    std::uint64_t mmap_offset = 0;  // as sent; `host` already includes it
    std::byte* host = nullptr;      // our address of guest_phys_addr
};

enum class memory_error : std::uint8_t {
    ok,
    empty_region,     // add: size 0
    region_wraps,     // add: an address range passes 2^64
    no_host_address,  // add: host pointer missing
    overlaps_guest,   // add: guest physical range overlaps an existing region
    overlaps_user,    // add: user address range overlaps an existing region
    table_full,       // add: max_regions already
    not_found,        // remove: no region with that guest address, user address and size
    unmapped,         // translate: some byte lies in no region (or the range wraps)
    crosses_region,   // contiguous / user: the range runs past its region's end
    too_many_pieces,  // translate: more pieces than the output array holds
};

std::string_view to_string(memory_error e) noexcept;

class guest_memory {
public:
    static constexpr std::size_t max_regions = 32;

    memory_error add(const guest_region& r) noexcept;
    // Removes the region with this guest address, user address and size
    // (REM_MEM_REG names a region so; its mmap offset is ignored). On
    // success *removed (if given) receives it, for the caller to unmap.
    memory_error remove(std::uint64_t guest_phys_addr, std::uint64_t user_addr, std::uint64_t size,
                        guest_region* removed = nullptr) noexcept;
    void clear() noexcept { _count = 0; }

    std::span<const guest_region> regions() const noexcept { return {_regions.data(), _count}; }
    bool empty() const noexcept { return _count == 0; }

    // [gpa, gpa + len) as up to out.size() host pieces, written to out[0..*pieces).
    // len 0 gives no pieces and is not checked.
    memory_error translate(std::uint64_t gpa, std::uint32_t len, std::span<io_vec> out,
                           std::size_t& pieces) const noexcept;
    // One pointer to [gpa, gpa + len), or nullptr (unmapped or crossing a
    // region's end; *why says which when given). len must be > 0.
    std::byte* contiguous(std::uint64_t gpa, std::uint64_t len, memory_error* why = nullptr) const noexcept;
    // The same for the front-end's user address uva.
    std::byte* user(std::uint64_t uva, std::uint64_t len, memory_error* why = nullptr) const noexcept;

private:
    // The index of the region holding guest address gpa, or _count.
    std::size_t find_guest(std::uint64_t gpa) const noexcept;

    std::array<guest_region, max_regions> _regions{};
    std::size_t _count = 0;
};

}  // namespace ioe::vhost
