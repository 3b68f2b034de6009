// A walked descriptor chain read as a virtio-blk request (virtio 1.1 5.2.6):
// the 16-byte header from the first device-readable bytes, the status byte
// as the last device-writable byte, and between them the data, the GET_ID
// buffer or the discard / write-zeroes segments. No layout is assumed: the
// header, the segments and the data may be cut anywhere across
// descriptors. The data pieces are the chain's own (zero copy): the parser
// trims the header and the status byte off them in place.
//
// The outcome is a status: OK means "do it" (op, lba / blocks, data,
// ranges are set), IOERR or UNSUPP mean "answer this at once, no I/O", with
// `reason` (a static string) for the one log line. The rules:
//  * no device-writable byte: no status can be written (status_byte null);
//    the server returns the chain with 0 bytes written and logs it;
//  * fewer than 16 device-readable bytes: IOERR;
//  * a type other than IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES (the
//    legacy BARRIER bit included), or FLUSH / DISCARD / WRITE_ZEROES whose
//    feature was not negotiated: UNSUPP;
//  * OUT, DISCARD, WRITE_ZEROES on a read-only device: IOERR;
//  * IN with device-readable bytes after the header, OUT / DISCARD /
//    WRITE_ZEROES with device-writable bytes besides the status: IOERR;
//  * IN / OUT data not a multiple of 512 bytes, a sector or length not a
//    multiple of the device block, sector + length overflowing or past the
//    capacity: IOERR (a zero-length IN / OUT is OK with no blocks: answer
//    OK without I/O);
//  * DISCARD / WRITE_ZEROES segments: a length that is 0 or not a multiple
//    of 16: IOERR; more segments than max_*_seg (or max_dwz_segments):
//    UNSUPP, as QEMU answers; unknown segment flags, or UNMAP on a DISCARD:
//    UNSUPP (the specification's answer); a segment above max_*_sectors, not
//    block-aligned, overflowing or past the capacity: IOERR.
// FLUSH ignores its sector and any data; GET_ID takes the device-writable
// bytes before the status (the server writes up to 20 of them).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "storage/io_vec.hh"
#include "vhost/spec/virtio_blk.hh"
#include "vhost/virtqueue.hh"

namespace ioe::vhost {

inline constexpr std::uint32_t max_dwz_segments = 16;

enum class blk_op : std::uint8_t { none, read, write, flush, get_id, discard, write_zeroes };

std::string_view to_string(blk_op op) noexcept;

// What the device offers and the driver negotiated.
struct blk_params {
    std::uint64_t capacity_sectors = 0;  // config.capacity (512-byte sectors)
    std::uint32_t block_size = 512;      // device block: a power of two >= 512
    bool read_only = false;
    std::uint64_t features = 0;          // negotiated virtio features (blk::feature bits)
    std::uint32_t max_discard_sectors = 0;
    std::uint32_t max_discard_seg = 1;
    std::uint32_t max_write_zeroes_sectors = 0;
    std::uint32_t max_write_zeroes_seg = 1;
};

// One block range of a DISCARD / WRITE_ZEROES request, in device blocks.
struct blk_range {
    std::uint64_t lba = 0;
    std::uint64_t blocks = 0;
    bool unmap = false;  // WRITE_ZEROES may deallocate
};

struct blk_request {
    std::uint8_t status = blk::status::ok;  // ok: do it; ioerr / unsupp: answer at once
    std::string_view reason;                // why not ok
    blk_op op = blk_op::none;
    std::uint32_t type = 0;                 // the header's type, as sent
    std::uint64_t sector = 0;               // the header's sector, as sent
    std::uint64_t lba = 0;                  // IN / OUT, in device blocks
    std::uint64_t blocks = 0;
    std::span<io_vec> data;                 // IN / OUT data, GET_ID buffer
    std::uint32_t data_bytes = 0;
    std::byte* status_byte = nullptr;       // where the status goes (null: nowhere)
    std::uint32_t range_count = 0;          // DISCARD / WRITE_ZEROES
    std::array<blk_range, max_dwz_segments> ranges{};
};

// Parses `chain` (trimming its pieces in place) into `req`; returns req.status.
std::uint8_t parse_blk_request(desc_chain& chain, const blk_params& params, blk_request& req) noexcept;

}  // namespace ioe::vhost
