// Block stamps and the acknowledgement log (stamp.hh).
#include "tests/cluster/stamp.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/crc32c.hh"

namespace ioe::blockstamp {

namespace {

std::uint64_t splitmix(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fill_pattern(std::byte* p, std::size_t n, std::uint64_t lba, std::uint64_t generation, std::uint32_t tag) noexcept {
    std::uint64_t x = lba * 0x100000001b3ull ^ generation * 0xc2b2ae3d27d4eb4full ^ tag;
    for (std::size_t i = 0; i < n; i += 8) {
        const std::uint64_t v = splitmix(x);
        std::memcpy(p + i, &v, std::min<std::size_t>(8, n - i));
    }
}

std::uint32_t block_crc(const std::byte* block, std::uint32_t block_size) noexcept {
    constexpr std::size_t crc_at = offsetof(stamp_header, crc);
    constexpr std::uint32_t zero = 0;
    std::uint32_t c = crc32c(block, crc_at);
    c = crc32c_extend(c, &zero, sizeof zero);
    return crc32c_extend(c, block + crc_at + sizeof zero, block_size - crc_at - sizeof zero);
}

}  // namespace

void fill_block(std::byte* block, std::uint32_t block_size, std::uint64_t lba, std::uint64_t generation,
                std::uint32_t tag) noexcept {
    stamp_header h{};
    std::memcpy(h.magic, stamp_magic, sizeof h.magic);
    h.lba = lba;
    h.generation = generation;
    h.tag = tag;
    h.block_size = block_size;
    h.crc = 0;
    std::memcpy(block, &h, sizeof h);
    fill_pattern(block + sizeof h, block_size - sizeof h, lba, generation, tag);
    h.crc = block_crc(block, block_size);
    std::memcpy(block + offsetof(stamp_header, crc), &h.crc, sizeof h.crc);
}

block_check check_block(const std::byte* block, std::uint32_t block_size, std::uint64_t lba) noexcept {
    block_check r;
    bool all_zero = true;
    for (std::uint32_t i = 0; i < block_size && all_zero; ++i) all_zero = block[i] == std::byte{0};
    if (all_zero) {
        r.kind = block_kind::zero;
        return r;
    }
    if (block_size < sizeof(stamp_header)) {
        r.why = "block smaller than a stamp";
        return r;
    }
    stamp_header h;
    std::memcpy(&h, block, sizeof h);
    if (std::memcmp(h.magic, stamp_magic, sizeof h.magic) != 0) {
        r.why = "no stamp";
        return r;
    }
    if (h.block_size != block_size) {
        r.why = "stamp for block size " + std::to_string(h.block_size);
        return r;
    }
    if (h.lba != lba) {
        r.why = "stamp of lba " + std::to_string(h.lba);
        return r;
    }
    if (h.crc != block_crc(block, block_size)) {
        r.why = "crc mismatch (torn or damaged block, generation " + std::to_string(h.generation) + ")";
        return r;
    }
    // The crc covers the header; the pattern must also be this write's.
    std::byte expect[64];
    const std::size_t n = std::min<std::size_t>(sizeof expect, block_size - sizeof h);
    fill_pattern(expect, n, lba, h.generation, h.tag);
    if (std::memcmp(expect, block + sizeof h, n) != 0) {
        r.why = "pattern does not match the stamp";
        return r;
    }
    r.kind = block_kind::stamped;
    r.generation = h.generation;
    return r;
}

std::string encode_log(const ack_log& log) {
    std::string out = "blockstamp-log 1 " + std::to_string(log.block_size) + " " + std::to_string(log.block_count) + "\n";
    for (std::uint64_t lba = 0; lba < log.blocks.size(); ++lba) {
        const auto& b = log.blocks[lba];
        if (b.issued == 0 && b.acked == 0) continue;
        out += std::to_string(lba) + " " + std::to_string(b.acked) + " " + std::to_string(b.issued) + "\n";
    }
    out += "end\n";
    return out;
}

namespace {

bool next_number(std::string_view& line, std::uint64_t& out) {
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty() || line.front() < '0' || line.front() > '9') return false;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), out);
    if (ec != std::errc()) return false;
    line.remove_prefix(static_cast<std::size_t>(p - line.data()));
    return line.empty() || line.front() == ' ';
}

}  // namespace

std::optional<ack_log> decode_log(std::string_view text, std::string& error) {
    ack_log log;
    std::size_t line_no = 0;
    bool ended = false;
    std::uint64_t last_lba = 0;
    bool any = false;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) {
            error = "line " + std::to_string(line_no + 1) + ": no line end";
            return std::nullopt;
        }
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++line_no;
        const std::string where = "line " + std::to_string(line_no) + ": ";
        if (ended) {
            error = where + "text after 'end'";
            return std::nullopt;
        }
        if (line_no == 1) {
            constexpr std::string_view head = "blockstamp-log 1 ";
            if (line.substr(0, head.size()) != head) {
                error = where + "not a blockstamp-log 1 file";
                return std::nullopt;
            }
            line.remove_prefix(head.size() - 1);
            std::uint64_t bs = 0;
            if (!next_number(line, bs) || !next_number(line, log.block_count) || !line.empty() || bs < 64 ||
                bs > (1u << 20) || log.block_count == 0 || log.block_count > max_log_blocks) {
                error = where + "bad block size or count";
                return std::nullopt;
            }
            log.block_size = static_cast<std::uint32_t>(bs);
            log.blocks.assign(log.block_count, block_record{});
            continue;
        }
        if (line == "end") {
            ended = true;
            continue;
        }
        std::uint64_t lba = 0, acked = 0, issued = 0;
        if (!next_number(line, lba) || !next_number(line, acked) || !next_number(line, issued) || !line.empty()) {
            error = where + "expected 'LBA ACKED ISSUED'";
            return std::nullopt;
        }
        if (lba >= log.block_count || (any && lba <= last_lba) || acked > issued || issued == 0) {
            error = where + "lba out of range or order, or acked > issued";
            return std::nullopt;
        }
        log.blocks[lba] = block_record{acked, issued};
        last_lba = lba;
        any = true;
    }
    if (line_no == 0 || !ended) {
        error = "missing the final 'end' line";
        return std::nullopt;
    }
    return log;
}

bool save_log(const std::string& path, const ack_log& log, std::string& error) {
    const std::string tmp = path + ".tmp";
    const std::string text = encode_log(log);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error = tmp + ": " + std::strerror(errno);
        return false;
    }
    std::size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n <= 0) {
            error = tmp + ": " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
        error = path + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

std::optional<ack_log> load_log(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = path + ": cannot open";
        return std::nullopt;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto log = decode_log(ss.str(), error);
    if (!log) error = path + ": " + error;
    return log;
}

}  // namespace ioe::blockstamp
