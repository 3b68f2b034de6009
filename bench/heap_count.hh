// Heap allocations of a benchmark binary: heap_count.cc replaces every
// global operator new / delete of the executable it is linked into and
// counts the news, so that a benchmark can show that a path allocates
// nothing (read the count before and after a measured window).
#pragma once

#include <cstdint>

namespace ioe::bench {

// Global operator new calls (every form) since the process started.
std::uint64_t heap_allocations() noexcept;

}  // namespace ioe::bench
