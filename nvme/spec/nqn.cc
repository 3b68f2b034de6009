// NQN format rules (see nqn.hh).
#include "nvme/spec/nqn.hh"

#include <cctype>

#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

bool valid_uuid(std::string_view u) {
    if (u.size() != 36) return false;
    for (std::size_t i = 0; i < u.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !is_hex(u[i])) return false;
    }
    return true;
}

}  // namespace

std::string check_nqn(std::string_view nqn) {
    if (nqn.empty()) return "an NQN is required";
    if (nqn.size() > nqn_max_length) return "an NQN is at most 223 bytes";
    for (char c : nqn) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) return "an NQN has no spaces or control characters";
    }
    if (nqn == discovery_nqn) return "the discovery subsystem's NQN is reserved";
    constexpr std::string_view uuid_prefix = "nqn.2014-08.org.nvmexpress:uuid:";
    if (nqn.substr(0, uuid_prefix.size()) == uuid_prefix) {
        return valid_uuid(nqn.substr(uuid_prefix.size())) ? "" : "the UUID form is nqn.2014-08.org.nvmexpress:uuid:<8-4-4-4-12 hex>";
    }
    const char* form = "an NQN is nqn.YYYY-MM.<reverse domain>:<name> (e.g. nqn.2019-05.io.example:volume-1)";
    // "nqn." YYYY "-" MM "."
    if (nqn.size() < 12 || nqn.substr(0, 4) != "nqn.") return form;
    for (std::size_t i : {4u, 5u, 6u, 7u, 9u, 10u})
        if (!is_digit(nqn[i])) return form;
    if (nqn[8] != '-' || nqn[11] != '.') return form;
    const int month = (nqn[9] - '0') * 10 + (nqn[10] - '0');
    if (month < 1 || month > 12) return "the month in nqn.YYYY-MM is 01 to 12";
    const std::string_view rest = nqn.substr(12);
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) return form;
    for (char c : rest.substr(0, colon)) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
            return "the reverse domain of an NQN has letters, digits, '-' and '.' only";
        }
    }
    return "";
}

}  // namespace ioe::nvme
