// SGL data pointers in the PCIe driver, against the controller model: SGLs
// chosen when the controller advertises them (and PRPs when it does not, or
// with sgl=off; sgl=on refusing a controller without them), one Data Block
// descriptor for a contiguous buffer, a Last Segment list for scattered
// buffers in one command, byte-aligned buffers, MDTS splits of scattered
// I/O, the descriptor list filling its page, dword granularity, and bad SGLs
// (an unsupported or reserved descriptor type, a segment that loops, short
// data blocks) rejected by the model with the specification's status and
// surfacing as an I/O error, the device staying usable. Every transfer's
// bytes are checked on the model's media and read back.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nvme/pcie/pcie_backend.hh"
#include "storage/errors.hh"
#include "tests/pcie/pcie_test_util.hh"

using namespace ioe;
using namespace ioe::nvme;
using ioe::test::model_rig;

namespace {

dma_buffer buffer(engine* e, std::size_t n) {
    auto b = e->dma().allocate(n);
    EXPECT_TRUE(b);
    return std::move(b.value());
}

constexpr io_status nvme_status(std::uint8_t code) { return static_cast<io_status>(code); }  // SCT 0

// Gathers the bytes of `v` in order.
std::vector<std::byte> gather(const std::vector<io_vec>& v) {
    std::vector<std::byte> out;
    for (const auto& x : v) out.insert(out.end(), x.data, x.data + x.len);
    return out;
}

TEST(PcieSgl, ContiguousBufferGoesAsOneDataBlockDescriptor) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        EXPECT_EQ(dev->controller().data_pointers(), sgl_support::byte);
        EXPECT_EQ(dev->controller().info().sgls, 1u);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(w.data(), w.size(), 5);
        io_vec wv = to_io_vec(w), rv = to_io_vec(r);
        EXPECT_EQ(co_await ch->write(200, 128, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(rig.model->media() + 200 * 512, w.data(), w.size()), 0);
        EXPECT_EQ(co_await ch->read(200, 128, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(r.data(), w.data(), w.size()), 0);
        const auto s = rig.model->stats();
        EXPECT_EQ(s.sgl_commands, 2u);
        EXPECT_EQ(s.prp_commands, 0u);
        EXPECT_EQ(s.sgl_segments, 0u);  // the descriptor sat in the SQE
        EXPECT_EQ(s.max_sgl_descriptors, 1u);
        EXPECT_EQ(s.list_prps, 0u);
        EXPECT_EQ(dev->controller().io_qpair(0).sgl_commands(), 2u);
        EXPECT_EQ(dev->controller().io_qpair(0).prp_commands(), 0u);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, ScatteredBuffersGoInOneCommandWithASegmentList) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto a = buffer(e, 64 << 10), b = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(a.data(), a.size(), 1);
        test::fill(b.data(), b.size(), 2);
        // 3 KiB ending mid-page, 8 KiB, 1 KiB: two PRP commands; one with an SGL.
        std::vector<io_vec> v = {to_io_vec(a, 512, 3072), to_io_vec(b, 0, 8192), to_io_vec(a, 8192, 1024)};
        EXPECT_EQ(co_await ch->write(1000, 24, io_vecs(v)), io_status::success);
        auto s = rig.model->stats();
        EXPECT_EQ(s.writes, 1u);
        EXPECT_EQ(s.sgl_segments, 1u);
        EXPECT_EQ(s.max_sgl_descriptors, 3u);
        const auto want = gather(v);
        EXPECT_EQ(std::memcmp(rig.model->media() + 1000 * 512, want.data(), want.size()), 0);
        // Read back into pieces laid out differently: 1 KiB + 100 B at odd
        // places, the rest in one piece (byte-aligned SGL).
        std::memset(r.data(), 0, r.size());
        std::vector<io_vec> rv = {to_io_vec(r, 3, 1024), to_io_vec(r, 5000, 100), to_io_vec(r, 8192, 12288 - 1124)};
        EXPECT_EQ(co_await ch->read(1000, 24, io_vecs(rv)), io_status::success);
        EXPECT_EQ(rig.model->stats().reads, 1u);
        EXPECT_EQ(gather(rv), want);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, ScatteredIoAboveMdtsIsSplitWithAListPerCommand) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.mdts = 1;  // 8 KiB per command
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 128 << 10), r = buffer(e, 64 << 10);
        test::fill(w.data(), w.size(), 11);
        // 64 pieces of 1 KiB, every other KiB: 64 KiB in 8 commands of 8 descriptors.
        std::vector<io_vec> v;
        for (int i = 0; i < 64; ++i) v.push_back(to_io_vec(w, i * 2048, 1024));
        EXPECT_EQ(co_await ch->write(4096, 128, io_vecs(v)), io_status::success);
        auto s = rig.model->stats();
        EXPECT_EQ(s.writes, 8u);
        EXPECT_EQ(s.sgl_segments, 8u);
        EXPECT_EQ(s.max_sgl_descriptors, 8u);
        const auto want = gather(v);
        EXPECT_EQ(std::memcmp(rig.model->media() + 4096 * 512, want.data(), want.size()), 0);
        io_vec rv = to_io_vec(r);
        EXPECT_EQ(co_await ch->read(4096, 128, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(rig.model->stats().reads, 8u);  // contiguous: 8 commands (MDTS), one descriptor each
        EXPECT_EQ(std::memcmp(r.data(), want.data(), want.size()), 0);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, DescriptorListFillsItsPageThenTheRestGoesInAnotherCommand) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.mdts = 8;  // 1 MiB: the list page, not MDTS, is the limit
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 512 << 10), r = buffer(e, 256 << 10);
        test::fill(w.data(), w.size(), 23);
        // 300 pieces of 512 B, one per KiB, the first ones crossing no page,
        // every fourth ending on a page boundary.
        std::vector<io_vec> v;
        for (int i = 0; i < 300; ++i) v.push_back(to_io_vec(w, i * 1024 + 512, 512));
        EXPECT_EQ(co_await ch->write(0, 300, io_vecs(v)), io_status::success);
        auto s = rig.model->stats();
        EXPECT_EQ(s.writes, 2u);
        EXPECT_EQ(s.max_sgl_descriptors, 256u);  // a full 4 KiB list page
        EXPECT_EQ(s.sgl_segments, 2u);
        const auto want = gather(v);
        EXPECT_EQ(std::memcmp(rig.model->media(), want.data(), want.size()), 0);
        io_vec rv = to_io_vec(r, 0, 300 * 512);
        EXPECT_EQ(co_await ch->read(0, 300, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(r.data(), want.data(), want.size()), 0);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, DwordGranularControllerGetsDwordDescriptorsAndOddBuffersFail) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.sgls = 2;
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        EXPECT_EQ(dev->controller().data_pointers(), sgl_support::dword);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(w.data(), w.size(), 31);
        std::vector<io_vec> v = {to_io_vec(w, 4, 1020), to_io_vec(w, 8192, 2052), to_io_vec(w, 20000, 1024)};
        EXPECT_EQ(co_await ch->write(64, 8, io_vecs(v)), io_status::success);
        EXPECT_EQ(rig.model->stats().writes, 1u);
        const auto want = gather(v);
        EXPECT_EQ(std::memcmp(rig.model->media() + 64 * 512, want.data(), want.size()), 0);
        io_vec rv = to_io_vec(r, 0, 4096);
        EXPECT_EQ(co_await ch->read(64, 8, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(r.data(), want.data(), want.size()), 0);
        // A buffer at an odd address cannot be described: refused by the
        // driver, nothing sent.
        const auto before = rig.model->stats().io_commands;
        io_vec odd = to_io_vec(w, 1, 512);
        EXPECT_EQ(co_await ch->write(64, 1, io_vecs(&odd, 1)), io_status::invalid_field);
        EXPECT_EQ(rig.model->stats().io_commands, before);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, FallsBackToPrpWhenTheControllerHasNoSgl) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.sgls = 0;
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        EXPECT_EQ(dev->controller().data_pointers(), sgl_support::none);
        io_channel* ch = dev->channel();
        auto a = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(a.data(), a.size(), 41);
        std::vector<io_vec> v = {to_io_vec(a, 512, 3072), to_io_vec(a, 16384, 8192), to_io_vec(a, 32768, 1024)};
        EXPECT_EQ(co_await ch->write(300, 24, io_vecs(v)), io_status::success);
        auto s = rig.model->stats();
        EXPECT_EQ(s.writes, 2u);  // PRPs split where a piece ends inside a page
        EXPECT_EQ(s.sgl_commands, 0u);
        EXPECT_EQ(s.prp_commands, 2u);
        io_vec rv = to_io_vec(r, 0, 12288);
        EXPECT_EQ(co_await ch->read(300, 24, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(gather({rv}), gather(v));
        EXPECT_EQ(dev->controller().io_qpair(0).sgl_commands(), 0u);
        co_await dev->close();

        // sgl=on on the same controller: the open says why it cannot.
        pcie_options on;
        on.sgl = sgl_mode::on;
        std::string msg;
        try {
            auto d2 = co_await rig.open(e, on);
        } catch (const storage_error& err) {
            msg = err.what();
        }
        EXPECT_NE(msg.find("sgl=on, but the controller does not support SGLs"), std::string::npos) << msg;
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, SglOffUsesPrpsOnAnSglController) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        pcie_options off;
        off.sgl = sgl_mode::off;
        auto dev = co_await rig.open(e, off);
        EXPECT_EQ(dev->controller().data_pointers(), sgl_support::none);
        io_channel* ch = dev->channel();
        auto w = buffer(e, 16 << 10);
        test::fill(w.data(), w.size(), 43);
        io_vec wv = to_io_vec(w);
        EXPECT_EQ(co_await ch->write(0, 32, io_vecs(&wv, 1)), io_status::success);
        EXPECT_EQ(rig.model->stats().prp_commands, 1u);
        EXPECT_EQ(rig.model->stats().sgl_commands, 0u);
        EXPECT_EQ(std::memcmp(rig.model->media(), w.data(), w.size()), 0);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, RejectedDescriptorTypeSurfacesAsAnIoErrorAndTheDeviceGoesOn) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        io_channel* ch = dev->channel();
        rig.model->reject_sgl_type(sgl_type::last_segment);
        auto a = buffer(e, 64 << 10), r = buffer(e, 64 << 10);
        test::fill(a.data(), a.size(), 47);
        std::vector<io_vec> v = {to_io_vec(a, 0, 1024), to_io_vec(a, 8192, 1024)};
        EXPECT_EQ(co_await ch->write(10, 4, io_vecs(v)), nvme_status(sc::sgl_descriptor_type_invalid));
        EXPECT_TRUE(test::all_zero(rig.model->media() + 10 * 512, 2048));  // nothing moved
        // A contiguous buffer needs no segment: it still goes.
        io_vec one = to_io_vec(a, 0, 2048);
        EXPECT_EQ(co_await ch->write(10, 4, io_vecs(&one, 1)), io_status::success);
        rig.model->reject_sgl_type(controller_model::no_rejected_type);
        EXPECT_EQ(co_await ch->write(20, 4, io_vecs(v)), io_status::success);
        io_vec rv = to_io_vec(r, 0, 2048);
        EXPECT_EQ(co_await ch->read(20, 4, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(gather({rv}), gather(v));
        EXPECT_EQ(dev->controller().state(), controller_state::live);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

// Hand-made SGLs sent through the I/O queue: the model's checks, each one
// answered (no hang) with the specification's status.
TEST(PcieSgl, ModelRejectsBadSglsWithTheirStatus) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_rig rig(e);
        auto dev = co_await rig.open(e);
        pcie_qpair& q = dev->controller().io_qpair(0);
        controller_bus& bus = dev->controller().bus();
        auto data = buffer(e, 8192), list = buffer(e, 4096);
        auto* seg = reinterpret_cast<sgl_descriptor*>(list.data());
        auto desc = [](std::uint64_t addr, std::uint32_t len, std::uint8_t type) {
            sgl_descriptor d{};
            d.address = addr;
            d.length = len;
            d.identifier = sgl_identifier(type, sgl_subtype::address);
            return d;
        };
        auto read_one_block = [&](sgl_descriptor d, std::uint8_t psdt_v = psdt::sgl_mptr_contiguous) {
            sqe c{};
            c.opcode = nvm_opcode::read;
            c.nsid = 1;
            c.set_psdt(psdt_v);
            c.dptr.sgl = d;
            return q.execute(c);  // 1 block at LBA 0
        };
        const std::uint64_t d0 = bus.bus_address(data.data()), l0 = bus.bus_address(list.data());
        auto code = [](const qp_result& r) { return status_code(r.cq.status); };

        EXPECT_EQ(code(co_await read_one_block(desc(d0, 512, sgl_type::data_block))), sc::success);
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 512, 0x7))), sc::sgl_descriptor_type_invalid);  // reserved
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 512, sgl_type::bit_bucket))), sc::sgl_descriptor_type_invalid);
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 512, sgl_type::keyed_data_block))),
                  sc::sgl_descriptor_type_invalid);
        sgl_descriptor offset_subtype = desc(d0, 512, sgl_type::data_block);
        offset_subtype.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::offset);
        EXPECT_EQ(code(co_await read_one_block(offset_subtype)), sc::sgl_descriptor_type_invalid);
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 256, sgl_type::data_block))), sc::data_sgl_length_invalid);
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 1024, sgl_type::data_block))), sc::data_sgl_length_invalid);
        // A segment whose only descriptor points back at itself: bounded, refused.
        seg[0] = desc(l0, 16, sgl_type::segment);
        EXPECT_EQ(code(co_await read_one_block(desc(l0, 16, sgl_type::segment))), sc::invalid_sgl_segment_descriptor);
        // A Segment must end with the next segment's descriptor.
        seg[0] = desc(d0, 256, sgl_type::data_block);
        seg[1] = desc(d0 + 256, 256, sgl_type::data_block);
        EXPECT_EQ(code(co_await read_one_block(desc(l0, 32, sgl_type::segment))), sc::invalid_sgl_segment_descriptor);
        // A Last Segment may hold data blocks only.
        seg[1] = desc(l0 + 64, 16, sgl_type::last_segment);
        EXPECT_EQ(code(co_await read_one_block(desc(l0, 32, sgl_type::last_segment))),
                  sc::invalid_sgl_segment_descriptor);
        // A segment length that is not a multiple of 16.
        EXPECT_EQ(code(co_await read_one_block(desc(l0, 24, sgl_type::last_segment))),
                  sc::invalid_sgl_segment_descriptor);
        // Chained right: Segment -> Last Segment, 256 + 256 bytes.
        seg[0] = desc(d0, 256, sgl_type::data_block);
        seg[1] = desc(l0 + 64, 16, sgl_type::last_segment);
        seg[4] = desc(d0 + 4096, 256, sgl_type::data_block);
        std::memcpy(rig.model->media(), "chained-sgl-read", 16);
        std::memcpy(rig.model->media() + 256, "second-segment!!", 16);
        EXPECT_EQ(code(co_await read_one_block(desc(l0, 32, sgl_type::segment))), sc::success);
        EXPECT_EQ(std::memcmp(data.data(), "chained-sgl-read", 16), 0);
        EXPECT_EQ(std::memcmp(data.data() + 4096, "second-segment!!", 16), 0);
        // PSDT 10b (MPTR as an SGL) is not advertised; 11b is reserved.
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 512, sgl_type::data_block), psdt::sgl_mptr_sgl)),
                  sc::invalid_field);
        EXPECT_EQ(code(co_await read_one_block(desc(d0, 512, sgl_type::data_block), 3)), sc::invalid_field);
        EXPECT_EQ(dev->controller().state(), controller_state::live);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, ModelWithoutSglRefusesSglCommands) {
    int rc = test::run_engine(test::small_config(1), [](engine* e) -> future<int> {
        model_config cfg;
        cfg.sgls = 0;
        model_rig rig(e, cfg);
        auto dev = co_await rig.open(e);
        auto data = buffer(e, 4096);
        sqe c{};
        c.opcode = nvm_opcode::read;
        c.nsid = 1;
        c.set_psdt(psdt::sgl_mptr_contiguous);
        c.dptr.sgl.address = dev->controller().bus().bus_address(data.data());
        c.dptr.sgl.length = 512;
        qp_result r = co_await dev->controller().io_qpair(0).execute(c);
        EXPECT_EQ(status_code(r.cq.status), sc::invalid_field);
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(PcieSgl, UriParameter) {
    auto parse = [](const std::string& text, std::string& err) -> std::optional<pcie_uri> {
        auto uri = parse_device_uri(text, err);
        if (!uri) return std::nullopt;
        return parse_pcie_uri(*uri, err);
    };
    std::string err;
    EXPECT_EQ(parse("pcie:///00:04.0", err)->options.sgl, sgl_mode::automatic);
    EXPECT_EQ(parse("pcie:///00:04.0?sgl=auto", err)->options.sgl, sgl_mode::automatic);
    EXPECT_EQ(parse("pcie:///00:04.0?sgl=on", err)->options.sgl, sgl_mode::on);
    EXPECT_EQ(parse("pcie:///00:04.0?sgl=off&io_depth=8", err)->options.sgl, sgl_mode::off);
    EXPECT_FALSE(parse("pcie:///00:04.0?sgl=yes", err));
    EXPECT_NE(err.find("sgl=yes is not one of auto, on, off"), std::string::npos) << err;
}

}  // namespace
