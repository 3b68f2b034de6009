// Encoding and validating decoding of the pool format (see pool_format.hh and
// docs/pool-format.md). Every field read from the device is checked before
// use, with overflow-safe arithmetic: the importer fuzz target feeds this
// code arbitrary bytes.
#include "storage/pool_format.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <set>

#include "runtime/crc32c.hh"

namespace ioe::pool_format {
namespace {

constexpr char sb_magic[8] = {'I', 'O', 'E', 'P', 'O', 'O', 'L', '1'};
constexpr char md_magic[8] = {'I', 'O', 'E', 'M', 'E', 'T', 'A', '1'};
constexpr char md_magic_v2[8] = {'I', 'O', 'E', 'M', 'E', 'T', 'A', '2'};
constexpr std::uint32_t max_replicas_limit = 65536;

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept { return (v + a - 1) / a * a; }

bool is_pow2(std::uint64_t v) noexcept { return v && !(v & (v - 1)); }

template <std::size_t N>
void put_name(char (&dst)[N], const std::string& s) {
    std::memset(dst, 0, N);
    std::memcpy(dst, s.data(), std::min(s.size(), N - 1));
}

template <std::size_t N>
bool get_name(const char (&src)[N], std::string& out) {
    const char* end = static_cast<const char*>(std::memchr(src, 0, N));
    if (!end) return false;  // not NUL-terminated
    out.assign(src, end);
    return true;
}

std::uint64_t slot_bytes_for(std::uint32_t replicas, std::uint64_t clusters) noexcept {
    return align_up(sizeof(metadata_header) + std::uint64_t(replicas) * sizeof(replica_record) +
                        clusters * sizeof(alloc_entry),
                    page_bytes);
}

std::uint64_t data_offset_for(std::uint64_t slot_bytes, std::uint32_t cluster_size) noexcept {
    return align_up(metadata_offset + 2 * slot_bytes, cluster_size);
}

}  // namespace

std::uint64_t metadata_bytes(std::size_t replicas, std::size_t clusters) noexcept {
    return slot_bytes_for(static_cast<std::uint32_t>(replicas), clusters);
}

std::uint64_t clusters_fitting(const pool_geometry& g, std::uint64_t device_bytes) noexcept {
    if (device_bytes <= g.data_offset) return 0;
    const std::uint64_t cap = g.version >= 2 ? std::min(g.max_clusters, max_clusters_v2(g)) : g.max_clusters;
    return std::min<std::uint64_t>((device_bytes - g.data_offset) / g.cluster_size, cap);
}

std::optional<pool_geometry> plan(std::uint64_t device_bytes, std::uint32_t block_size, std::uint32_t cluster_size,
                                  std::string& why) {
    if (!is_pow2(cluster_size) || cluster_size < min_cluster_size) {
        why = fmt::format("cluster size {} is not a power of two of at least 1 MiB", cluster_size);
        return std::nullopt;
    }
    if (block_size != 512 && block_size != 4096) {
        why = fmt::format("block size {} is not supported (512 or 4096)", block_size);
        return std::nullopt;
    }
    pool_geometry g;
    g.cluster_size = cluster_size;
    g.block_size = block_size;
    g.device_bytes = device_bytes;
    std::uint64_t estimate = device_bytes / cluster_size;
    g.max_clusters = std::min<std::uint64_t>(std::max<std::uint64_t>(4096, estimate * 16),
                                             std::numeric_limits<std::uint32_t>::max());
    g.max_replicas = default_max_replicas;
    g.slot_bytes = slot_bytes_for(g.max_replicas, g.max_clusters);
    g.data_offset = data_offset_for(g.slot_bytes, cluster_size);
    g.cluster_count = clusters_fitting(g, device_bytes);
    if (g.cluster_count == 0) {
        why = fmt::format("the device has {} bytes; a pool with {} MiB clusters needs at least {} bytes",
                          device_bytes, cluster_size >> 20, g.data_offset + cluster_size);
        return std::nullopt;
    }
    g.state = state_imported;
    return g;
}

std::vector<std::byte> encode_superblock(const pool_geometry& g, std::uint64_t sequence) {
    std::vector<std::byte> page(page_bytes);
    superblock sb{};
    std::memcpy(sb.magic, sb_magic, 8);
    sb.version = g.version;
    sb.header_bytes = sizeof(superblock);
    sb.sequence = sequence;
    std::memcpy(sb.pool_uuid, g.pool_uuid.bytes.data(), 16);
    put_name(sb.name, g.name);
    sb.cluster_size = g.cluster_size;
    sb.block_size = g.block_size;
    sb.device_bytes = g.device_bytes;
    sb.metadata_offset = metadata_offset;
    sb.slot_bytes = g.slot_bytes;
    sb.data_offset = g.data_offset;
    sb.cluster_count = g.cluster_count;
    sb.max_clusters = g.max_clusters;
    sb.max_replicas = g.max_replicas;
    sb.state = g.state;
    sb.crc32c = crc32c(&sb, offsetof(superblock, crc32c));
    std::memcpy(page.data(), &sb, sizeof sb);
    return page;
}

decode_result decode_superblock(std::span<const std::byte> page, pool_geometry& out, std::string& why) {
    if (page.size() < sizeof(superblock)) {
        why = "superblock page is short";
        return decode_result::corrupt;
    }
    superblock sb;
    std::memcpy(&sb, page.data(), sizeof sb);
    if (std::memcmp(sb.magic, sb_magic, 8) != 0) {
        why = "no pool superblock magic";
        return decode_result::no_magic;
    }
    if (sb.header_bytes != sizeof(superblock) || crc32c(&sb, offsetof(superblock, crc32c)) != sb.crc32c) {
        why = "superblock checksum mismatch";
        return decode_result::bad_checksum;
    }
    if (sb.version > format_version) {
        why = fmt::format("format version {} is newer than this engine supports ({}); upgrade ioengine",
                          sb.version, format_version);
        return decode_result::newer_version;
    }
    auto corrupt = [&](std::string what) {
        why = "superblock: " + what;
        return decode_result::corrupt;
    };
    if (sb.version == 0) return corrupt("version 0");
    if (!is_pow2(sb.cluster_size) || sb.cluster_size < min_cluster_size) {
        return corrupt(fmt::format("cluster size {} is invalid", sb.cluster_size));
    }
    if (sb.block_size != 512 && sb.block_size != 4096) return corrupt(fmt::format("block size {}", sb.block_size));
    if (sb.metadata_offset != metadata_offset) return corrupt("metadata offset");
    if (sb.max_replicas == 0 || sb.max_replicas > max_replicas_limit) return corrupt("max_replicas");
    if (sb.max_clusters == 0 || sb.max_clusters > std::numeric_limits<std::uint32_t>::max()) {
        return corrupt("max_clusters");
    }
    if (sb.slot_bytes % page_bytes != 0 || sb.slot_bytes < slot_bytes_for(sb.max_replicas, sb.max_clusters) ||
        sb.slot_bytes > (std::uint64_t(1) << 40)) {
        return corrupt("slot size");
    }
    if (sb.data_offset != data_offset_for(sb.slot_bytes, sb.cluster_size)) return corrupt("data offset");
    if (sb.cluster_count == 0 || sb.cluster_count > sb.max_clusters) return corrupt("cluster count");
    if (sb.device_bytes < sb.data_offset ||
        sb.cluster_count > (sb.device_bytes - sb.data_offset) / sb.cluster_size) {
        return corrupt("clusters do not fit the device size it records");
    }
    if (sb.state != state_imported && sb.state != state_exported) return corrupt("state");
    pool_geometry g;
    std::memcpy(g.pool_uuid.bytes.data(), sb.pool_uuid, 16);
    if (!get_name(sb.name, g.name)) return corrupt("name is not terminated");
    g.cluster_size = sb.cluster_size;
    g.block_size = sb.block_size;
    g.device_bytes = sb.device_bytes;
    g.slot_bytes = sb.slot_bytes;
    g.data_offset = sb.data_offset;
    g.cluster_count = sb.cluster_count;
    g.max_clusters = sb.max_clusters;
    g.max_replicas = sb.max_replicas;
    g.state = sb.state;
    g.sequence = sb.sequence;
    g.version = sb.version;
    out = g;
    return decode_result::ok;
}

namespace {

// Combines the outcomes of two copies: the newest valid one wins.
template <typename T, typename Decode, typename Seq>
decode_result choose(std::span<const std::byte> a, std::span<const std::byte> b, T& out, std::string& why,
                     Decode decode, Seq seq, const char* what) {
    T va, vb;
    std::string wa, wb;
    decode_result ra = decode(a, va, wa);
    decode_result rb = decode(b, vb, wb);
    if (ra == decode_result::ok && rb == decode_result::ok) {
        out = seq(va) >= seq(vb) ? va : vb;
        return decode_result::ok;
    }
    if (ra == decode_result::newer_version || rb == decode_result::newer_version) {
        why = ra == decode_result::newer_version ? wa : wb;
        return decode_result::newer_version;
    }
    if (ra == decode_result::ok) {
        out = va;
        return decode_result::ok;
    }
    if (rb == decode_result::ok) {
        out = vb;
        return decode_result::ok;
    }
    why = fmt::format("{} copy 0: {}; copy 1: {}", what, wa, wb);
    if (ra == decode_result::no_magic && rb == decode_result::no_magic) return decode_result::no_magic;
    if (ra == decode_result::bad_checksum || rb == decode_result::bad_checksum) return decode_result::bad_checksum;
    return decode_result::corrupt;
}

}  // namespace

decode_result choose_superblock(std::span<const std::byte> copy0, std::span<const std::byte> copy1,
                                pool_geometry& out, std::string& why) {
    return choose(copy0, copy1, out, why, decode_superblock, [](const pool_geometry& g) { return g.sequence; },
                  "superblock");
}

std::vector<std::byte> encode_metadata(const pool_geometry& g, const metadata_state& m) {
    if (m.version >= 2) return encode_metadata_v2(g, m);
    const std::uint64_t payload =
        m.replicas.size() * sizeof(replica_record) + m.clusters.size() * sizeof(alloc_entry);
    std::vector<std::byte> out(align_up(sizeof(metadata_header) + payload, page_bytes));
    metadata_header h{};
    std::memcpy(h.magic, md_magic, 8);
    h.sequence = m.sequence;
    std::memcpy(h.pool_uuid, g.pool_uuid.bytes.data(), 16);
    h.replica_count = static_cast<std::uint32_t>(m.replicas.size());
    h.cluster_count = static_cast<std::uint32_t>(m.clusters.size());
    h.payload_bytes = payload;
    h.version = format_version_1;
    h.next_replica_id = m.next_replica_id;
    std::byte* p = out.data() + sizeof h;
    for (const auto& r : m.replicas) {
        replica_record rec{};
        rec.id = r.id;
        rec.flags = r.thin ? flag_thin : 0;
        rec.size_bytes = r.size_bytes;
        std::memcpy(rec.uuid, r.replica_uuid.bytes.data(), 16);
        put_name(rec.name, r.name);
        std::memcpy(p, &rec, sizeof rec);
        p += sizeof rec;
    }
    if (!m.clusters.empty()) std::memcpy(p, m.clusters.data(), m.clusters.size() * sizeof(alloc_entry));
    std::uint32_t crc = crc32c(&h, offsetof(metadata_header, crc32c));
    h.crc32c = crc32c_extend(crc, out.data() + sizeof h, payload);
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

decode_result decode_metadata(std::span<const std::byte> slot, const pool_geometry& g, metadata_state& out,
                              std::string& why) {
    if (slot.size() < sizeof(metadata_header)) {
        why = "metadata slot is short";
        return decode_result::corrupt;
    }
    metadata_header h;
    std::memcpy(&h, slot.data(), sizeof h);
    if (std::memcmp(h.magic, md_magic_v2, 8) == 0) return decode_metadata_v2(slot, g, out, why);
    if (std::memcmp(h.magic, md_magic, 8) != 0) {
        why = "no metadata magic";
        return decode_result::no_magic;
    }
    auto corrupt = [&](std::string what) {
        why = "metadata: " + what;
        return decode_result::corrupt;
    };
    if (h.replica_count > g.max_replicas) return corrupt("more replicas than the pool allows");
    if (h.cluster_count > g.max_clusters || h.cluster_count < g.cluster_count) {
        return corrupt(fmt::format("cluster count {} outside {}..{}", h.cluster_count, g.cluster_count, g.max_clusters));
    }
    const std::uint64_t payload =
        std::uint64_t(h.replica_count) * sizeof(replica_record) + std::uint64_t(h.cluster_count) * sizeof(alloc_entry);
    if (h.payload_bytes != payload || sizeof h + payload > slot.size()) return corrupt("payload size");
    std::uint32_t crc = crc32c_extend(crc32c(&h, offsetof(metadata_header, crc32c)), slot.data() + sizeof h, payload);
    if (crc != h.crc32c) {
        why = "metadata checksum mismatch";
        return decode_result::bad_checksum;
    }
    if (h.version > format_version_1) {
        why = fmt::format("metadata format version {} is newer than this engine supports ({})", h.version,
                          format_version);
        return decode_result::newer_version;
    }
    if (h.version == 0) return corrupt("version 0");
    if (std::memcmp(h.pool_uuid, g.pool_uuid.bytes.data(), 16) != 0) return corrupt("belongs to another pool");

    metadata_state m;
    m.sequence = h.sequence;
    m.next_replica_id = h.next_replica_id;
    const std::byte* p = slot.data() + sizeof h;
    std::set<std::uint32_t> ids;
    std::set<std::string> names;
    for (std::uint32_t i = 0; i < h.replica_count; ++i, p += sizeof(replica_record)) {
        replica_record rec;
        std::memcpy(&rec, p, sizeof rec);
        replica_meta r;
        r.id = rec.id;
        r.thin = (rec.flags & flag_thin) != 0;
        r.size_bytes = rec.size_bytes;
        std::memcpy(r.replica_uuid.bytes.data(), rec.uuid, 16);
        if (rec.id == 0 || rec.id >= h.next_replica_id || !ids.insert(rec.id).second) {
            return corrupt(fmt::format("replica id {} invalid or repeated", rec.id));
        }
        if (rec.flags & ~flag_thin) return corrupt("unknown replica flags");
        if (!get_name(rec.name, r.name) || r.name.empty() || !names.insert(r.name).second) {
            return corrupt("replica name empty, unterminated or repeated");
        }
        if (r.size_bytes == 0 || r.size_bytes % page_bytes != 0 ||
            (r.size_bytes - 1) / g.cluster_size >= std::numeric_limits<std::uint32_t>::max()) {
            return corrupt(fmt::format("replica \"{}\" size {}", r.name, r.size_bytes));
        }
        m.replicas.push_back(std::move(r));
    }
    m.clusters.resize(h.cluster_count);
    if (h.cluster_count) std::memcpy(m.clusters.data(), p, h.cluster_count * sizeof(alloc_entry));

    // Every used cluster belongs to a live replica, within its size, once.
    std::vector<std::vector<bool>> seen(m.replicas.size());
    std::vector<std::uint64_t> owned(m.replicas.size(), 0);
    auto index_of = [&](std::uint32_t id) -> std::int64_t {
        for (std::size_t i = 0; i < m.replicas.size(); ++i)
            if (m.replicas[i].id == id) return static_cast<std::int64_t>(i);
        return -1;
    };
    for (std::size_t c = 0; c < m.clusters.size(); ++c) {
        const alloc_entry& e = m.clusters[c];
        if (e.owner == no_owner) {
            if (e.logical != 0) return corrupt(fmt::format("free cluster {} has a logical index", c));
            continue;
        }
        std::int64_t ri = index_of(e.owner);
        if (ri < 0) return corrupt(fmt::format("cluster {} owned by unknown replica id {}", c, e.owner));
        const std::uint64_t logical_clusters = (m.replicas[ri].size_bytes + g.cluster_size - 1) / g.cluster_size;
        if (e.logical >= logical_clusters) return corrupt(fmt::format("cluster {} beyond its replica's size", c));
        auto& bits = seen[ri];
        if (bits.empty()) bits.resize(logical_clusters);
        if (bits[e.logical]) {
            return corrupt(fmt::format("replica \"{}\" logical cluster {} is stored twice", m.replicas[ri].name,
                                       e.logical));
        }
        bits[e.logical] = true;
        ++owned[ri];
    }
    // Version 1 clusters are whole: every granule present.
    m.granules.resize(m.clusters.size());
    for (std::size_t c = 0; c < m.clusters.size(); ++c) {
        m.granules[c] = m.clusters[c].owner == no_owner ? 0 : all_granules;
    }
    m.version = format_version_1;
    for (std::size_t i = 0; i < m.replicas.size(); ++i) {
        const auto& r = m.replicas[i];
        const std::uint64_t logical_clusters = (r.size_bytes + g.cluster_size - 1) / g.cluster_size;
        if (!r.thin && owned[i] != logical_clusters) {
            return corrupt(fmt::format("thick replica \"{}\" has {} of its {} clusters", r.name, owned[i],
                                       logical_clusters));
        }
    }
    out = std::move(m);
    return decode_result::ok;
}

decode_result choose_metadata(std::span<const std::byte> slot0, std::span<const std::byte> slot1,
                              const pool_geometry& g, metadata_state& out, std::string& why) {
    auto decode = [&g](std::span<const std::byte> s, metadata_state& m, std::string& w) {
        return decode_metadata(s, g, m, w);
    };
    return choose(slot0, slot1, out, why, decode, [](const metadata_state& m) { return m.sequence; }, "metadata");
}

}  // namespace ioe::pool_format
