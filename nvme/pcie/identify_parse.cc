// Parsing the Identify data the PCIe driver uses (see identify_parse.hh).
#include "nvme/pcie/identify_parse.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "nvme/spec/nvme_identify.hh"

namespace ioe::nvme {
namespace {

std::string trim(const char* s, std::size_t n) {
    std::string out(s, strnlen(s, n));
    while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    }
    return out;
}

}  // namespace

const char* to_string(sgl_support s) noexcept {
    switch (s) {
        case sgl_support::none: return "none";
        case sgl_support::byte: return "byte aligned";
        case sgl_support::dword: return "dword aligned";
    }
    return "?";
}

void parse_identify_controller(const std::byte* page, namespace_info& out) {
    identify_controller idc;
    std::memcpy(&idc, page, sizeof idc);
    out.model_number = trim(idc.mn, sizeof idc.mn);
    out.serial_number = trim(idc.sn, sizeof idc.sn);
    constexpr std::uint64_t mps = 4096;  // CC.MPS = 0
    out.max_transfer = idc.mdts ? static_cast<std::uint32_t>(
                                      std::min<std::uint64_t>(mps << std::min<unsigned>(idc.mdts, 20), max_transfer_cap))
                                : max_transfer_cap;
    out.write_zeroes = (idc.oncs & oncs::write_zeroes) != 0;
    out.deallocate = (idc.oncs & oncs::dataset_management) != 0;
    out.write_cache = (idc.vwc & 1) != 0;
    out.sgls = idc.sgls;
    out.sgl = sgl_support_from_sgls(idc.sgls);
}

std::string parse_identify_namespace(const std::byte* page, namespace_info& out) {
    identify_namespace idn;
    std::memcpy(&idn, page, sizeof idn);
    if (idn.nsze == 0) return "namespace 1 is not active (create and attach one with nvme-cli first)";
    const auto& f = idn.lbaf[flbas_index(idn.flbas) & 63];
    if (f.lbads < 9 || f.lbads > 12) {
        return fmt::format("namespace 1 has blocks of 2^{} bytes; 512 to 4096 are supported", f.lbads);
    }
    if (f.ms != 0 && !(idn.flbas & 0x10)) {
        return fmt::format("namespace 1 uses {} bytes of separate metadata per block, which this driver does not "
                           "send (format it without metadata: nvme format --lbaf)",
                           f.ms);
    }
    if (idn.nsze > (std::uint64_t(1) << 52)) {
        return fmt::format("namespace 1 claims {} blocks, which no device has", idn.nsze);
    }
    out.block_size = 1u << f.lbads;
    out.block_count = idn.nsze;
    out.max_transfer = std::max(out.max_transfer, out.block_size);
    static constexpr std::uint8_t zeros[16] = {};
    if (std::memcmp(idn.nguid, zeros, 16) != 0) std::memcpy(out.id.bytes.data(), idn.nguid, 16);
    return {};
}

bool parse_namespace_descriptors(const std::byte* page, namespace_info& out) {
    for (std::size_t off = 0; off + sizeof(ns_id_descriptor_header) <= identify_bytes;) {
        ns_id_descriptor_header h;
        std::memcpy(&h, page + off, sizeof h);
        if (h.nidt == 0 || off + sizeof h + h.nidl > identify_bytes) return false;
        if (h.nidt == nidt::uuid && h.nidl == 16) {
            std::memcpy(out.id.bytes.data(), page + off + sizeof h, 16);
            return true;
        }
        off += sizeof h + h.nidl;
    }
    return false;
}

}  // namespace ioe::nvme
