// PRP construction (see prp.hh).
#include "nvme/pcie/prp.hh"

#include <algorithm>

namespace ioe::nvme {

prp_result build_prps(const controller_bus& bus, io_vecs iov, std::uint64_t offset, std::uint32_t max_bytes,
                      std::uint32_t block_bytes, std::uint64_t* list, std::uint64_t list_bus) noexcept {
    prp_result r;
    constexpr std::uint64_t page_mask = prp_page_bytes - 1;
    std::size_t i = 0;
    while (i < iov.size() && offset >= iov[i].len) offset -= iov[i++].len;

    std::uint32_t bytes = 0;   // described so far
    unsigned pages = 0;        // entries so far (entry 0 is PRP1)
    std::uint64_t second = 0;  // entry 1
    bool ends_on_page = true;  // the last piece ended on a page boundary
    bool stop = false;
    for (; i < iov.size() && bytes < max_bytes && !stop; ++i, offset = 0) {
        const std::byte* p = iov[i].data + offset;
        std::uint32_t len = static_cast<std::uint32_t>(std::min<std::uint64_t>(iov[i].len - offset, max_bytes - bytes));
        if (len == 0) continue;
        if (!bus.reachable(p, len)) {
            if (bytes == 0) r.error = prp_error::unreachable;
            break;
        }
        std::uint64_t a = bus.bus_address(p);
        if (a & 3) {
            if (bytes == 0) r.error = prp_error::misaligned;
            break;
        }
        // A later piece must start on a page, after a piece that ended on one.
        if (pages > 0 && (!ends_on_page || (a & page_mask) != 0)) break;
        while (len > 0) {
            const std::uint32_t in_page = static_cast<std::uint32_t>(prp_page_bytes - (a & page_mask));
            const std::uint32_t n = std::min(len, in_page);
            if (pages == 0) {
                r.prp1 = a;
            } else if (pages - 1 < prp_list_entries) {
                list[pages - 1] = a;
                if (pages == 1) second = a;
            } else {
                stop = true;  // the list page is full
                break;
            }
            ++pages;
            bytes += n;
            len -= n;
            p += n;
            // Pages of the pool are contiguous within a 2 MiB chunk only:
            // translate every page afresh.
            if (len > 0) a = bus.bus_address(p);
        }
        ends_on_page = ((bus.bus_address(p - 1) + 1) & page_mask) == 0;
    }
    bytes -= bytes % block_bytes;
    if (bytes == 0) {
        if (r.error == prp_error::none) r.error = prp_error::misaligned;
        return r;
    }
    // How many pages the (rounded) transfer spans decides what PRP2 is.
    const std::uint64_t first_in_page = prp_page_bytes - (r.prp1 & page_mask);
    const std::uint64_t spanned = bytes <= first_in_page ? 1 : 1 + (bytes - first_in_page + page_mask) / prp_page_bytes;
    if (spanned == 2) {
        r.prp2 = second;
    } else if (spanned > 2) {
        r.prp2 = list_bus;
    }
    r.bytes = bytes;
    return r;
}

}  // namespace ioe::nvme
