// NVMe reservations as plain data (NVM Express Base 2.0, "Reservations";
// NVM Command Set 1.0 for the opcodes): the command fields of Reservation
// Register / Acquire / Release / Report, the data each carries, and the
// Reservation Status data structures (the 24-byte form with 64-bit host
// identifiers and the extended 64-byte form with 128-bit ones). Sizes and
// every field offset are pinned by static_asserts. REGCTL sits at byte 5
// (unaligned), so it is a byte pair with accessors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

namespace nvm_opcode {
inline constexpr std::uint8_t reservation_register = 0x0d;
inline constexpr std::uint8_t reservation_report = 0x0e;
inline constexpr std::uint8_t reservation_acquire = 0x11;
inline constexpr std::uint8_t reservation_release = 0x15;
}  // namespace nvm_opcode

// Reservation types (RTYPE).
namespace rtype {
inline constexpr std::uint8_t none = 0;
inline constexpr std::uint8_t write_exclusive = 1;
inline constexpr std::uint8_t exclusive_access = 2;
inline constexpr std::uint8_t write_exclusive_registrants_only = 3;
inline constexpr std::uint8_t exclusive_access_registrants_only = 4;
inline constexpr std::uint8_t write_exclusive_all_registrants = 5;
inline constexpr std::uint8_t exclusive_access_all_registrants = 6;
}  // namespace rtype

// CDW10 of Register: RREGA 2:0, IEKEY 3, CPTPL 31:30.
namespace rrega {
inline constexpr std::uint8_t register_key = 0;
inline constexpr std::uint8_t unregister_key = 1;
inline constexpr std::uint8_t replace_key = 2;
}  // namespace rrega
// CDW10 of Acquire: RACQA 2:0, IEKEY 3, RTYPE 15:8.
namespace racqa {
inline constexpr std::uint8_t acquire = 0;
inline constexpr std::uint8_t preempt = 1;
inline constexpr std::uint8_t preempt_and_abort = 2;
}  // namespace racqa
// CDW10 of Release: RRELA 2:0, IEKEY 3, RTYPE 15:8.
namespace rrela {
inline constexpr std::uint8_t release = 0;
inline constexpr std::uint8_t clear = 1;
}  // namespace rrela
// CPTPL (Register CDW10 31:30): 00b no change, 01b reserved, 10b clear, 11b set.
namespace cptpl {
inline constexpr std::uint8_t no_change = 0;
inline constexpr std::uint8_t clear = 2;
inline constexpr std::uint8_t set = 3;
}  // namespace cptpl
inline constexpr std::uint32_t resv_iekey = 1u << 3;
inline constexpr std::uint32_t report_eds = 1u << 0;  // Report CDW11 bit 0: extended data structure
inline constexpr std::uint8_t feature_host_identifier = 0x81;
inline constexpr std::uint8_t feature_reservation_notification_mask = 0x82;
inline constexpr std::uint8_t log_reservation_notification = 0x80;

// Reservation Notification log page types, and the mask bits of feature
// 82h (the same numbers shifted: bit 1 registration preempted, 2 released,
// 3 preempted).
namespace resv_notice_type {
inline constexpr std::uint8_t empty = 0;
inline constexpr std::uint8_t registration_preempted = 1;
inline constexpr std::uint8_t reservation_released = 2;
inline constexpr std::uint8_t reservation_preempted = 3;
}  // namespace resv_notice_type

// Reservation Notification log page (80h), 64 bytes.
struct resv_notification_log {
    std::uint64_t log_page_count;  // per controller, 0: empty page
    std::uint8_t type;             // resv_notice_type
    std::uint8_t available;        // further pages available (at most FFh)
    std::uint8_t reserved10[2];
    std::uint32_t nsid;
    std::uint8_t reserved16[48];
};
static_assert(sizeof(resv_notification_log) == 64);
static_assert(offsetof(resv_notification_log, log_page_count) == 0);
static_assert(offsetof(resv_notification_log, type) == 8);
static_assert(offsetof(resv_notification_log, available) == 9);
static_assert(offsetof(resv_notification_log, reserved10) == 10);
static_assert(offsetof(resv_notification_log, nsid) == 12);
static_assert(offsetof(resv_notification_log, reserved16) == 16);
inline constexpr std::uint8_t feature_reservation_persistence = 0x83;

constexpr std::uint8_t resv_action(std::uint32_t cdw10) { return cdw10 & 0x7; }
constexpr std::uint8_t resv_type_field(std::uint32_t cdw10) { return static_cast<std::uint8_t>((cdw10 >> 8) & 0xff); }
constexpr std::uint8_t resv_cptpl(std::uint32_t cdw10) { return static_cast<std::uint8_t>(cdw10 >> 30); }

// Register data: current and new reservation keys.
struct resv_register_data {
    std::uint64_t crkey;
    std::uint64_t nrkey;
};
static_assert(sizeof(resv_register_data) == 16);
static_assert(offsetof(resv_register_data, crkey) == 0);
static_assert(offsetof(resv_register_data, nrkey) == 8);

// Acquire data: current key and the key to preempt.
struct resv_acquire_data {
    std::uint64_t crkey;
    std::uint64_t prkey;
};
static_assert(sizeof(resv_acquire_data) == 16);
static_assert(offsetof(resv_acquire_data, crkey) == 0);
static_assert(offsetof(resv_acquire_data, prkey) == 8);

// Release data: the current key.
struct resv_release_data {
    std::uint64_t crkey;
};
static_assert(sizeof(resv_release_data) == 8);
static_assert(offsetof(resv_release_data, crkey) == 0);

// Reservation Status header, 24 bytes (first part of both forms).
struct resv_status_header {
    std::uint32_t gen;
    std::uint8_t rtype;
    std::uint8_t regctl[2];  // number of registered controllers, unaligned
    std::uint8_t reserved7[2];
    std::uint8_t ptpls;
    std::uint8_t reserved10[14];
};
static_assert(sizeof(resv_status_header) == 24);
static_assert(offsetof(resv_status_header, gen) == 0);
static_assert(offsetof(resv_status_header, rtype) == 4);
static_assert(offsetof(resv_status_header, regctl) == 5);
static_assert(offsetof(resv_status_header, reserved7) == 7);
static_assert(offsetof(resv_status_header, ptpls) == 9);
static_assert(offsetof(resv_status_header, reserved10) == 10);

inline void set_regctl(resv_status_header& h, std::uint16_t n) { std::memcpy(h.regctl, &n, 2); }
inline std::uint16_t regctl(const resv_status_header& h) {
    std::uint16_t n;
    std::memcpy(&n, h.regctl, 2);
    return n;
}

// The extended header: the 24 bytes above, then reserved up to 64.
struct resv_status_ext_header {
    resv_status_header h;
    std::uint8_t reserved24[40];
};
static_assert(sizeof(resv_status_ext_header) == 64);
static_assert(offsetof(resv_status_ext_header, h) == 0);
static_assert(offsetof(resv_status_ext_header, reserved24) == 24);

// Registered Controller data structure (EDS = 0), 24 bytes.
struct registered_controller {
    std::uint16_t cntlid;
    std::uint8_t rcsts;  // bit 0: holds the reservation
    std::uint8_t reserved3[5];
    std::uint64_t hostid;
    std::uint64_t rkey;
};
static_assert(sizeof(registered_controller) == 24);
static_assert(offsetof(registered_controller, cntlid) == 0);
static_assert(offsetof(registered_controller, rcsts) == 2);
static_assert(offsetof(registered_controller, reserved3) == 3);
static_assert(offsetof(registered_controller, hostid) == 8);
static_assert(offsetof(registered_controller, rkey) == 16);

// Registered Controller Extended data structure (EDS = 1), 64 bytes.
struct registered_controller_ext {
    std::uint16_t cntlid;
    std::uint8_t rcsts;
    std::uint8_t reserved3[5];
    std::uint64_t rkey;
    std::uint8_t hostid[16];
    std::uint8_t reserved32[32];
};
static_assert(sizeof(registered_controller_ext) == 64);
static_assert(offsetof(registered_controller_ext, cntlid) == 0);
static_assert(offsetof(registered_controller_ext, rcsts) == 2);
static_assert(offsetof(registered_controller_ext, reserved3) == 3);
static_assert(offsetof(registered_controller_ext, rkey) == 8);
static_assert(offsetof(registered_controller_ext, hostid) == 16);
static_assert(offsetof(registered_controller_ext, reserved32) == 32);

}  // namespace ioe::nvme
