// Subgranule redirect (storage/pool_redirect.cc): a write that covers whole
// subgranules of a granule its volume lacks is written in place, without a
// copy of the granule. On malloc devices with 1 MiB clusters (16 KiB
// granules of four 4 KiB blocks, 1 KiB subgranules): a block at every
// offset of every granule and across granule and cluster edges reads back
// (before and after export/import) and leaves the rest of its granule
// referenced in the snapshot; a copy (write zeroes) over a partly present
// granule keeps the redirected blocks; partly present granules survive a
// snapshot, a merge, an inflate and a restore. Without a device: slot
// version 3 round trips and its damage is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "runtime/crc32c.hh"
#include "storage/pool.hh"
#include "storage/pool_format.hh"
#include "tests/unit/pool_snapshot_util.hh"

using namespace ioe;
using namespace ioe::test::snapshots;
namespace pf = ioe::pool_format;

namespace {

constexpr std::uint64_t block_bytes = 4096;

// Bytes of the blocks a volume's model has apart from its snapshot's.
std::uint64_t own_bytes(const content& volume, const content& snapshot) {
    std::uint64_t n = 0;
    for (std::size_t b = 0; b < volume.size(); ++b) n += volume[b] != snapshot[b] ? block_bytes : 0;
    return n;
}

std::uint64_t referenced(pool& p, const std::string& name) {
    for (const auto& r : p.list_replicas()) {
        if (r.name == name) return r.referenced_bytes;
    }
    return ~std::uint64_t(0);
}

}  // namespace

TEST(pool_redirect, block_at_every_granule_offset_and_across_edges_needs_no_copy) {
    int bad_rep = -2, bad_snap = -2, bad_rep_after = -2, bad_snap_after = -2, bad_zeroed = -2;
    std::uint64_t ref_partial = 0, ref_edges = 0, ref_whole = 0, ref_after = 0, own_edges = 0;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r", uuid::random(), 3 * MiB, true);
        content rm(3 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, 3 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        content sm = rm;
        // One block in each of the 64 granules of cluster 1, at each of the
        // four offsets inside a granule in turn: 64 redirects, no copy.
        for (std::uint64_t g = 0; g < 64; ++g) {
            const std::uint64_t lba = blocks_per_cluster + g * 4 + g % 4;
            if (co_await write_model(r, rm, lba, 1, static_cast<std::uint16_t>(100 + g)) != io_status::success) {
                co_return 2;
            }
        }
        ref_partial = referenced(*p, "r");
        // Across the edges 0|1 and 1|2 (granule and cluster edges), and a
        // two-block write across a granule edge inside cluster 1.
        if (co_await write_model(r, rm, blocks_per_cluster - 3, 6, 7) != io_status::success) co_return 3;
        if (co_await write_model(r, rm, 2 * blocks_per_cluster - 1, 2, 8) != io_status::success) co_return 4;
        if (co_await write_model(r, rm, blocks_per_cluster + 4 * 10 + 3, 2, 9) != io_status::success) co_return 5;
        ref_edges = referenced(*p, "r");
        own_edges = own_bytes(rm, sm);
        // The other three blocks of granule 20 of cluster 1: it becomes whole.
        for (std::uint64_t b = 0; b < 4; ++b) {
            if (b == 20 % 4) continue;
            if (co_await write_model(r, rm, blocks_per_cluster + 80 + b, 1, 11) != io_status::success) co_return 6;
        }
        ref_whole = referenced(*p, "r");
        bad_rep = co_await mismatches(r, rm);
        bad_snap = co_await mismatches(p->find_replica("s"), sm);
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        replica* r2 = q->find_replica("r");
        bad_rep_after = co_await mismatches(r2, rm);
        bad_snap_after = co_await mismatches(q->find_replica("s"), sm);
        ref_after = referenced(*q, "r");
        // Write zeroes over the block after a redirected one (granule 30,
        // block 2 redirected): the granule is copied, the redirected block kept.
        const std::uint64_t lba = blocks_per_cluster + 30 * 4 + 3;
        if (co_await r2->channel()->write_zeroes(lba, 1) != io_status::success) co_return 7;
        rm[lba] = -1;
        bad_zeroed = co_await mismatches(r2, rm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    // Only the written blocks left the snapshot: no granule was copied.
    EXPECT_EQ(ref_partial, 3 * MiB - 64 * block_bytes);
    EXPECT_EQ(own_edges, (64 + 8) * block_bytes);  // blocks 256 and 511 were written before
    EXPECT_EQ(ref_edges, 3 * MiB - own_edges);
    EXPECT_EQ(ref_whole, ref_edges - 3 * block_bytes);
    EXPECT_EQ(ref_after, ref_whole);
    EXPECT_EQ(bad_rep, 0);
    EXPECT_EQ(bad_snap, 0);
    EXPECT_EQ(bad_rep_after, 0);
    EXPECT_EQ(bad_snap_after, 0);
    EXPECT_EQ(bad_zeroed, 0);
}

TEST(pool_redirect, partly_present_granules_survive_snapshot_merge_inflate_and_restore) {
    int step = 0;
    int bad = -2;
    std::uint64_t c_referenced = 1;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r", uuid::random(), 2 * MiB, false);
        std::map<std::string, content> m;
        m["r"] = content(2 * blocks_per_cluster, -1);
        if (co_await write_model(r, m["r"], 0, 2 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s1"));
        m["s1"] = m["r"];
        // Scattered single blocks: every granule of both clusters partly present.
        auto scatter = [&](block_device* v, content& model, std::uint64_t phase, std::uint16_t seed) -> future<bool> {
            for (std::uint64_t b = phase; b < model.size(); b += 5) {
                if (co_await write_model(v, model, b, 1, seed) != io_status::success) co_return false;
            }
            co_return true;
        };
        if (!co_await scatter(r, m["r"], 0, 2)) co_return 2;
        co_await p->snapshot_replica("r", snap("s2"));  // takes the partly present clusters
        m["s2"] = m["r"];
        if (!co_await scatter(r, m["r"], 1, 3)) co_return 3;
        replica* c = co_await p->clone_snapshot("s2", "c");
        m["c"] = m["s2"];
        if (!co_await scatter(c, m["c"], 2, 4)) co_return 4;
        auto check = [&](pool& pl, int at) -> future<bool> {
            for (const auto& [name, model] : m) {
                int n = co_await mismatches(pl.find_replica(name), model);
                if (n != 0) {
                    step = at;
                    bad = n;
                    co_return false;
                }
            }
            co_return true;
        };
        if (!co_await check(*p, 10)) co_return 10;
        co_await p->destroy_replica("s1");  // merged into s2, its only child
        m.erase("s1");
        if (!co_await check(*p, 11)) co_return 11;
        co_await p->inflate_replica("c");
        c_referenced = referenced(*p, "c");
        if (!co_await check(*p, 12)) co_return 12;
        co_await p->restore_replica("r", "s2");
        m["r"] = m["s2"];
        if (!co_await check(*p, 13)) co_return 13;
        if (!co_await scatter(p->find_replica("r"), m["r"], 3, 5)) co_return 14;
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        if (!co_await check(*q, 15)) co_return 15;
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0) << "step " << step << ": " << bad << " blocks differ";
    EXPECT_EQ(c_referenced, 0u);
}

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

// A snapshot (id 1) and its clone (id 2), which holds two clusters with
// partly present granules.
pf::metadata_state with_subgranules(const pf::pool_geometry& g) {
    pf::metadata_state m;
    m.version = 2;
    m.sequence = 5;
    m.next_replica_id = 3;
    m.clusters.assign(g.cluster_count, pf::alloc_entry{0, 0});
    m.granules.assign(g.cluster_count, 0);
    pf::replica_meta s;
    s.id = 1;
    s.name = "s";
    s.size_bytes = 16ull << 20;
    s.snapshot = true;
    s.thin = true;
    s.replica_uuid = uuid::random();
    pf::replica_meta c = s;
    c.id = 2;
    c.name = "c";
    c.snapshot = false;
    c.thin = true;
    c.parent_id = 1;
    c.replica_uuid = uuid::random();
    m.replicas = {s, c};
    m.clusters[0] = {1, 0};
    m.clusters[1] = {1, 1};
    m.granules[0] = m.granules[1] = pf::all_granules;
    m.clusters[4] = {2, 0};
    m.granules[4] = 0x2;  // granule 1 whole
    m.clusters[6] = {2, 1};
    pf::subgranule_set a{4, {}};
    a.bits[0] = 0x1;              // granule 0, subgranule 0
    a.bits[15] = 1ull << 63;      // granule 63, subgranule 15
    pf::subgranule_set b{6, {}};
    b.bits[3] = 0xff00;           // granule 12, subgranules 8..15
    m.subgranules = {a, b};
    return m;
}

std::string refusal(const pf::pool_geometry& g, std::vector<std::byte> bytes) {
    pf::metadata_state out;
    std::string why;
    auto r = pf::decode_metadata(bytes, g, out, why);
    return r == pf::decode_result::corrupt ? why : "not refused as corrupt: " + why;
}

// Offset of subgranule record i in an encoded slot.
std::size_t record_at(const pf::metadata_state& m, std::size_t i) {
    return sizeof(pf::metadata_header_v2) + m.replicas.size() * sizeof(pf::volume_record) +
           m.clusters.size() * sizeof(pf::cluster_entry) + m.intents.size() * sizeof(pf::intent_record) +
           i * sizeof(pf::subgranule_record);
}

// Recomputes a record's CRC and the slot's after a test edited it.
void resign(std::vector<std::byte>& slot, const pf::metadata_state& m, std::size_t i) {
    pf::subgranule_record rec;
    std::memcpy(&rec, slot.data() + record_at(m, i), sizeof rec);
    rec.crc32c = crc32c(&rec, offsetof(pf::subgranule_record, crc32c));
    std::memcpy(slot.data() + record_at(m, i), &rec, sizeof rec);
    pf::metadata_header_v2 h;
    std::memcpy(&h, slot.data(), sizeof h);
    h.crc32c = crc32c_extend(crc32c(&h, offsetof(pf::metadata_header_v2, crc32c)), slot.data() + sizeof h,
                             record_at(m, m.subgranules.size()) - sizeof h);
    std::memcpy(slot.data(), &h, sizeof h);
}

}  // namespace

TEST(pool_redirect_format, slot_version_3_round_trips_and_version_2_stays_without_subgranules) {
    auto g = geometry_v2();
    auto m = with_subgranules(g);
    auto bytes = pf::encode_metadata(g, m);
    pf::metadata_header_v2 h;
    std::memcpy(&h, bytes.data(), sizeof h);
    EXPECT_EQ(h.version, pf::slot_version_subgranules);
    EXPECT_EQ(h.reserved, 2u);
    pf::metadata_state back;
    std::string why;
    ASSERT_EQ(pf::decode_metadata(bytes, g, back, why), pf::decode_result::ok) << why;
    EXPECT_EQ(back.subgranules, m.subgranules);
    EXPECT_EQ(back.granules, m.granules);

    m.subgranules.clear();
    bytes = pf::encode_metadata(g, m);
    std::memcpy(&h, bytes.data(), sizeof h);
    EXPECT_EQ(h.version, 2u);
    EXPECT_EQ(h.reserved, 0u);
    ASSERT_EQ(pf::decode_metadata(bytes, g, back, why), pf::decode_result::ok) << why;
    EXPECT_TRUE(back.subgranules.empty());
    EXPECT_GT(pf::subgranule_capacity(g, g.cluster_count), g.cluster_count / 2);

    // Two redirects of one block: the second, ending after the first made
    // its granule whole, adds no bit to a whole granule (the record stays
    // valid).
    auto m2 = with_subgranules(g);
    EXPECT_EQ(pf::add_subgranules(m2, 4, 16, 16), 0x2u);  // granule 1 was whole
    EXPECT_EQ(pf::add_subgranules(m2, 4, 32, 16), 0x6u);  // granule 2 becomes whole
    EXPECT_EQ(pf::add_subgranules(m2, 4, 33, 1), 0x6u);
    EXPECT_EQ(pf::granule_subgranules(m2.subgranules[0].bits, 2), 0u);
    ASSERT_EQ(pf::decode_metadata(pf::encode_metadata(g, m2), g, back, why), pf::decode_result::ok) << why;
}

TEST(pool_redirect_format, damaged_subgranule_records_are_refused) {
    auto g = geometry_v2();
    const auto m = with_subgranules(g);
    const auto good = pf::encode_metadata(g, m);
    auto edit = [&](std::size_t i, auto change) {
        auto bytes = good;
        pf::subgranule_record rec;
        std::memcpy(&rec, bytes.data() + record_at(m, i), sizeof rec);
        change(rec);
        std::memcpy(bytes.data() + record_at(m, i), &rec, sizeof rec);
        resign(bytes, m, i);
        return bytes;
    };
    {
        auto bytes = good;
        bytes[record_at(m, 1) + 20] ^= std::byte{1};  // bit flip, slot CRC fixed, record CRC not
        pf::metadata_header_v2 h;
        std::memcpy(&h, bytes.data(), sizeof h);
        h.crc32c = crc32c_extend(crc32c(&h, offsetof(pf::metadata_header_v2, crc32c)), bytes.data() + sizeof h,
                                 record_at(m, 2) - sizeof h);
        std::memcpy(bytes.data(), &h, sizeof h);
        EXPECT_NE(refusal(g, bytes).find("checksum"), std::string::npos) << refusal(g, bytes);
    }
    EXPECT_NE(refusal(g, edit(0, [](auto& r) { r.bits[0] |= 0x10000; })).find("whole granule"), std::string::npos);
    EXPECT_NE(refusal(g, edit(1, [](auto& r) { r.cluster = 4; })).find("order"), std::string::npos);
    EXPECT_NE(refusal(g, edit(1, [](auto& r) { r.cluster = 0; })).find("order"), std::string::npos);
    EXPECT_NE(refusal(g, edit(1, [](auto& r) { r.cluster = 9; })).find("free"), std::string::npos);
    EXPECT_NE(refusal(g, edit(1, [](auto& r) { std::memset(r.bits, 0, sizeof r.bits); })).find("empty"),
              std::string::npos);
    EXPECT_NE(refusal(g, edit(0, [](auto& r) { r.reserved = 1; })).find("reserved"), std::string::npos);
    // A snapshot without a parent holds only whole granules.
    auto m2 = m;
    m2.subgranules[0].cluster = 1;
    m2.subgranules = {m2.subgranules[0]};
    EXPECT_NE(refusal(g, pf::encode_metadata(g, m2)).find("no parent"), std::string::npos);
}

namespace {

// A slot holding the image of `m`, then the given delta pages.
std::vector<std::byte> slot_with(const pf::pool_geometry& g, const pf::metadata_state& m,
                                 const std::vector<std::vector<std::byte>>& deltas) {
    std::vector<std::byte> slot(g.slot_bytes);
    auto image = pf::encode_metadata(g, m);
    std::memcpy(slot.data(), image.data(), image.size());
    std::size_t at = image.size();
    for (const auto& d : deltas) {
        std::memcpy(slot.data() + at, d.data(), d.size());
        at += d.size();
    }
    return slot;
}

}  // namespace

TEST(pool_redirect_format, delta_pages_after_the_image_are_applied_until_the_first_invalid_one) {
    auto g = geometry_v2();
    auto m = with_subgranules(g);
    // Page 1: subgranule 1 of granule 0 of cluster 4 (the clone's); the
    // free cluster 9 becomes the clone's logical cluster 2 with granule 5
    // whole. Page 2: granule 0's remaining subgranules of cluster 4.
    std::vector<pf::delta_entry> p1{{4, 2, 0, 1, 1}, {9, 2, 2, 80, 16}};
    std::vector<pf::delta_entry> p2{{4, 2, 0, 2, 14}};
    auto d1 = pf::encode_delta(g, m.sequence, 1, p1);
    auto d2 = pf::encode_delta(g, m.sequence, 2, p2);
    pf::metadata_state out;
    std::string why;
    ASSERT_EQ(pf::decode_metadata(slot_with(g, m, {d1, d2}), g, out, why), pf::decode_result::ok) << "why: " << why;
    EXPECT_EQ(out.sequence, m.sequence);
    EXPECT_EQ(out.clusters[9], (pf::alloc_entry{2, 2}));
    EXPECT_EQ(out.granules[9], std::uint64_t(1) << 5);
    EXPECT_EQ(out.granules[4], m.granules[4] | 1);  // granule 0 whole now: its bits left the record
    ASSERT_EQ(out.subgranules.size(), 2u);
    EXPECT_EQ(out.subgranules[0].bits[0], 0u);
    EXPECT_EQ(out.subgranules[0].bits[15], 1ull << 63);

    // Torn page 2 (CRC), a page of an older image, a page out of order:
    // only page 1 counts.
    auto torn = d2;
    torn[70] ^= std::byte{1};  // inside its entry
    auto older = pf::encode_delta(g, m.sequence - 2, 2, p2);
    auto skipped = pf::encode_delta(g, m.sequence, 3, p2);
    for (const auto& second : {torn, older, skipped}) {
        ASSERT_EQ(pf::decode_metadata(slot_with(g, m, {d1, second}), g, out, why), pf::decode_result::ok) << why;
        EXPECT_EQ(out.granules[4], m.granules[4]);
        EXPECT_EQ(out.clusters[9], (pf::alloc_entry{2, 2}));
    }
    // A valid page that contradicts the state is corruption.
    auto bad = [&](pf::delta_entry e) {
        std::vector<pf::delta_entry> v{e};
        pf::metadata_state o;
        std::string w;
        auto r = pf::decode_metadata(slot_with(g, m, {pf::encode_delta(g, m.sequence, 1, v)}), g, o, w);
        return r == pf::decode_result::corrupt ? w : "accepted: " + w;
    };
    EXPECT_NE(bad({0, 2, 0, 0, 1}).find("another volume"), std::string::npos);  // the snapshot's cluster
    EXPECT_NE(bad({9, 1, 0, 0, 1}).find("no parent"), std::string::npos);       // the snapshot itself
    EXPECT_NE(bad({9, 2, 0, 0, 1}).find("owned twice"), std::string::npos);     // logical 0 is cluster 4
    EXPECT_NE(bad({9, 2, 5, 1020, 8}).find("out of range"), std::string::npos);
    EXPECT_NE(bad({9, 2, 99, 0, 1}).find("beyond"), std::string::npos);
    EXPECT_NE(bad({99999, 2, 1, 0, 1}).find("out of range"), std::string::npos);
}

TEST(pool_redirect, redirected_writes_are_in_delta_pages_that_an_import_without_export_replays) {
    int bad_after = -2;
    std::size_t delta_pages = 0;
    // No registry: the first pool is dropped, not exported.
    int rc = with_device([&](device_registry*, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"));
        replica* r = co_await p->create_replica("r", uuid::random(), 2 * MiB, true);
        content rm(2 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        content sm = rm;
        // Redirects only (no other change): each commit a delta page; the
        // second cluster is taken by a redirect (thin, nothing below it).
        for (std::uint64_t b = 0; b < 2 * blocks_per_cluster; b += 3) {
            if (co_await write_model(r, rm, b, 1, static_cast<std::uint16_t>(10 + b % 50)) != io_status::success) {
                co_return 2;
            }
        }
        // The slots as a crash would leave them: no export.
        const auto& g = p->geometry();
        auto buf = engine::current()->dma().allocate(2 * g.slot_bytes);
        if (!buf) co_return 3;
        io_vec v = to_io_vec(*buf);
        if (co_await dev->channel()->read(pf::metadata_offset / dev->block_size(),
                                          static_cast<std::uint32_t>(2 * g.slot_bytes / dev->block_size()),
                                          io_vecs(&v, 1)) != io_status::success) {
            co_return 4;
        }
        for (std::uint64_t at = 0; at < 2 * g.slot_bytes; at += pf::page_bytes) {
            delta_pages += std::memcmp(buf->data() + at, pf::delta_magic, 8) == 0;
        }
        p.reset();  // dropped without export, as by kill -9
        auto q = co_await pool::import(dev);
        bad_after = co_await mismatches(q->find_replica("r"), rm);
        bad_after += co_await mismatches(q->find_replica("s"), sm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_GT(delta_pages, 0u);
    EXPECT_EQ(bad_after, 0);
}
