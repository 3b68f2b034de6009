// NVMe queue entries as plain data (NVM Express Base 2.0, NVM Command Set
// 1.0): submission and completion queue entries, SGL and PRP data pointers,
// the status field, status codes and opcodes. Identify data is in
// nvme_identify.hh, log pages in nvme_log.hh, Fabrics commands and the
// controller properties in nvme_fabrics.hh.
//
// Every struct is laid out naturally aligned with explicit reserved arrays
// (no #pragma pack); its size and the offset of every field are pinned by
// static_asserts taken from the figures of the specification. All multi-byte
// fields are little-endian on the wire, as on the only hosts we build for.
// See docs/nvmf.md for the subset that is covered.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace ioe::nvme {

static_assert(std::endian::native == std::endian::little, "NVMe structures are little-endian");

// ---------------------------------------------------------------------------
// Sizes and well-known names

inline constexpr std::size_t sqe_bytes = 64;
inline constexpr std::size_t cqe_bytes = 16;
inline constexpr std::size_t identify_bytes = 4096;
inline constexpr std::size_t nqn_field_bytes = 256;  // NQN fields are 256 bytes, NUL padded
inline constexpr std::size_t nqn_max_length = 223;   // longest NQN (UTF-8 bytes, no NUL)
inline constexpr char discovery_nqn[] = "nqn.2014-08.org.nvmexpress.discovery";
inline constexpr std::uint32_t nsid_all = 0xffffffffu;  // "all namespaces" / global log pages

// ---------------------------------------------------------------------------
// Opcodes

namespace admin_opcode {
inline constexpr std::uint8_t delete_io_sq = 0x00;
inline constexpr std::uint8_t create_io_sq = 0x01;
inline constexpr std::uint8_t get_log_page = 0x02;
inline constexpr std::uint8_t delete_io_cq = 0x04;
inline constexpr std::uint8_t create_io_cq = 0x05;
inline constexpr std::uint8_t identify = 0x06;
inline constexpr std::uint8_t abort = 0x08;
inline constexpr std::uint8_t set_features = 0x09;
inline constexpr std::uint8_t get_features = 0x0a;
inline constexpr std::uint8_t async_event_request = 0x0c;
inline constexpr std::uint8_t keep_alive = 0x18;
inline constexpr std::uint8_t fabrics = 0x7f;  // also valid on I/O queues of a fabrics controller
}  // namespace admin_opcode

namespace nvm_opcode {
inline constexpr std::uint8_t flush = 0x00;
inline constexpr std::uint8_t write = 0x01;
inline constexpr std::uint8_t read = 0x02;
inline constexpr std::uint8_t write_uncorrectable = 0x04;
inline constexpr std::uint8_t compare = 0x05;
inline constexpr std::uint8_t write_zeroes = 0x08;
inline constexpr std::uint8_t dataset_management = 0x09;
}  // namespace nvm_opcode

// Fabrics Command Type (FCTYPE, byte 4 of a Fabrics command capsule).
namespace fctype {
inline constexpr std::uint8_t property_set = 0x00;
inline constexpr std::uint8_t connect = 0x01;
inline constexpr std::uint8_t property_get = 0x04;
inline constexpr std::uint8_t authentication_send = 0x05;
inline constexpr std::uint8_t authentication_receive = 0x06;
inline constexpr std::uint8_t disconnect = 0x08;
}  // namespace fctype

// Identify: Controller or Namespace Structure (CNS, CDW10 bits 7:0).
namespace cns {
inline constexpr std::uint8_t namespace_data = 0x00;
inline constexpr std::uint8_t controller = 0x01;
inline constexpr std::uint8_t active_namespace_list = 0x02;
inline constexpr std::uint8_t namespace_id_descriptors = 0x03;
}  // namespace cns

// Get Log Page: Log Page Identifier (CDW10 bits 7:0).
namespace log_page {
inline constexpr std::uint8_t error_information = 0x01;
inline constexpr std::uint8_t smart_health = 0x02;
inline constexpr std::uint8_t firmware_slot = 0x03;
inline constexpr std::uint8_t changed_namespace_list = 0x04;
inline constexpr std::uint8_t commands_supported_effects = 0x05;
inline constexpr std::uint8_t discovery = 0x70;
}  // namespace log_page

// Get / Set Features: Feature Identifier (CDW10 bits 7:0).
namespace feature {
inline constexpr std::uint8_t arbitration = 0x01;
inline constexpr std::uint8_t power_management = 0x02;
inline constexpr std::uint8_t temperature_threshold = 0x04;
inline constexpr std::uint8_t error_recovery = 0x05;
inline constexpr std::uint8_t volatile_write_cache = 0x06;
inline constexpr std::uint8_t number_of_queues = 0x07;
inline constexpr std::uint8_t interrupt_coalescing = 0x08;
inline constexpr std::uint8_t async_event_configuration = 0x0b;
inline constexpr std::uint8_t keep_alive_timer = 0x0f;
}  // namespace feature

// Dataset Management attributes (CDW11) and the 16-byte range it carries.
inline constexpr std::uint32_t dsm_attribute_deallocate = 1u << 2;

struct dsm_range {
    std::uint32_t context_attributes;
    std::uint32_t length;  // in logical blocks (1's based)
    std::uint64_t starting_lba;
};
static_assert(sizeof(dsm_range) == 16);
static_assert(offsetof(dsm_range, context_attributes) == 0);
static_assert(offsetof(dsm_range, length) == 4);
static_assert(offsetof(dsm_range, starting_lba) == 8);

// ---------------------------------------------------------------------------
// Status field of a completion (CQE bytes 14-15): bit 0 phase tag, bits 8:1
// status code, bits 11:9 status code type, 13:12 command retry delay, 14 more,
// 15 do not retry.

namespace sct {
inline constexpr std::uint8_t generic = 0x0;
inline constexpr std::uint8_t command_specific = 0x1;
inline constexpr std::uint8_t media_error = 0x2;
inline constexpr std::uint8_t path = 0x3;
inline constexpr std::uint8_t vendor_specific = 0x7;
}  // namespace sct

// Generic Command Status (SCT 0).
namespace sc {
inline constexpr std::uint8_t success = 0x00;
inline constexpr std::uint8_t invalid_opcode = 0x01;
inline constexpr std::uint8_t invalid_field = 0x02;
inline constexpr std::uint8_t command_id_conflict = 0x03;
inline constexpr std::uint8_t data_transfer_error = 0x04;
inline constexpr std::uint8_t aborted_power_loss = 0x05;
inline constexpr std::uint8_t internal_error = 0x06;
inline constexpr std::uint8_t abort_requested = 0x07;
inline constexpr std::uint8_t aborted_sq_deletion = 0x08;
inline constexpr std::uint8_t aborted_failed_fused = 0x09;
inline constexpr std::uint8_t aborted_missing_fused = 0x0a;
inline constexpr std::uint8_t invalid_namespace_or_format = 0x0b;
inline constexpr std::uint8_t command_sequence_error = 0x0c;
inline constexpr std::uint8_t invalid_sgl_segment_descriptor = 0x0d;
inline constexpr std::uint8_t invalid_number_of_sgl_descriptors = 0x0e;
inline constexpr std::uint8_t data_sgl_length_invalid = 0x0f;
inline constexpr std::uint8_t metadata_sgl_length_invalid = 0x10;
inline constexpr std::uint8_t sgl_descriptor_type_invalid = 0x11;
inline constexpr std::uint8_t invalid_sgl_offset = 0x16;
inline constexpr std::uint8_t host_id_inconsistent_format = 0x18;
inline constexpr std::uint8_t keep_alive_timer_expired = 0x19;
inline constexpr std::uint8_t keep_alive_timeout_invalid = 0x1a;
// NVM command set specific values of the generic type.
inline constexpr std::uint8_t lba_out_of_range = 0x80;
inline constexpr std::uint8_t capacity_exceeded = 0x81;
inline constexpr std::uint8_t namespace_not_ready = 0x82;
inline constexpr std::uint8_t reservation_conflict = 0x83;
inline constexpr std::uint8_t format_in_progress = 0x84;
}  // namespace sc

// Command Specific Status (SCT 1).
namespace sc_specific {
inline constexpr std::uint8_t completion_queue_invalid = 0x00;
inline constexpr std::uint8_t invalid_queue_identifier = 0x01;
inline constexpr std::uint8_t invalid_queue_size = 0x02;
inline constexpr std::uint8_t abort_command_limit_exceeded = 0x03;
inline constexpr std::uint8_t async_event_request_limit_exceeded = 0x05;
inline constexpr std::uint8_t invalid_log_page = 0x09;
inline constexpr std::uint8_t feature_not_saveable = 0x0d;
inline constexpr std::uint8_t feature_not_changeable = 0x0e;
inline constexpr std::uint8_t conflicting_attributes = 0x80;  // NVM commands (e.g. Dataset Management)
// Fabrics commands (Connect and friends).
inline constexpr std::uint8_t connect_incompatible_format = 0x80;
inline constexpr std::uint8_t connect_controller_busy = 0x81;
inline constexpr std::uint8_t connect_invalid_parameters = 0x82;
inline constexpr std::uint8_t connect_restart_discovery = 0x83;
inline constexpr std::uint8_t connect_invalid_host = 0x84;
inline constexpr std::uint8_t discover_restart = 0x90;
inline constexpr std::uint8_t authentication_required = 0x91;
}  // namespace sc_specific

// Media and Data Integrity Errors (SCT 2).
namespace sc_media {
inline constexpr std::uint8_t write_fault = 0x80;
inline constexpr std::uint8_t unrecovered_read_error = 0x81;
inline constexpr std::uint8_t guard_check_error = 0x82;
inline constexpr std::uint8_t application_tag_check_error = 0x83;
inline constexpr std::uint8_t reference_tag_check_error = 0x84;
inline constexpr std::uint8_t compare_failure = 0x85;
inline constexpr std::uint8_t access_denied = 0x86;
inline constexpr std::uint8_t deallocated_or_unwritten_block = 0x87;
}  // namespace sc_media

namespace status_bits {
inline constexpr std::uint16_t phase = 1u << 0;
inline constexpr unsigned sc_shift = 1;
inline constexpr std::uint16_t sc_mask = 0xffu << sc_shift;
inline constexpr unsigned sct_shift = 9;
inline constexpr std::uint16_t sct_mask = 0x7u << sct_shift;
inline constexpr unsigned crd_shift = 12;
inline constexpr std::uint16_t crd_mask = 0x3u << crd_shift;
inline constexpr std::uint16_t more = 1u << 14;
inline constexpr std::uint16_t dnr = 1u << 15;
}  // namespace status_bits

// The 16-bit status field (including the phase tag in bit 0).
constexpr std::uint16_t make_status(std::uint8_t type, std::uint8_t code, bool dnr = false, bool phase = false) {
    return static_cast<std::uint16_t>((phase ? status_bits::phase : 0u) | (unsigned{code} << status_bits::sc_shift) |
                                      ((unsigned{type} & 0x7u) << status_bits::sct_shift) |
                                      (dnr ? status_bits::dnr : 0u));
}
constexpr std::uint8_t status_code(std::uint16_t status) {
    return static_cast<std::uint8_t>((status & status_bits::sc_mask) >> status_bits::sc_shift);
}
constexpr std::uint8_t status_code_type(std::uint16_t status) {
    return static_cast<std::uint8_t>((status & status_bits::sct_mask) >> status_bits::sct_shift);
}
constexpr bool status_phase(std::uint16_t status) { return (status & status_bits::phase) != 0; }
constexpr bool status_dnr(std::uint16_t status) { return (status & status_bits::dnr) != 0; }
constexpr bool status_more(std::uint16_t status) { return (status & status_bits::more) != 0; }
// Success ignores the phase tag and the DNR/More/CRD bits.
constexpr bool status_ok(std::uint16_t status) { return status_code(status) == sc::success && status_code_type(status) == sct::generic; }

// ---------------------------------------------------------------------------
// Data pointer: PRP entries (PCIe) or an SGL descriptor (fabrics).

namespace sgl_type {  // SGL Identifier bits 7:4
inline constexpr std::uint8_t data_block = 0x0;
inline constexpr std::uint8_t bit_bucket = 0x1;
inline constexpr std::uint8_t segment = 0x2;
inline constexpr std::uint8_t last_segment = 0x3;
inline constexpr std::uint8_t keyed_data_block = 0x4;
inline constexpr std::uint8_t transport_data_block = 0x5;
}  // namespace sgl_type

namespace sgl_subtype {  // SGL Identifier bits 3:0
inline constexpr std::uint8_t address = 0x0;
inline constexpr std::uint8_t offset = 0x1;  // in-capsule data: address is an offset into the capsule
inline constexpr std::uint8_t transport_specific = 0xa;
}  // namespace sgl_subtype

struct sgl_descriptor {
    std::uint64_t address;
    std::uint32_t length;
    std::uint8_t reserved[3];
    std::uint8_t identifier;  // type << 4 | subtype
};
static_assert(sizeof(sgl_descriptor) == 16);
static_assert(offsetof(sgl_descriptor, address) == 0);
static_assert(offsetof(sgl_descriptor, length) == 8);
static_assert(offsetof(sgl_descriptor, reserved) == 12);
static_assert(offsetof(sgl_descriptor, identifier) == 15);

constexpr std::uint8_t sgl_identifier(std::uint8_t type, std::uint8_t subtype) {
    return static_cast<std::uint8_t>((type << 4) | (subtype & 0xf));
}
constexpr std::uint8_t sgl_identifier_type(std::uint8_t id) { return static_cast<std::uint8_t>(id >> 4); }
constexpr std::uint8_t sgl_identifier_subtype(std::uint8_t id) { return static_cast<std::uint8_t>(id & 0xf); }

struct prp_pair {
    std::uint64_t prp1;
    std::uint64_t prp2;
};
static_assert(sizeof(prp_pair) == 16);
static_assert(offsetof(prp_pair, prp1) == 0);
static_assert(offsetof(prp_pair, prp2) == 8);

union data_pointer {
    prp_pair prp;
    sgl_descriptor sgl;
};
static_assert(sizeof(data_pointer) == 16);

// ---------------------------------------------------------------------------
// Submission queue entry (64 bytes, common command format).

// CDW0 byte 1: bits 1:0 fused operation, bits 7:6 PRP or SGL for data transfer.
namespace psdt {
inline constexpr std::uint8_t prp = 0x0;
inline constexpr std::uint8_t sgl_mptr_contiguous = 0x1;
inline constexpr std::uint8_t sgl_mptr_sgl = 0x2;
}  // namespace psdt

struct sqe {
    std::uint8_t opcode;
    std::uint8_t flags;  // fuse (1:0), psdt (7:6)
    std::uint16_t cid;
    std::uint32_t nsid;
    std::uint32_t cdw2;
    std::uint32_t cdw3;
    std::uint64_t mptr;
    data_pointer dptr;
    std::uint32_t cdw10;
    std::uint32_t cdw11;
    std::uint32_t cdw12;
    std::uint32_t cdw13;
    std::uint32_t cdw14;
    std::uint32_t cdw15;

    constexpr std::uint8_t fuse() const { return flags & 0x3; }
    constexpr std::uint8_t psdt() const { return static_cast<std::uint8_t>(flags >> 6); }
    constexpr void set_psdt(std::uint8_t v) { flags = static_cast<std::uint8_t>((flags & 0x3f) | (v << 6)); }
};
static_assert(sizeof(sqe) == sqe_bytes);
static_assert(offsetof(sqe, opcode) == 0);
static_assert(offsetof(sqe, flags) == 1);
static_assert(offsetof(sqe, cid) == 2);
static_assert(offsetof(sqe, nsid) == 4);
static_assert(offsetof(sqe, cdw2) == 8);
static_assert(offsetof(sqe, cdw3) == 12);
static_assert(offsetof(sqe, mptr) == 16);
static_assert(offsetof(sqe, dptr) == 24);
static_assert(offsetof(sqe, cdw10) == 40);
static_assert(offsetof(sqe, cdw11) == 44);
static_assert(offsetof(sqe, cdw12) == 48);
static_assert(offsetof(sqe, cdw13) == 52);
static_assert(offsetof(sqe, cdw14) == 56);
static_assert(offsetof(sqe, cdw15) == 60);

// Read / Write / Write Zeroes: SLBA in CDW10-11, NLB (0's based) in CDW12 bits 15:0.
constexpr std::uint64_t rw_slba(const sqe& c) { return (std::uint64_t{c.cdw11} << 32) | c.cdw10; }
constexpr std::uint32_t rw_block_count(const sqe& c) { return (c.cdw12 & 0xffffu) + 1; }

// ---------------------------------------------------------------------------
// Completion queue entry (16 bytes).

struct cqe {
    std::uint32_t dw0;  // command specific
    std::uint32_t dw1;  // command specific
    std::uint16_t sqhd;
    std::uint16_t sqid;
    std::uint16_t cid;
    std::uint16_t status;  // phase tag and status field, see make_status()
};
static_assert(sizeof(cqe) == cqe_bytes);
static_assert(offsetof(cqe, dw0) == 0);
static_assert(offsetof(cqe, dw1) == 4);
static_assert(offsetof(cqe, sqhd) == 8);
static_assert(offsetof(cqe, sqid) == 10);
static_assert(offsetof(cqe, cid) == 12);
static_assert(offsetof(cqe, status) == 14);

}  // namespace ioe::nvme
