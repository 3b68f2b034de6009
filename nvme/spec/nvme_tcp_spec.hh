// NVMe/TCP transport PDUs as plain data (NVMe/TCP Transport Specification
// 1.0, part of NVMe over Fabrics 1.1): the 8-byte common header every PDU
// starts with, the PDU types and flags, and the PDU-specific headers
// (ICReq, ICResp, H2CTermReq / C2HTermReq, CapsuleCmd, CapsuleResp, H2CData,
// C2HData, R2T). Sizes and every field offset are pinned by static_asserts
// from the specification; nvme/spec/nvme_tcp_check.hh validates a received
// common header against these rules.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme::tcp {

static_assert(std::endian::native == std::endian::little, "NVMe/TCP PDUs are little-endian");

inline constexpr std::uint16_t default_port = 4420;
inline constexpr std::uint16_t discovery_port = 8009;
inline constexpr std::uint16_t pfv_1_0 = 0x0000;  // PDU format version
inline constexpr std::uint32_t digest_bytes = 4;  // CRC32C header / data digest
inline constexpr std::uint32_t min_maxh2cdata = 4096;
inline constexpr std::uint8_t max_pda = 31;       // HPDA / CPDA, 0's based dwords: 4..128 bytes

// PDU-Type (byte 0 of the common header).
enum class pdu_type : std::uint8_t {
    ic_req = 0x00,
    ic_resp = 0x01,
    h2c_term_req = 0x02,
    c2h_term_req = 0x03,
    capsule_cmd = 0x04,
    capsule_resp = 0x05,
    h2c_data = 0x06,
    c2h_data = 0x07,
    r2t = 0x09,
};

// FLAGS (byte 1): which ones a PDU type may carry is in nvme_tcp_check.cc.
namespace pdu_flags {
inline constexpr std::uint8_t hdgstf = 1u << 0;    // a header digest follows the header
inline constexpr std::uint8_t ddgstf = 1u << 1;    // a data digest follows the data
inline constexpr std::uint8_t last_pdu = 1u << 2;  // H2CData / C2HData: last PDU of the transfer
inline constexpr std::uint8_t success = 1u << 3;   // C2HData: command done, no CapsuleResp follows
}  // namespace pdu_flags

// ICReq / ICResp DGST byte.
namespace dgst {
inline constexpr std::uint8_t header = 1u << 0;
inline constexpr std::uint8_t data = 1u << 1;
}  // namespace dgst

// Fatal Error Status of a TermReq.
namespace fes {
inline constexpr std::uint16_t invalid_header_field = 0x01;
inline constexpr std::uint16_t pdu_sequence_error = 0x02;
inline constexpr std::uint16_t header_digest_error = 0x03;
inline constexpr std::uint16_t data_transfer_out_of_range = 0x04;
inline constexpr std::uint16_t data_transfer_limit_exceeded = 0x05;  // also R2T limit exceeded
inline constexpr std::uint16_t unsupported_parameter = 0x06;
}  // namespace fes

struct pdu_common_header {
    std::uint8_t pdu_type;  // pdu_type
    std::uint8_t flags;
    std::uint8_t hlen;  // PDU header length, without the header digest
    std::uint8_t pdo;   // PDU data offset from the start of the PDU (0 when no data)
    std::uint32_t plen; // total PDU length: header, digests, padding and data
};
static_assert(sizeof(pdu_common_header) == 8);
static_assert(offsetof(pdu_common_header, pdu_type) == 0);
static_assert(offsetof(pdu_common_header, flags) == 1);
static_assert(offsetof(pdu_common_header, hlen) == 2);
static_assert(offsetof(pdu_common_header, pdo) == 3);
static_assert(offsetof(pdu_common_header, plen) == 4);

struct ic_req {
    pdu_common_header ch;
    std::uint16_t pfv;
    std::uint8_t hpda;  // host PDU data alignment, 0's based dwords
    std::uint8_t dgst;  // dgst::header | dgst::data requested
    std::uint32_t maxr2t;  // max outstanding R2Ts per command, 0's based
    std::uint8_t reserved16[112];
};
static_assert(sizeof(ic_req) == 128);
static_assert(offsetof(ic_req, ch) == 0);
static_assert(offsetof(ic_req, pfv) == 8);
static_assert(offsetof(ic_req, hpda) == 10);
static_assert(offsetof(ic_req, dgst) == 11);
static_assert(offsetof(ic_req, maxr2t) == 12);
static_assert(offsetof(ic_req, reserved16) == 16);

struct ic_resp {
    pdu_common_header ch;
    std::uint16_t pfv;
    std::uint8_t cpda;  // controller PDU data alignment, 0's based dwords
    std::uint8_t dgst;  // digests enabled
    std::uint32_t maxh2cdata;  // max data bytes per H2CData PDU, >= 4096, multiple of 4
    std::uint8_t reserved16[112];
};
static_assert(sizeof(ic_resp) == 128);
static_assert(offsetof(ic_resp, ch) == 0);
static_assert(offsetof(ic_resp, pfv) == 8);
static_assert(offsetof(ic_resp, cpda) == 10);
static_assert(offsetof(ic_resp, dgst) == 11);
static_assert(offsetof(ic_resp, maxh2cdata) == 12);
static_assert(offsetof(ic_resp, reserved16) == 16);

// H2CTermReq / C2HTermReq header; up to 128 bytes of the offending PDU's
// header follow it (plen at most 152). FEI (4 bytes at byte 10, not
// 4-byte aligned) is kept as bytes; see term_req_fei().
struct term_req {
    pdu_common_header ch;
    std::uint16_t fes;
    std::uint8_t fei[4];  // fatal error information, little-endian u32
    std::uint8_t reserved14[10];
};
static_assert(sizeof(term_req) == 24);
static_assert(offsetof(term_req, ch) == 0);
static_assert(offsetof(term_req, fes) == 8);
static_assert(offsetof(term_req, fei) == 10);
static_assert(offsetof(term_req, reserved14) == 14);

inline constexpr std::uint32_t term_req_max_plen = 152;
inline constexpr std::uint32_t term_req_max_data = term_req_max_plen - sizeof(term_req);

constexpr std::uint32_t term_req_fei(const term_req& t) {
    return std::uint32_t{t.fei[0]} | (std::uint32_t{t.fei[1]} << 8) | (std::uint32_t{t.fei[2]} << 16) |
           (std::uint32_t{t.fei[3]} << 24);
}
constexpr void set_term_req_fei(term_req& t, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) t.fei[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

struct capsule_cmd {
    pdu_common_header ch;
    sqe ccsqe;  // in-capsule data (if any) starts at ch.pdo
};
static_assert(sizeof(capsule_cmd) == 72);
static_assert(offsetof(capsule_cmd, ch) == 0);
static_assert(offsetof(capsule_cmd, ccsqe) == 8);

struct capsule_resp {
    pdu_common_header ch;
    cqe rccqe;
};
static_assert(sizeof(capsule_resp) == 24);
static_assert(offsetof(capsule_resp, ch) == 0);
static_assert(offsetof(capsule_resp, rccqe) == 8);

struct h2c_data {
    pdu_common_header ch;
    std::uint16_t cccid;  // command capsule CID
    std::uint16_t ttag;   // transfer tag from the R2T
    std::uint32_t datao;  // offset of this data in the command's buffer
    std::uint32_t datal;  // data bytes in this PDU
    std::uint8_t reserved20[4];
};
static_assert(sizeof(h2c_data) == 24);
static_assert(offsetof(h2c_data, ch) == 0);
static_assert(offsetof(h2c_data, cccid) == 8);
static_assert(offsetof(h2c_data, ttag) == 10);
static_assert(offsetof(h2c_data, datao) == 12);
static_assert(offsetof(h2c_data, datal) == 16);
static_assert(offsetof(h2c_data, reserved20) == 20);

struct c2h_data {
    pdu_common_header ch;
    std::uint16_t cccid;
    std::uint8_t reserved10[2];
    std::uint32_t datao;
    std::uint32_t datal;
    std::uint8_t reserved20[4];
};
static_assert(sizeof(c2h_data) == 24);
static_assert(offsetof(c2h_data, ch) == 0);
static_assert(offsetof(c2h_data, cccid) == 8);
static_assert(offsetof(c2h_data, reserved10) == 10);
static_assert(offsetof(c2h_data, datao) == 12);
static_assert(offsetof(c2h_data, datal) == 16);
static_assert(offsetof(c2h_data, reserved20) == 20);

struct r2t {
    pdu_common_header ch;
    std::uint16_t cccid;
    std::uint16_t ttag;
    std::uint32_t r2to;  // offset requested
    std::uint32_t r2tl;  // length requested
    std::uint8_t reserved20[4];
};
static_assert(sizeof(r2t) == 24);
static_assert(offsetof(r2t, ch) == 0);
static_assert(offsetof(r2t, cccid) == 8);
static_assert(offsetof(r2t, ttag) == 10);
static_assert(offsetof(r2t, r2to) == 12);
static_assert(offsetof(r2t, r2tl) == 16);
static_assert(offsetof(r2t, reserved20) == 20);

// The most header bytes (PDU header plus header digest) any PDU has: ICReq /
// ICResp (128, never digested); every other header plus its digest is
// smaller. A receive buffer for headers needs no more.
inline constexpr std::uint32_t max_header_bytes = 128;
static_assert(sizeof(capsule_cmd) + digest_bytes <= max_header_bytes);

}  // namespace ioe::nvme::tcp
