// Names of storage_errc (see errors.hh).
#include "storage/errors.hh"

namespace ioe {

std::string_view to_string(storage_errc c) noexcept {
    switch (c) {
        case storage_errc::not_found: return "not_found";
        case storage_errc::already_exists: return "already_exists";
        case storage_errc::invalid_argument: return "invalid_argument";
        case storage_errc::busy: return "busy";
        case storage_errc::no_space: return "no_space";
        case storage_errc::io_error: return "io_error";
        case storage_errc::unavailable: return "unavailable";
        case storage_errc::internal: return "internal";
    }
    return "internal";
}

}  // namespace ioe
