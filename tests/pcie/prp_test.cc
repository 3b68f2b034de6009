// PRP construction against the rules of the PCIe transport: one page, two
// pages, a list, offsets into the first page, several io_vecs (joined when
// they meet on page boundaries, split where they do not), the list capacity,
// and refusals (memory outside the pool, misaligned addresses).
#include <gtest/gtest.h>

#include <vector>

#include "nvme/pcie/controller_model.hh"
#include "nvme/pcie/prp.hh"

using namespace ioe;
using namespace ioe::nvme;

namespace {

// 8 MiB of page-aligned "DMA memory" and a bus over it (bus = 4 GiB + offset).
struct arena {
    std::vector<std::byte> mem = std::vector<std::byte>((8 << 20) + 4096);
    std::byte* base = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(mem.data()) + 4095) & ~std::uintptr_t(4095));
    controller_model model{model_config{}, base, 8 << 20};
    model_bus bus{model, base, 8 << 20};
    std::vector<std::uint64_t> list = std::vector<std::uint64_t>(prp_list_entries);
    std::uint64_t bus_of(std::size_t off) const { return controller_model::iova_base + off; }
};

constexpr std::uint64_t list_bus = 0xabc000;

TEST(Prp, WithinOnePageLeavesPrp2Zero) {
    arena a;
    io_vec v{a.base + 512, 1024, -1};
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.error, prp_error::none);
    EXPECT_EQ(r.bytes, 1024u);
    EXPECT_EQ(r.prp1, a.bus_of(512));
    EXPECT_EQ(r.prp2, 0u);
}

TEST(Prp, TwoPagesPutTheSecondPageInPrp2) {
    arena a;
    io_vec v{a.base + 3584, 1024, -1};  // 512 bytes in page 0, 512 in page 1
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 1024u);
    EXPECT_EQ(r.prp1, a.bus_of(3584));
    EXPECT_EQ(r.prp2, a.bus_of(4096));
}

TEST(Prp, MoreThanTwoPagesUseAList) {
    arena a;
    io_vec v{a.base + 4096, 5 * 4096, -1};
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 1 << 20, 4096, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 5u * 4096);
    EXPECT_EQ(r.prp1, a.bus_of(4096));
    EXPECT_EQ(r.prp2, list_bus);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(a.list[i], a.bus_of(4096 * (i + 2))) << i;
}

TEST(Prp, AnOffsetFirstPageShiftsEveryLaterEntryToPageStarts) {
    arena a;
    io_vec v{a.base + 1024, 3 * 4096, -1};  // pages 0 (3 KiB), 1, 2, 3 (1 KiB)
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 3u * 4096);
    EXPECT_EQ(r.prp1, a.bus_of(1024));
    EXPECT_EQ(r.prp2, list_bus);
    EXPECT_EQ(a.list[0], a.bus_of(4096));
    EXPECT_EQ(a.list[1], a.bus_of(8192));
    EXPECT_EQ(a.list[2], a.bus_of(12288));
}

TEST(Prp, PiecesMeetingOnPageBoundariesJoinInOneCommand) {
    arena a;
    io_vec v[2] = {{a.base + 2048, 2048, -1}, {a.base + 65536, 8192, -1}};
    auto r = build_prps(a.bus, io_vecs(v, 2), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 2048u + 8192);
    EXPECT_EQ(r.prp1, a.bus_of(2048));
    EXPECT_EQ(r.prp2, list_bus);
    EXPECT_EQ(a.list[0], a.bus_of(65536));
    EXPECT_EQ(a.list[1], a.bus_of(65536 + 4096));
}

TEST(Prp, APieceEndingInsideAPageSplitsTheCommand) {
    arena a;
    io_vec v[2] = {{a.base, 1024, -1}, {a.base + 65536, 4096, -1}};
    auto r = build_prps(a.bus, io_vecs(v, 2), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 1024u);  // the rest goes in a second command
    auto r2 = build_prps(a.bus, io_vecs(v, 2), 1024, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r2.bytes, 4096u);
    EXPECT_EQ(r2.prp1, a.bus_of(65536));
    EXPECT_EQ(r2.prp2, 0u);
}

TEST(Prp, RoundedDownToWholeBlocksAndRecomputesPrp2) {
    arena a;
    // 4096 + 100 bytes: only one whole 4 KiB block can go; PRP2 must not be a list.
    io_vec v[2] = {{a.base + 4096, 4096 + 100, -1}, {a.base + 65536, 4096, -1}};
    auto r = build_prps(a.bus, io_vecs(v, 2), 0, 1 << 20, 4096, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 4096u);
    EXPECT_EQ(r.prp2, 0u);
}

TEST(Prp, MaxBytesAndTheListCapacityBoundOneCommand) {
    arena a;
    io_vec v{a.base, 4 << 20, -1};
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 64 << 10, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 64u << 10);
    r = build_prps(a.bus, io_vecs(&v, 1), 0, 4 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, (prp_list_entries + 1) * 4096u);  // PRP1 + a full list page
}

TEST(Prp, OffsetSkipsWholeAndPartialIoVecs) {
    arena a;
    io_vec v[3] = {{a.base, 4096, -1}, {a.base + 8192, 4096, -1}, {a.base + 16384, 4096, -1}};
    auto r = build_prps(a.bus, io_vecs(v, 3), 4096 + 512, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.prp1, a.bus_of(8192 + 512));
    EXPECT_EQ(r.bytes, 3584u + 4096);
    EXPECT_EQ(r.prp2, a.bus_of(16384));
}

TEST(Prp, MemoryOutsideThePoolIsRefused) {
    arena a;
    std::vector<std::byte> outside(8192);
    io_vec v{outside.data(), 4096, -1};
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.error, prp_error::unreachable);
    EXPECT_EQ(r.bytes, 0u);
}

TEST(Prp, AnAddressNotDwordAlignedIsRefused) {
    arena a;
    io_vec v{a.base + 2, 512, -1};
    auto r = build_prps(a.bus, io_vecs(&v, 1), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.error, prp_error::misaligned);
}

TEST(Prp, ABlockSplitAcrossUnjoinablePiecesIsRefused) {
    arena a;
    io_vec v[2] = {{a.base, 256, -1}, {a.base + 65536, 256, -1}};  // one 512-byte block in two pieces
    auto r = build_prps(a.bus, io_vecs(v, 2), 0, 1 << 20, 512, a.list.data(), list_bus);
    EXPECT_EQ(r.error, prp_error::misaligned);
}

}  // namespace
