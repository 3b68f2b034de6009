// The status of a block I/O, with NVMe's values: (status code type << 8) |
// status code, so the NVMe layer maps it to a completion without a table and
// the storage layer needs nothing from it.
#pragma once

#include <cstdint>
#include <string_view>

namespace ioe {

enum class io_status : std::uint16_t {
    success = 0x000,
    invalid_opcode = 0x001,         // the backend does not do this operation
    invalid_field = 0x002,          // e.g. buffers that do not match the length
    data_transfer_error = 0x004,
    internal_error = 0x006,         // an OS error with no better mapping
    aborted = 0x007,                // cancelled (device closing, shutdown)
    namespace_write_protected = 0x020,  // a write to a read-only volume (a snapshot)
    lba_out_of_range = 0x080,
    capacity_exceeded = 0x081,      // thin pool full
    namespace_not_ready = 0x082,    // device closed or not open on this shard
    reservation_conflict = 0x083,   // another host holds the device's reservation
    // Path related (SCT 3h): Asymmetric Access Inaccessible. This path no
    // longer serves the volume (a fenced nexus); a multipath host retries
    // on another path (no DNR).
    ana_inaccessible = 0x302,
    write_fault = 0x280,            // media error on write (EIO)
    unrecovered_read_error = 0x281, // media error on read (EIO)
};

std::string_view to_string(io_status s) noexcept;

inline bool ok(io_status s) noexcept { return s == io_status::success; }

// Maps an errno from a read (is_read) or another operation to a status.
io_status status_from_errno(int err, bool is_read) noexcept;

}  // namespace ioe
