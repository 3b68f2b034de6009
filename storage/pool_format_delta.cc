// Delta pages of the pool's metadata slot (docs/pool-format.md, "Delta
// pages"): redirected writes recorded in one 4 KiB page written after the
// newest image, in that slot's unused tail, instead of a whole new image.
// Pure functions over bytes, like the rest of pool_format: encoding, and
// the replay at import with every entry checked against the state (the
// import fuzz target feeds it arbitrary bytes).
#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <set>
#include <utility>

#include "runtime/crc32c.hh"
#include "storage/pool_format.hh"

namespace ioe::pool_format {

std::uint64_t add_subgranules(metadata_state& m, std::uint32_t c, unsigned first, unsigned count) {
    auto it = std::lower_bound(m.subgranules.begin(), m.subgranules.end(), c,
                               [](const subgranule_set& s, std::uint32_t x) { return s.cluster < x; });
    if (it == m.subgranules.end() || it->cluster != c) it = m.subgranules.insert(it, subgranule_set{c, {}});
    for (unsigned b = first; b < first + count; ++b) {
        // A granule already whole (another redirect completed it) keeps
        // no subgranule bits.
        if (m.granules[c] >> (b / subgranules_per_granule) & 1) continue;
        it->bits[b / 64] |= std::uint64_t(1) << (b % 64);
    }
    for (unsigned g = first / subgranules_per_granule; g <= (first + count - 1) / subgranules_per_granule; ++g) {
        if (granule_subgranules(it->bits, g) == 0xffffu) {
            m.granules[c] |= std::uint64_t(1) << g;
            it->bits[g / 4] &= ~(std::uint64_t(0xffff) << (g % 4 * 16));
        }
    }
    if (it->empty()) m.subgranules.erase(it);
    return m.granules[c];
}

std::vector<std::byte> encode_delta(const pool_geometry& g, std::uint64_t base_sequence, std::uint32_t index,
                                    std::span<const delta_entry> entries) {
    std::vector<std::byte> page;
    encode_delta(g, base_sequence, index, entries, page);
    return page;
}

void encode_delta(const pool_geometry& g, std::uint64_t base_sequence, std::uint32_t index,
                  std::span<const delta_entry> entries, std::vector<std::byte>& page) {
    page.assign(page_bytes, std::byte{0});
    const std::size_t n = std::min(entries.size(), max_delta_entries);
    std::memcpy(page.data() + sizeof(delta_header), entries.data(), n * sizeof(delta_entry));
    delta_header h{};
    std::memcpy(h.magic, delta_magic, 8);
    h.base_sequence = base_sequence;
    std::memcpy(h.pool_uuid, g.pool_uuid.bytes.data(), 16);
    h.index = index;
    h.count = static_cast<std::uint32_t>(n);
    h.crc32c = crc32c_extend(crc32c(&h, offsetof(delta_header, crc32c)), page.data() + sizeof h,
                             n * sizeof(delta_entry));
    std::memcpy(page.data(), &h, sizeof h);
}

decode_result apply_deltas(std::span<const std::byte> slot, std::uint64_t image_bytes, const pool_geometry& g,
                           metadata_state& m, std::string& why) {
    // Who owns what now, to refuse a logical cluster owned twice.
    std::set<std::pair<std::uint32_t, std::uint32_t>> owned;
    for (const auto& e : m.clusters) {
        if (e.owner != no_owner) owned.emplace(e.owner, e.logical);
    }
    auto corrupt = [&](std::uint32_t index, std::string what) {
        why = fmt::format("metadata delta page {}: {}", index, what);
        return decode_result::corrupt;
    };
    for (std::uint32_t index = 1;; ++index) {
        const std::uint64_t at = image_bytes + std::uint64_t(index - 1) * page_bytes;
        if (at + page_bytes > slot.size()) break;
        delta_header h;
        std::memcpy(&h, slot.data() + at, sizeof h);
        // Not a page that follows this image (never written, torn, of an
        // older image or another pool): the deltas end here.
        if (std::memcmp(h.magic, delta_magic, 8) != 0 || h.base_sequence != m.sequence || h.index != index ||
            std::memcmp(h.pool_uuid, g.pool_uuid.bytes.data(), 16) != 0 || h.count > max_delta_entries) {
            break;
        }
        if (crc32c_extend(crc32c(&h, offsetof(delta_header, crc32c)), slot.data() + at + sizeof h,
                          std::uint64_t(h.count) * sizeof(delta_entry)) != h.crc32c) {
            break;
        }
        for (std::uint32_t i = 0; i < h.count; ++i) {
            delta_entry e;
            std::memcpy(&e, slot.data() + at + sizeof h + i * sizeof e, sizeof e);
            if (e.cluster >= m.clusters.size()) return corrupt(index, fmt::format("cluster {} out of range", e.cluster));
            if (e.count == 0 || std::uint32_t(e.first) + e.count > subgranules_per_cluster) {
                return corrupt(index, fmt::format("subgranules {}+{} out of range", e.first, e.count));
            }
            auto vol = std::find_if(m.replicas.begin(), m.replicas.end(),
                                    [&](const replica_meta& r) { return r.id == e.owner; });
            if (vol == m.replicas.end() || vol->parent_id == 0 || vol->snapshot) {
                return corrupt(index, fmt::format("volume id {} does not exist, has no parent or is a snapshot",
                                                  e.owner));
            }
            if (e.logical >= (vol->size_bytes + g.cluster_size - 1) / g.cluster_size) {
                return corrupt(index, fmt::format("cluster {} beyond its volume's size", e.cluster));
            }
            auto& entry = m.clusters[e.cluster];
            if (entry.owner == no_owner) {
                if (!owned.emplace(e.owner, e.logical).second) {
                    return corrupt(index, fmt::format("volume id {} logical cluster {} is owned twice", e.owner,
                                                      e.logical));
                }
                entry = alloc_entry{e.owner, e.logical};
                m.granules[e.cluster] = 0;
            } else if (entry.owner != e.owner || entry.logical != e.logical) {
                return corrupt(index, fmt::format("cluster {} belongs to another volume", e.cluster));
            }
            add_subgranules(m, e.cluster, e.first, e.count);
        }
    }
    if (m.subgranules.size() > subgranule_capacity(g, m.clusters.size())) {
        why = "metadata deltas: more subgranule records than the slot holds";
        return decode_result::corrupt;
    }
    return decode_result::ok;
}

}  // namespace ioe::pool_format
