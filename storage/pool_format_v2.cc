// Version 2 of the pool's metadata slot (docs/pool-format.md, "Version 2"):
// volume records with parents, snapshot flags, creation time and txid;
// cluster entries with granule bitmaps; intent records. Each record carries
// a CRC32C (the cluster map one for all its entries) and the slot one more.
// Slot version 3 adds subgranule records (partly present granules) after
// the intents; it is written only while there are some.
// The decoder checks every field before use: the import fuzz target feeds
// it arbitrary bytes.
#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <map>
#include <set>

#include "runtime/crc32c.hh"
#include "storage/pool_format.hh"

namespace ioe::pool_format {
namespace {

constexpr char magic_v2[8] = {'I', 'O', 'E', 'M', 'E', 'T', 'A', '2'};
constexpr std::uint32_t known_volume_flags = flag_thin | flag_snapshot | flag_discarded;

std::uint64_t align_page(std::uint64_t v) noexcept { return (v + page_bytes - 1) / page_bytes * page_bytes; }

template <std::size_t N>
void put_text(char (&dst)[N], const std::string& s) {
    std::memset(dst, 0, N);
    std::memcpy(dst, s.data(), std::min(s.size(), N - 1));
}

template <std::size_t N>
bool get_text(const char (&src)[N], std::string& out) {
    const char* end = static_cast<const char*>(std::memchr(src, 0, N));
    if (!end) return false;
    out.assign(src, end);
    return true;
}

bool all_zero(const std::uint8_t* p, std::size_t n) noexcept {
    return std::all_of(p, p + n, [](std::uint8_t b) { return b == 0; });
}

std::uint64_t granules_of(const metadata_state& m, std::size_t c) noexcept {
    if (c < m.granules.size()) return m.granules[c];
    return m.clusters[c].owner == no_owner ? 0 : all_granules;
}

}  // namespace

std::uint64_t metadata_bytes_v2(std::size_t volumes, std::size_t clusters, std::size_t intents) noexcept {
    return align_page(sizeof(metadata_header_v2) + volumes * sizeof(volume_record) + clusters * sizeof(cluster_entry) +
                      intents * sizeof(intent_record));
}

std::uint64_t max_clusters_v2(const pool_geometry& g) noexcept {
    const std::uint64_t fixed = sizeof(metadata_header_v2) + std::uint64_t(g.max_replicas) * sizeof(volume_record) +
                                std::uint64_t(max_intents) * sizeof(intent_record);
    if (g.slot_bytes <= fixed) return 0;
    return (g.slot_bytes - fixed) / sizeof(cluster_entry);
}

std::uint64_t subgranule_capacity(const pool_geometry& g, std::uint64_t clusters) noexcept {
    const std::uint64_t used = sizeof(metadata_header_v2) + std::uint64_t(g.max_replicas) * sizeof(volume_record) +
                               std::uint64_t(max_intents) * sizeof(intent_record) + clusters * sizeof(cluster_entry);
    if (g.slot_bytes <= used) return 0;
    return (g.slot_bytes - used) / sizeof(subgranule_record);
}

std::vector<std::byte> encode_metadata_v2(const pool_geometry& g, const metadata_state& m) {
    const std::uint64_t map_bytes = m.clusters.size() * sizeof(cluster_entry);
    const std::uint64_t payload = m.replicas.size() * sizeof(volume_record) + map_bytes +
                                  m.intents.size() * sizeof(intent_record) +
                                  m.subgranules.size() * sizeof(subgranule_record);
    std::vector<std::byte> out(align_page(sizeof(metadata_header_v2) + payload));
    std::byte* p = out.data() + sizeof(metadata_header_v2);
    for (const auto& r : m.replicas) {
        volume_record rec{};
        rec.id = r.id;
        rec.flags = (r.thin ? flag_thin : 0) | (r.snapshot ? flag_snapshot : 0) | (r.discarded ? flag_discarded : 0);
        rec.size_bytes = r.size_bytes;
        std::memcpy(rec.uuid, r.replica_uuid.bytes.data(), 16);
        put_text(rec.name, r.name);
        rec.parent_id = r.parent_id;
        rec.created_ns = r.created_ns;
        put_text(rec.txid, r.txid);
        rec.crc32c = crc32c(&rec, offsetof(volume_record, crc32c));
        std::memcpy(p, &rec, sizeof rec);
        p += sizeof rec;
    }
    std::byte* map = p;
    for (std::size_t c = 0; c < m.clusters.size(); ++c) {
        cluster_entry e{m.clusters[c].owner, m.clusters[c].logical, granules_of(m, c)};
        std::memcpy(p, &e, sizeof e);
        p += sizeof e;
    }
    for (const auto& i : m.intents) {
        intent_record rec{};
        rec.kind = i.kind;
        rec.volume_id = i.volume_id;
        rec.other_id = i.other_id;
        rec.progress = i.progress;
        rec.started_ns = i.started_ns;
        rec.crc32c = crc32c(&rec, offsetof(intent_record, crc32c));
        std::memcpy(p, &rec, sizeof rec);
        p += sizeof rec;
    }
    for (const auto& sg : m.subgranules) {
        subgranule_record rec{};
        rec.cluster = sg.cluster;
        std::memcpy(rec.bits, sg.bits, sizeof rec.bits);
        rec.crc32c = crc32c(&rec, offsetof(subgranule_record, crc32c));
        std::memcpy(p, &rec, sizeof rec);
        p += sizeof rec;
    }
    metadata_header_v2 h{};
    std::memcpy(h.magic, magic_v2, 8);
    h.sequence = m.sequence;
    std::memcpy(h.pool_uuid, g.pool_uuid.bytes.data(), 16);
    h.volume_count = static_cast<std::uint32_t>(m.replicas.size());
    h.cluster_count = static_cast<std::uint32_t>(m.clusters.size());
    h.intent_count = static_cast<std::uint32_t>(m.intents.size());
    h.version = m.subgranules.empty() ? 2 : slot_version_subgranules;
    h.next_volume_id = m.next_replica_id;
    h.map_crc32c = crc32c(map, map_bytes);
    h.reserved = static_cast<std::uint32_t>(m.subgranules.size());  // subgranule_count in version 3
    h.crc32c = crc32c_extend(crc32c(&h, offsetof(metadata_header_v2, crc32c)), out.data() + sizeof h, payload);
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

decode_result decode_metadata_v2(std::span<const std::byte> slot, const pool_geometry& g, metadata_state& out,
                                 std::string& why) {
    if (slot.size() < sizeof(metadata_header_v2)) {
        why = "metadata slot is short";
        return decode_result::corrupt;
    }
    metadata_header_v2 h;
    std::memcpy(&h, slot.data(), sizeof h);
    if (std::memcmp(h.magic, magic_v2, 8) != 0) {
        why = "no metadata magic";
        return decode_result::no_magic;
    }
    auto corrupt = [&](std::string what) {
        why = "metadata v2: " + what;
        return decode_result::corrupt;
    };
    if (h.volume_count > g.max_replicas) return corrupt("more volumes than the pool allows");
    if (h.cluster_count > g.max_clusters || h.cluster_count < g.cluster_count) {
        return corrupt(fmt::format("cluster count {} outside {}..{}", h.cluster_count, g.cluster_count, g.max_clusters));
    }
    if (h.intent_count > max_intents) return corrupt(fmt::format("{} intents (at most {})", h.intent_count, max_intents));
    // Version 3: the reserved field counts the subgranule records.
    const std::uint64_t subgranule_count = h.version == slot_version_subgranules ? h.reserved : 0;
    if (subgranule_count > h.cluster_count) return corrupt("more subgranule records than clusters");
    const std::uint64_t map_bytes = std::uint64_t(h.cluster_count) * sizeof(cluster_entry);
    const std::uint64_t payload = std::uint64_t(h.volume_count) * sizeof(volume_record) + map_bytes +
                                  std::uint64_t(h.intent_count) * sizeof(intent_record) +
                                  subgranule_count * sizeof(subgranule_record);
    if (sizeof h + payload > slot.size()) return corrupt("payload larger than the slot");
    if (crc32c_extend(crc32c(&h, offsetof(metadata_header_v2, crc32c)), slot.data() + sizeof h, payload) != h.crc32c) {
        why = "metadata checksum mismatch";
        return decode_result::bad_checksum;
    }
    if (h.version > slot_version_subgranules) {
        why = fmt::format("metadata format version {} is newer than this engine supports ({})", h.version,
                          slot_version_subgranules);
        return decode_result::newer_version;
    }
    if (h.version != 2 && h.version != slot_version_subgranules) {
        return corrupt(fmt::format("version {} in a version 2 slot", h.version));
    }
    if (g.version < 2) return corrupt("a version 2 slot under a version 1 superblock");
    if (std::memcmp(h.pool_uuid, g.pool_uuid.bytes.data(), 16) != 0) return corrupt("belongs to another pool");
    if (h.version == 2 && h.reserved != 0) return corrupt("reserved header field is not zero");
    if (h.version == slot_version_subgranules && h.reserved == 0) return corrupt("version 3 slot without subgranules");

    metadata_state m;
    m.version = 2;
    m.sequence = h.sequence;
    m.next_replica_id = h.next_volume_id;
    const std::byte* p = slot.data() + sizeof h;

    // Volume records.
    std::map<std::uint32_t, std::size_t> index;  // id -> position
    std::set<std::string> names;
    for (std::uint32_t i = 0; i < h.volume_count; ++i, p += sizeof(volume_record)) {
        volume_record rec;
        std::memcpy(&rec, p, sizeof rec);
        if (crc32c(&rec, offsetof(volume_record, crc32c)) != rec.crc32c) {
            return corrupt(fmt::format("volume record {} checksum mismatch", i));
        }
        replica_meta r;
        r.id = rec.id;
        r.thin = (rec.flags & flag_thin) != 0;
        r.snapshot = (rec.flags & flag_snapshot) != 0;
        r.discarded = (rec.flags & flag_discarded) != 0;
        r.size_bytes = rec.size_bytes;
        std::memcpy(r.replica_uuid.bytes.data(), rec.uuid, 16);
        r.parent_id = rec.parent_id;
        r.created_ns = rec.created_ns;
        if (rec.id == 0 || rec.id >= h.next_volume_id || !index.emplace(rec.id, i).second) {
            return corrupt(fmt::format("volume id {} invalid or repeated", rec.id));
        }
        if (rec.flags & ~known_volume_flags) return corrupt(fmt::format("volume id {}: unknown flags", rec.id));
        if (r.discarded && !r.snapshot) return corrupt(fmt::format("volume id {}: discarded but not a snapshot", rec.id));
        if (!get_text(rec.name, r.name) || r.name.empty() || !names.insert(r.name).second) {
            return corrupt(fmt::format("volume id {}: name empty, unterminated or repeated", rec.id));
        }
        if (!get_text(rec.txid, r.txid)) return corrupt(fmt::format("volume \"{}\": txid unterminated", r.name));
        if (rec.reserved0 != 0 || !all_zero(rec.reserved1, sizeof rec.reserved1)) {
            return corrupt(fmt::format("volume \"{}\": reserved bytes are not zero", r.name));
        }
        if (r.size_bytes == 0 || r.size_bytes % page_bytes != 0 ||
            (r.size_bytes - 1) / g.cluster_size >= std::numeric_limits<std::uint32_t>::max()) {
            return corrupt(fmt::format("volume \"{}\" size {}", r.name, r.size_bytes));
        }
        if (r.parent_id == r.id) return corrupt(fmt::format("volume \"{}\" is its own parent", r.name));
        m.replicas.push_back(std::move(r));
    }
    // Parents: existing snapshots, no cycles.
    for (const auto& r : m.replicas) {
        if (r.parent_id == 0) continue;
        auto it = index.find(r.parent_id);
        if (it == index.end()) {
            return corrupt(fmt::format("volume \"{}\": parent id {} does not exist", r.name, r.parent_id));
        }
        if (!m.replicas[it->second].snapshot) {
            return corrupt(fmt::format("volume \"{}\": parent \"{}\" is not a snapshot", r.name,
                                       m.replicas[it->second].name));
        }
    }
    for (const auto& r : m.replicas) {
        std::uint32_t at = r.parent_id;
        for (std::size_t steps = 0; at != 0; ++steps) {
            if (steps > m.replicas.size()) return corrupt(fmt::format("volume \"{}\": its parent chain has a cycle", r.name));
            at = m.replicas[index.at(at)].parent_id;
        }
    }

    // Cluster map.
    if (crc32c(p, map_bytes) != h.map_crc32c) return corrupt("cluster map checksum mismatch");
    m.clusters.resize(h.cluster_count);
    m.granules.resize(h.cluster_count);
    std::vector<std::vector<bool>> seen(m.replicas.size());
    std::vector<std::uint64_t> owned(m.replicas.size(), 0);
    for (std::size_t c = 0; c < h.cluster_count; ++c, p += sizeof(cluster_entry)) {
        cluster_entry e;
        std::memcpy(&e, p, sizeof e);
        m.clusters[c] = alloc_entry{e.owner, e.logical};
        m.granules[c] = e.granules;
        if (e.owner == no_owner) {
            if (e.logical != 0 || e.granules != 0) return corrupt(fmt::format("free cluster {} is not a zero entry", c));
            continue;
        }
        auto it = index.find(e.owner);
        if (it == index.end()) return corrupt(fmt::format("cluster {} owned by unknown volume id {}", c, e.owner));
        const auto& r = m.replicas[it->second];
        const std::uint64_t logical_clusters = (r.size_bytes + g.cluster_size - 1) / g.cluster_size;
        if (e.logical >= logical_clusters) return corrupt(fmt::format("cluster {} beyond its volume's size", c));
        if (r.parent_id == 0 && e.granules != all_granules) {
            return corrupt(fmt::format("cluster {} of volume \"{}\" (no parent) is not whole", c, r.name));
        }
        auto& bits = seen[it->second];
        if (bits.empty()) bits.resize(logical_clusters);
        if (bits[e.logical]) {
            return corrupt(fmt::format("volume \"{}\" logical cluster {} is owned twice", r.name, e.logical));
        }
        bits[e.logical] = true;
        ++owned[it->second];
    }
    for (std::size_t i = 0; i < m.replicas.size(); ++i) {
        const auto& r = m.replicas[i];
        const std::uint64_t logical_clusters = (r.size_bytes + g.cluster_size - 1) / g.cluster_size;
        if (!r.thin && owned[i] != logical_clusters) {
            return corrupt(fmt::format("thick volume \"{}\" has {} of its {} clusters", r.name, owned[i],
                                       logical_clusters));
        }
    }

    // Intents.
    for (std::uint32_t i = 0; i < h.intent_count; ++i, p += sizeof(intent_record)) {
        intent_record rec;
        std::memcpy(&rec, p, sizeof rec);
        if (crc32c(&rec, offsetof(intent_record, crc32c)) != rec.crc32c) {
            return corrupt(fmt::format("intent record {} checksum mismatch", i));
        }
        if (rec.kind != intent_merge && rec.kind != intent_inflate) {
            return corrupt(fmt::format("intent record {}: unknown kind {}", i, rec.kind));
        }
        if (!index.count(rec.volume_id) || !index.count(rec.other_id)) {
            return corrupt(fmt::format("intent record {}: names a volume that does not exist", i));
        }
        if (!all_zero(rec.reserved, sizeof rec.reserved) || rec.reserved2 != 0) {
            return corrupt(fmt::format("intent record {}: reserved bytes are not zero", i));
        }
        m.intents.push_back(intent_meta{rec.kind, rec.volume_id, rec.other_id, rec.progress, rec.started_ns});
    }

    // Subgranule records: ascending clusters owned by a volume with a
    // parent, no bit in a whole granule, never empty.
    for (std::uint64_t i = 0; i < subgranule_count; ++i, p += sizeof(subgranule_record)) {
        subgranule_record rec;
        std::memcpy(&rec, p, sizeof rec);
        if (crc32c(&rec, offsetof(subgranule_record, crc32c)) != rec.crc32c) {
            return corrupt(fmt::format("subgranule record {} checksum mismatch", i));
        }
        if (rec.reserved != 0 || rec.reserved2 != 0) {
            return corrupt(fmt::format("subgranule record {}: reserved bytes are not zero", i));
        }
        if (rec.cluster >= h.cluster_count || (!m.subgranules.empty() && rec.cluster <= m.subgranules.back().cluster)) {
            return corrupt(fmt::format("subgranule record {}: cluster {} out of range or order", i, rec.cluster));
        }
        const auto& e = m.clusters[rec.cluster];
        if (e.owner == no_owner || m.replicas[index.at(e.owner)].parent_id == 0) {
            return corrupt(fmt::format("subgranule record {}: cluster {} is free or its volume has no parent", i,
                                       rec.cluster));
        }
        subgranule_set sg;
        sg.cluster = rec.cluster;
        std::memcpy(sg.bits, rec.bits, sizeof sg.bits);
        if (sg.empty()) return corrupt(fmt::format("subgranule record {} is empty", i));
        for (unsigned gr = 0; gr < granules_per_cluster; ++gr) {
            if ((m.granules[rec.cluster] >> gr & 1) && granule_subgranules(sg.bits, gr) != 0) {
                return corrupt(fmt::format("subgranule record {}: bits in whole granule {}", i, gr));
            }
        }
        m.subgranules.push_back(sg);
    }
    // Redirected writes recorded after this image.
    if (auto r = apply_deltas(slot, align_page(sizeof h + payload), g, m, why); r != decode_result::ok) return r;
    out = std::move(m);
    return decode_result::ok;
}

}  // namespace ioe::pool_format
