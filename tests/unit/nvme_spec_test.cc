// nvme/spec without a socket: the structs encode to the byte positions the
// NVMe Base / NVMe-oF / NVMe/TCP specifications give (Connect and its data,
// ICReq, CapsuleCmd, C2HData, the status field, Identify, Discovery log,
// Property Set), the CC / CSTS helpers, and the NVMe/TCP common header check
// accepting a valid header of every type and rejecting each broken rule.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"
#include "nvme/spec/nvme_log.hh"
#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/spec/nvme_tcp_spec.hh"

using namespace ioe::nvme;
namespace tcp = ioe::nvme::tcp;

namespace {

template <typename T>
std::vector<std::uint8_t> bytes_of(const T& v) {
    std::vector<std::uint8_t> b(sizeof(T));
    std::memcpy(b.data(), &v, sizeof(T));
    return b;
}

std::uint16_t le16(const std::vector<std::uint8_t>& b, std::size_t at) {
    return static_cast<std::uint16_t>(b.at(at) | (b.at(at + 1) << 8));
}
std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::uint32_t{le16(b, at)} | (std::uint32_t{le16(b, at + 2)} << 16);
}
std::uint64_t le64(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::uint64_t{le32(b, at)} | (std::uint64_t{le32(b, at + 4)} << 32);
}
std::string str_at(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::string(reinterpret_cast<const char*>(b.data() + at));
}

tcp::pdu_common_header ch(tcp::pdu_type t, std::uint8_t flags, std::uint8_t hlen, std::uint8_t pdo,
                          std::uint32_t plen) {
    return tcp::pdu_common_header{static_cast<std::uint8_t>(t), flags, hlen, pdo, plen};
}

constexpr std::uint32_t max_plen = 1u << 20;

}  // namespace

TEST(nvme_spec, connect_command_and_data_bytes) {
    connect_command c{};
    c.opcode = admin_opcode::fabrics;
    c.cid = 0x1234;
    c.fctype = fctype::connect;
    c.sgl1.address = 0;
    c.sgl1.length = sizeof(connect_data);
    c.sgl1.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::offset);
    c.recfmt = 0;
    c.qid = 3;
    c.sqsize = 127;
    c.cattr = cattr_disable_sq_flow_control;
    c.kato = 120000;
    const auto b = bytes_of(c);
    ASSERT_EQ(b.size(), 64u);
    EXPECT_EQ(b[0], 0x7f);
    EXPECT_EQ(le16(b, 2), 0x1234);
    EXPECT_EQ(b[4], 0x01);  // FCTYPE Connect where the NSID would be
    EXPECT_EQ(le32(b, 32), 1024u);  // SGL1 length
    EXPECT_EQ(b[39], 0x01);         // SGL identifier: data block, offset
    EXPECT_EQ(le16(b, 40), 0);      // RECFMT
    EXPECT_EQ(le16(b, 42), 3);      // QID
    EXPECT_EQ(le16(b, 44), 127);    // SQSIZE
    EXPECT_EQ(b[46], 0x04);         // CATTR
    EXPECT_EQ(le32(b, 48), 120000u);  // KATO

    // The same bytes read back as a generic SQE.
    sqe generic{};
    std::memcpy(&generic, &c, sizeof(generic));
    EXPECT_EQ(generic.opcode, admin_opcode::fabrics);
    EXPECT_EQ(generic.nsid & 0xff, fctype::connect);
    EXPECT_EQ(generic.cdw10, 3u << 16);
    EXPECT_EQ(generic.cdw12, 120000u);

    connect_data d{};
    for (int i = 0; i < 16; ++i) d.hostid[i] = static_cast<std::uint8_t>(i + 1);
    d.cntlid = cntlid_dynamic;
    std::strcpy(d.subnqn, "nqn.2026-01.io.ioengine:vol0");
    std::strcpy(d.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
    const auto db = bytes_of(d);
    ASSERT_EQ(db.size(), 1024u);
    EXPECT_EQ(db[0], 1);
    EXPECT_EQ(db[15], 16);
    EXPECT_EQ(le16(db, 16), 0xffff);
    EXPECT_EQ(str_at(db, 256), "nqn.2026-01.io.ioengine:vol0");
    EXPECT_EQ(str_at(db, 512).substr(0, 32), "nqn.2014-08.org.nvmexpress:uuid:");
}

TEST(nvme_spec, property_get_set_and_disconnect_bytes) {
    property_set_command s{};
    s.opcode = admin_opcode::fabrics;
    s.fctype = fctype::property_set;
    s.attrib = property_size::four_bytes;
    s.ofst = property::cc;
    s.value = cc::en | (std::uint32_t{6} << 16) | (std::uint32_t{4} << 20);
    auto b = bytes_of(s);
    EXPECT_EQ(b[4], 0x00);
    EXPECT_EQ(b[40], 0);
    EXPECT_EQ(le32(b, 44), 0x14u);
    EXPECT_EQ(le64(b, 48), 0x00460001u);

    property_get_command g{};
    g.opcode = admin_opcode::fabrics;
    g.fctype = fctype::property_get;
    g.attrib = property_size::eight_bytes;
    g.ofst = property::cap;
    b = bytes_of(g);
    EXPECT_EQ(b[4], 0x04);
    EXPECT_EQ(b[40], 1);
    EXPECT_EQ(le32(b, 44), 0u);

    disconnect_command dc{};
    dc.opcode = admin_opcode::fabrics;
    dc.fctype = fctype::disconnect;
    b = bytes_of(dc);
    EXPECT_EQ(b[4], 0x08);

    property_get_response r{};
    r.value = cap::make(127, true, 30, cap::css_nvm, 0, 0);
    r.cid = 9;
    b = bytes_of(r);
    EXPECT_EQ(le16(b, 0), 127);
    EXPECT_EQ(b[2] & 1, 1);  // CQR
    EXPECT_EQ(b[3], 30);     // TO
    EXPECT_EQ(le16(b, 12), 9);
    EXPECT_EQ(cap::mqes(r.value), 127);
    EXPECT_TRUE(cap::cqr(r.value));
    EXPECT_EQ(cap::css(r.value) & cap::css_nvm, cap::css_nvm);
}

TEST(nvme_spec, status_field_bit_layout) {
    const auto st = make_status(sct::media_error, sc_media::unrecovered_read_error, /*dnr=*/true, /*phase=*/true);
    EXPECT_EQ(st, 0x8503);  // DNR 15, SCT 2 at 11:9, SC 0x81 at 8:1, phase 0
    EXPECT_EQ(status_code(st), 0x81);
    EXPECT_EQ(status_code_type(st), 2);
    EXPECT_TRUE(status_dnr(st));
    EXPECT_TRUE(status_phase(st));
    EXPECT_FALSE(status_more(st));
    EXPECT_FALSE(status_ok(st));
    EXPECT_TRUE(status_ok(make_status(sct::generic, sc::success, false, true)));
    EXPECT_EQ(make_status(sct::generic, sc::lba_out_of_range), 0x0100);
    EXPECT_EQ(make_status(sct::command_specific, sc_specific::connect_invalid_host), (0x84 << 1) | (1 << 9));

    cqe c{};
    c.dw0 = 0xdeadbeef;
    c.sqhd = 5;
    c.sqid = 1;
    c.cid = 0x4242;
    c.status = make_status(sct::generic, sc::invalid_field, true);
    const auto b = bytes_of(c);
    ASSERT_EQ(b.size(), 16u);
    EXPECT_EQ(le32(b, 0), 0xdeadbeefu);
    EXPECT_EQ(le16(b, 8), 5);
    EXPECT_EQ(le16(b, 10), 1);
    EXPECT_EQ(le16(b, 12), 0x4242);
    EXPECT_EQ(b[14], 0x04);  // SC 0x02 << 1
    EXPECT_EQ(b[15], 0x80);  // DNR
}

TEST(nvme_spec, sqe_read_write_fields) {
    sqe c{};
    c.opcode = nvm_opcode::read;
    c.cid = 7;
    c.nsid = 1;
    c.set_psdt(psdt::sgl_mptr_contiguous);
    c.dptr.sgl.length = 8192;
    c.dptr.sgl.identifier = sgl_identifier(sgl_type::transport_data_block, sgl_subtype::transport_specific);
    c.cdw10 = 0x89abcdef;
    c.cdw11 = 0x01234567;
    c.cdw12 = 15;
    const auto b = bytes_of(c);
    EXPECT_EQ(b[0], 0x02);
    EXPECT_EQ(b[1], 0x40);  // PSDT 01b in bits 7:6
    EXPECT_EQ(le32(b, 4), 1u);
    EXPECT_EQ(le32(b, 32), 8192u);
    EXPECT_EQ(b[39], 0x5a);
    EXPECT_EQ(le32(b, 40), 0x89abcdefu);
    EXPECT_EQ(rw_slba(c), 0x0123456789abcdefull);
    EXPECT_EQ(rw_block_count(c), 16u);
    EXPECT_EQ(c.psdt(), psdt::sgl_mptr_contiguous);
    EXPECT_EQ(c.fuse(), 0);
}

TEST(nvme_spec, identify_controller_and_namespace_bytes) {
    auto id = std::make_unique<identify_controller>();
    std::memset(id.get(), 0, sizeof(*id));
    id->vid = 0x1d1d;
    std::memcpy(id->sn, "SN0001              ", 20);
    id->mdts = 5;
    id->cntlid = 2;
    id->ver = make_version(2, 0);
    id->sqes = 0x66;
    id->cqes = 0x44;
    id->nn = 32;
    id->oncs = oncs::dataset_management | oncs::write_zeroes;
    std::strcpy(id->subnqn, "nqn.2026-01.io.ioengine:vol0");
    id->ioccsz = (64 + 8192) / 16;
    id->iorcsz = 1;
    id->msdbd = 1;
    const auto b = bytes_of(*id);
    ASSERT_EQ(b.size(), 4096u);
    EXPECT_EQ(le16(b, 0), 0x1d1d);
    EXPECT_EQ(b[4], 'S');
    EXPECT_EQ(b[77], 5);
    EXPECT_EQ(le16(b, 78), 2);
    EXPECT_EQ(le32(b, 80), 0x00020000u);
    EXPECT_EQ(b[512], 0x66);
    EXPECT_EQ(b[513], 0x44);
    EXPECT_EQ(le32(b, 516), 32u);
    EXPECT_EQ(le16(b, 520), 0x000c);
    EXPECT_EQ(str_at(b, 768), "nqn.2026-01.io.ioengine:vol0");
    EXPECT_EQ(le32(b, 1792), 516u);
    EXPECT_EQ(le32(b, 1796), 1u);
    EXPECT_EQ(b[1803], 1);

    auto ns = std::make_unique<identify_namespace>();
    std::memset(ns.get(), 0, sizeof(*ns));
    ns->nsze = ns->ncap = ns->nuse = 1u << 20;
    ns->nlbaf = 0;
    ns->flbas = 0;
    ns->dlfeat = dlfeat_read_zeroes;
    ns->lbaf[0].lbads = 12;
    ns->lbaf[1].lbads = 9;
    const auto nb = bytes_of(*ns);
    EXPECT_EQ(le64(nb, 0), 1u << 20);
    EXPECT_EQ(le64(nb, 16), 1u << 20);
    EXPECT_EQ(nb[33], 1);
    EXPECT_EQ(nb[130], 12);  // LBAF0.LBADS
    EXPECT_EQ(nb[134], 9);   // LBAF1.LBADS
    EXPECT_EQ(flbas_index(0x21), 0x11);
}

TEST(nvme_spec, log_pages_bytes) {
    discovery_log_entry e{};
    e.trtype = trtype::tcp;
    e.adrfam = adrfam::ipv4;
    e.subtype = subtype::nvme;
    e.treq = treq::secure_channel_not_required;
    e.portid = 1;
    e.cntlid = cntlid_dynamic;
    e.asqsz = 32;
    std::memcpy(e.trsvcid, "4420", 4);
    std::strcpy(e.subnqn, "nqn.2026-01.io.ioengine:vol0");
    std::memcpy(e.traddr, "127.0.0.1", 9);
    const auto b = bytes_of(e);
    ASSERT_EQ(b.size(), 1024u);
    EXPECT_EQ(b[0], 3);
    EXPECT_EQ(b[1], 1);
    EXPECT_EQ(b[2], 2);
    EXPECT_EQ(b[3], 2);
    EXPECT_EQ(le16(b, 4), 1);
    EXPECT_EQ(le16(b, 6), 0xffff);
    EXPECT_EQ(le16(b, 8), 32);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(&b[32]), 4), "4420");
    EXPECT_EQ(str_at(b, 256), "nqn.2026-01.io.ioengine:vol0");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(&b[512]), 9), "127.0.0.1");

    discovery_log_header h{};
    h.genctr = 3;
    h.numrec = 2;
    const auto hb = bytes_of(h);
    EXPECT_EQ(le64(hb, 0), 3u);
    EXPECT_EQ(le64(hb, 8), 2u);

    smart_health_log s{};
    set_smart_temperature(s, 300);
    s.data_units_read[0] = 7;
    const auto sb = bytes_of(s);
    EXPECT_EQ(le16(sb, 1), 300);
    EXPECT_EQ(smart_temperature(s), 300);
    EXPECT_EQ(le64(sb, 32), 7u);

    error_log_entry el{};
    el.error_count = 1;
    el.status = make_status(sct::media_error, sc_media::write_fault);
    el.lba = 99;
    const auto eb = bytes_of(el);
    EXPECT_EQ(le16(eb, 12), (0x80 << 1) | (2 << 9));
    EXPECT_EQ(le64(eb, 16), 99u);

    ns_id_descriptor_header nd{nidt::uuid, 16, {0, 0}};
    const auto ndb = bytes_of(nd);
    EXPECT_EQ(ndb[0], 3);
    EXPECT_EQ(ndb[1], 16);
}

TEST(nvme_spec, cc_and_csts_helpers) {
    std::uint32_t v = 0;
    EXPECT_FALSE(cc::enabled(v));
    v |= cc::en;
    EXPECT_TRUE(cc::enabled(v));
    v = cc::with_shn(v, cc::shn_normal);
    EXPECT_EQ(v, 0x4001u);
    EXPECT_EQ(cc::shn(v), cc::shn_normal);
    v = cc::with_shn(v, cc::shn_abrupt);
    EXPECT_EQ(cc::shn(v), cc::shn_abrupt);
    EXPECT_EQ(cc::iosqes(0x00460000u), 6);
    EXPECT_EQ(cc::iocqes(0x00460000u), 4);

    std::uint32_t s = csts::with_ready(0, true);
    EXPECT_TRUE(csts::ready(s));
    s = csts::with_shst(s, csts::shst_complete);
    EXPECT_EQ(s, 0x9u);
    EXPECT_EQ(csts::shst(s), csts::shst_complete);
    s = csts::with_ready(s, false);
    EXPECT_FALSE(csts::ready(s));
    EXPECT_EQ(property::cap, 0x0u);
    EXPECT_EQ(property::vs, 0x8u);
    EXPECT_EQ(property::cc, 0x14u);
    EXPECT_EQ(property::csts, 0x1cu);
    EXPECT_EQ(property::nssr, 0x20u);
    EXPECT_EQ(make_version(1, 4), 0x00010400u);
}

TEST(nvme_tcp_spec, icreq_icresp_bytes) {
    tcp::ic_req r{};
    r.ch = ch(tcp::pdu_type::ic_req, 0, sizeof(tcp::ic_req), 0, sizeof(tcp::ic_req));
    r.pfv = tcp::pfv_1_0;
    r.hpda = 0;
    r.dgst = tcp::dgst::header | tcp::dgst::data;
    r.maxr2t = 0;
    const auto b = bytes_of(r);
    ASSERT_EQ(b.size(), 128u);
    EXPECT_EQ(b[0], 0x00);
    EXPECT_EQ(b[1], 0x00);
    EXPECT_EQ(b[2], 128);
    EXPECT_EQ(b[3], 0);
    EXPECT_EQ(le32(b, 4), 128u);
    EXPECT_EQ(le16(b, 8), 0);
    EXPECT_EQ(b[10], 0);
    EXPECT_EQ(b[11], 0x03);
    EXPECT_EQ(le32(b, 12), 0u);
    EXPECT_EQ(tcp::check_header(r.ch, false, false, max_plen), tcp::pdu_check::ok);

    tcp::ic_resp p{};
    p.ch = ch(tcp::pdu_type::ic_resp, 0, 128, 0, 128);
    p.cpda = 0;
    p.dgst = tcp::dgst::header;
    p.maxh2cdata = 131072;
    const auto pb = bytes_of(p);
    EXPECT_EQ(pb[0], 0x01);
    EXPECT_EQ(pb[11], 0x01);
    EXPECT_EQ(le32(pb, 12), 131072u);
}

TEST(nvme_tcp_spec, capsule_cmd_and_resp_bytes) {
    // A Write with 4 KiB of in-capsule data, header digest on.
    tcp::capsule_cmd c{};
    c.ch = ch(tcp::pdu_type::capsule_cmd, tcp::pdu_flags::hdgstf, sizeof(tcp::capsule_cmd), 76, 76 + 4096);
    c.ccsqe.opcode = nvm_opcode::write;
    c.ccsqe.cid = 0x0102;
    c.ccsqe.nsid = 1;
    c.ccsqe.dptr.sgl.address = 0;
    c.ccsqe.dptr.sgl.length = 4096;
    c.ccsqe.dptr.sgl.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::offset);
    const auto b = bytes_of(c);
    ASSERT_EQ(b.size(), 72u);
    EXPECT_EQ(b[0], 0x04);
    EXPECT_EQ(b[1], 0x01);
    EXPECT_EQ(b[2], 72);
    EXPECT_EQ(b[3], 76);
    EXPECT_EQ(le32(b, 4), 4172u);
    EXPECT_EQ(b[8], 0x01);  // SQE opcode right after the common header
    EXPECT_EQ(le16(b, 10), 0x0102);
    EXPECT_EQ(le32(b, 12), 1u);
    EXPECT_EQ(le32(b, 8 + 32), 4096u);
    EXPECT_EQ(b[8 + 39], 0x01);
    EXPECT_EQ(tcp::check_header(c.ch, true, false, max_plen), tcp::pdu_check::ok);
    EXPECT_EQ(tcp::remaining_header_bytes(c.ch), 64u + 4u);

    // The plain 72-byte capsule of a 4 KiB read (no data, no digests).
    tcp::capsule_cmd rd{};
    rd.ch = ch(tcp::pdu_type::capsule_cmd, 0, 72, 0, 72);
    EXPECT_EQ(le32(bytes_of(rd), 4), 72u);
    EXPECT_EQ(tcp::check_header(rd.ch, false, false, max_plen), tcp::pdu_check::ok);

    tcp::capsule_resp r{};
    r.ch = ch(tcp::pdu_type::capsule_resp, 0, sizeof(tcp::capsule_resp), 0, sizeof(tcp::capsule_resp));
    r.rccqe.cid = 0x0102;
    r.rccqe.status = make_status(sct::generic, sc::namespace_not_ready, true);
    const auto rb = bytes_of(r);
    ASSERT_EQ(rb.size(), 24u);
    EXPECT_EQ(rb[0], 0x05);
    EXPECT_EQ(rb[2], 24);
    EXPECT_EQ(le32(rb, 4), 24u);
    EXPECT_EQ(le16(rb, 8 + 12), 0x0102);
    EXPECT_EQ(le16(rb, 8 + 14), 0x8104);
}

TEST(nvme_tcp_spec, data_r2t_and_term_req_bytes) {
    tcp::c2h_data d{};
    d.ch = ch(tcp::pdu_type::c2h_data, tcp::pdu_flags::last_pdu | tcp::pdu_flags::success, 24, 24, 24 + 4096);
    d.cccid = 0x0033;
    d.datao = 8192;
    d.datal = 4096;
    const auto b = bytes_of(d);
    ASSERT_EQ(b.size(), 24u);
    EXPECT_EQ(b[0], 0x07);
    EXPECT_EQ(b[1], 0x0c);
    EXPECT_EQ(b[2], 24);
    EXPECT_EQ(b[3], 24);
    EXPECT_EQ(le32(b, 4), 4120u);
    EXPECT_EQ(le16(b, 8), 0x0033);
    EXPECT_EQ(le32(b, 12), 8192u);
    EXPECT_EQ(le32(b, 16), 4096u);
    EXPECT_EQ(tcp::check_header(d.ch, false, false, max_plen), tcp::pdu_check::ok);
    EXPECT_EQ(tcp::check_data_length(d.ch, d.datal), tcp::pdu_check::ok);
    EXPECT_EQ(tcp::check_data_length(d.ch, 4095), tcp::pdu_check::bad_plen);

    tcp::h2c_data h{};
    h.ch = ch(tcp::pdu_type::h2c_data, tcp::pdu_flags::last_pdu, 24, 24, 24 + 512);
    h.cccid = 1;
    h.ttag = 0x0a0b;
    h.datal = 512;
    const auto hb = bytes_of(h);
    EXPECT_EQ(hb[0], 0x06);
    EXPECT_EQ(le16(hb, 10), 0x0a0b);
    EXPECT_EQ(le32(hb, 16), 512u);

    tcp::r2t t{};
    t.ch = ch(tcp::pdu_type::r2t, 0, 24, 0, 24);
    t.cccid = 1;
    t.ttag = 2;
    t.r2to = 4096;
    t.r2tl = 65536;
    const auto tb = bytes_of(t);
    EXPECT_EQ(tb[0], 0x09);
    EXPECT_EQ(le16(tb, 10), 2);
    EXPECT_EQ(le32(tb, 12), 4096u);
    EXPECT_EQ(le32(tb, 16), 65536u);

    tcp::term_req tr{};
    tr.ch = ch(tcp::pdu_type::c2h_term_req, 0, 24, 0, 24 + 8);
    tr.fes = tcp::fes::invalid_header_field;
    tcp::set_term_req_fei(tr, 2);
    const auto trb = bytes_of(tr);
    EXPECT_EQ(trb[0], 0x03);
    EXPECT_EQ(le16(trb, 8), 1);
    EXPECT_EQ(le32(trb, 10), 2u);
    EXPECT_EQ(tcp::term_req_fei(tr), 2u);
}

TEST(nvme_tcp_check, accepts_valid_header_of_every_type) {
    using tcp::pdu_check;
    using tcp::pdu_type;
    namespace f = tcp::pdu_flags;
    struct ok_case {
        tcp::pdu_common_header h;
        bool hd;
        bool dd;
    };
    const ok_case cases[] = {
        {ch(pdu_type::ic_req, 0, 128, 0, 128), false, false},
        {ch(pdu_type::ic_resp, 0, 128, 0, 128), false, false},
        {ch(pdu_type::h2c_term_req, 0, 24, 0, 24), false, false},
        {ch(pdu_type::c2h_term_req, 0, 24, 0, 152), true, true},  // never digested
        {ch(pdu_type::capsule_cmd, 0, 72, 0, 72), false, false},
        {ch(pdu_type::capsule_cmd, f::hdgstf, 72, 0, 76), true, true},  // no data: no DDGSTF
        {ch(pdu_type::capsule_cmd, f::hdgstf | f::ddgstf, 72, 76, 76 + 4096 + 4), true, true},
        {ch(pdu_type::capsule_resp, 0, 24, 0, 24), false, false},
        {ch(pdu_type::capsule_resp, f::hdgstf, 24, 0, 28), true, true},
        {ch(pdu_type::h2c_data, f::last_pdu, 24, 24, 24 + 1), false, false},
        {ch(pdu_type::h2c_data, f::hdgstf | f::ddgstf, 24, 28, 28 + 8192 + 4), true, true},
        {ch(pdu_type::c2h_data, f::last_pdu | f::success, 24, 24, 24 + 4096), false, false},
        {ch(pdu_type::c2h_data, f::ddgstf, 24, 24, 24 + 512 + 4), false, true},
        {ch(pdu_type::r2t, 0, 24, 0, 24), false, false},
        {ch(pdu_type::r2t, f::hdgstf, 24, 0, 28), true, false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(tcp::check_header(c.h, c.hd, c.dd, max_plen), pdu_check::ok)
            << "type " << int(c.h.pdu_type) << " flags " << int(c.h.flags) << " pdo " << int(c.h.pdo) << " plen "
            << c.h.plen;
    }
    // PDU data alignment: CPDA 7 = 32 bytes, so PDO 96 for a CapsuleCmd.
    EXPECT_EQ(tcp::check_header(ch(pdu_type::capsule_cmd, 0, 72, 96, 96 + 512), false, false, max_plen, 7),
              pdu_check::ok);
}

TEST(nvme_tcp_check, rejects_each_broken_rule) {
    using tcp::pdu_check;
    using tcp::pdu_type;
    namespace f = tcp::pdu_flags;
    auto check = [](tcp::pdu_common_header h, bool hd = false, bool dd = false, std::uint32_t limit = max_plen,
                    std::uint8_t pda = 0) { return tcp::check_header(h, hd, dd, limit, pda); };

    // Unknown types: 0x08 is reserved, and everything above R2T.
    EXPECT_EQ(check({0x08, 0, 24, 0, 24}), pdu_check::bad_type);
    EXPECT_EQ(check({0x0a, 0, 24, 0, 24}), pdu_check::bad_type);
    EXPECT_EQ(check({0xff, 0, 24, 0, 24}), pdu_check::bad_type);

    // Flags.
    EXPECT_EQ(check(ch(pdu_type::ic_req, f::hdgstf, 128, 0, 128)), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::capsule_resp, f::ddgstf, 24, 0, 24)), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, f::last_pdu, 72, 0, 72)), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::h2c_data, f::success | f::last_pdu, 24, 24, 25)), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::c2h_data, f::success, 24, 24, 25)), pdu_check::bad_flags);  // no LAST_PDU
    EXPECT_EQ(check(ch(pdu_type::r2t, 0, 24, 0, 24), /*hd=*/true), pdu_check::bad_flags);   // digest missing
    EXPECT_EQ(check(ch(pdu_type::r2t, f::hdgstf, 24, 0, 28), /*hd=*/false), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::c2h_data, 0, 24, 24, 25 + 4), false, /*dd=*/true), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::c2h_data, f::ddgstf, 24, 24, 25), false, /*dd=*/false), pdu_check::bad_flags);
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, f::ddgstf, 72, 0, 72), false, /*dd=*/true), pdu_check::bad_flags);

    // HLEN fixed per type.
    EXPECT_EQ(check(ch(pdu_type::ic_req, 0, 127, 0, 128)), pdu_check::bad_hlen);
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, 0, 64, 0, 64)), pdu_check::bad_hlen);
    EXPECT_EQ(check(ch(pdu_type::capsule_resp, 0, 72, 0, 72)), pdu_check::bad_hlen);
    EXPECT_EQ(check(ch(pdu_type::h2c_data, 0, 255, 0, 1024)), pdu_check::bad_hlen);

    // PDO.
    EXPECT_EQ(check(ch(pdu_type::r2t, 0, 24, 24, 24)), pdu_check::bad_pdo);          // no data allowed
    EXPECT_EQ(check(ch(pdu_type::ic_resp, 0, 128, 128, 128)), pdu_check::bad_pdo);
    EXPECT_EQ(check(ch(pdu_type::c2h_data, 0, 24, 0, 24 + 512)), pdu_check::bad_pdo);  // data needs PDO
    EXPECT_EQ(check(ch(pdu_type::c2h_data, 0, 24, 20, 24 + 512)), pdu_check::bad_pdo); // inside header
    EXPECT_EQ(check(ch(pdu_type::h2c_data, f::hdgstf, 24, 24, 28 + 512), true), pdu_check::bad_pdo);  // on digest
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, 0, 72, 74, 74 + 512)), pdu_check::bad_pdo);  // not dword aligned
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, 0, 72, 72, 72 + 512), false, false, max_plen, 7),
              pdu_check::bad_pdo);  // not aligned to CPDA
    EXPECT_EQ(check(ch(pdu_type::h2c_term_req, 0, 24, 8, 32)), pdu_check::bad_pdo);

    // PLEN.
    EXPECT_EQ(check(ch(pdu_type::ic_req, 0, 128, 0, 129)), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::capsule_resp, 0, 24, 0, 23)), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::capsule_resp, f::hdgstf, 24, 0, 24), true), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, 0, 72, 0, 71)), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, 0, 72, 72, 72)), pdu_check::bad_plen);  // PDO but no data
    EXPECT_EQ(check(ch(pdu_type::h2c_data, 0, 24, 24, 24)), pdu_check::bad_plen);     // data PDU, no data
    EXPECT_EQ(check(ch(pdu_type::h2c_data, f::ddgstf, 24, 24, 28), false, true), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::c2h_term_req, 0, 24, 0, 153)), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::c2h_term_req, 0, 24, 0, 23)), pdu_check::bad_plen);
    EXPECT_EQ(check(ch(pdu_type::c2h_data, 0, 24, 24, 0xffffffffu), false, false, 0xffffffffu), pdu_check::ok);

    // The receiver's limit.
    EXPECT_EQ(check(ch(pdu_type::capsule_cmd, 0, 72, 72, 72 + 8192), false, false, 4096), pdu_check::too_long);
    EXPECT_EQ(check(ch(pdu_type::ic_req, 0, 128, 0, 128), false, false, 100), pdu_check::too_long);

    EXPECT_EQ(tcp::field_offset(pdu_check::bad_plen), 4u);
    EXPECT_EQ(tcp::field_offset(pdu_check::bad_hlen), 2u);
    EXPECT_EQ(tcp::to_string(pdu_check::bad_pdo), "invalid PDU data offset (PDO)");
    EXPECT_EQ(tcp::expected_hlen(0x04), 72);
    EXPECT_FALSE(tcp::expected_hlen(0x08));
}
