// The block stamp of tests/cluster's blockstamp tool, and its
// acknowledgement log.
//
// A stamped block starts with a 40-byte header (little-endian):
//
//   offset size field
//        0    8 magic "BLKSTAMP"
//        8    8 lba          the block's own address
//       16    8 generation   1, 2, ... per block, one per write issued
//       24    4 tag          random per write
//       28    4 block_size
//       32    4 crc32c       of the whole block with this field zero
//       36    4 reserved (0)
//
// and the rest of the block is a pattern drawn from (lba, generation, tag),
// so that a block from another write, another address or a torn write does
// not check out.
//
// The acknowledgement log (text, one file per volume):
//
//   blockstamp-log 1 BLOCK_SIZE BLOCK_COUNT
//   LBA ACKED ISSUED          (one line per block ever written, LBA ascending)
//   end
//
// ISSUED is the highest generation ever sent for the block, ACKED the
// highest one whose write was acknowledged (0: none). After any crash a
// block must hold a generation g with ACKED <= g <= ISSUED (or still be
// zero if ACKED is 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ioe::blockstamp {

inline constexpr char stamp_magic[8] = {'B', 'L', 'K', 'S', 'T', 'A', 'M', 'P'};

struct [[gnu::packed]] stamp_header {
    char magic[8];
    std::uint64_t lba;
    std::uint64_t generation;
    std::uint32_t tag;
    std::uint32_t block_size;
    std::uint32_t crc;
    std::uint32_t reserved;
};
static_assert(sizeof(stamp_header) == 40, "the stamp header is 40 bytes on disk");

// Fills `block` (block_size bytes, at least 64) with the stamp.
void fill_block(std::byte* block, std::uint32_t block_size, std::uint64_t lba, std::uint64_t generation,
                std::uint32_t tag) noexcept;

enum class block_kind {
    zero,     // every byte zero: never written
    stamped,  // a valid stamp for this lba (generation in `generation`)
    corrupt,  // anything else: a bad crc, another lba, a torn or foreign block
};
struct block_check {
    block_kind kind = block_kind::corrupt;
    std::uint64_t generation = 0;
    std::string why;  // for corrupt
};
// Reads a block back; never throws, any bytes allowed.
block_check check_block(const std::byte* block, std::uint32_t block_size, std::uint64_t lba) noexcept;

struct block_record {
    std::uint64_t acked = 0;
    std::uint64_t issued = 0;
};
struct ack_log {
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    std::vector<block_record> blocks;  // block_count entries
};

std::string encode_log(const ack_log& log);
// nullopt and `error` set on anything malformed (bounded: at most
// max_log_blocks blocks).
inline constexpr std::uint64_t max_log_blocks = std::uint64_t(1) << 22;
std::optional<ack_log> decode_log(std::string_view text, std::string& error);

// Whole-file helpers; save() writes FILE.tmp, fsyncs and renames.
bool save_log(const std::string& path, const ack_log& log, std::string& error);
std::optional<ack_log> load_log(const std::string& path, std::string& error);

}  // namespace ioe::blockstamp
