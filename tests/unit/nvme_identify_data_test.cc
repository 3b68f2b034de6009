// The target's data pages (nvme/target/identify_data.hh) read back through
// the nvme/spec structs and at raw byte offsets: Identify Controller for an
// I/O and a discovery controller, Identify Namespace for 512 and 4096-byte
// blocks, the active namespace list, the namespace descriptor list, the
// Discovery log with two entries, the SMART log and the CAP property.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"
#include "nvme/spec/nvme_log.hh"
#include "nvme/spec/nvme_spec.hh"
#include "nvme/target/identify_data.hh"

using namespace ioe::nvme;

namespace {

using page = std::array<std::byte, 4096>;

template <typename T, std::size_t N>
T read_as(const std::array<std::byte, N>& b) {
    static_assert(sizeof(T) <= N);
    T v;
    std::memcpy(&v, b.data(), sizeof v);
    return v;
}

template <typename T>
T read_at(const std::vector<std::byte>& b, std::size_t at) {
    T v;
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}

std::uint8_t u8(std::span<const std::byte> b, std::size_t at) { return std::to_integer<std::uint8_t>(b[at]); }
std::uint16_t le16(std::span<const std::byte> b, std::size_t at) {
    return static_cast<std::uint16_t>(u8(b, at) | (u8(b, at + 1) << 8));
}
std::uint32_t le32(std::span<const std::byte> b, std::size_t at) {
    return std::uint32_t{le16(b, at)} | (std::uint32_t{le16(b, at + 2)} << 16);
}
std::uint64_t le64(std::span<const std::byte> b, std::size_t at) {
    return std::uint64_t{le32(b, at)} | (std::uint64_t{le32(b, at + 4)} << 32);
}
std::string field(const char* p, std::size_t n) { return std::string(p, n); }

bool all_zero(std::span<const std::byte> b) {
    return std::all_of(b.begin(), b.end(), [](std::byte x) { return x == std::byte{0}; });
}

controller_profile io_profile() {
    controller_profile c;
    c.cntlid = 7;
    c.subnqn = "nqn.2024-01.io.ioengine:pool0";
    c.serial = "IOE0001";
    c.model = "ioengine";
    c.firmware = "0.1";
    c.namespace_count = 3;
    c.mdts = 5;
    c.maxcmd = 128;
    c.in_capsule_bytes = 8192;
    c.kas_100ms = 10;
    return c;
}

}  // namespace

TEST(nvme_identify_data, controller_io) {
    page b;
    b.fill(std::byte{0xee});  // every byte must be written
    build_identify_controller(io_profile(), b);
    const auto id = read_as<identify_controller>(b);

    EXPECT_EQ(id.vid, 0);
    EXPECT_EQ(id.ssvid, 0);
    EXPECT_EQ(field(id.sn, 20), "IOE0001             ");
    EXPECT_EQ(field(id.mn, 40), "ioengine" + std::string(32, ' '));
    EXPECT_EQ(field(id.fr, 8), "0.1     ");
    EXPECT_EQ(id.rab, 6);
    EXPECT_EQ(id.ieee[0] | id.ieee[1] | id.ieee[2], 0);
    EXPECT_EQ(u8(b, 76), 0x0b) << "CMIC: several ports, several controllers, ANA reporting";
    EXPECT_EQ(id.mdts, 5);
    EXPECT_EQ(id.cntlid, 7);
    EXPECT_EQ(le16(b, 78), 7);
    EXPECT_EQ(id.ver, 0x00010300u);
    EXPECT_EQ(id.ver, make_version(1, 3));
    EXPECT_EQ(le32(b, 80), vs_property);
    EXPECT_EQ(id.oaes, (1u << 8) | (1u << 11)) << "namespace attribute and ANA change notices";
    EXPECT_EQ(u8(b, 342), 10) << "ANATT";
    EXPECT_EQ(u8(b, 343), 0x4f) << "ANACAP: four states reported, ANAGRPID static";
    EXPECT_EQ(le32(b, 344), 3u) << "ANAGRPMAX: one group per namespace";
    EXPECT_EQ(le32(b, 348), 3u) << "NANAGRPID";
    EXPECT_EQ(le32(b, 540), 3u) << "MNAN";
    EXPECT_EQ(id.ctratt, 1u);  // 128-bit host identifier only
    EXPECT_EQ(id.cntrltype, 1);
    EXPECT_EQ(u8(b, 111), 1);
    EXPECT_EQ(id.oacs, 0);
    EXPECT_EQ(id.acl, 3);
    EXPECT_EQ(id.aerl, 3);
    EXPECT_EQ(id.frmw, 0x3);
    EXPECT_EQ(id.lpa, 0x4);  // extended data, no effects log
    EXPECT_EQ(id.elpe, 0);
    EXPECT_EQ(id.npss, 0);
    EXPECT_EQ(id.kas, 10);
    EXPECT_EQ(le16(b, 320), 10);
    EXPECT_EQ(id.sqes, 0x66);
    EXPECT_EQ(id.cqes, 0x44);
    EXPECT_EQ(u8(b, 512), 0x66);
    EXPECT_EQ(u8(b, 513), 0x44);
    EXPECT_EQ(id.maxcmd, 128);
    EXPECT_EQ(id.nn, 3u);
    EXPECT_EQ(le32(b, 516), 3u);
    EXPECT_EQ(id.oncs, oncs::dataset_management | oncs::write_zeroes | oncs::reservations);
    EXPECT_EQ(le16(b, 520), 0x002c);  // DSM, Write Zeroes, Reservations
    EXPECT_EQ(id.vwc, 1);
    EXPECT_EQ(u8(b, 525), 1);
    EXPECT_EQ(id.sgls, (1u << 0) | (1u << 20));
    EXPECT_EQ(le32(b, 536), 0x00100001u);
    // SUBNQN at 768, NUL padded.
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data() + 768)), "nqn.2024-01.io.ioengine:pool0");
    EXPECT_TRUE(all_zero(std::span(b).subspan(768 + 29, 256 - 29)));
    // Fabrics fields.
    EXPECT_EQ(id.ioccsz, (64u + 8192u) / 16u);
    EXPECT_EQ(le32(b, 1792), 516u);
    EXPECT_EQ(le32(b, 1796), 1u);  // IORCSZ
    EXPECT_EQ(le16(b, 1800), 0);   // ICDOFF
    EXPECT_EQ(u8(b, 1802), 0);     // FCATT: dynamic model
    EXPECT_EQ(u8(b, 1803), 1);     // MSDBD
    // Untouched ranges are zero, not left over from the buffer.
    EXPECT_TRUE(all_zero(std::span(b).subspan(2048, 2048)));
    EXPECT_TRUE(all_zero(std::span(b).subspan(1024, 768)));
}

TEST(nvme_identify_data, controller_field_limits) {
    controller_profile c = io_profile();
    c.serial = std::string(25, 'S');
    c.model = std::string(40, 'M');
    c.firmware = "123456789";
    c.subnqn = std::string(300, 'n');
    c.in_capsule_bytes = 0;
    c.volatile_write_cache = false;
    page b;
    build_identify_controller(c, b);
    const auto id = read_as<identify_controller>(b);
    EXPECT_EQ(field(id.sn, 20), std::string(20, 'S'));
    EXPECT_EQ(field(id.mn, 40), std::string(40, 'M'));
    EXPECT_EQ(field(id.fr, 8), "12345678");
    EXPECT_EQ(u8(b, 72), 6);  // RAB right after FR: no overflow
    EXPECT_EQ(std::string(id.subnqn).size(), 255u);
    EXPECT_EQ(id.ioccsz, 4u);
    EXPECT_EQ(id.vwc, 0);
}

TEST(nvme_identify_data, controller_discovery) {
    controller_profile c = io_profile();
    c.discovery = true;
    c.subnqn = discovery_nqn;
    c.cntlid = 1;
    page b;
    build_identify_controller(c, b);
    const auto id = read_as<identify_controller>(b);
    EXPECT_EQ(id.cntrltype, 2);
    EXPECT_EQ(id.nn, 0u);
    EXPECT_EQ(id.oncs, 0);
    EXPECT_EQ(id.vwc, 0);
    EXPECT_EQ(id.oaes, 1u << 31);  // Discovery Log Page Change notices
    EXPECT_EQ(id.ioccsz, 4u);
    EXPECT_EQ(id.iorcsz, 1u);
    EXPECT_EQ(id.msdbd, 1);
    EXPECT_EQ(id.lpa, 0x4);
    EXPECT_EQ(id.kas, 10);
    EXPECT_EQ(std::string(id.subnqn), "nqn.2014-08.org.nvmexpress.discovery");
}

TEST(nvme_identify_data, namespace_512_and_4096) {
    namespace_profile ns;
    ns.block_size = 512;
    ns.block_count = 2097152;  // 1 GiB
    page b;
    b.fill(std::byte{0xee});
    build_identify_namespace(ns, b);
    auto id = read_as<identify_namespace>(b);
    EXPECT_EQ(id.nsze, 2097152u);
    EXPECT_EQ(id.ncap, 2097152u);
    EXPECT_EQ(id.nuse, 2097152u);
    EXPECT_EQ(le64(b, 0), 2097152u);
    EXPECT_EQ(le64(b, 8), 2097152u);
    EXPECT_EQ(le64(b, 16), 2097152u);
    EXPECT_EQ(id.nsfeat, 0);
    EXPECT_EQ(id.nlbaf, 0);
    EXPECT_EQ(id.flbas, 0);
    EXPECT_EQ(id.nmic, nmic_shared);
    EXPECT_EQ(id.rescap, 0xfe);  // six types and IEKEY, no PTPL
    EXPECT_EQ(id.dlfeat, 0x1);
    EXPECT_EQ(u8(b, 33), 0x1);
    EXPECT_EQ(id.lbaf[0].ms, 0);
    EXPECT_EQ(id.lbaf[0].lbads, 9);
    EXPECT_EQ(id.lbaf[0].rp, 0);
    EXPECT_EQ(u8(b, 130), 9);  // LBAF0.LBADS
    EXPECT_EQ(le32(b, 92), 0u) << "ANAGRPID 0 unless the target gives one";
    EXPECT_TRUE(all_zero(std::span(b).subspan(132)));

    ns.block_size = 4096;
    ns.block_count = 262144;
    ns.deallocated_reads_zero = false;
    build_identify_namespace(ns, b);
    id = read_as<identify_namespace>(b);
    EXPECT_EQ(id.nsze, 262144u);
    EXPECT_EQ(id.lbaf[0].lbads, 12);
    EXPECT_EQ(id.dlfeat, 0);
    EXPECT_EQ(flbas_index(id.flbas), 0);
}

TEST(nvme_identify_data, active_namespace_list) {
    const std::vector<std::uint32_t> active{5, 1, 9, 3, 5};
    page b;
    b.fill(std::byte{0xee});
    build_active_namespace_list(active, 0, b);
    EXPECT_EQ(le32(b, 0), 1u);
    EXPECT_EQ(le32(b, 4), 3u);
    EXPECT_EQ(le32(b, 8), 5u);
    EXPECT_EQ(le32(b, 12), 9u);
    EXPECT_EQ(le32(b, 16), 0u);  // terminator
    EXPECT_TRUE(all_zero(std::span(b).subspan(16)));

    build_active_namespace_list(active, 3, b);
    EXPECT_EQ(le32(b, 0), 5u);
    EXPECT_EQ(le32(b, 4), 9u);
    EXPECT_EQ(le32(b, 8), 0u);

    build_active_namespace_list(active, 9, b);
    EXPECT_TRUE(all_zero(b));

    // More than 1024: the first 1024 above `after`, no terminator room.
    std::vector<std::uint32_t> many;
    for (std::uint32_t i = 2000; i >= 1; --i) many.push_back(i);
    build_active_namespace_list(many, 10, b);
    EXPECT_EQ(le32(b, 0), 11u);
    EXPECT_EQ(le32(b, 4092), 11u + 1023u);
}

TEST(nvme_identify_data, namespace_descriptors) {
    const auto u = ioe::uuid::parse("01234567-89ab-cdef-0123-456789abcdef");
    ASSERT_TRUE(u.has_value());
    page b;
    b.fill(std::byte{0xee});
    build_namespace_descriptors(*u, b);
    const auto h = read_as<ns_id_descriptor_header>(b);
    EXPECT_EQ(h.nidt, nidt::uuid);
    EXPECT_EQ(h.nidt, 3);
    EXPECT_EQ(h.nidl, 16);
    EXPECT_EQ(u8(b, 2), 0);
    EXPECT_EQ(u8(b, 3), 0);
    for (std::size_t i = 0; i < 16; ++i) EXPECT_EQ(u8(b, 4 + i), u->bytes[i]) << i;
    EXPECT_EQ(u8(b, 4), 0x01);
    EXPECT_EQ(u8(b, 19), 0xef);
    EXPECT_TRUE(all_zero(std::span(b).subspan(20)));  // NIDT 0 ends the list
}

TEST(nvme_identify_data, discovery_log_two_entries) {
    const std::vector<discovery_entry> entries{
        {discovery_nqn, "127.0.0.1", "4420", 1, true},
        {"nqn.2024-01.io.ioengine:pool0", "10.0.0.2", "4421", 2, false},
    };
    const auto log = build_discovery_log(42, entries);
    ASSERT_EQ(log.size(), 1024u * 3);
    EXPECT_EQ(le64(log, 0), 42u);   // GENCTR
    EXPECT_EQ(le64(log, 8), 2u);    // NUMREC
    EXPECT_EQ(le16(log, 16), 0u);   // RECFMT
    EXPECT_TRUE(all_zero(std::span(log).subspan(18, 1006)));
    const auto h = read_at<discovery_log_header>(log, 0);
    EXPECT_EQ(h.genctr, 42u);
    EXPECT_EQ(h.numrec, 2u);

    for (std::size_t i = 0; i < 2; ++i) {
        const std::size_t at = 1024 * (i + 1);
        const auto e = read_at<discovery_log_entry>(log, at);
        SCOPED_TRACE(i);
        EXPECT_EQ(e.trtype, trtype::tcp);
        EXPECT_EQ(u8(log, at + 0), 3);
        EXPECT_EQ(u8(log, at + 1), adrfam::ipv4);
        EXPECT_EQ(u8(log, at + 3), treq::secure_channel_not_required);
        EXPECT_EQ(le16(log, at + 6), 0xffff);  // CNTLID: dynamic
        EXPECT_EQ(le16(log, at + 8), 32);      // ASQSZ
        EXPECT_EQ(le16(log, at + 10), 0);      // EFLAGS
        EXPECT_EQ(u8(log, at + 768), 0);       // TSAS.SECTYPE: none
        EXPECT_TRUE(all_zero(std::span(log).subspan(at + 768, 256)));
        EXPECT_TRUE(all_zero(std::span(log).subspan(at + 12, 20)));
        EXPECT_TRUE(all_zero(std::span(log).subspan(at + 64, 192)));
    }

    const auto e0 = read_at<discovery_log_entry>(log, 1024);
    EXPECT_EQ(e0.subtype, subtype::current_discovery);
    EXPECT_EQ(u8(log, 1024 + 2), 3);
    EXPECT_EQ(le16(log, 1024 + 4), 1);  // PORTID
    EXPECT_EQ(field(e0.trsvcid, 32), "4420" + std::string(28, ' '));
    EXPECT_EQ(field(e0.traddr, 256), "127.0.0.1" + std::string(247, ' '));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(log.data() + 1024 + 256)), discovery_nqn);
    EXPECT_EQ(u8(log, 1024 + 512), '1');  // TRADDR at 512
    EXPECT_EQ(u8(log, 1024 + 32), '4');   // TRSVCID at 32

    const auto e1 = read_at<discovery_log_entry>(log, 2048);
    EXPECT_EQ(e1.subtype, subtype::nvme);
    EXPECT_EQ(u8(log, 2048 + 2), 2);
    EXPECT_EQ(e1.portid, 2);
    EXPECT_EQ(field(e1.trsvcid, 32), "4421" + std::string(28, ' '));
    EXPECT_EQ(field(e1.traddr, 256), "10.0.0.2" + std::string(248, ' '));
    EXPECT_EQ(std::string(e1.subnqn), "nqn.2024-01.io.ioengine:pool0");
    EXPECT_TRUE(all_zero(std::span(log).subspan(2048 + 256 + 29, 256 - 29)));

    // No entries: the header alone.
    const auto empty = build_discovery_log(7, {});
    ASSERT_EQ(empty.size(), 1024u);
    EXPECT_EQ(le64(empty, 0), 7u);
    EXPECT_EQ(le64(empty, 8), 0u);
}

TEST(nvme_identify_data, discovery_log_ipv6_family) {
    const std::vector<discovery_entry> entries{{"nqn.x", "::1", "4420", 1, false}};
    const auto log = build_discovery_log(1, entries);
    EXPECT_EQ(u8(log, 1024 + 1), adrfam::ipv6);
}

TEST(nvme_identify_data, smart_log) {
    std::array<std::byte, 512> b;
    b.fill(std::byte{0xee});
    build_smart_log(b);
    const auto l = read_as<smart_health_log>(b);
    EXPECT_EQ(smart_temperature(l), 300);
    EXPECT_EQ(le16(b, 1), 300);
    EXPECT_EQ(l.available_spare, 100);
    EXPECT_EQ(l.available_spare_threshold, 10);
    EXPECT_EQ(u8(b, 0), 0);  // no critical warning
    EXPECT_EQ(u8(b, 5), 0);  // percentage used
    EXPECT_TRUE(all_zero(std::span(b).subspan(5)));
}

TEST(nvme_identify_data, cap_property) {
    const std::uint64_t v = cap_property(128);
    EXPECT_EQ(cap::mqes(v), 127);
    EXPECT_TRUE(cap::cqr(v));
    EXPECT_EQ(cap::timeout(v), 15);
    EXPECT_EQ(cap::css(v), cap::css_nvm);
    EXPECT_EQ((v >> 37) & 1, 1u);  // CSS bit 0 = NVM at bit 37
    EXPECT_EQ(cap::mpsmin(v), 0);
    EXPECT_EQ(cap::mpsmax(v), 0);
    EXPECT_EQ((v >> 17) & 0x3, 0u);  // AMS: round robin only
    EXPECT_EQ((v >> 32) & 0xf, 0u);  // DSTRD
    EXPECT_EQ(v, 0x0000'0020'0F01'007Full);
    EXPECT_EQ(cap::mqes(cap_property(1)), 1);  // never below 2 entries
    EXPECT_EQ(cap::mqes(cap_property(65535)), 65534);
    EXPECT_EQ(vs_property, make_version(1, 3, 0));
}

TEST(nvme_identify_data, namespace_ana_group_and_nguid) {
    namespace_profile ns;
    ns.block_size = 4096;
    ns.block_count = 256;
    ns.ana_group = 5;
    ns.id = *ioe::uuid::parse("01234567-89ab-cdef-0123-456789abcdef");
    page b;
    b.fill(std::byte{0xee});
    build_identify_namespace(ns, b);
    EXPECT_EQ(le32(b, 92), 5u) << "ANAGRPID";
    for (std::size_t i = 0; i < 16; ++i) EXPECT_EQ(u8(b, 104 + i), ns.id.bytes[i]) << "NGUID byte " << i;
    for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(u8(b, 120 + i), 0) << "EUI64 byte " << i;
}
