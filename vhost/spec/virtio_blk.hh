// virtio-blk as plain data (virtio 1.1 section 5.2, virtio 1.2 section 5.2):
// the request header the driver puts first in every chain, the request
// types, the status byte the device writes last, the discard / write-zeroes
// segment, the device configuration space and the feature bits. Sizes and
// every field offset are pinned by static_asserts; docs/vhost.md has the
// tables. Sectors are always 512 bytes, whatever blk_size says.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace ioe::vhost::blk {

static_assert(std::endian::native == std::endian::little, "virtio-blk (VERSION_1) is little-endian");

inline constexpr std::uint32_t sector_bytes = 512;
inline constexpr unsigned sector_shift = 9;
inline constexpr std::uint32_t id_bytes = 20;  // GET_ID answer (not NUL-terminated when full)

// Device feature bits (section 5.2.3).
namespace feature {
inline constexpr unsigned size_max = 1;      // config.size_max is valid
inline constexpr unsigned seg_max = 2;       // config.seg_max is valid
inline constexpr unsigned geometry = 4;
inline constexpr unsigned ro = 5;            // read-only device
inline constexpr unsigned blk_size = 6;      // config.blk_size is valid
inline constexpr unsigned flush = 9;         // FLUSH is supported
inline constexpr unsigned topology = 10;
inline constexpr unsigned config_wce = 11;   // config.writeback is valid (and writable)
inline constexpr unsigned mq = 12;           // config.num_queues is valid
inline constexpr unsigned discard = 13;
inline constexpr unsigned write_zeroes = 14;
inline constexpr unsigned lifetime = 15;
inline constexpr unsigned secure_erase = 16;
}  // namespace feature

// Request types (req_header.type).
namespace req_type {
inline constexpr std::uint32_t in = 0;             // read
inline constexpr std::uint32_t out = 1;            // write
inline constexpr std::uint32_t flush = 4;
inline constexpr std::uint32_t get_id = 8;
inline constexpr std::uint32_t get_lifetime = 10;
inline constexpr std::uint32_t discard = 11;
inline constexpr std::uint32_t write_zeroes = 13;
inline constexpr std::uint32_t secure_erase = 14;
}  // namespace req_type

// Status byte values.
namespace status {
inline constexpr std::uint8_t ok = 0;
inline constexpr std::uint8_t ioerr = 1;
inline constexpr std::uint8_t unsupp = 2;
}  // namespace status

// Discard / write-zeroes segment flags.
inline constexpr std::uint32_t dwz_flag_unmap = 1;  // write zeroes may deallocate

// The request header: the first 16 device-readable bytes of every request
// (they may be spread over several descriptors).
struct req_header {
    std::uint32_t type;      // req_type
    std::uint32_t reserved;  // ioprio in legacy drivers; ignored
    std::uint64_t sector;    // first 512-byte sector (0 for FLUSH, GET_ID)
};
static_assert(sizeof(req_header) == 16);
static_assert(offsetof(req_header, type) == 0);
static_assert(offsetof(req_header, reserved) == 4);
static_assert(offsetof(req_header, sector) == 8);

// One range of a DISCARD or WRITE_ZEROES request (the data of the request
// is an array of these).
struct dwz_segment {
    std::uint64_t sector;
    std::uint32_t num_sectors;
    std::uint32_t flags;  // dwz_flag_unmap; other bits reserved
};
static_assert(sizeof(dwz_segment) == 16);
static_assert(offsetof(dwz_segment, sector) == 0);
static_assert(offsetof(dwz_segment, num_sectors) == 8);
static_assert(offsetof(dwz_segment, flags) == 12);

// The device configuration space (read with GET_CONFIG). Fields after
// `capacity` are valid only with their feature bit. The zoned fields of
// virtio 1.2 (from byte 72) are not offered and not described here.
struct config {
    std::uint64_t capacity;              // 512-byte sectors
    std::uint32_t size_max;              // largest segment (SIZE_MAX)
    std::uint32_t seg_max;               // most data segments per request (SEG_MAX)
    std::uint16_t cylinders;             // geometry (GEOMETRY)
    std::uint8_t heads;
    std::uint8_t sectors;
    std::uint32_t blk_size;              // logical block size (BLK_SIZE)
    std::uint8_t physical_block_exp;     // topology (TOPOLOGY)
    std::uint8_t alignment_offset;
    std::uint16_t min_io_size;
    std::uint32_t opt_io_size;
    std::uint8_t writeback;              // 1: write-back cache (CONFIG_WCE)
    std::uint8_t unused0;
    std::uint16_t num_queues;            // (MQ)
    std::uint32_t max_discard_sectors;   // per segment (DISCARD)
    std::uint32_t max_discard_seg;
    std::uint32_t discard_sector_alignment;
    std::uint32_t max_write_zeroes_sectors;  // per segment (WRITE_ZEROES)
    std::uint32_t max_write_zeroes_seg;
    std::uint8_t write_zeroes_may_unmap;
    std::uint8_t unused1[3];
    std::uint32_t max_secure_erase_sectors;  // (SECURE_ERASE, virtio 1.2)
    std::uint32_t max_secure_erase_seg;
    std::uint32_t secure_erase_sector_alignment;
};
static_assert(sizeof(config) == 72);
static_assert(offsetof(config, capacity) == 0);
static_assert(offsetof(config, size_max) == 8);
static_assert(offsetof(config, seg_max) == 12);
static_assert(offsetof(config, cylinders) == 16);
static_assert(offsetof(config, heads) == 18);
static_assert(offsetof(config, sectors) == 19);
static_assert(offsetof(config, blk_size) == 20);
static_assert(offsetof(config, physical_block_exp) == 24);
static_assert(offsetof(config, alignment_offset) == 25);
static_assert(offsetof(config, min_io_size) == 26);
static_assert(offsetof(config, opt_io_size) == 28);
static_assert(offsetof(config, writeback) == 32);
static_assert(offsetof(config, unused0) == 33);
static_assert(offsetof(config, num_queues) == 34);
static_assert(offsetof(config, max_discard_sectors) == 36);
static_assert(offsetof(config, max_discard_seg) == 40);
static_assert(offsetof(config, discard_sector_alignment) == 44);
static_assert(offsetof(config, max_write_zeroes_sectors) == 48);
static_assert(offsetof(config, max_write_zeroes_seg) == 52);
static_assert(offsetof(config, write_zeroes_may_unmap) == 56);
static_assert(offsetof(config, unused1) == 57);
static_assert(offsetof(config, max_secure_erase_sectors) == 60);
static_assert(offsetof(config, max_secure_erase_seg) == 64);
static_assert(offsetof(config, secure_erase_sector_alignment) == 68);

}  // namespace ioe::vhost::blk
