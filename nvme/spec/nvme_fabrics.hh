// NVMe over Fabrics 1.1 command capsules as plain data (Connect with its
// data and response, Property Get / Set, Disconnect) and the controller
// properties (CAP, VS, CC, CSTS, ...) with their bit helpers. Sizes and
// every field offset are pinned by static_asserts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

// ---------------------------------------------------------------------------
// Fabrics commands (opcode 7Fh). Bytes 0-3 are CDW0 (opcode, reserved, CID),
// byte 4 is FCTYPE where the NSID would be.

struct fabrics_command {
    std::uint8_t opcode;  // admin_opcode::fabrics
    std::uint8_t reserved1;
    std::uint16_t cid;
    std::uint8_t fctype;
    std::uint8_t reserved5[35];
    std::uint8_t specific[24];
};
static_assert(sizeof(fabrics_command) == sqe_bytes);
static_assert(offsetof(fabrics_command, opcode) == 0);
static_assert(offsetof(fabrics_command, reserved1) == 1);
static_assert(offsetof(fabrics_command, cid) == 2);
static_assert(offsetof(fabrics_command, fctype) == 4);
static_assert(offsetof(fabrics_command, reserved5) == 5);
static_assert(offsetof(fabrics_command, specific) == 40);

// Connect command attributes (CATTR): bits 1:0 priority class, bit 2
// disable SQ flow control.
inline constexpr std::uint8_t cattr_disable_sq_flow_control = 0x4;

struct connect_command {
    std::uint8_t opcode;
    std::uint8_t reserved1;
    std::uint16_t cid;
    std::uint8_t fctype;  // fctype::connect
    std::uint8_t reserved5[19];
    sgl_descriptor sgl1;  // describes the 1024-byte connect_data
    std::uint16_t recfmt; // record format, 0
    std::uint16_t qid;    // 0 = admin queue
    std::uint16_t sqsize; // 0's based
    std::uint8_t cattr;
    std::uint8_t reserved47;
    std::uint32_t kato;   // keep alive timeout, milliseconds (admin queue only)
    std::uint8_t reserved52[12];
};
static_assert(sizeof(connect_command) == sqe_bytes);
static_assert(offsetof(connect_command, opcode) == 0);
static_assert(offsetof(connect_command, reserved1) == 1);
static_assert(offsetof(connect_command, cid) == 2);
static_assert(offsetof(connect_command, fctype) == 4);
static_assert(offsetof(connect_command, reserved5) == 5);
static_assert(offsetof(connect_command, sgl1) == 24);
static_assert(offsetof(connect_command, recfmt) == 40);
static_assert(offsetof(connect_command, qid) == 42);
static_assert(offsetof(connect_command, sqsize) == 44);
static_assert(offsetof(connect_command, cattr) == 46);
static_assert(offsetof(connect_command, reserved47) == 47);
static_assert(offsetof(connect_command, kato) == 48);
static_assert(offsetof(connect_command, reserved52) == 52);

struct connect_data {
    std::uint8_t hostid[16];
    std::uint16_t cntlid;  // cntlid_dynamic on the admin queue of a dynamic subsystem
    std::uint8_t reserved18[238];
    char subnqn[nqn_field_bytes];
    char hostnqn[nqn_field_bytes];
    std::uint8_t reserved768[256];
};
static_assert(sizeof(connect_data) == 1024);
static_assert(offsetof(connect_data, hostid) == 0);
static_assert(offsetof(connect_data, cntlid) == 16);
static_assert(offsetof(connect_data, reserved18) == 18);
static_assert(offsetof(connect_data, subnqn) == 256);
static_assert(offsetof(connect_data, hostnqn) == 512);
static_assert(offsetof(connect_data, reserved768) == 768);

// Connect response: on success DW0 holds the controller ID (15:0) and
// AUTHREQ (31:16); on "invalid parameters" DW0 holds IPO (15:0, byte offset
// of the bad field) and IATTR (bit 16: 0 = in the SQE, 1 = in connect_data).
struct connect_response {
    std::uint16_t cntlid_or_ipo;
    std::uint16_t authreq_or_iattr;
    std::uint32_t reserved4;
    std::uint16_t sqhd;
    std::uint16_t reserved10;
    std::uint16_t cid;
    std::uint16_t status;
};
static_assert(sizeof(connect_response) == cqe_bytes);
static_assert(offsetof(connect_response, cntlid_or_ipo) == 0);
static_assert(offsetof(connect_response, authreq_or_iattr) == 2);
static_assert(offsetof(connect_response, reserved4) == 4);
static_assert(offsetof(connect_response, sqhd) == 8);
static_assert(offsetof(connect_response, reserved10) == 10);
static_assert(offsetof(connect_response, cid) == 12);
static_assert(offsetof(connect_response, status) == 14);

// Property Get / Set: ATTRIB bits 2:0 give the size (0 = 4 bytes, 1 = 8).
namespace property_size {
inline constexpr std::uint8_t four_bytes = 0x0;
inline constexpr std::uint8_t eight_bytes = 0x1;
}  // namespace property_size

struct property_get_command {
    std::uint8_t opcode;
    std::uint8_t reserved1;
    std::uint16_t cid;
    std::uint8_t fctype;  // fctype::property_get
    std::uint8_t reserved5[35];
    std::uint8_t attrib;
    std::uint8_t reserved41[3];
    std::uint32_t ofst;
    std::uint8_t reserved48[16];
};
static_assert(sizeof(property_get_command) == sqe_bytes);
static_assert(offsetof(property_get_command, opcode) == 0);
static_assert(offsetof(property_get_command, reserved1) == 1);
static_assert(offsetof(property_get_command, cid) == 2);
static_assert(offsetof(property_get_command, fctype) == 4);
static_assert(offsetof(property_get_command, reserved5) == 5);
static_assert(offsetof(property_get_command, attrib) == 40);
static_assert(offsetof(property_get_command, reserved41) == 41);
static_assert(offsetof(property_get_command, ofst) == 44);
static_assert(offsetof(property_get_command, reserved48) == 48);

struct property_get_response {
    std::uint64_t value;  // DW0-DW1; a 4-byte property uses the low half
    std::uint16_t sqhd;
    std::uint16_t reserved10;
    std::uint16_t cid;
    std::uint16_t status;
};
static_assert(sizeof(property_get_response) == cqe_bytes);
static_assert(offsetof(property_get_response, value) == 0);
static_assert(offsetof(property_get_response, sqhd) == 8);
static_assert(offsetof(property_get_response, reserved10) == 10);
static_assert(offsetof(property_get_response, cid) == 12);
static_assert(offsetof(property_get_response, status) == 14);

struct property_set_command {
    std::uint8_t opcode;
    std::uint8_t reserved1;
    std::uint16_t cid;
    std::uint8_t fctype;  // fctype::property_set
    std::uint8_t reserved5[35];
    std::uint8_t attrib;
    std::uint8_t reserved41[3];
    std::uint32_t ofst;
    std::uint64_t value;
    std::uint8_t reserved56[8];
};
static_assert(sizeof(property_set_command) == sqe_bytes);
static_assert(offsetof(property_set_command, opcode) == 0);
static_assert(offsetof(property_set_command, reserved1) == 1);
static_assert(offsetof(property_set_command, cid) == 2);
static_assert(offsetof(property_set_command, fctype) == 4);
static_assert(offsetof(property_set_command, reserved5) == 5);
static_assert(offsetof(property_set_command, attrib) == 40);
static_assert(offsetof(property_set_command, reserved41) == 41);
static_assert(offsetof(property_set_command, ofst) == 44);
static_assert(offsetof(property_set_command, value) == 48);
static_assert(offsetof(property_set_command, reserved56) == 56);

struct disconnect_command {
    std::uint8_t opcode;
    std::uint8_t reserved1;
    std::uint16_t cid;
    std::uint8_t fctype;  // fctype::disconnect
    std::uint8_t reserved5[19];
    sgl_descriptor sgl1;  // reserved: no data
    std::uint16_t recfmt;
    std::uint8_t reserved42[22];
};
static_assert(sizeof(disconnect_command) == sqe_bytes);
static_assert(offsetof(disconnect_command, opcode) == 0);
static_assert(offsetof(disconnect_command, reserved1) == 1);
static_assert(offsetof(disconnect_command, cid) == 2);
static_assert(offsetof(disconnect_command, fctype) == 4);
static_assert(offsetof(disconnect_command, reserved5) == 5);
static_assert(offsetof(disconnect_command, sgl1) == 24);
static_assert(offsetof(disconnect_command, recfmt) == 40);
static_assert(offsetof(disconnect_command, reserved42) == 42);

// ---------------------------------------------------------------------------
// Controller properties (the register file that fabrics reach through
// Property Get / Set) and their bit fields.

namespace property {
inline constexpr std::uint32_t cap = 0x00;    // 8 bytes
inline constexpr std::uint32_t vs = 0x08;     // 4 bytes
inline constexpr std::uint32_t intms = 0x0c;  // PCIe only
inline constexpr std::uint32_t intmc = 0x10;  // PCIe only
inline constexpr std::uint32_t cc = 0x14;     // 4 bytes
inline constexpr std::uint32_t csts = 0x1c;   // 4 bytes
inline constexpr std::uint32_t nssr = 0x20;   // 4 bytes
inline constexpr std::uint32_t aqa = 0x24;    // PCIe only
inline constexpr std::uint32_t asq = 0x28;    // PCIe only, 8 bytes
inline constexpr std::uint32_t acq = 0x30;    // PCIe only, 8 bytes
}  // namespace property

inline constexpr std::uint32_t nssr_reset_value = 0x4e564d65;  // "NVMe"

// CAP: MQES 15:0 (0's based), CQR 16, AMS 18:17, TO 31:24 (500 ms units),
// DSTRD 35:32, NSSRS 36, CSS 44:37, BPS 45, MPSMIN 51:48, MPSMAX 55:52.
namespace cap {
constexpr std::uint64_t make(std::uint16_t mqes, bool cqr, std::uint8_t timeout_500ms, std::uint8_t css,
                             std::uint8_t mpsmin, std::uint8_t mpsmax) {
    return std::uint64_t{mqes} | (std::uint64_t{cqr} << 16) | (std::uint64_t{timeout_500ms} << 24) |
           (std::uint64_t{css} << 37) | (std::uint64_t{mpsmin & 0xfu} << 48) | (std::uint64_t{mpsmax & 0xfu} << 52);
}
constexpr std::uint16_t mqes(std::uint64_t v) { return static_cast<std::uint16_t>(v & 0xffff); }
constexpr bool cqr(std::uint64_t v) { return (v >> 16) & 1; }
constexpr std::uint8_t timeout(std::uint64_t v) { return static_cast<std::uint8_t>(v >> 24); }
constexpr std::uint8_t css(std::uint64_t v) { return static_cast<std::uint8_t>(v >> 37); }
constexpr std::uint8_t mpsmin(std::uint64_t v) { return static_cast<std::uint8_t>((v >> 48) & 0xf); }
constexpr std::uint8_t mpsmax(std::uint64_t v) { return static_cast<std::uint8_t>((v >> 52) & 0xf); }
inline constexpr std::uint8_t css_nvm = 0x01;  // CSS bit 0: NVM command set
}  // namespace cap

// CC: EN 0, CSS 6:4, MPS 10:7, AMS 13:11, SHN 15:14, IOSQES 19:16, IOCQES 23:20.
namespace cc {
inline constexpr std::uint32_t en = 1u << 0;
inline constexpr unsigned shn_shift = 14;
inline constexpr std::uint32_t shn_mask = 0x3u << shn_shift;
inline constexpr std::uint8_t shn_none = 0x0;
inline constexpr std::uint8_t shn_normal = 0x1;
inline constexpr std::uint8_t shn_abrupt = 0x2;
constexpr bool enabled(std::uint32_t v) { return (v & en) != 0; }
constexpr std::uint8_t shn(std::uint32_t v) { return static_cast<std::uint8_t>((v & shn_mask) >> shn_shift); }
constexpr std::uint32_t with_shn(std::uint32_t v, std::uint8_t s) {
    return (v & ~shn_mask) | ((std::uint32_t{s} & 0x3u) << shn_shift);
}
constexpr std::uint8_t css(std::uint32_t v) { return static_cast<std::uint8_t>((v >> 4) & 0x7); }
constexpr std::uint8_t mps(std::uint32_t v) { return static_cast<std::uint8_t>((v >> 7) & 0xf); }
constexpr std::uint8_t ams(std::uint32_t v) { return static_cast<std::uint8_t>((v >> 11) & 0x7); }
constexpr std::uint8_t iosqes(std::uint32_t v) { return static_cast<std::uint8_t>((v >> 16) & 0xf); }
constexpr std::uint8_t iocqes(std::uint32_t v) { return static_cast<std::uint8_t>((v >> 20) & 0xf); }
}  // namespace cc

// CSTS: RDY 0, CFS 1, SHST 3:2, NSSRO 4, PP 5.
namespace csts {
inline constexpr std::uint32_t rdy = 1u << 0;
inline constexpr std::uint32_t cfs = 1u << 1;
inline constexpr unsigned shst_shift = 2;
inline constexpr std::uint32_t shst_mask = 0x3u << shst_shift;
inline constexpr std::uint8_t shst_normal = 0x0;      // normal operation
inline constexpr std::uint8_t shst_occurring = 0x1;   // shutdown processing occurring
inline constexpr std::uint8_t shst_complete = 0x2;    // shutdown processing complete
inline constexpr std::uint32_t nssro = 1u << 4;
constexpr bool ready(std::uint32_t v) { return (v & rdy) != 0; }
constexpr std::uint8_t shst(std::uint32_t v) { return static_cast<std::uint8_t>((v & shst_mask) >> shst_shift); }
constexpr std::uint32_t with_shst(std::uint32_t v, std::uint8_t s) {
    return (v & ~shst_mask) | ((std::uint32_t{s} & 0x3u) << shst_shift);
}
constexpr std::uint32_t with_ready(std::uint32_t v, bool r) { return r ? (v | rdy) : (v & ~rdy); }
}  // namespace csts

}  // namespace ioe::nvme
