// SGL construction (see sgl.hh).
#include "nvme/pcie/sgl.hh"

#include <algorithm>

namespace ioe::nvme {

namespace {

sgl_descriptor data_block(std::uint64_t address, std::uint32_t length) noexcept {
    sgl_descriptor d{};
    d.address = address;
    d.length = length;
    d.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::address);
    return d;
}

}  // namespace

sgl_result build_sgl(const controller_bus& bus, io_vecs iov, std::uint64_t offset, std::uint32_t max_bytes,
                     std::uint32_t block_bytes, sgl_support support, sgl_descriptor* list,
                     std::uint64_t list_bus) noexcept {
    sgl_result r;
    const bool dword = support == sgl_support::dword;
    std::size_t i = 0;
    while (i < iov.size() && offset >= iov[i].len) offset -= iov[i++].len;

    std::uint32_t bytes = 0;  // described so far
    unsigned n = 0;           // descriptors so far
    bool stop = false;
    for (; i < iov.size() && bytes < max_bytes && !stop; ++i, offset = 0) {
        const std::byte* p = iov[i].data + offset;
        std::uint32_t len = static_cast<std::uint32_t>(std::min<std::uint64_t>(iov[i].len - offset, max_bytes - bytes));
        if (len == 0) continue;
        if (!bus.reachable(p, len)) {
            if (bytes == 0) r.error = prp_error::unreachable;
            break;
        }
        while (len > 0) {
            // One run: what stays within this 2 MiB chunk of the pool (the
            // bus addresses of two chunks need not be adjacent).
            const std::uintptr_t in_pool = reinterpret_cast<std::uintptr_t>(p) - bus.dma_base();
            const auto chunk_left =
                static_cast<std::uint32_t>(controller_bus::chunk_bytes - (in_pool & (controller_bus::chunk_bytes - 1)));
            std::uint32_t run = std::min(len, chunk_left);
            const std::uint64_t a = bus.bus_address(p);
            if (dword) {
                if (a & 3) {  // cannot start a descriptor here
                    stop = true;
                    break;
                }
                if (run & 3) {  // the dword-granular part of it, then stop
                    run &= ~3u;
                    stop = true;
                    if (run == 0) break;
                }
            }
            if (n > 0 && list[n - 1].address + list[n - 1].length == a) {
                list[n - 1].length += run;  // contiguous with the last one
            } else if (n < sgl_list_entries) {
                list[n++] = data_block(a, run);
            } else {
                stop = true;  // the list page is full
                break;
            }
            bytes += run;
            len -= run;
            p += run;
            if (stop) break;
        }
    }
    const std::uint32_t total = bytes - bytes % block_bytes;
    if (total == 0) {
        if (r.error == prp_error::none) r.error = prp_error::misaligned;
        return r;
    }
    // Trim the descriptors to whole blocks: drop what lies beyond `total`.
    std::uint32_t covered = 0;
    unsigned used = 0;
    while (covered < total) {
        const std::uint32_t want = total - covered;
        if (list[used].length > want) list[used].length = want;
        covered += list[used].length;
        ++used;
    }
    r.bytes = total;
    r.descriptors = used;
    if (used == 1) {
        r.dptr = list[0];
    } else {
        r.dptr.address = list_bus;
        r.dptr.length = static_cast<std::uint32_t>(used * sizeof(sgl_descriptor));
        r.dptr.identifier = sgl_identifier(sgl_type::last_segment, sgl_subtype::address);
    }
    return r;
}

}  // namespace ioe::nvme
