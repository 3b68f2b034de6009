// CRC32C (Castagnoli), the checksum of pool metadata and of NVMe/TCP digests,
// computed by ISA-L. crc32c("123456789") == 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ioe {

std::uint32_t crc32c(const void* data, std::size_t len) noexcept;
// Continues a CRC over more data: crc32c_extend(crc32c(a), b) == crc32c(a+b).
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t len) noexcept;

}  // namespace ioe
