// Names and errno mapping of io_status (see io_status.hh).
#include "storage/io_status.hh"

#include <cerrno>

namespace ioe {

std::string_view to_string(io_status s) noexcept {
    switch (s) {
        case io_status::success: return "success";
        case io_status::invalid_opcode: return "invalid opcode";
        case io_status::invalid_field: return "invalid field";
        case io_status::data_transfer_error: return "data transfer error";
        case io_status::internal_error: return "internal error";
        case io_status::aborted: return "aborted";
        case io_status::namespace_write_protected: return "namespace is write protected";
        case io_status::lba_out_of_range: return "LBA out of range";
        case io_status::capacity_exceeded: return "capacity exceeded";
        case io_status::namespace_not_ready: return "namespace not ready";
        case io_status::reservation_conflict: return "reservation conflict";
        case io_status::write_fault: return "write fault";
        case io_status::ana_inaccessible: return "path inaccessible (ANA)";
        case io_status::unrecovered_read_error: return "unrecovered read error";
    }
    return "unknown status";
}

io_status status_from_errno(int err, bool is_read) noexcept {
    switch (err) {
        case 0: return io_status::success;
        case EIO: return is_read ? io_status::unrecovered_read_error : io_status::write_fault;
        case ENOSPC:
        case EDQUOT: return io_status::capacity_exceeded;
        case EINVAL: return io_status::invalid_field;
        case EOPNOTSUPP: return io_status::invalid_opcode;
        case ECANCELED:
        case EINTR: return io_status::aborted;
        case ENXIO:
        case ENODEV: return io_status::namespace_not_ready;
        default: return io_status::internal_error;
    }
}

}  // namespace ioe
