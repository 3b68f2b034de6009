// Control-plane errors of the storage layer: a code a program can act on
// (the same set the RPC layer reports) and a message a person can act on.
// The I/O path never throws: it returns io_status.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace ioe {

enum class storage_errc { not_found, already_exists, invalid_argument, busy, no_space, io_error, unavailable, internal };

std::string_view to_string(storage_errc c) noexcept;

struct storage_error : std::runtime_error {
    storage_error(storage_errc c, const std::string& message) : std::runtime_error(message), code(c) {}
    storage_errc code;
};

}  // namespace ioe
