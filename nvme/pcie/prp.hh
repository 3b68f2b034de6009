// PRP construction: describes the data of one NVMe command (a byte range of
// the caller's io_vecs) as PRP1 / PRP2 / a PRP list, with 4 KiB memory pages
// (CC.MPS = 0).
//
// The rules of the PCIe transport: PRP1 is the address of the first byte
// (dword aligned, any offset in its page); every later entry is the address
// of a whole page, so every piece of memory after the first must start on a
// page boundary and every piece before the last must end on one. A transfer
// within one page leaves PRP2 0; within two pages PRP2 is the second page;
// beyond that PRP2 points at a list of the remaining page addresses (one
// list page per command slot here: at most list_entries entries).
//
// Where the io_vecs cannot be described in one command (a piece that starts
// or ends inside a page, in the middle of the transfer), build_prps() stops
// at the last block boundary it can describe and the caller sends the rest as
// another command, exactly as for an MDTS split. A transfer whose first block
// cannot be described, memory outside the DMA pool, or an address that is not
// dword aligned is refused.
#pragma once

#include <cstdint>

#include "nvme/pcie/controller_bus.hh"
#include "storage/block_device.hh"

namespace ioe::nvme {

inline constexpr std::uint32_t prp_page_bytes = 4096;
inline constexpr unsigned prp_list_entries = prp_page_bytes / 8;

enum class prp_error : std::uint8_t {
    none,
    unreachable,   // a buffer outside the DMA pool (no bus address)
    misaligned,    // not dword aligned, or not even one block describable
};

struct prp_result {
    std::uint64_t prp1 = 0;
    std::uint64_t prp2 = 0;
    std::uint32_t bytes = 0;  // how much of the request this command covers (whole blocks)
    prp_error error = prp_error::none;
};

// Describes up to `max_bytes` of iov starting `offset` bytes in, in whole
// blocks of `block_bytes`. Page addresses beyond the second go to `list`
// (prp_list_entries entries), whose bus address is `list_bus`.
prp_result build_prps(const controller_bus& bus, io_vecs iov, std::uint64_t offset, std::uint32_t max_bytes,
                      std::uint32_t block_bytes, std::uint64_t* list, std::uint64_t list_bus) noexcept;

}  // namespace ioe::nvme
