// SGL construction (nvme/pcie/sgl.hh) against the rules of the NVMe base
// specification: one contiguous buffer as a single Data Block descriptor in
// DPTR; several pieces as a Last Segment descriptor pointing at the slot's
// list page (its length 16 bytes per descriptor); pieces contiguous in bus
// addresses merged; pieces at any byte offset in one command (what PRPs
// cannot do); trimming to whole blocks; MDTS and the list page's capacity
// bounding a command; dword alignment and granularity when the controller
// asks for it; the pool's 2 MiB chunks whose bus addresses are not adjacent;
// and refusals (memory outside the pool, nothing describable). Also the SGLS
// field as Identify parsing reads it.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nvme/pcie/controller_model.hh"
#include "nvme/pcie/identify_parse.hh"
#include "nvme/pcie/prp.hh"
#include "nvme/pcie/sgl.hh"
#include "nvme/spec/nvme_identify.hh"

using namespace ioe;
using namespace ioe::nvme;

namespace {

constexpr std::size_t arena_bytes = 8 << 20;

// 8 MiB of page-aligned "DMA memory" and a bus over it (bus = 4 GiB + offset).
struct arena {
    std::vector<std::byte> mem = std::vector<std::byte>(arena_bytes + 4096);
    std::byte* base =
        reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(mem.data()) + 4095) & ~std::uintptr_t(4095));
    controller_model model{model_config{}, base, arena_bytes};
    model_bus bus{model, base, arena_bytes};
    std::vector<sgl_descriptor> list = std::vector<sgl_descriptor>(sgl_list_entries);
    std::uint64_t bus_of(std::size_t off) const { return controller_model::iova_base + off; }
};

// A bus whose 2 MiB chunks have bus addresses in reverse order (as physical
// pages in no-IOMMU mode may be): chunk i at 1 TiB - (i + 1) * 2 MiB.
struct scrambled_bus final : controller_bus {
    scrambled_bus(const void* base, std::size_t size) {
        std::vector<std::uint64_t> c(size / chunk_bytes);
        for (std::size_t i = 0; i < c.size(); ++i) c[i] = (std::uint64_t(1) << 40) - (i + 1) * chunk_bytes;
        set_dma_window(base, size, std::move(c));
    }
    std::uint32_t read32(std::uint32_t) noexcept override { return 0; }
    void write32(std::uint32_t, std::uint32_t) noexcept override {}
    std::string describe() const override { return "scrambled"; }
};

constexpr std::uint64_t list_bus = 0xabc000;
constexpr std::uint8_t data_block_id = sgl_identifier(sgl_type::data_block, sgl_subtype::address);
constexpr std::uint8_t last_segment_id = sgl_identifier(sgl_type::last_segment, sgl_subtype::address);

sgl_result build(arena& a, io_vecs v, std::uint64_t offset = 0, std::uint32_t max = 1 << 20,
                 std::uint32_t block = 512, sgl_support s = sgl_support::byte) {
    return build_sgl(a.bus, v, offset, max, block, s, a.list.data(), list_bus);
}

TEST(Sgl, AContiguousBufferIsOneDataBlockInDptr) {
    arena a;
    io_vec v{a.base + 4096 + 512, 64 << 10, -1};  // crosses 17 pages: PRPs would need a list
    auto r = build(a, io_vecs(&v, 1));
    EXPECT_EQ(r.error, prp_error::none);
    EXPECT_EQ(r.bytes, 64u << 10);
    EXPECT_EQ(r.descriptors, 1u);
    EXPECT_EQ(r.dptr.identifier, data_block_id);
    EXPECT_EQ(r.dptr.address, a.bus_of(4096 + 512));
    EXPECT_EQ(r.dptr.length, 64u << 10);
    EXPECT_EQ(r.dptr.reserved[0] | r.dptr.reserved[1] | r.dptr.reserved[2], 0);
}

TEST(Sgl, PiecesEndingInsidePagesGoInOneCommandWithALastSegment) {
    arena a;
    // 3 KiB ending mid-page, 8 KiB, 1 KiB: two PRP commands, one SGL command.
    io_vec v[3] = {{a.base + 512, 3072, -1}, {a.base + 65536, 8192, -1}, {a.base + 8192, 1024, -1}};
    std::vector<std::uint64_t> prp_list(prp_list_entries);
    prp_result p = build_prps(a.bus, io_vecs(v, 3), 0, 1 << 20, 512, prp_list.data(), list_bus);
    EXPECT_EQ(p.bytes, 3072u);  // what PRPs can do in one command
    auto r = build(a, io_vecs(v, 3));
    EXPECT_EQ(r.bytes, 3072u + 8192 + 1024);
    EXPECT_EQ(r.descriptors, 3u);
    EXPECT_EQ(r.dptr.identifier, last_segment_id);
    EXPECT_EQ(r.dptr.address, list_bus);
    EXPECT_EQ(r.dptr.length, 3u * 16);
    EXPECT_EQ(a.list[0].address, a.bus_of(512));
    EXPECT_EQ(a.list[0].length, 3072u);
    EXPECT_EQ(a.list[1].address, a.bus_of(65536));
    EXPECT_EQ(a.list[1].length, 8192u);
    EXPECT_EQ(a.list[2].address, a.bus_of(8192));
    EXPECT_EQ(a.list[2].length, 1024u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(a.list[i].identifier, data_block_id) << i;
}

TEST(Sgl, PiecesAdjacentInMemoryMergeIntoOneDescriptor) {
    arena a;
    io_vec v[3] = {{a.base + 100, 412, -1}, {a.base + 512, 1000, -1}, {a.base + 1512, 1560, -1}};
    auto r = build(a, io_vecs(v, 3));
    EXPECT_EQ(r.bytes, 2560u);  // 412 + 1000 + 1148 of the last: 5 blocks
    EXPECT_EQ(r.descriptors, 1u);
    EXPECT_EQ(r.dptr.identifier, data_block_id);
    EXPECT_EQ(r.dptr.address, a.bus_of(100));
    EXPECT_EQ(r.dptr.length, 2560u);
}

TEST(Sgl, ByteAlignedPiecesAreFineWhenTheControllerSaysSo) {
    arena a;
    io_vec v[2] = {{a.base + 1, 100, -1}, {a.base + 4099, 924, -1}};  // two blocks from odd addresses
    auto r = build(a, io_vecs(v, 2));
    EXPECT_EQ(r.error, prp_error::none);
    EXPECT_EQ(r.bytes, 1024u);
    EXPECT_EQ(a.list[0].address, a.bus_of(1));
    EXPECT_EQ(a.list[1].address, a.bus_of(4099));
    EXPECT_EQ(a.list[1].length, 924u);
}

TEST(Sgl, DwordGranularityStopsBeforeAnOddPieceAndRefusesAnOddStart) {
    arena a;
    io_vec odd{a.base + 2, 512, -1};
    EXPECT_EQ(build(a, io_vecs(&odd, 1), 0, 1 << 20, 512, sgl_support::dword).error, prp_error::misaligned);
    // 1022 bytes (not a dword multiple), then more: only whole dwords, then whole blocks.
    io_vec v[2] = {{a.base, 1022, -1}, {a.base + 65536, 1026, -1}};
    auto r = build(a, io_vecs(v, 2), 0, 1 << 20, 512, sgl_support::dword);
    EXPECT_EQ(r.bytes, 512u);
    EXPECT_EQ(r.descriptors, 1u);
    EXPECT_EQ(r.dptr.length % 4, 0u);
    // With byte granularity the same pieces go at once (2048 bytes).
    r = build(a, io_vecs(v, 2));
    EXPECT_EQ(r.bytes, 2048u);
    EXPECT_EQ(r.descriptors, 2u);
}

TEST(Sgl, TrimmedToWholeBlocks) {
    arena a;
    io_vec v[3] = {{a.base, 700, -1}, {a.base + 65536, 700, -1}, {a.base + 131072, 700, -1}};
    auto r = build(a, io_vecs(v, 3));
    EXPECT_EQ(r.bytes, 2048u);  // of 2100
    EXPECT_EQ(r.descriptors, 3u);
    EXPECT_EQ(a.list[2].length, 648u);
    EXPECT_EQ(r.dptr.length, 48u);
    // The same with 4 KiB blocks: nothing whole.
    EXPECT_EQ(build(a, io_vecs(v, 3), 0, 1 << 20, 4096).error, prp_error::misaligned);
}

TEST(Sgl, MaxBytesAndOffsetBoundTheCommand) {
    arena a;
    io_vec v[3] = {{a.base, 4096, -1}, {a.base + 65536, 4096, -1}, {a.base + 131072, 4096, -1}};
    auto r = build(a, io_vecs(v, 3), 4096 + 1024, 4096);  // from 1 KiB into the second piece, 4 KiB
    EXPECT_EQ(r.bytes, 4096u);
    EXPECT_EQ(r.descriptors, 2u);
    EXPECT_EQ(a.list[0].address, a.bus_of(65536 + 1024));
    EXPECT_EQ(a.list[0].length, 3072u);
    EXPECT_EQ(a.list[1].address, a.bus_of(131072));
    EXPECT_EQ(a.list[1].length, 1024u);
}

TEST(Sgl, TheListPageHoldsAtMost256DescriptorsExactlyOnePage) {
    arena a;
    // 300 separate 512-byte pieces (every other 512 bytes).
    std::vector<io_vec> v;
    for (int i = 0; i < 300; ++i) v.push_back(io_vec{a.base + i * 1024, 512, -1});
    auto r = build(a, io_vecs(v));
    EXPECT_EQ(sgl_list_entries, 256u);
    EXPECT_EQ(r.descriptors, 256u);
    EXPECT_EQ(r.bytes, 256u * 512);
    EXPECT_EQ(r.dptr.length, 4096u);  // the segment is the whole list page, no more
    EXPECT_EQ(a.list[255].address, a.bus_of(255 * 1024));
    auto rest = build(a, io_vecs(v), r.bytes);
    EXPECT_EQ(rest.bytes, 44u * 512);
    EXPECT_EQ(rest.descriptors, 44u);
    EXPECT_EQ(a.list[0].address, a.bus_of(256 * 1024));
}

TEST(Sgl, ChunksWithoutAdjacentBusAddressesGetTheirOwnDescriptors) {
    arena a;
    scrambled_bus bus(a.base, arena_bytes);
    const std::size_t at = (2 << 20) - 1024;  // 1 KiB before the end of chunk 0
    io_vec v{a.base + at, 4096, -1};
    auto r = build_sgl(bus, io_vecs(&v, 1), 0, 1 << 20, 512, sgl_support::byte, a.list.data(), list_bus);
    EXPECT_EQ(r.bytes, 4096u);
    EXPECT_EQ(r.descriptors, 2u);
    EXPECT_EQ(a.list[0].address, bus.bus_address(a.base + at));
    EXPECT_EQ(a.list[0].length, 1024u);
    EXPECT_EQ(a.list[1].address, bus.bus_address(a.base + (2 << 20)));
    EXPECT_EQ(a.list[1].length, 3072u);
    // On the model's bus the chunks are adjacent: one descriptor.
    r = build(a, io_vecs(&v, 1));
    EXPECT_EQ(r.descriptors, 1u);
}

TEST(Sgl, MemoryOutsideThePoolIsRefused) {
    arena a;
    std::vector<std::byte> outside(8192);
    io_vec v{outside.data(), 4096, -1};
    auto r = build(a, io_vecs(&v, 1));
    EXPECT_EQ(r.error, prp_error::unreachable);
    EXPECT_EQ(r.bytes, 0u);
    // After a described piece, the unreachable one ends the command instead.
    io_vec w[2] = {{a.base, 512, -1}, {outside.data(), 512, -1}};
    r = build(a, io_vecs(w, 2));
    EXPECT_EQ(r.error, prp_error::none);
    EXPECT_EQ(r.bytes, 512u);
}

TEST(Sgl, IdentifyReadsSglsBitsOneToZero) {
    std::vector<std::byte> page(identify_bytes);
    auto with = [&](std::uint32_t sgls) {
        std::memcpy(page.data() + offsetof(identify_controller, sgls), &sgls, 4);
        namespace_info info;
        parse_identify_controller(page.data(), info);
        EXPECT_EQ(info.sgls, sgls);
        return info.sgl;
    };
    EXPECT_EQ(with(0), sgl_support::none);
    EXPECT_EQ(with(1), sgl_support::byte);
    EXPECT_EQ(with(2), sgl_support::dword);
    EXPECT_EQ(with(3), sgl_support::none);  // reserved
    EXPECT_EQ(with(0x00170001), sgl_support::byte);  // other capability bits do not matter
}

}  // namespace
