// A faulted child's dirty log: one bit per segment (nexus_options::
// segment_bytes) that a partial rebuild copies again. What goes in: every
// write that skipped the child while it was faulted (nexus_io.cc), the range
// of a write that failed on it (nexus::child_failed), and, at the moment it
// is faulted, every write then in flight on the shard (mark_in_flight): such
// a write may still land on the child afterwards (a remote target executes
// it late) or never, so its segments are copied again whatever its outcome
// (docs/nexus.md, "Fencing a faulted remote child").
#pragma once

#include <cstdint>
#include <vector>

namespace ioe {

// Segments [first, last], inclusive.
struct segment_range {
    std::uint64_t first, last;
};

// Sets the bits of segments [first, last] in `bits` (sized by the caller;
// segments past its end are ignored).
void mark_segments(std::vector<std::uint64_t>& bits, std::uint64_t first, std::uint64_t last) noexcept;

// Sets the bits of every range in `in_flight` (control path: runs when a
// child is faulted, on each shard, over that shard's in-flight writes).
void mark_in_flight(const std::vector<segment_range>& in_flight, std::vector<std::uint64_t>& bits) noexcept;

}  // namespace ioe
