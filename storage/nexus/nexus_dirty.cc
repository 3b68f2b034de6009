// Marking segments in a faulted child's dirty log (see nexus_dirty.hh).
#include "storage/nexus/nexus_dirty.hh"

namespace ioe {

void mark_segments(std::vector<std::uint64_t>& bits, std::uint64_t first, std::uint64_t last) noexcept {
    const std::uint64_t end = bits.size() * 64;
    for (std::uint64_t seg = first; seg <= last && seg < end; ++seg) bits[seg / 64] |= std::uint64_t{1} << (seg % 64);
}

void mark_in_flight(const std::vector<segment_range>& in_flight, std::vector<std::uint64_t>& bits) noexcept {
    for (const segment_range& r : in_flight) mark_segments(bits, r.first, r.last);
}

}  // namespace ioe
