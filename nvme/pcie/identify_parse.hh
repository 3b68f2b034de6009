// What the PCIe driver takes from the controller's Identify data (bytes the
// device writes into our memory, so parsed defensively and fuzzed:
// tests/fuzz/pcie_identify_fuzz.cc): MDTS, ONCS, VWC, model and serial from
// Identify Controller, and whether it takes SGLs (SGLS); the LBA format in use and the size from Identify
// Namespace; the namespace's UUID from its descriptor list (else its NGUID).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "storage/uuid.hh"

namespace ioe::nvme {

// What the controller's SGLS field (Identify Controller bytes 536-539) says
// about data SGLs on the NVM command set, bits 1:0.
enum class sgl_support : std::uint8_t {
    none = 0,   // 00b (and the reserved 11b): PRPs only
    byte = 1,   // 01b: supported, no alignment or granularity requirement
    dword = 2,  // 10b: supported, Data Block addresses and lengths dword aligned
};
constexpr sgl_support sgl_support_from_sgls(std::uint32_t sgls) {
    const unsigned v = sgls & 3;
    return v == 1 ? sgl_support::byte : v == 2 ? sgl_support::dword : sgl_support::none;
}
const char* to_string(sgl_support s) noexcept;

struct namespace_info {
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    uuid id;
    std::uint32_t max_transfer = 0;  // bytes per command
    bool write_zeroes = false, deallocate = false, write_cache = false;
    std::uint32_t sgls = 0;  // Identify Controller SGLS, as read
    sgl_support sgl = sgl_support::none;
    std::string model_number, serial_number;
};

inline constexpr std::uint32_t max_transfer_cap = 1u << 20;  // one PRP list page per command

// Each reads one 4096-byte Identify page into `out`. The namespace parser
// returns "" or why the namespace cannot be used (a sentence to append to
// the device's name); max_transfer is final only after both.
void parse_identify_controller(const std::byte* page, namespace_info& out);
std::string parse_identify_namespace(const std::byte* page, namespace_info& out);
// Takes the UUID descriptor if the list has one; returns whether it did.
bool parse_namespace_descriptors(const std::byte* page, namespace_info& out);

}  // namespace ioe::nvme
