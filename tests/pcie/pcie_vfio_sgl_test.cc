// SGL lists on a real controller: run by tests/e2e/pcie_vfio_test.sh inside
// its VM (QEMU's emulated NVMe controller bound to vfio-pci) with
// PCIE_VFIO_BDF naming a scratch controller; skipped anywhere else. The
// engine's own I/O there (pcie-smoke) uses contiguous buffers, so its SGLs
// are single Data Block descriptors; this test sends what only a Last
// Segment list can describe: pieces ending inside pages, pieces at odd byte
// addresses (when the controller takes byte-aligned SGLs), and a list that
// fills its page (256 descriptors, then a second command). It reads every
// transfer back through one contiguous buffer and compares bytes, and checks
// the driver sent each command with an SGL.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nvme/pcie/pcie_backend.hh"
#include "nvme/pcie/pcie_device.hh"
#include "storage/backend_schemes.hh"
#include "tests/pcie/pcie_test_util.hh"

using namespace ioe;
using namespace ioe::nvme;

namespace {

std::vector<std::byte> gather(const std::vector<io_vec>& v) {
    std::vector<std::byte> out;
    for (const auto& x : v) out.insert(out.end(), x.data, x.data + x.len);
    return out;
}

TEST(PcieVfio, ScatteredSglIoOnARealController) {
    const char* bdf = std::getenv("PCIE_VFIO_BDF");
    if (!bdf || !*bdf) GTEST_SKIP() << "PCIE_VFIO_BDF is not set (tests/e2e/pcie_vfio_test.sh sets it in its VM)";
    register_pcie_backend();
    const std::string text = std::string("pcie:///") + bdf + "?sgl=on";
    int rc = test::run_engine(test::small_config(1), [&text](engine* e) -> future<int> {
        std::string err;
        auto uri = parse_device_uri(text, err);
        EXPECT_TRUE(uri) << err;
        if (!uri) co_return 1;
        std::unique_ptr<block_device> dev = co_await find_backend_scheme("pcie")(*uri);
        auto* pd = dynamic_cast<pcie_device*>(dev.get());
        EXPECT_NE(pd, nullptr);
        if (!pd) co_return 1;
        const sgl_support sgl = pd->controller().data_pointers();
        EXPECT_NE(sgl, sgl_support::none);
        pcie_qpair& q = pd->controller().io_qpair(0);
        io_channel* ch = dev->channel();
        const std::uint32_t bs = dev->block_size();
        auto w = std::move(e->dma().allocate(1 << 20).value());
        auto r = std::move(e->dma().allocate(1 << 20).value());
        test::fill(w.data(), w.size(), 77);
        unsigned failures = 0;

        // Checks one scattered write: `cmds` commands, bytes read back exact.
        auto check = [&](const char* what, const std::vector<io_vec>& v, std::uint64_t lba,
                         std::uint64_t cmds) -> future<> {
            const auto want = gather(v);
            const auto blocks = static_cast<std::uint32_t>(want.size() / bs);
            const std::uint64_t before = q.sgl_commands();
            const io_status ws = co_await ch->write(lba, blocks, io_vecs(v));
            EXPECT_EQ(ws, io_status::success) << what;
            EXPECT_EQ(q.sgl_commands() - before, cmds) << what;
            std::memset(r.data(), 0, want.size());
            io_vec rv{r.data(), static_cast<std::uint32_t>(want.size()), r.buf_index()};
            const io_status rs = co_await ch->read(lba, blocks, io_vecs(&rv, 1));
            EXPECT_EQ(rs, io_status::success) << what;
            const bool same = std::memcmp(r.data(), want.data(), want.size()) == 0;
            EXPECT_TRUE(same) << what;
            if (!ok(ws) || !ok(rs) || !same) ++failures;
            std::printf("pcie-vfio-sgl: %s: %zu bytes in %zu pieces, %s\n", what, want.size(), v.size(),
                        ok(ws) && ok(rs) && same ? "read back exact" : "FAILED");
        };

        // Pieces ending inside pages (PRPs would need three commands): one
        // Last Segment list of three descriptors.
        co_await check("mid-page pieces",
                       {to_io_vec(w, 512, 3072), to_io_vec(w, 65536, 8192), to_io_vec(w, 8192, 1024 + 4096)}, 64, 1);
        // Pieces at odd byte addresses, only with byte-aligned SGLs.
        if (sgl == sgl_support::byte) {
            co_await check("odd byte addresses",
                           {to_io_vec(w, 1, 100), to_io_vec(w, 4099, 924), to_io_vec(w, 70001, 3072)}, 256, 1);
        }
        // 300 pieces of 512 bytes, one per KiB: a full 256-descriptor list
        // page, then the other 44 in a second command.
        std::vector<io_vec> many;
        for (int i = 0; i < 300; ++i) many.push_back(to_io_vec(w, 400 * 1024 + i * 1024 + 512, 512));
        co_await check("a full descriptor page", many, 1024, 2);
        std::printf("pcie-vfio-sgl: %llu reads and writes with SGL, %llu with PRP, %u failures\n",
                    static_cast<unsigned long long>(q.sgl_commands()),
                    static_cast<unsigned long long>(q.prp_commands()), failures);
        co_await dev->close();
        co_return failures ? 1 : 0;
    });
    EXPECT_EQ(rc, 0);
}

}  // namespace
