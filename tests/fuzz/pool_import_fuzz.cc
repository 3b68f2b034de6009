// Fuzz target for the pool importer's decoding (storage/pool_format.cc):
// arbitrary bytes, and mutations of a valid pool image, must be refused
// cleanly or accepted consistently, never crash or read out of bounds.
//
// Input layout: byte 0 selects the mode.
//   bit 0 = 0: the rest of the input is the device image itself.
//   bit 0 = 1: a valid image (a pool with thick and thin replicas) is mutated
//              by (offset u32, value u8) triples from the rest of the input;
//              bit 1 = 1 then re-signs every checksum (superblocks, slots,
//              and in version 2 every volume and intent record and the
//              cluster map) so that the semantic checks behind the CRCs are
//              reached too;
//              bit 2 = 1 starts from a version 2 image instead: a snapshot
//              chain, a clone, granule bitmaps and an intent record.
// An accepted image must re-encode to bytes that decode to the same state
// (the paired assertion of the format).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/crc32c.hh"
#include "storage/pool_format.hh"

namespace pf = ioe::pool_format;

namespace {

const pf::pool_geometry& valid_geometry() {
    static pf::pool_geometry g = [] {
        std::string why;
        auto g = pf::plan(64ull << 20, 4096, 1u << 20, why);
        g->name = "fuzz";
        g->pool_uuid = ioe::uuid::parse("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9").value();
        return *g;
    }();
    return g;
}

const pf::pool_geometry& valid_geometry_v2() {
    static pf::pool_geometry g = [] {
        auto g = valid_geometry();
        g.version = 2;
        return g;
    }();
    return g;
}

pf::replica_meta volume(std::uint32_t id, const char* name, bool thin, std::uint32_t parent, bool snapshot) {
    pf::replica_meta r{id, thin, 4u << 20, ioe::uuid::random(), name};
    r.parent_id = parent;
    r.snapshot = snapshot;
    r.created_ns = 1700000000000000000ull + id;
    r.txid = snapshot ? "tx" : "";
    return r;
}

// A version 2 pool: thick "base" (1) over snapshots s2 (3) <- s1 (2), a
// clone "c" (4) of s1 with partial clusters, and a merge intent.
const std::vector<std::byte>& valid_image_v2() {
    static std::vector<std::byte> img = [] {
        const auto& g = valid_geometry_v2();
        std::vector<std::byte> out(pf::metadata_offset + 2 * g.slot_bytes);
        auto sb1 = pf::encode_superblock(g, 1), sb2 = pf::encode_superblock(g, 2);
        std::memcpy(out.data() + pf::superblock_offset[1], sb1.data(), sb1.size());
        std::memcpy(out.data() + pf::superblock_offset[0], sb2.data(), sb2.size());
        pf::metadata_state m;
        m.version = 2;
        m.sequence = 5;
        m.next_replica_id = 5;
        m.clusters.assign(g.cluster_count, pf::alloc_entry{0, 0});
        m.granules.assign(g.cluster_count, 0);
        m.replicas.push_back(volume(1, "base", false, 3, false));
        m.replicas.push_back(volume(2, "s1", true, 0, true));
        m.replicas.push_back(volume(3, "s2", false, 2, true));
        m.replicas.push_back(volume(4, "c", true, 2, false));
        auto own = [&](std::size_t c, std::uint32_t owner, std::uint32_t logical, std::uint64_t bits) {
            m.clusters[c] = {owner, logical};
            m.granules[c] = bits;
        };
        own(0, 2, 0, pf::all_granules);
        own(1, 3, 0, 0xf0);
        own(2, 3, 1, 0);
        own(3, 3, 2, 1);
        own(4, 3, 3, 0);
        for (std::uint32_t l = 0; l < 4; ++l) own(5 + l, 1, l, l == 2 ? 0x3 : 0);
        own(12, 4, 3, 0x8000000000000000ull);
        m.intents.push_back(pf::intent_meta{pf::intent_merge, 3, 2, 1, 9});
        auto slot = pf::encode_metadata(g, m);
        std::memcpy(out.data() + pf::metadata_offset + (m.sequence % 2) * g.slot_bytes, slot.data(), slot.size());
        m.sequence = 4;
        m.clusters[12] = {0, 0};
        m.granules[12] = 0;
        slot = pf::encode_metadata(g, m);
        std::memcpy(out.data() + pf::metadata_offset + (m.sequence % 2) * g.slot_bytes, slot.data(), slot.size());
        return out;
    }();
    return img;
}

const std::vector<std::byte>& valid_image() {
    static std::vector<std::byte> img = [] {
        const auto& g = valid_geometry();
        std::vector<std::byte> out(pf::metadata_offset + 2 * g.slot_bytes);
        auto sb1 = pf::encode_superblock(g, 1), sb2 = pf::encode_superblock(g, 2);
        std::memcpy(out.data() + pf::superblock_offset[1], sb1.data(), sb1.size());
        std::memcpy(out.data() + pf::superblock_offset[0], sb2.data(), sb2.size());
        pf::metadata_state m;
        m.sequence = 3;
        m.next_replica_id = 3;
        m.clusters.assign(g.cluster_count, pf::alloc_entry{0, 0});
        m.replicas.push_back(pf::replica_meta{1, false, 2u << 20, ioe::uuid::random(), "thick"});
        m.replicas.push_back(pf::replica_meta{2, true, 8u << 20, ioe::uuid::random(), "thin"});
        m.clusters[0] = {1, 0};
        m.clusters[1] = {1, 1};
        m.clusters[4] = {2, 5};
        auto slot = pf::encode_metadata(g, m);
        std::memcpy(out.data() + pf::metadata_offset + (m.sequence % 2) * g.slot_bytes, slot.data(), slot.size());
        m.sequence = 2;
        m.clusters[4] = {0, 0};
        slot = pf::encode_metadata(g, m);
        std::memcpy(out.data() + pf::metadata_offset + (m.sequence % 2) * g.slot_bytes, slot.data(), slot.size());
        return out;
    }();
    return img;
}

// Re-signs a version 2 slot at `off`: every record CRC it can reach, the
// cluster map's, then the slot's.
void resign_v2(std::vector<std::byte>& img, std::uint64_t off) {
    pf::metadata_header_v2 h;
    std::memcpy(&h, img.data() + off, sizeof h);
    std::byte* p = img.data() + off + sizeof h;
    const std::byte* end = img.data() + img.size();
    auto room = [&](std::uint64_t n) { return static_cast<std::uint64_t>(end - p) >= n; };
    for (std::uint32_t i = 0; i < h.volume_count && room(sizeof(pf::volume_record)); ++i) {
        pf::volume_record r;
        std::memcpy(&r, p, sizeof r);
        r.crc32c = ioe::crc32c(&r, offsetof(pf::volume_record, crc32c));
        std::memcpy(p, &r, sizeof r);
        p += sizeof r;
    }
    const std::uint64_t map = std::min<std::uint64_t>(std::uint64_t(h.cluster_count) * 16, end - p);
    h.map_crc32c = ioe::crc32c(p, map);
    p += map;
    for (std::uint32_t i = 0; i < h.intent_count && room(sizeof(pf::intent_record)); ++i) {
        pf::intent_record r;
        std::memcpy(&r, p, sizeof r);
        r.crc32c = ioe::crc32c(&r, offsetof(pf::intent_record, crc32c));
        std::memcpy(p, &r, sizeof r);
        p += sizeof r;
    }
    const std::uint64_t payload = std::uint64_t(h.volume_count) * 256 + std::uint64_t(h.cluster_count) * 16 +
                                  std::uint64_t(h.intent_count) * 64;
    const std::uint64_t avail = img.size() - off - sizeof h;
    h.crc32c = ioe::crc32c_extend(ioe::crc32c(&h, offsetof(pf::metadata_header_v2, crc32c)),
                                  img.data() + off + sizeof h, std::min(payload, avail));
    std::memcpy(img.data() + off, &h, sizeof h);
}

void resign(std::vector<std::byte>& img) {
    for (std::uint64_t off : pf::superblock_offset) {
        if (off + sizeof(pf::superblock) > img.size()) continue;
        pf::superblock sb;
        std::memcpy(&sb, img.data() + off, sizeof sb);
        sb.crc32c = ioe::crc32c(&sb, offsetof(pf::superblock, crc32c));
        std::memcpy(img.data() + off, &sb, sizeof sb);
    }
    const auto& g = valid_geometry();
    for (int s = 0; s < 2; ++s) {
        std::uint64_t off = pf::metadata_offset + s * g.slot_bytes;
        if (off + sizeof(pf::metadata_header) > img.size()) continue;
        if (std::memcmp(img.data() + off, "IOEMETA2", 8) == 0) {
            resign_v2(img, off);
            continue;
        }
        pf::metadata_header h;
        std::memcpy(&h, img.data() + off, sizeof h);
        std::uint64_t room = img.size() - off - sizeof h;
        std::uint64_t payload = std::min<std::uint64_t>(h.payload_bytes, room);
        h.crc32c = ioe::crc32c_extend(ioe::crc32c(&h, offsetof(pf::metadata_header, crc32c)),
                                      img.data() + off + sizeof h, payload);
        std::memcpy(img.data() + off, &h, sizeof h);
    }
}

void import(const std::vector<std::byte>& img) {
    std::span<const std::byte> all(img);
    auto page = [&](std::uint64_t off) {
        return off >= all.size() ? std::span<const std::byte>() : all.subspan(off, std::min<std::uint64_t>(4096, all.size() - off));
    };
    pf::pool_geometry g;
    std::string why;
    if (pf::choose_superblock(page(0), page(4096), g, why) != pf::decode_result::ok) return;
    auto slot = [&](int s) {
        std::uint64_t off = pf::metadata_offset + s * g.slot_bytes;
        if (off >= all.size()) return std::span<const std::byte>();
        return all.subspan(off, std::min<std::uint64_t>(g.slot_bytes, all.size() - off));
    };
    pf::metadata_state m;
    if (pf::choose_metadata(slot(0), slot(1), g, m, why) != pf::decode_result::ok) return;
    // Paired assertion: what was accepted survives a round trip unchanged.
    g.cluster_count = m.clusters.size();
    auto again = pf::encode_metadata(g, m);
    pf::metadata_state back;
    if (pf::decode_metadata(again, g, back, why) != pf::decode_result::ok) __builtin_trap();
    if (back.clusters != m.clusters || back.replicas.size() != m.replicas.size() ||
        back.next_replica_id != m.next_replica_id || back.granules != m.granules || back.intents != m.intents ||
        back.version != m.version) {
        __builtin_trap();
    }
    for (std::size_t i = 0; i < m.replicas.size(); ++i) {
        const auto &a = m.replicas[i], &b = back.replicas[i];
        if (a.parent_id != b.parent_id || a.snapshot != b.snapshot || a.discarded != b.discarded ||
            a.txid != b.txid || a.created_ns != b.created_ns || a.name != b.name) {
            __builtin_trap();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    std::vector<std::byte> img;
    if ((mode & 1) == 0) {
        img.assign(reinterpret_cast<const std::byte*>(data + 1), reinterpret_cast<const std::byte*>(data + size));
    } else {
        img = (mode & 4) ? valid_image_v2() : valid_image();
        for (std::size_t i = 1; i + 5 <= size; i += 5) {
            std::uint32_t off;
            std::memcpy(&off, data + i, 4);
            // Most mutations land in the headers, where the decisions are.
            std::uint64_t where = (off & 0x80000000u) ? off % img.size() : (off % 512) + ((off >> 9) % 4) * 4096 +
                                                                              ((off >> 11) & 1) * pf::metadata_offset;
            if (where < img.size()) img[where] = std::byte{data[i + 4]};
        }
        if (mode & 2) resign(img);
    }
    import(img);
    return 0;
}
