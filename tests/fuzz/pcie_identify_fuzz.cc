// libFuzzer target: the PCIe driver's parsing of the Identify pages a
// controller writes into our memory (nvme/pcie/identify_parse.cc). Input:
// up to three 4096-byte pages (controller, namespace, descriptor list), zero
// padded. Checks what the driver relies on afterwards: a usable namespace
// has a block size of 512..4096 (a power of two), blocks, and a per-command
// transfer limit between one block and 1 MiB (or one block when larger);
// names are printable; SGL support is one of none / byte / dword, none
// exactly when SGLS bits 1:0 are 00b or the reserved 11b.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nvme/pcie/identify_parse.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    alignas(8) std::byte pages[3][4096] = {};
    for (int i = 0; i < 3; ++i) {
        const std::size_t off = std::size_t(i) * 4096;
        if (size > off) std::memcpy(pages[i], data + off, std::min<std::size_t>(4096, size - off));
    }
    ioe::nvme::namespace_info info;
    ioe::nvme::parse_identify_controller(pages[0], info);
    for (char c : info.model_number + info.serial_number) {
        if (c < 0x20 || c > 0x7e) std::abort();
    }
    if (info.max_transfer == 0 || info.max_transfer > ioe::nvme::max_transfer_cap) std::abort();
    using ioe::nvme::sgl_support;
    const unsigned sgl_bits = info.sgls & 3;
    if (info.sgl != sgl_support::none && info.sgl != sgl_support::byte && info.sgl != sgl_support::dword) std::abort();
    if ((info.sgl == sgl_support::none) != (sgl_bits == 0 || sgl_bits == 3)) std::abort();
    const std::string why = ioe::nvme::parse_identify_namespace(pages[1], info);
    if (why.empty()) {
        const auto bs = info.block_size;
        if (bs < 512 || bs > 4096 || (bs & (bs - 1)) != 0) std::abort();
        if (info.block_count == 0) std::abort();
        if (info.max_transfer < bs || info.max_transfer % 512 != 0) std::abort();
    }
    ioe::nvme::parse_namespace_descriptors(pages[2], info);
    return 0;
}
