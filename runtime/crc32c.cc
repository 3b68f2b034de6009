// CRC32C through ISA-L (see crc32c.hh).
#include "runtime/crc32c.hh"

#include <isa-l/crc.h>

namespace ioe {

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t len) noexcept {
    // ISA-L's crc32_iscsi takes and returns the CRC register without the
    // final inversion of the standard algorithm.
    std::uint32_t reg = ~crc;
    const auto* p = static_cast<const unsigned char*>(data);
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : static_cast<int>(len);
        reg = crc32_iscsi(const_cast<unsigned char*>(p), chunk, reg);
        p += chunk;
        len -= static_cast<std::size_t>(chunk);
    }
    return ~reg;
}

std::uint32_t crc32c(const void* data, std::size_t len) noexcept { return crc32c_extend(0, data, len); }

}  // namespace ioe
