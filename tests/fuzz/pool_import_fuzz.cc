// Fuzz target for the pool importer's decoding (storage/pool_format.cc):
// arbitrary bytes, and mutations of a valid pool image, must be refused
// cleanly or accepted consistently, never crash or read out of bounds.
//
// Input layout: byte 0 selects the mode.
//   bit 0 = 0: the rest of the input is the device image itself.
//   bit 0 = 1: a valid image (a pool with thick and thin replicas) is mutated
//              by (offset u32, value u8) triples from the rest of the input;
//              bit 1 = 1 then re-signs every checksum so that the semantic
//              checks behind the CRCs are reached too.
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
        back.next_replica_id != m.next_replica_id) {
        __builtin_trap();
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
        img = valid_image();
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
