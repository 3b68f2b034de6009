// Parsing and validation of the --cores option: a list ("0,1"), ranges
// ("0-3,6"), or a hexadecimal mask ("0x3"). Every core must exist and be in
// the set the process may run on (sched_getaffinity); the error names the
// offending core and what is allowed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ioe {

struct core_set_error {
    std::string message;  // empty: no error
};

// The cores the process may run on, ascending.
std::vector<unsigned> allowed_cores();

// Parses `spec` into ascending, unique core ids checked against the machine.
// On failure returns an empty vector and sets err.message.
std::vector<unsigned> parse_cores(std::string_view spec, core_set_error& err);

// "0-1", "0,2,4" (compact form for logs).
std::string format_cores(const std::vector<unsigned>& cores);

}  // namespace ioe
