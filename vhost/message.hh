// The vhost-user control message parser: bytes and the fds that came with
// them in, a checked message (or the precise rule it broke) out. No socket:
// the connection code reads the 12-byte header, calls check_header(), reads
// `size` more bytes (and the SCM_RIGHTS fds), then parse_message(); the unit
// tests and tests/fuzz/vhost_message_fuzz.cc feed it directly.
//
// What is checked (docs/vhost.md has the per-request table):
//  * header: version 1, no REPLY flag (the front-end sends requests), no
//    unknown flag bits, a payload no larger than user::max_payload_bytes,
//    exactly `size` bytes after the header;
//  * request id: known, and one this back-end serves (logging, IOTLB,
//    postcopy, crypto, RARP/MTU, endianness, GPU, shared objects and device
//    state transfer are refused as unsupported);
//  * payload size exactly what the request carries (the memory table:
//    8 + 32 * regions; a config access: 12 + its size);
//  * fd count exactly what the request carries (a memory table: one per
//    region; KICK/CALL/ERR: one unless the no-fd bit is set; REM_MEM_REG:
//    none or one, which the caller closes unused);
//  * values: queue indexes below limits.num_queues, ring sizes a power of
//    two in 1..32768, split-ring bases <= 0xffff, enable 0 or 1, no
//    reserved bits in vring flags or KICK/CALL/ERR, 1..8 regions of a
//    non-zero size not passing 2^64, config ranges inside 256 bytes with
//    known flags, inflight queue counts and sizes in range.
// Not checked here (the connection's state decides): whether a protocol
// feature that gates a request was negotiated, feature subsets, ordering.
//
// fds: the parser never closes one. On an error the caller closes every fd
// it received; on success the message names the fds it carries (`fd`,
// `region_fds`) and the caller owns them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "vhost/spec/vhost_user.hh"

namespace ioe::vhost {

enum class message_error : std::uint8_t {
    ok,
    short_header,         // fewer than 12 bytes
    bad_version,          // version bits not 1
    reply_flag,           // a request marked as a reply
    unknown_flags,        // flag bits beyond version, reply, need_reply
    too_long,             // size above user::max_payload_bytes
    size_mismatch,        // not exactly `size` bytes after the header
    unknown_request,      // request id 0 or unknown
    unsupported_request,  // a known request this back-end does not serve
    bad_payload_size,     // payload size not what the request carries
    wrong_fd_count,       // fds not what the request carries
    queue_out_of_range,   // queue index >= limits.num_queues
    bad_ring_size,        // SET_VRING_NUM not a power of two in 1..32768
    bad_vring_flags,      // SET_VRING_ADDR flags beyond LOG
    bad_vring_file,       // KICK / CALL / ERR bits beyond index and no-fd
    bad_vring_base,       // SET_VRING_BASE above 0xffff (a packed-ring value)
    bad_enable,           // SET_VRING_ENABLE neither 0 nor 1
    bad_region_count,     // SET_MEM_TABLE with 0 or more than 8 regions
    bad_region,           // a region of size 0 or passing 2^64
    bad_config,           // config access of size 0, past 256 bytes, or unknown flags
    bad_inflight,         // inflight description out of range
};

std::string_view to_string(message_error e) noexcept;
// "SET_MEM_TABLE", ... or "unknown" for the log line.
std::string_view request_name(std::uint32_t request) noexcept;

struct message_limits {
    std::uint32_t num_queues = 1;  // queue indexes must be below this
};

// One parsed front-end request. Only the members its request uses are set.
struct message {
    user::request request = user::request::none;
    bool need_reply = false;
    std::uint32_t queue = 0;       // every per-queue request
    std::uint64_t value = 0;       // SET_FEATURES, SET_PROTOCOL_FEATURES, SET_STATUS
    std::uint32_t num = 0;         // SET_VRING_NUM / BASE / ENABLE, VRING_KICK
    user::vring_addr addr{};       // SET_VRING_ADDR
    int fd = -1;                   // KICK / CALL / ERR (-1: poll), BACKEND_REQ, INFLIGHT, ADD/REM_MEM_REG
    std::uint32_t region_count = 0;  // SET_MEM_TABLE; ADD / REM_MEM_REG: 1
    std::array<user::memory_region, user::max_mem_table_regions> regions{};
    std::array<int, user::max_mem_table_regions> region_fds{};  // SET_MEM_TABLE
    user::config_head config{};    // GET / SET_CONFIG
    std::array<std::uint8_t, user::max_config_bytes> config_data{};  // SET_CONFIG
    user::inflight inflight{};     // GET / SET_INFLIGHT_FD
};

// The header alone, before the payload is read.
message_error check_header(const user::msg_header& h) noexcept;

// A whole message: bytes = header + payload, fds = what came with it.
message_error parse_message(std::span<const std::byte> bytes, std::span<const int> fds, const message_limits& limits,
                            message& out) noexcept;

}  // namespace ioe::vhost
