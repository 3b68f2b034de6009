// Crashes around delta pages (docs/pool-format.md, "Delta pages"; code in
// storage/pool_format_delta.cc and the commit in storage/pool_metadata.cc).
// On a malloc device with 1 MiB clusters (16 KiB granules of four 4 KiB
// blocks), a pool is dropped without export, as by kill -9, after a
// snapshot and single-block redirected first writes (one commit, one
// delta page each), and imported again:
// * untouched, every acknowledged write reads back and the snapshot keeps
//   its content;
// * with its last delta page torn (CRC broken, or its first half zeroed),
//   the pool imports, the writes of the earlier pages are there and the
//   torn page's write is not: its blocks read the snapshot's data, also
//   after another volume has taken the clusters left free;
// * a stale page of an older image of the same slot, right after the newest
//   image where a page 1 would be, is ignored (a restore dropped the writes
//   it names; they do not come back);
// * writes past the room for delta pages in a slot fall back to a new image
//   in the other slot (several times, both slots reused) and all read back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "storage/pool.hh"
#include "storage/pool_format.hh"
#include "tests/unit/pool_snapshot_util.hh"

using namespace ioe;
using namespace ioe::test::snapshots;
namespace pf = ioe::pool_format;

namespace {

// Raw bytes of the device (offset and length in whole blocks, at most 1 MiB).
future<std::vector<std::byte>> read_raw(block_device* dev, std::uint64_t offset, std::uint64_t len) {
    std::vector<std::byte> out;
    auto buf = engine::current()->dma().allocate(len);
    EXPECT_TRUE(static_cast<bool>(buf));
    if (!buf) co_return out;
    io_vec v = to_io_vec(*buf);
    const io_status st = co_await dev->channel()->read(offset / dev->block_size(),
                                                       static_cast<std::uint32_t>(len / dev->block_size()),
                                                       io_vecs(&v, 1));
    EXPECT_EQ(st, io_status::success);
    out.assign(buf->data(), buf->data() + len);
    co_return out;
}

future<io_status> write_raw(block_device* dev, std::uint64_t offset, std::vector<std::byte> bytes) {
    auto buf = engine::current()->dma().allocate(bytes.size());
    if (!buf) co_return io_status::internal_error;
    std::memcpy(buf->data(), bytes.data(), bytes.size());
    io_vec v = to_io_vec(*buf);
    co_return co_await dev->channel()->write(offset / dev->block_size(),
                                             static_cast<std::uint32_t>(bytes.size() / dev->block_size()),
                                             io_vecs(&v, 1));
}

// The slot holding the newest image, and the delta pages found in it.
struct slot_view {
    std::uint64_t offset = 0;    // of the slot on the device
    std::uint64_t sequence = 0;  // of its image
    struct page {
        std::uint64_t offset;  // on the device
        pf::delta_header header;
    };
    std::vector<page> pages;  // every page with the delta magic, in slot order
};

future<slot_view> newest_slot(block_device* dev, const pf::pool_geometry& g) {
    slot_view best;
    bool found = false;
    for (std::uint64_t i = 0; i < 2; ++i) {
        const std::uint64_t at = pf::metadata_offset + i * g.slot_bytes;
        const std::vector<std::byte> slot = co_await read_raw(dev, at, g.slot_bytes);
        if (slot.size() < g.slot_bytes) co_return best;
        pf::metadata_header_v2 h;
        std::memcpy(&h, slot.data(), sizeof h);
        if (std::memcmp(h.magic, "IOEMETA2", 8) != 0 || (found && h.sequence <= best.sequence)) continue;
        found = true;
        best = slot_view{at, h.sequence, {}};
        for (std::uint64_t p = pf::page_bytes; p < g.slot_bytes; p += pf::page_bytes) {
            if (std::memcmp(slot.data() + p, pf::delta_magic, 8) != 0) continue;
            slot_view::page pg{at + p, {}};
            std::memcpy(&pg.header, slot.data() + p, sizeof pg.header);
            best.pages.push_back(pg);
        }
    }
    EXPECT_TRUE(found) << "no version 2 image in either slot";
    co_return best;
}

// Pages that follow the image of `s` (its sequence), in order.
std::vector<slot_view::page> current_pages(const slot_view& s) {
    std::vector<slot_view::page> out;
    for (const auto& p : s.pages) {
        if (p.header.base_sequence == s.sequence) out.push_back(p);
    }
    return out;
}

enum class tear { none, crc, first_half };

// Volume r (thin, 4 MiB, every block seed 1) and its snapshot s; then five
// single-block redirected writes to r, each a delta page: two into logical
// cluster 0, two into 1, the last into `last_cluster` (0: a cluster r
// already has, only bits; 2: a cluster the write takes). The pool is
// dropped, the last page torn as asked, and the pool imported.
struct torn_outcome {
    std::size_t pages = 0;  // after the snapshot's image, before the tear
    int bad_r = -2, bad_s = -2, bad_other = -2, bad_r_rewritten = -2;
};

torn_outcome crash_after_redirects(tear how, std::uint64_t last_cluster) {
    torn_outcome out;
    int rc = with_device([&](device_registry*, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"));  // no registry: dropped, not exported
        replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        content rm(4 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, 4 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        const content sm = rm;
        const std::uint64_t lbas[] = {0, 4 * 5 + 1, blocks_per_cluster + 8, blocks_per_cluster + 100,
                                      last_cluster * blocks_per_cluster + 4 * 7 + 2};
        std::uint16_t seed = 10;
        for (std::uint64_t lba : lbas) {
            if (co_await write_model(r, rm, lba, 1, seed++) != io_status::success) co_return 2;
        }
        const pf::pool_geometry g = p->geometry();
        p.reset();  // as by kill -9

        const slot_view slot = co_await newest_slot(dev, g);
        const auto pages = current_pages(slot);
        out.pages = pages.size();
        if (pages.empty()) co_return 3;
        const slot_view::page last = pages.back();
        if (how != tear::none) {
            std::vector<std::byte> page = co_await read_raw(dev, last.offset, pf::page_bytes);
            if (how == tear::crc) {
                page[sizeof(pf::delta_header) + 2] ^= std::byte{0x40};  // inside its entry
            } else {
                std::fill(page.begin(), page.begin() + pf::page_bytes / 2, std::byte{0});
            }
            if (co_await write_raw(dev, last.offset, page) != io_status::success) co_return 4;
            rm[lbas[4]] = sm[lbas[4]];  // the torn page's write is lost: the snapshot's block shows
        }

        auto q = co_await pool::import(dev);
        out.bad_r = co_await mismatches(q->find_replica("r"), rm);
        out.bad_s = co_await mismatches(q->find_replica("s"), sm);
        // Another volume takes free clusters (the lowest first: the one a
        // lost page had taken among them) and fills them; r is unchanged.
        replica* o = co_await q->create_replica("o", uuid::random(), 4 * MiB, true);
        content om(4 * blocks_per_cluster, -1);
        if (co_await write_model(o, om, 0, 4 * blocks_per_cluster, 50) != io_status::success) co_return 5;
        out.bad_other = co_await mismatches(o, om);
        // And r takes writes again where the lost one was.
        if (co_await write_model(q->find_replica("r"), rm, lbas[4], 1, 60) != io_status::success) co_return 6;
        out.bad_r_rewritten = co_await mismatches(q->find_replica("r"), rm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    return out;
}

}  // namespace

TEST(pool_delta_crash, acknowledged_redirects_survive_a_drop_and_the_snapshot_keeps_its_data) {
    const torn_outcome o = crash_after_redirects(tear::none, 2);
    EXPECT_EQ(o.pages, 5u) << "each redirected write should be one delta page";
    EXPECT_EQ(o.bad_r, 0);
    EXPECT_EQ(o.bad_s, 0);
    EXPECT_EQ(o.bad_other, 0);
    EXPECT_EQ(o.bad_r_rewritten, 0);
}

TEST(pool_delta_crash, a_torn_last_page_loses_only_its_write_to_the_ancestor) {
    for (tear how : {tear::crc, tear::first_half}) {
        for (std::uint64_t last_cluster : {std::uint64_t(0), std::uint64_t(2)}) {
            SCOPED_TRACE(testing::Message() << (how == tear::crc ? "crc" : "first half zeroed")
                                            << ", last write into logical cluster " << last_cluster);
            const torn_outcome o = crash_after_redirects(how, last_cluster);
            EXPECT_EQ(o.pages, 5u);
            EXPECT_EQ(o.bad_r, 0) << "blocks of r other than the earlier pages' writes and the snapshot's data";
            EXPECT_EQ(o.bad_s, 0);
            EXPECT_EQ(o.bad_other, 0);
            EXPECT_EQ(o.bad_r_rewritten, 0);
        }
    }
}

TEST(pool_delta_crash, a_stale_page_of_an_older_image_in_the_slot_is_ignored) {
    std::uint64_t snapshot_sequence = 0, newest_sequence = 0, stale_base = 0;
    std::uint32_t first_index = 0;
    int bad_r = -2, bad_s = -2;
    int rc = with_device([&](device_registry*, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"));
        replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        content rm(4 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, 4 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        const content sm = rm;
        snapshot_sequence = (co_await newest_slot(dev, p->geometry())).sequence;
        // Pages after the snapshot's image: r takes clusters for logical 0 and 1.
        const std::uint64_t lbas[] = {3, 4 * 9 + 1, blocks_per_cluster + 2};
        for (std::uint64_t lba : lbas) {
            if (co_await write_model(r, rm, lba, 1, 20) != io_status::success) co_return 2;
        }
        // Restore r to s (an image in the other slot: r's clusters freed),
        // then grow r (an image of the same size back in the first slot,
        // just before the pages of the snapshot's image).
        co_await p->restore_replica("r", "s");
        co_await p->resize_replica("r", 5 * MiB);
        content expect = sm;
        expect.resize(5 * blocks_per_cluster, -1);
        const pf::pool_geometry g = p->geometry();
        p.reset();

        const slot_view slot = co_await newest_slot(dev, g);
        newest_sequence = slot.sequence;
        if (!slot.pages.empty()) {
            first_index = slot.pages.front().header.index;
            stale_base = slot.pages.front().header.base_sequence;
        }
        auto q = co_await pool::import(dev);
        bad_r = co_await mismatches(q->find_replica("r"), expect);
        bad_s = co_await mismatches(q->find_replica("s"), sm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    // The scenario: the newest image is two after the snapshot's, in the
    // same slot, and the first page after it is page 1 of the older image.
    EXPECT_EQ(newest_sequence, snapshot_sequence + 2);
    EXPECT_EQ(first_index, 1u);
    EXPECT_EQ(stale_base, snapshot_sequence);
    // Applied, the stale page would give r the clusters the restore freed.
    EXPECT_EQ(bad_r, 0);
    EXPECT_EQ(bad_s, 0);
}

TEST(pool_delta_crash, writes_past_a_full_slot_go_into_new_images_and_all_read_back) {
    std::uint64_t room = 0, writes = 0, first_sequence = 0, last_sequence = 0;
    int bad_before = -2, bad_r = -2, bad_s = -2;
    int rc = with_device([&](device_registry*, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"));
        replica* r = co_await p->create_replica("r", uuid::random(), 4 * MiB, true);
        content rm(4 * blocks_per_cluster, -1);
        if (co_await write_model(r, rm, 0, 4 * blocks_per_cluster, 1) != io_status::success) co_return 1;
        co_await p->snapshot_replica("r", snap("s"));
        const content sm = rm;
        const pf::pool_geometry g = p->geometry();
        // The room for pages after the snapshot's image: the first write's
        // page is at image_bytes.
        first_sequence = (co_await newest_slot(dev, g)).sequence;
        if (co_await write_model(r, rm, 0, 1, 2) != io_status::success) co_return 2;
        const slot_view first = co_await newest_slot(dev, g);
        if (first.sequence != first_sequence || current_pages(first).size() != 1) co_return 3;
        const std::uint64_t image_bytes = current_pages(first)[0].offset - first.offset;
        room = (g.slot_bytes - image_bytes) / pf::page_bytes;
        // Four slots' worth of single-block redirects, each to a granule of
        // its own (the second block of a granule once all 256 have one).
        writes = 4 * room;
        for (std::uint64_t i = 1; i < writes; ++i) {
            const std::uint64_t lba = i % (4 * 64) * 4 + (i / (4 * 64) + 1) % 4;
            if (co_await write_model(r, rm, lba, 1, static_cast<std::uint16_t>(100 + i)) != io_status::success) {
                co_return 4;
            }
        }
        bad_before = co_await mismatches(r, rm);
        last_sequence = (co_await newest_slot(dev, g)).sequence;
        p.reset();
        auto q = co_await pool::import(dev);
        bad_r = co_await mismatches(q->find_replica("r"), rm);
        bad_s = co_await mismatches(q->find_replica("s"), sm);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_GT(room, 2u);
    // A new image each time the slot had no room: both slots used again.
    EXPECT_GE(last_sequence, first_sequence + 3) << writes << " writes, room for " << room << " pages a slot";
    EXPECT_EQ(bad_before, 0);
    EXPECT_EQ(bad_r, 0);
    EXPECT_EQ(bad_s, 0);
}
