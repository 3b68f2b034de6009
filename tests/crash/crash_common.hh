// Shared by the crash child and its checker: the self-describing block stamp
// and the operation log.
//
// Every block the child writes starts with a stamp naming what it is:
// (magic, replica uuid hash, lba, generation) and a CRC32C over the whole
// block, the rest of which is a pattern derived from the same values. A block
// that reads back with a valid stamp is exactly one write the child issued.
//
// The log has one line per event, appended with one write(2) each (a line is
// on disk in the page cache the moment the call returns, so it survives
// SIGKILL): "<op> <args...> issued" before an operation starts and
// "<op> <args...> ok" after it is acknowledged.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "runtime/crc32c.hh"

namespace ioe::crash {

inline constexpr std::uint32_t stamp_magic = 0x53544d50;  // "STMP"

struct stamp {
    std::uint32_t magic;
    std::uint32_t crc;  // of the whole block with this field zero
    std::uint64_t replica;
    std::uint64_t lba;
    std::uint64_t generation;
};
static_assert(sizeof(stamp) == 32);

inline std::uint64_t name_hash(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

inline void fill_block(std::byte* p, std::uint32_t bs, std::uint64_t replica, std::uint64_t lba, std::uint64_t gen) {
    stamp s{stamp_magic, 0, replica, lba, gen};
    std::uint64_t x = replica ^ (lba * 0x9e3779b97f4a7c15ull) ^ (gen << 1);
    for (std::uint32_t i = sizeof s; i + 8 <= bs; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(p + i, &x, 8);
    }
    std::memcpy(p, &s, sizeof s);
    s.crc = crc32c(p, bs);
    std::memcpy(p, &s, sizeof s);
}

// The generation a block holds: 0 for an all-zero block, -1 for a block that
// is neither zero nor a valid stamp of (replica, lba).
inline std::int64_t read_generation(const std::byte* p, std::uint32_t bs, std::uint64_t replica, std::uint64_t lba) {
    bool zero = true;
    for (std::uint32_t i = 0; i < bs && zero; ++i) zero = p[i] == std::byte{0};
    if (zero) return 0;
    stamp s;
    std::memcpy(&s, p, sizeof s);
    if (s.magic != stamp_magic || s.replica != replica || s.lba != lba) return -1;
    std::uint32_t want = s.crc;
    std::string copy(reinterpret_cast<const char*>(p), bs);
    std::memset(copy.data() + offsetof(stamp, crc), 0, 4);
    if (crc32c(copy.data(), bs) != want) return -1;
    return static_cast<std::int64_t>(s.generation);
}

}  // namespace ioe::crash
