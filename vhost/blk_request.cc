// virtio-blk request parsing over a walked chain (see blk_request.hh).
#include "vhost/blk_request.hh"

#include <algorithm>
#include <cstring>

namespace ioe::vhost {

std::string_view to_string(blk_op op) noexcept {
    switch (op) {
    case blk_op::none: return "none";
    case blk_op::read: return "read";
    case blk_op::write: return "write";
    case blk_op::flush: return "flush";
    case blk_op::get_id: return "get-id";
    case blk_op::discard: return "discard";
    case blk_op::write_zeroes: return "write-zeroes";
    }
    return "unknown";
}

namespace {

bool has(const blk_params& p, unsigned feature) noexcept { return (p.features >> feature) & 1; }

// Copies n bytes from the start of iov into dst; false when iov holds fewer.
bool gather(std::span<const io_vec> iov, void* dst, std::size_t n) noexcept {
    auto* out = static_cast<std::byte*>(dst);
    for (const auto& v : iov) {
        if (n == 0) break;
        const std::size_t take = std::min<std::size_t>(n, v.len);
        std::memcpy(out, v.data, take);
        out += take;
        n -= take;
    }
    // The guest may change its buffer under us: nothing after this reads it
    // again, the copy is what counts.
    asm volatile("" ::: "memory");
    return n == 0;
}

// Drops the first n bytes of iov (which holds at least n), in place.
std::span<io_vec> drop_front(std::span<io_vec> iov, std::uint64_t n) noexcept {
    std::size_t i = 0;
    while (n != 0 && n >= iov[i].len) n -= iov[i++].len;
    if (n != 0) {
        iov[i].data += n;
        iov[i].len -= static_cast<std::uint32_t>(n);
    }
    return iov.subspan(i);
}

std::uint8_t refuse(blk_request& req, std::uint8_t status, std::string_view reason) noexcept {
    req.status = status;
    req.reason = reason;
    return status;
}

// sector + sectors within the capacity and block-aligned; lba / blocks out.
std::uint8_t check_range(const blk_params& p, std::uint64_t sector, std::uint64_t sectors, blk_request& req,
                         std::uint64_t& lba, std::uint64_t& blocks) noexcept {
    std::uint64_t end = 0;
    if (__builtin_add_overflow(sector, sectors, &end)) return refuse(req, blk::status::ioerr, "sector + length overflows");
    if (end > p.capacity_sectors) return refuse(req, blk::status::ioerr, "sector + length past the capacity");
    const std::uint64_t per_block = p.block_size >> blk::sector_shift;
    if (per_block > 1 && (sector % per_block != 0 || sectors % per_block != 0))
        return refuse(req, blk::status::ioerr, "not aligned to the device block size");
    lba = sector / per_block;
    blocks = sectors / per_block;
    return blk::status::ok;
}

std::uint8_t parse_rw(const blk_params& p, std::span<io_vec> data, std::uint64_t bytes, blk_request& req) noexcept {
    req.data = data;
    req.data_bytes = static_cast<std::uint32_t>(bytes);
    if (bytes % blk::sector_bytes != 0) return refuse(req, blk::status::ioerr, "data length not a multiple of 512");
    return check_range(p, req.sector, bytes >> blk::sector_shift, req, req.lba, req.blocks);
}

std::uint8_t parse_dwz(const blk_params& p, std::span<io_vec> payload, std::uint64_t bytes, blk_request& req) noexcept {
    const bool discard = req.op == blk_op::discard;
    const std::uint32_t max_seg = std::min(discard ? p.max_discard_seg : p.max_write_zeroes_seg, max_dwz_segments);
    const std::uint32_t max_sectors = discard ? p.max_discard_sectors : p.max_write_zeroes_sectors;
    if (bytes == 0 || bytes % sizeof(blk::dwz_segment) != 0)
        return refuse(req, blk::status::ioerr, "segment data length not a positive multiple of 16");
    if (bytes / sizeof(blk::dwz_segment) > max_seg) return refuse(req, blk::status::unsupp, "too many segments");
    const auto n = static_cast<std::uint32_t>(bytes / sizeof(blk::dwz_segment));
    std::array<blk::dwz_segment, max_dwz_segments> segs;
    gather(payload, segs.data(), n * sizeof(blk::dwz_segment));
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto& s = segs[i];
        if ((s.flags & ~blk::dwz_flag_unmap) != 0) return refuse(req, blk::status::unsupp, "unknown segment flags");
        if (discard && (s.flags & blk::dwz_flag_unmap)) return refuse(req, blk::status::unsupp, "unmap flag on a discard");
        if (s.num_sectors > max_sectors) return refuse(req, blk::status::ioerr, "segment longer than the device allows");
        auto& r = req.ranges[i];
        if (check_range(p, s.sector, s.num_sectors, req, r.lba, r.blocks) != blk::status::ok) return req.status;
        r.unmap = (s.flags & blk::dwz_flag_unmap) != 0;
    }
    req.range_count = n;
    return blk::status::ok;
}

}  // namespace

std::uint8_t parse_blk_request(desc_chain& chain, const blk_params& p, blk_request& req) noexcept {
    req = blk_request{};
    // The status byte: the last device-writable byte of the chain.
    auto writable = chain.writable_iov();
    if (writable.empty()) return refuse(req, blk::status::ioerr, "no device-writable byte for the status");
    io_vec& last = writable.back();
    req.status_byte = last.data + last.len - 1;
    if (--last.len == 0) writable = writable.first(writable.size() - 1);
    const std::uint64_t writable_data = chain.writable_bytes - 1u;

    auto readable = chain.readable_iov();
    blk::req_header h{};
    if (!gather(readable, &h, sizeof(h))) return refuse(req, blk::status::ioerr, "request header shorter than 16 bytes");
    req.type = h.type;
    req.sector = h.sector;
    readable = drop_front(readable, sizeof(h));
    const std::uint64_t readable_data = chain.readable_bytes - sizeof(h);

    switch (h.type) {
    case blk::req_type::in:
        req.op = blk_op::read;
        if (readable_data != 0) return refuse(req, blk::status::ioerr, "read carries device-readable data");
        return parse_rw(p, writable, writable_data, req);
    case blk::req_type::out:
        req.op = blk_op::write;
        if (p.read_only) return refuse(req, blk::status::ioerr, "write to a read-only device");
        if (writable_data != 0) return refuse(req, blk::status::ioerr, "write carries device-writable data");
        return parse_rw(p, readable, readable_data, req);
    case blk::req_type::flush:
        req.op = blk_op::flush;
        if (!has(p, blk::feature::flush)) return refuse(req, blk::status::unsupp, "flush not negotiated");
        return blk::status::ok;
    case blk::req_type::get_id:
        req.op = blk_op::get_id;
        req.data = writable;
        req.data_bytes = static_cast<std::uint32_t>(writable_data);
        return blk::status::ok;
    case blk::req_type::discard:
    case blk::req_type::write_zeroes: {
        const bool discard = h.type == blk::req_type::discard;
        req.op = discard ? blk_op::discard : blk_op::write_zeroes;
        if (!has(p, discard ? blk::feature::discard : blk::feature::write_zeroes))
            return refuse(req, blk::status::unsupp, discard ? "discard not negotiated" : "write zeroes not negotiated");
        if (p.read_only) return refuse(req, blk::status::ioerr, "discard or write zeroes on a read-only device");
        if (writable_data != 0) return refuse(req, blk::status::ioerr, "segments with device-writable data");
        return parse_dwz(p, readable, readable_data, req);
    }
    default:
        return refuse(req, blk::status::unsupp, "unsupported request type");
    }
}

}  // namespace ioe::vhost
