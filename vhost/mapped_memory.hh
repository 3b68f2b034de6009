// Guest memory as this process sees it: every region the front-end shared
// (SET_MEM_TABLE, ADD_MEM_REG) mapped from its fd at its mmap offset, the
// guest_memory translation table over the mappings, and the unmapping of a
// region when it goes (REM_MEM_REG, a new table, the connection's end).
//
// Owned by the connection on the export's shard. Queue shards read the
// translation table through a const pointer while their rings run; the
// connection changes the table only while every ring is stopped (it stops
// them first), which is what makes the lock-free read safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "vhost/guest_memory.hh"
#include "vhost/spec/vhost_user.hh"

namespace ioe::vhost {

class mapped_memory {
public:
    mapped_memory() = default;
    ~mapped_memory() { clear(); }
    mapped_memory(const mapped_memory&) = delete;
    mapped_memory& operator=(const mapped_memory&) = delete;

    // Maps the region from fd (not kept: the mapping holds the memory) and
    // adds it; "" or the reason it was refused (the mapping is undone).
    std::string add(const user::memory_region& r, int fd);
    // Unmaps the region named by guest address, user address and size.
    std::string remove(const user::memory_region& r);
    // Unmaps everything.
    void clear() noexcept;

    const guest_memory& table() const noexcept { return _table; }
    std::size_t regions() const noexcept { return _table.regions().size(); }
    std::uint64_t mapped_bytes() const noexcept;

private:
    struct mapping {
        std::uint64_t guest_phys_addr = 0;
        std::byte* base = nullptr;
        std::size_t len = 0;
    };
    guest_memory _table;
    std::array<mapping, guest_memory::max_regions> _maps{};
};

}  // namespace ioe::vhost
