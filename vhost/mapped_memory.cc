// Mapping and unmapping the guest's memory regions (see mapped_memory.hh).
#include "vhost/mapped_memory.hh"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace ioe::vhost {

std::string mapped_memory::add(const user::memory_region& r, int fd) {
    const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t start = r.mmap_offset & ~(page - 1);
    std::uint64_t len = 0;
    if (r.size == 0 || __builtin_add_overflow(r.size, r.mmap_offset - start, &len) || len > (std::uint64_t{1} << 47))
        return fmt::format("region at guest 0x{:x}: bad size {} / offset {}", r.guest_phys_addr, r.size, r.mmap_offset);
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, static_cast<off_t>(start));
    if (p == MAP_FAILED)
        return fmt::format("region at guest 0x{:x} ({} bytes, fd offset {}): mmap failed: {}", r.guest_phys_addr,
                           r.size, r.mmap_offset, std::strerror(errno));
    guest_region g;
    g.guest_phys_addr = r.guest_phys_addr;
    g.size = r.size;
    g.user_addr = r.user_addr;
    g.mmap_offset = r.mmap_offset;
    g.host = static_cast<std::byte*>(p) + (r.mmap_offset - start);
    if (auto e = _table.add(g); e != memory_error::ok) {
        ::munmap(p, len);
        return fmt::format("region at guest 0x{:x} ({} bytes): {}", r.guest_phys_addr, r.size, to_string(e));
    }
    for (auto& m : _maps) {
        if (!m.base) {
            m = mapping{r.guest_phys_addr, static_cast<std::byte*>(p), len};
            return {};
        }
    }
    return {};  // unreachable: the table refuses more regions than _maps holds
}

std::string mapped_memory::remove(const user::memory_region& r) {
    guest_region removed;
    if (auto e = _table.remove(r.guest_phys_addr, r.user_addr, r.size, &removed); e != memory_error::ok)
        return fmt::format("region at guest 0x{:x} ({} bytes): {}", r.guest_phys_addr, r.size, to_string(e));
    for (auto& m : _maps) {
        if (m.base && m.guest_phys_addr == removed.guest_phys_addr) {
            ::munmap(m.base, m.len);
            m = mapping{};
        }
    }
    return {};
}

void mapped_memory::clear() noexcept {
    _table.clear();
    for (auto& m : _maps) {
        if (m.base) ::munmap(m.base, m.len);
        m = mapping{};
    }
}

std::uint64_t mapped_memory::mapped_bytes() const noexcept {
    std::uint64_t n = 0;
    for (const auto& r : _table.regions()) n += r.size;
    return n;
}

}  // namespace ioe::vhost
