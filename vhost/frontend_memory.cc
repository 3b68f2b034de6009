// shared_memory: a memfd (huge pages first) mapped shared, and a bump
// allocator over it. See frontend_memory.hh.
#include "vhost/frontend_memory.hh"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ioe::vhost {

namespace {

constexpr std::uint64_t huge_page = 2ull << 20;
constexpr std::uint64_t small_page = 4096;

std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) & ~(a - 1); }

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

shared_memory::shared_memory(std::uint64_t bytes, bool hugepages) {
    if (bytes == 0) throw std::runtime_error("shared guest memory: size 0");
    if (hugepages) {
        const std::uint64_t size = round_up(bytes, huge_page);
        int fd = memfd_create("vhost-guest-memory", MFD_CLOEXEC | MFD_HUGETLB);
        if (fd >= 0 && ftruncate(fd, static_cast<off_t>(size)) == 0) {
            void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
            // MAP_POPULATE does not fail when the huge page pool runs dry:
            // check that the pages are there by touching them (SIGBUS
            // otherwise); mlock reports the shortage as an error instead.
            if (p != MAP_FAILED && mlock(p, size) == 0) {
                _fd = fd;
                _base = static_cast<std::byte*>(p);
                _size = size;
                _huge = true;
                return;
            }
            if (p != MAP_FAILED) munmap(p, size);
        }
        if (fd >= 0) close(fd);
    }
    const std::uint64_t size = round_up(bytes, small_page);
    _fd = memfd_create("vhost-guest-memory", MFD_CLOEXEC);
    if (_fd < 0) throw std::runtime_error(errno_text("shared guest memory: memfd_create"));
    if (ftruncate(_fd, static_cast<off_t>(size)) != 0) {
        const auto msg = errno_text("shared guest memory: ftruncate");
        close(_fd);
        throw std::runtime_error(msg);
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, _fd, 0);
    if (p == MAP_FAILED) {
        const auto msg = errno_text("shared guest memory: mmap");
        close(_fd);
        throw std::runtime_error(msg);
    }
    _base = static_cast<std::byte*>(p);
    _size = size;
}

shared_memory::~shared_memory() {
    if (_base) munmap(_base, _size);
    if (_fd >= 0) close(_fd);
}

shared_block shared_memory::allocate(std::uint64_t bytes, std::uint64_t align) {
    const std::uint64_t start = round_up(_used, align);
    if (start > _size || bytes > _size - start) {
        throw std::runtime_error("shared guest memory: " + std::to_string(_size) + " bytes are not enough (" +
                                 std::to_string(start + bytes) + " needed)");
    }
    _used = start + bytes;
    std::memset(_base + start, 0, bytes);
    return {_base + start, guest_base + start};
}

user::memory_region shared_memory::region() const noexcept {
    return {guest_base, _size, reinterpret_cast<std::uint64_t>(_base), 0};
}

}  // namespace ioe::vhost
