// The pool format without a device: encode/decode round trips, the newest
// valid copy wins, checksum damage falls back to the other copy, newer
// versions are refused, and semantically broken metadata is caught.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/crc32c.hh"
#include "storage/pool_format.hh"

using namespace ioe;
namespace pf = ioe::pool_format;

namespace {

pf::pool_geometry geometry() {
    std::string why;
    auto g = pf::plan(1ull << 30, 4096, pf::default_cluster_size, why);
    EXPECT_TRUE(g) << why;
    g->name = "p0";
    g->pool_uuid = uuid::random();
    return *g;
}

pf::metadata_state sample_state(const pf::pool_geometry& g) {
    pf::metadata_state m;
    m.sequence = 7;
    m.next_replica_id = 3;
    m.clusters.assign(g.cluster_count, pf::alloc_entry{0, 0});
    m.replicas.push_back(pf::replica_meta{1, false, 8ull << 20, uuid::random(), "thick-1"});
    m.replicas.push_back(pf::replica_meta{2, true, 64ull << 20, uuid::random(), "thin-2"});
    m.clusters[0] = {1, 0};
    m.clusters[1] = {1, 1};
    m.clusters[5] = {2, 9};
    return m;
}

// Re-signs a superblock page after a test edited it.
void resign(std::vector<std::byte>& page) {
    pf::superblock sb;
    std::memcpy(&sb, page.data(), sizeof sb);
    sb.crc32c = crc32c(&sb, offsetof(pf::superblock, crc32c));
    std::memcpy(page.data(), &sb, sizeof sb);
}

}  // namespace

TEST(pool_format, plan_of_one_gib_with_4mib_clusters) {
    auto g = geometry();
    EXPECT_EQ(g.data_offset, 4u << 20);
    EXPECT_EQ(g.cluster_count, 255u);
    EXPECT_EQ(g.max_clusters, 4096u);
    EXPECT_EQ(g.slot_bytes % 4096, 0u);
    EXPECT_GE(g.slot_bytes, 64u + 256 * 256 + 4096 * 8);
    std::string why;
    EXPECT_FALSE(pf::plan(4u << 20, 4096, pf::default_cluster_size, why));
    EXPECT_NE(why.find("needs at least"), std::string::npos) << why;
    EXPECT_FALSE(pf::plan(1ull << 30, 4096, 3u << 20, why));
    EXPECT_NE(why.find("power of two"), std::string::npos) << why;
}

TEST(pool_format, superblock_round_trip) {
    auto g = geometry();
    auto page = pf::encode_superblock(g, 42);
    ASSERT_EQ(page.size(), 4096u);
    pf::pool_geometry back;
    std::string why;
    ASSERT_EQ(pf::decode_superblock(page, back, why), pf::decode_result::ok) << why;
    EXPECT_EQ(back.name, "p0");
    EXPECT_EQ(back.pool_uuid, g.pool_uuid);
    EXPECT_EQ(back.sequence, 42u);
    EXPECT_EQ(back.cluster_count, g.cluster_count);
    EXPECT_EQ(back.data_offset, g.data_offset);
    EXPECT_EQ(back.slot_bytes, g.slot_bytes);
}

TEST(pool_format, newest_valid_superblock_wins_and_damage_falls_back) {
    auto g = geometry();
    auto older = pf::encode_superblock(g, 5);
    auto newer = pf::encode_superblock(g, 6);
    pf::pool_geometry out;
    std::string why;
    ASSERT_EQ(pf::choose_superblock(older, newer, out, why), pf::decode_result::ok);
    EXPECT_EQ(out.sequence, 6u);
    newer[200] ^= std::byte{1};  // torn / rotten: checksum no longer matches
    ASSERT_EQ(pf::choose_superblock(older, newer, out, why), pf::decode_result::ok);
    EXPECT_EQ(out.sequence, 5u);
    older[300] ^= std::byte{1};
    EXPECT_EQ(pf::choose_superblock(older, newer, out, why), pf::decode_result::bad_checksum);
    EXPECT_NE(why.find("checksum"), std::string::npos) << why;
    std::vector<std::byte> zero(4096);
    EXPECT_EQ(pf::choose_superblock(zero, zero, out, why), pf::decode_result::no_magic);
}

TEST(pool_format, newer_version_is_refused_with_a_clear_message) {
    auto g = geometry();
    auto page = pf::encode_superblock(g, 9);
    pf::superblock sb;
    std::memcpy(&sb, page.data(), sizeof sb);
    sb.version = 3;
    std::memcpy(page.data(), &sb, sizeof sb);
    resign(page);
    auto old = pf::encode_superblock(g, 8);
    pf::pool_geometry out;
    std::string why;
    EXPECT_EQ(pf::choose_superblock(old, page, out, why), pf::decode_result::newer_version);
    EXPECT_NE(why.find("format version 3 is newer"), std::string::npos) << why;
}

TEST(pool_format, inconsistent_superblock_fields_are_corrupt) {
    auto g = geometry();
    auto page = pf::encode_superblock(g, 1);
    pf::superblock sb;
    std::memcpy(&sb, page.data(), sizeof sb);
    sb.cluster_count = sb.max_clusters + 1;
    std::memcpy(page.data(), &sb, sizeof sb);
    resign(page);
    pf::pool_geometry out;
    std::string why;
    EXPECT_EQ(pf::decode_superblock(page, out, why), pf::decode_result::corrupt);
}

TEST(pool_format, metadata_round_trip) {
    auto g = geometry();
    auto m = sample_state(g);
    auto bytes = pf::encode_metadata(g, m);
    EXPECT_EQ(bytes.size() % 4096, 0u);
    EXPECT_LE(bytes.size(), g.slot_bytes);
    pf::metadata_state back;
    std::string why;
    ASSERT_EQ(pf::decode_metadata(bytes, g, back, why), pf::decode_result::ok) << why;
    EXPECT_EQ(back.sequence, 7u);
    EXPECT_EQ(back.next_replica_id, 3u);
    ASSERT_EQ(back.replicas.size(), 2u);
    EXPECT_EQ(back.replicas[0].name, "thick-1");
    EXPECT_FALSE(back.replicas[0].thin);
    EXPECT_TRUE(back.replicas[1].thin);
    EXPECT_EQ(back.replicas[1].replica_uuid, m.replicas[1].replica_uuid);
    EXPECT_EQ(back.clusters, m.clusters);
}

TEST(pool_format, torn_newer_slot_falls_back_to_the_older_one) {
    auto g = geometry();
    auto m = sample_state(g);
    auto older = pf::encode_metadata(g, m);
    m.sequence = 8;
    m.clusters[6] = {2, 10};
    auto newer = pf::encode_metadata(g, m);
    newer.resize(g.slot_bytes);
    older.resize(g.slot_bytes);
    pf::metadata_state out;
    std::string why;
    ASSERT_EQ(pf::choose_metadata(older, newer, g, out, why), pf::decode_result::ok);
    EXPECT_EQ(out.sequence, 8u);
    // Tear the newer slot in its payload: the older state comes back whole.
    std::memset(newer.data() + 64 + 2 * 256, 0, 16);
    ASSERT_EQ(pf::choose_metadata(older, newer, g, out, why), pf::decode_result::ok);
    EXPECT_EQ(out.sequence, 7u);
    EXPECT_EQ(out.clusters[6].owner, 0u);
}

TEST(pool_format, broken_metadata_is_refused) {
    auto g = geometry();
    std::string why;
    pf::metadata_state out;
    {
        auto m = sample_state(g);
        m.clusters[7] = {2, 9};  // the same logical cluster stored twice
        EXPECT_EQ(pf::decode_metadata(pf::encode_metadata(g, m), g, out, why), pf::decode_result::corrupt);
        EXPECT_NE(why.find("stored twice"), std::string::npos) << why;
    }
    {
        auto m = sample_state(g);
        m.clusters[8] = {5, 0};  // unknown owner
        EXPECT_EQ(pf::decode_metadata(pf::encode_metadata(g, m), g, out, why), pf::decode_result::corrupt);
    }
    {
        auto m = sample_state(g);
        m.clusters[1] = {0, 0};  // thick replica missing a cluster
        EXPECT_EQ(pf::decode_metadata(pf::encode_metadata(g, m), g, out, why), pf::decode_result::corrupt);
        EXPECT_NE(why.find("thick replica"), std::string::npos) << why;
    }
    {
        auto m = sample_state(g);
        m.clusters[9] = {2, 16};  // beyond the thin replica's 16 clusters
        EXPECT_EQ(pf::decode_metadata(pf::encode_metadata(g, m), g, out, why), pf::decode_result::corrupt);
    }
    {
        auto other = g;
        other.pool_uuid = uuid::random();
        EXPECT_EQ(pf::decode_metadata(pf::encode_metadata(other, sample_state(g)), g, out, why),
                  pf::decode_result::corrupt);
        EXPECT_NE(why.find("another pool"), std::string::npos) << why;
    }
}
