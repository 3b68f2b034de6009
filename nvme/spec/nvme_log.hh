// NVMe log pages the target serves, as plain data: Error Information (01h),
// SMART / Health Information (02h) and the Discovery log (70h) with its
// entries (NVM Express Base 2.0, NVMe over Fabrics 1.1). Sizes and every
// field offset are pinned by static_asserts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

// ---------------------------------------------------------------------------
// Log pages.

// Error Information log entry (LID 01h), 64 bytes each.
struct error_log_entry {
    std::uint64_t error_count;
    std::uint16_t sqid;
    std::uint16_t cid;
    std::uint16_t status;  // bit 0 phase tag, bits 15:1 status field
    std::uint16_t parameter_error_location;
    std::uint64_t lba;
    std::uint32_t nsid;
    std::uint8_t vendor_specific;
    std::uint8_t trtype;
    std::uint8_t reserved30[2];
    std::uint64_t command_specific;
    std::uint16_t transport_type_specific;
    std::uint8_t reserved42[22];
};
static_assert(sizeof(error_log_entry) == 64);
static_assert(offsetof(error_log_entry, error_count) == 0);
static_assert(offsetof(error_log_entry, sqid) == 8);
static_assert(offsetof(error_log_entry, cid) == 10);
static_assert(offsetof(error_log_entry, status) == 12);
static_assert(offsetof(error_log_entry, parameter_error_location) == 14);
static_assert(offsetof(error_log_entry, lba) == 16);
static_assert(offsetof(error_log_entry, nsid) == 24);
static_assert(offsetof(error_log_entry, vendor_specific) == 28);
static_assert(offsetof(error_log_entry, trtype) == 29);
static_assert(offsetof(error_log_entry, reserved30) == 30);
static_assert(offsetof(error_log_entry, command_specific) == 32);
static_assert(offsetof(error_log_entry, transport_type_specific) == 40);
static_assert(offsetof(error_log_entry, reserved42) == 42);

// SMART / Health Information (LID 02h), 512 bytes. The composite temperature
// sits at byte 1 (not 2-byte aligned), so it is kept as two bytes; use
// smart_temperature() / set_smart_temperature(). 128-bit counters are
// [0] low, [1] high.
struct smart_health_log {
    std::uint8_t critical_warning;
    std::uint8_t temperature[2];  // kelvin, little-endian
    std::uint8_t available_spare;
    std::uint8_t available_spare_threshold;
    std::uint8_t percentage_used;
    std::uint8_t endurance_group_critical_warning;
    std::uint8_t reserved7[25];
    std::uint64_t data_units_read[2];  // thousands of 512-byte units
    std::uint64_t data_units_written[2];
    std::uint64_t host_read_commands[2];
    std::uint64_t host_write_commands[2];
    std::uint64_t controller_busy_time[2];
    std::uint64_t power_cycles[2];
    std::uint64_t power_on_hours[2];
    std::uint64_t unsafe_shutdowns[2];
    std::uint64_t media_errors[2];
    std::uint64_t error_log_entries[2];
    std::uint32_t warning_temperature_time;
    std::uint32_t critical_temperature_time;
    std::uint16_t temperature_sensor[8];
    std::uint32_t thermal_mgmt_temp1_transitions;
    std::uint32_t thermal_mgmt_temp2_transitions;
    std::uint32_t thermal_mgmt_temp1_time;
    std::uint32_t thermal_mgmt_temp2_time;
    std::uint8_t reserved232[280];
};
static_assert(sizeof(smart_health_log) == 512);
static_assert(offsetof(smart_health_log, critical_warning) == 0);
static_assert(offsetof(smart_health_log, temperature) == 1);
static_assert(offsetof(smart_health_log, available_spare) == 3);
static_assert(offsetof(smart_health_log, available_spare_threshold) == 4);
static_assert(offsetof(smart_health_log, percentage_used) == 5);
static_assert(offsetof(smart_health_log, endurance_group_critical_warning) == 6);
static_assert(offsetof(smart_health_log, reserved7) == 7);
static_assert(offsetof(smart_health_log, data_units_read) == 32);
static_assert(offsetof(smart_health_log, data_units_written) == 48);
static_assert(offsetof(smart_health_log, host_read_commands) == 64);
static_assert(offsetof(smart_health_log, host_write_commands) == 80);
static_assert(offsetof(smart_health_log, controller_busy_time) == 96);
static_assert(offsetof(smart_health_log, power_cycles) == 112);
static_assert(offsetof(smart_health_log, power_on_hours) == 128);
static_assert(offsetof(smart_health_log, unsafe_shutdowns) == 144);
static_assert(offsetof(smart_health_log, media_errors) == 160);
static_assert(offsetof(smart_health_log, error_log_entries) == 176);
static_assert(offsetof(smart_health_log, warning_temperature_time) == 192);
static_assert(offsetof(smart_health_log, critical_temperature_time) == 196);
static_assert(offsetof(smart_health_log, temperature_sensor) == 200);
static_assert(offsetof(smart_health_log, thermal_mgmt_temp1_transitions) == 216);
static_assert(offsetof(smart_health_log, thermal_mgmt_temp2_transitions) == 220);
static_assert(offsetof(smart_health_log, thermal_mgmt_temp1_time) == 224);
static_assert(offsetof(smart_health_log, thermal_mgmt_temp2_time) == 228);
static_assert(offsetof(smart_health_log, reserved232) == 232);

constexpr std::uint16_t smart_temperature(const smart_health_log& l) {
    return static_cast<std::uint16_t>(l.temperature[0] | (l.temperature[1] << 8));
}
constexpr void set_smart_temperature(smart_health_log& l, std::uint16_t kelvin) {
    l.temperature[0] = static_cast<std::uint8_t>(kelvin);
    l.temperature[1] = static_cast<std::uint8_t>(kelvin >> 8);
}

// Discovery log page (LID 70h): a 1024-byte header followed by NUMREC
// 1024-byte entries.
namespace trtype {
inline constexpr std::uint8_t rdma = 0x1;
inline constexpr std::uint8_t fc = 0x2;
inline constexpr std::uint8_t tcp = 0x3;
inline constexpr std::uint8_t intra_host = 0xfe;
}  // namespace trtype

namespace adrfam {
inline constexpr std::uint8_t ipv4 = 0x1;
inline constexpr std::uint8_t ipv6 = 0x2;
inline constexpr std::uint8_t ib = 0x3;
inline constexpr std::uint8_t fc = 0x4;
inline constexpr std::uint8_t intra_host = 0xfe;
}  // namespace adrfam

namespace subtype {
inline constexpr std::uint8_t discovery_referral = 0x1;  // another discovery service
inline constexpr std::uint8_t nvme = 0x2;                // an NVM subsystem
inline constexpr std::uint8_t current_discovery = 0x3;   // this discovery subsystem
}  // namespace subtype

// TREQ bits 1:0: secure channel (0 not specified, 1 required, 2 not
// required); bit 2: SQ flow control disable supported.
namespace treq {
inline constexpr std::uint8_t secure_channel_not_specified = 0x0;
inline constexpr std::uint8_t secure_channel_required = 0x1;
inline constexpr std::uint8_t secure_channel_not_required = 0x2;
inline constexpr std::uint8_t sq_flow_control_disable = 0x4;
}  // namespace treq

struct discovery_log_header {
    std::uint64_t genctr;
    std::uint64_t numrec;
    std::uint16_t recfmt;
    std::uint8_t reserved18[1006];
};
static_assert(sizeof(discovery_log_header) == 1024);
static_assert(offsetof(discovery_log_header, genctr) == 0);
static_assert(offsetof(discovery_log_header, numrec) == 8);
static_assert(offsetof(discovery_log_header, recfmt) == 16);
static_assert(offsetof(discovery_log_header, reserved18) == 18);

struct discovery_log_entry {
    std::uint8_t trtype;
    std::uint8_t adrfam;
    std::uint8_t subtype;
    std::uint8_t treq;
    std::uint16_t portid;
    std::uint16_t cntlid;  // 0xffff: dynamic controller model
    std::uint16_t asqsz;   // max admin SQ size
    std::uint16_t eflags;
    std::uint8_t reserved12[20];
    char trsvcid[32];  // ASCII port, space padded
    std::uint8_t reserved64[192];
    char subnqn[nqn_field_bytes];
    char traddr[256];     // ASCII address, space padded
    std::uint8_t tsas[256];  // transport specific; TCP: byte 0 = sectype
};
static_assert(sizeof(discovery_log_entry) == 1024);
static_assert(offsetof(discovery_log_entry, trtype) == 0);
static_assert(offsetof(discovery_log_entry, adrfam) == 1);
static_assert(offsetof(discovery_log_entry, subtype) == 2);
static_assert(offsetof(discovery_log_entry, treq) == 3);
static_assert(offsetof(discovery_log_entry, portid) == 4);
static_assert(offsetof(discovery_log_entry, cntlid) == 6);
static_assert(offsetof(discovery_log_entry, asqsz) == 8);
static_assert(offsetof(discovery_log_entry, eflags) == 10);
static_assert(offsetof(discovery_log_entry, reserved12) == 12);
static_assert(offsetof(discovery_log_entry, trsvcid) == 32);
static_assert(offsetof(discovery_log_entry, reserved64) == 64);
static_assert(offsetof(discovery_log_entry, subnqn) == 256);
static_assert(offsetof(discovery_log_entry, traddr) == 512);
static_assert(offsetof(discovery_log_entry, tsas) == 768);

inline constexpr std::uint16_t cntlid_dynamic = 0xffff;  // Connect: "allocate any controller ID"


}  // namespace ioe::nvme
