// Asymmetric Namespace Access (NVM Express Base 2.0, 8.1.1 and 5.16.1.12) as
// plain data: the ANA states, the ANA log page (0Ch) header and group
// descriptor (pinned by static_asserts), the path status codes a host
// retries on another path, and the ANA Change asynchronous event. The
// builder (the target's side) and the parser (a host's side: our tests, the
// fuzz target) live in ana_log.cc; docs/ana.md says how the target uses them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace ioe::nvme {

// ANA state of a namespace through a controller (group descriptor byte 16,
// bits 3:0).
enum class ana_state : std::uint8_t {
    optimized = 0x1,
    non_optimized = 0x2,
    inaccessible = 0x3,
    persistent_loss = 0x4,
    change = 0xf,
};
std::string_view to_string(ana_state s) noexcept;
// "optimized", "non-optimized", "inaccessible", "persistent-loss", "change".
std::optional<ana_state> ana_state_from_string(std::string_view s) noexcept;
// May I/O be served in this state (optimized or non-optimized)?
inline bool ana_serves_io(ana_state s) noexcept {
    return s == ana_state::optimized || s == ana_state::non_optimized;
}

namespace log_page_id {
inline constexpr std::uint8_t ana = 0x0c;
}
// Get Log Page CDW10 bits 11:8 are the Log Specific Field; for the ANA log,
// its bit 0 is Return Groups Only (no NSID lists).
inline constexpr std::uint32_t get_log_ana_rgo = 1u << 8;

// Path Related Status (SCT 3h) for ANA.
namespace sc_path {
inline constexpr std::uint8_t internal_path_error = 0x00;
inline constexpr std::uint8_t ana_persistent_loss = 0x01;
inline constexpr std::uint8_t ana_inaccessible = 0x02;
inline constexpr std::uint8_t ana_transition = 0x03;
}  // namespace sc_path

// Identify Controller bits.
inline constexpr std::uint8_t cmic_multi_port = 1u << 0;
inline constexpr std::uint8_t cmic_multi_controller = 1u << 1;
inline constexpr std::uint8_t cmic_ana_reporting = 1u << 3;
inline constexpr std::uint32_t oaes_ana_change_notices = 1u << 11;
// ANACAP: which states the controller reports (bits 0-4) and bit 6:
// ANAGRPID does not change while the namespace is attached.
inline constexpr std::uint8_t anacap_optimized = 1u << 0;
inline constexpr std::uint8_t anacap_non_optimized = 1u << 1;
inline constexpr std::uint8_t anacap_inaccessible = 1u << 2;
inline constexpr std::uint8_t anacap_persistent_loss = 1u << 3;
inline constexpr std::uint8_t anacap_change = 1u << 4;
inline constexpr std::uint8_t anacap_grpid_static = 1u << 6;
// Asynchronous Event Configuration (feature 0Bh) bit 11 and the completion
// DW0 of an ANA Change notice: type 2h (notice), information 03h, log 0Ch.
inline constexpr std::uint32_t aec_ana_change_notices = 1u << 11;
inline constexpr std::uint32_t aen_ana_change = 0x2u | (0x03u << 8) | (std::uint32_t{log_page_id::ana} << 16);

struct ana_log_header {
    std::uint64_t change_count;
    std::uint16_t group_count;
    std::uint8_t reserved10[6];
};
static_assert(sizeof(ana_log_header) == 16);
static_assert(offsetof(ana_log_header, change_count) == 0);
static_assert(offsetof(ana_log_header, group_count) == 8);

// Followed by nsid_count 4-byte NSIDs (none with Return Groups Only).
struct ana_group_descriptor {
    std::uint32_t group_id;
    std::uint32_t nsid_count;
    std::uint64_t change_count;
    std::uint8_t state;  // bits 3:0
    std::uint8_t reserved17[15];
};
static_assert(sizeof(ana_group_descriptor) == 32);
static_assert(offsetof(ana_group_descriptor, group_id) == 0);
static_assert(offsetof(ana_group_descriptor, nsid_count) == 4);
static_assert(offsetof(ana_group_descriptor, change_count) == 8);
static_assert(offsetof(ana_group_descriptor, state) == 16);

// One ANA group as the log reports it.
struct ana_group {
    std::uint32_t group_id = 0;
    ana_state state = ana_state::optimized;
    std::uint64_t change_count = 0;
    std::vector<std::uint32_t> nsids;  // empty with Return Groups Only
};

struct ana_log {
    std::uint64_t change_count = 0;
    std::vector<ana_group> groups;
};

// The whole log page; `groups_only`: Return Groups Only (no NSID lists).
std::vector<std::byte> build_ana_log(const ana_log& log, bool groups_only);
// Parses bytes a controller returned (possibly cut short at the transfer
// length): nullopt when the header or a descriptor runs past the end, a
// group id is 0, a state is not one of the five, or an NSID is 0 or
// FFFFFFFFh. `why` (optional) says which.
std::optional<ana_log> parse_ana_log(std::span<const std::byte> bytes, std::string* why = nullptr);

}  // namespace ioe::nvme
