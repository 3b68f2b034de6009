// The driver side of vhost-user (vhost-perf and tests): the "guest memory" a
// front-end shares with a back-end. One region, an anonymous file (memfd,
// from huge pages when the machine has them reserved, else ordinary pages)
// mapped shared into this process and handed to the back-end with
// SET_MEM_TABLE; rings, request headers and data buffers are carved out of
// it at set-up by a bump allocator (nothing is freed before the whole region
// goes). Guest physical addresses start at `guest_base`; the user address a
// back-end translates ring addresses through is our own mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vhost/spec/vhost_user.hh"

namespace ioe::vhost {

struct shared_block {
    std::byte* host = nullptr;  // our pointer
    std::uint64_t gpa = 0;      // the guest physical address the back-end sees
};

class shared_memory {
public:
    static constexpr std::uint64_t guest_base = 0x100000000ull;  // 4 GiB: no special meaning, not 0

    // Creates and maps `bytes` (rounded up to the page size). hugepages:
    // try 2 MiB huge pages first (MFD_HUGETLB) and fall back to normal pages.
    // Throws std::runtime_error naming what failed.
    explicit shared_memory(std::uint64_t bytes, bool hugepages = true);
    ~shared_memory();
    shared_memory(const shared_memory&) = delete;
    shared_memory& operator=(const shared_memory&) = delete;

    // `bytes` aligned to `align` (a power of two), zeroed. Throws when the
    // region is full (a set-up error, never on the I/O path).
    shared_block allocate(std::uint64_t bytes, std::uint64_t align);

    int fd() const noexcept { return _fd; }
    std::uint64_t size() const noexcept { return _size; }
    std::uint64_t used() const noexcept { return _used; }
    bool huge_pages() const noexcept { return _huge; }
    std::byte* base() const noexcept { return _base; }
    // What SET_MEM_TABLE describes.
    user::memory_region region() const noexcept;

private:
    int _fd = -1;
    std::byte* _base = nullptr;
    std::uint64_t _size = 0;
    std::uint64_t _used = 0;
    bool _huge = false;
};

}  // namespace ioe::vhost
