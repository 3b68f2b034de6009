// Version 2 of the pool's metadata slot without a device: round trips of
// volumes (parents, snapshot flags, txid, creation time), granule bitmaps and
// intents; every class of damage the importer must refuse (record CRCs,
// impossible parents, cycles, clusters owned twice, partial clusters of
// parentless volumes); torn updates of each record kind fall back to the
// older slot; version 1 slots under a version 2 superblock.
#include <gtest/gtest.h>

#include <cstring>
#include <fmt/format.h>

#include "runtime/crc32c.hh"
#include "storage/pool_format.hh"

using namespace ioe;
namespace pf = ioe::pool_format;

namespace {

pf::pool_geometry geometry_v2() {
    std::string why;
    auto g = pf::plan(1ull << 30, 4096, pf::default_cluster_size, why);
    EXPECT_TRUE(g) << why;
    g->name = "p0";
    g->pool_uuid = uuid::random();
    g->version = 2;
    return *g;
}

pf::replica_meta volume(std::uint32_t id, const char* name, bool thin, std::uint64_t size, std::uint32_t parent,
                        bool snapshot) {
    pf::replica_meta r;
    r.id = id;
    r.name = name;
    r.thin = thin;
    r.size_bytes = size;
    r.replica_uuid = uuid::random();
    r.parent_id = parent;
    r.snapshot = snapshot;
    r.created_ns = 1700000000123456789ull + id;
    r.txid = snapshot ? fmt::format("tx-{}", id) : "";
    return r;
}

// thick "base" (id 1) snapshotted as "s1" (id 2): s1 owns the old clusters,
// base has a fresh full set with partial bitmaps; "c1" (id 3) is a clone of
// s1 with one granule-bitmapped cluster; one merge intent.
pf::metadata_state sample(const pf::pool_geometry& g) {
    pf::metadata_state m;
    m.version = 2;
    m.sequence = 11;
    m.next_replica_id = 4;
    m.clusters.assign(g.cluster_count, pf::alloc_entry{0, 0});
    m.granules.assign(g.cluster_count, 0);
    m.replicas.push_back(volume(1, "base", false, 8ull << 20, 2, false));
    m.replicas.push_back(volume(2, "s1", false, 8ull << 20, 0, true));
    m.replicas.push_back(volume(3, "c1", true, 8ull << 20, 2, false));
    auto own = [&](std::size_t c, std::uint32_t owner, std::uint32_t logical, std::uint64_t bits) {
        m.clusters[c] = {owner, logical};
        m.granules[c] = bits;
    };
    own(0, 2, 0, pf::all_granules);
    own(1, 2, 1, pf::all_granules);
    own(2, 1, 0, 0x1);   // base, first granule written since the snapshot
    own(3, 1, 1, 0);     // reserved, nothing written yet
    own(7, 3, 1, 0x8000000000000001ull);
    m.intents.push_back(pf::intent_meta{pf::intent_merge, 3, 2, 1, 42});
    return m;
}

// Recomputes the slot CRC after a test edited bytes behind it.
void resign_slot(std::vector<std::byte>& slot) {
    pf::metadata_header_v2 h;
    std::memcpy(&h, slot.data(), sizeof h);
    const std::uint64_t payload = std::uint64_t(h.volume_count) * 256 + std::uint64_t(h.cluster_count) * 16 +
                                  std::uint64_t(h.intent_count) * 64;
    h.crc32c = crc32c_extend(crc32c(&h, offsetof(pf::metadata_header_v2, crc32c)), slot.data() + sizeof h, payload);
    std::memcpy(slot.data(), &h, sizeof h);
}

std::string refusal(const pf::pool_geometry& g, const pf::metadata_state& m) {
    pf::metadata_state out;
    std::string why;
    auto r = pf::decode_metadata(pf::encode_metadata(g, m), g, out, why);
    return r == pf::decode_result::corrupt ? why : "accepted or not corrupt: " + why;
}

}  // namespace

TEST(pool_format_v2, round_trip_keeps_every_field) {
    auto g = geometry_v2();
    auto m = sample(g);
    auto bytes = pf::encode_metadata(g, m);
    EXPECT_LE(bytes.size(), g.slot_bytes);
    EXPECT_LE(m.clusters.size(), pf::max_clusters_v2(g));
    pf::metadata_state back;
    std::string why;
    ASSERT_EQ(pf::decode_metadata(bytes, g, back, why), pf::decode_result::ok) << why;
    EXPECT_EQ(back.version, 2u);
    EXPECT_EQ(back.sequence, 11u);
    EXPECT_EQ(back.next_replica_id, 4u);
    ASSERT_EQ(back.replicas.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(back.replicas[i].name, m.replicas[i].name);
        EXPECT_EQ(back.replicas[i].parent_id, m.replicas[i].parent_id);
        EXPECT_EQ(back.replicas[i].snapshot, m.replicas[i].snapshot);
        EXPECT_EQ(back.replicas[i].thin, m.replicas[i].thin);
        EXPECT_EQ(back.replicas[i].created_ns, m.replicas[i].created_ns);
        EXPECT_EQ(back.replicas[i].txid, m.replicas[i].txid);
        EXPECT_EQ(back.replicas[i].replica_uuid, m.replicas[i].replica_uuid);
    }
    EXPECT_EQ(back.clusters, m.clusters);
    EXPECT_EQ(back.granules, m.granules);
    EXPECT_EQ(back.intents, m.intents);
}

TEST(pool_format_v2, version_2_slot_under_a_version_1_superblock_is_refused) {
    auto g = geometry_v2();
    auto bytes = pf::encode_metadata(g, sample(g));
    auto g1 = g;
    g1.version = 1;
    pf::metadata_state out;
    std::string why;
    EXPECT_EQ(pf::decode_metadata(bytes, g1, out, why), pf::decode_result::corrupt);
    EXPECT_NE(why.find("under a version 1 superblock"), std::string::npos) << why;
}

TEST(pool_format_v2, version_1_slot_under_a_version_2_superblock_reads_whole_clusters) {
    auto g = geometry_v2();
    pf::metadata_state m;
    m.sequence = 3;
    m.next_replica_id = 2;
    m.clusters.assign(g.cluster_count, pf::alloc_entry{0, 0});
    m.replicas.push_back(pf::replica_meta{1, true, 8ull << 20, uuid::random(), "old"});
    m.clusters[4] = {1, 1};
    auto bytes = pf::encode_metadata(g, m);  // m.version == 1
    pf::metadata_state out;
    std::string why;
    ASSERT_EQ(pf::decode_metadata(bytes, g, out, why), pf::decode_result::ok) << why;
    EXPECT_EQ(out.version, 1u);
    EXPECT_EQ(out.granules[4], pf::all_granules);
    EXPECT_EQ(out.granules[5], 0u);
    EXPECT_EQ(out.replicas[0].parent_id, 0u);
    EXPECT_FALSE(out.replicas[0].snapshot);
}

TEST(pool_format_v2, damaged_records_are_refused_with_what_is_wrong) {
    auto g = geometry_v2();
    const std::uint64_t vol0 = 64, map0 = 64 + 3 * 256, intent0 = map0 + g.cluster_count * 16;
    struct damage {
        std::uint64_t offset;
        const char* expect;
    };
    for (damage d : {damage{vol0 + 40, "volume record 0 checksum"}, damage{vol0 + 256 + 170, "volume record 1 checksum"},
                     damage{map0 + 2 * 16 + 9, "cluster map checksum"}, damage{intent0 + 5, "intent record 0 checksum"}}) {
        auto bytes = pf::encode_metadata(g, sample(g));
        bytes[d.offset] ^= std::byte{0x40};
        pf::metadata_state out;
        std::string why;
        // Without re-signing the slot CRC catches it; re-signed, the record's own.
        EXPECT_EQ(pf::decode_metadata(bytes, g, out, why), pf::decode_result::bad_checksum) << d.expect;
        resign_slot(bytes);
        EXPECT_EQ(pf::decode_metadata(bytes, g, out, why), pf::decode_result::corrupt) << d.expect;
        EXPECT_NE(why.find(d.expect), std::string::npos) << why;
    }
}

TEST(pool_format_v2, impossible_references_are_refused) {
    auto g = geometry_v2();
    {
        auto m = sample(g);
        m.replicas[2].parent_id = 9;
        EXPECT_NE(refusal(g, m).find("parent id 9 does not exist"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.replicas[2].parent_id = 1;  // base is not a snapshot
        EXPECT_NE(refusal(g, m).find("is not a snapshot"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);  // s1 -> s4 -> s1
        m.replicas[1].parent_id = 4;
        m.replicas.push_back(volume(4, "s4", true, 8ull << 20, 2, true));
        m.next_replica_id = 5;
        EXPECT_NE(refusal(g, m).find("cycle"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.replicas[1].parent_id = 2;
        EXPECT_NE(refusal(g, m).find("its own parent"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.clusters[9] = {2, 1};  // s1's logical 1 a second time
        m.granules[9] = pf::all_granules;
        EXPECT_NE(refusal(g, m).find("owned twice"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.clusters[9] = {7, 0};
        m.granules[9] = 1;
        EXPECT_NE(refusal(g, m).find("unknown volume id 7"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.granules[0] = 0xff;  // s1 has no parent: its clusters must be whole
        EXPECT_NE(refusal(g, m).find("is not whole"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.granules[5] = 1;  // a free cluster with granules
        EXPECT_NE(refusal(g, m).find("free cluster 5"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.clusters[3] = {0, 0};  // thick base lost a reserved cluster
        m.granules[3] = 0;
        EXPECT_NE(refusal(g, m).find("thick volume \"base\""), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.replicas[0].discarded = true;  // only snapshots can be discarded
        EXPECT_NE(refusal(g, m).find("discarded but not a snapshot"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.intents[0].other_id = 12;
        EXPECT_NE(refusal(g, m).find("intent record 0"), std::string::npos) << refusal(g, m);
    }
    {
        auto m = sample(g);
        m.intents[0].kind = 9;
        EXPECT_NE(refusal(g, m).find("unknown kind"), std::string::npos) << refusal(g, m);
    }
}

// A newer slot torn inside each kind of record (or cut after its first page)
// must fall back to the older slot, whole.
TEST(pool_format_v2, torn_update_of_each_record_falls_back_to_the_older_slot) {
    auto g = geometry_v2();
    auto old_state = sample(g);
    auto older = pf::encode_metadata(g, old_state);
    older.resize(g.slot_bytes);
    auto new_state = old_state;
    new_state.sequence = 12;
    new_state.replicas.push_back(volume(4, "s2", true, 8ull << 20, 2, true));
    new_state.replicas[2].parent_id = 4;  // c1's parent becomes s2
    new_state.next_replica_id = 5;
    new_state.clusters[7].owner = 4;  // c1's cluster moves to s2
    new_state.clusters[20] = {3, 0};  // a COW cluster of c1 with one granule
    new_state.granules[20] = 0x10;
    new_state.intents.clear();
    const std::uint64_t map0 = 64 + 4 * 256;
    const std::uint64_t tears[] = {64 + 3 * 256 + 100, 64 + 2 * 256 + 160, map0 + 7 * 16, map0 + 20 * 16 + 8};
    for (std::uint64_t tear : tears) {
        auto newer = pf::encode_metadata(g, new_state);
        newer.resize(g.slot_bytes);
        pf::metadata_state out;
        std::string why;
        ASSERT_EQ(pf::choose_metadata(older, newer, g, out, why), pf::decode_result::ok) << why;
        EXPECT_EQ(out.sequence, 12u);
        // The write stopped at `tear`: the rest of the slot still holds zeros.
        std::memset(newer.data() + tear, 0, newer.size() - tear);
        ASSERT_EQ(pf::choose_metadata(older, newer, g, out, why), pf::decode_result::ok) << why;
        EXPECT_EQ(out.sequence, 11u) << "tear at " << tear;
        EXPECT_EQ(out.replicas.size(), 3u);
        EXPECT_EQ(out.replicas[2].parent_id, 2u);
        EXPECT_EQ(out.clusters, old_state.clusters);
        EXPECT_EQ(out.granules, old_state.granules);
        EXPECT_EQ(out.intents, old_state.intents);
    }
    // Torn inside the intent records of a newer slot that has one.
    auto with_intent = old_state;
    with_intent.sequence = 12;
    with_intent.intents[0].progress = 2;
    auto newer = pf::encode_metadata(g, with_intent);
    newer.resize(g.slot_bytes);
    const std::uint64_t intent0 = 64 + 3 * 256 + g.cluster_count * 16;
    std::memset(newer.data() + intent0 + 12, 0, 52);
    pf::metadata_state out;
    std::string why;
    ASSERT_EQ(pf::choose_metadata(older, newer, g, out, why), pf::decode_result::ok) << why;
    EXPECT_EQ(out.sequence, 11u);
    EXPECT_EQ(out.intents[0].progress, 1u);
}

TEST(pool_format_v2, capacity_of_a_version_2_slot) {
    auto g = geometry_v2();
    // 1 GiB with 4 MiB clusters: max_clusters 4096, a v1-sized slot holds
    // about half as many 16-byte entries.
    EXPECT_GE(pf::max_clusters_v2(g), g.max_clusters / 2 - 512);
    EXPECT_LE(pf::metadata_bytes_v2(g.max_replicas, pf::max_clusters_v2(g), pf::max_intents), g.slot_bytes);
    EXPECT_EQ(pf::granule_bytes(g), 64u * 1024);
    EXPECT_EQ(pf::clusters_fitting(g, 1ull << 40), pf::max_clusters_v2(g));
}
