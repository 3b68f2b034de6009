// --cores parsing (see cores.hh).
#include "runtime/cores.hh"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace ioe {
namespace {

bool parse_uint(std::string_view s, unsigned& out, int base = 10) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
    return ec == std::errc() && p == s.data() + s.size();
}

unsigned configured_cores() {
    long n = ::sysconf(_SC_NPROCESSORS_CONF);
    return n > 0 ? static_cast<unsigned>(n) : 1;
}

}  // namespace

std::vector<unsigned> allowed_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<unsigned> out;
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) {
        for (unsigned c = 0; c < configured_cores(); ++c) out.push_back(c);
        return out;
    }
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) out.push_back(c);
    }
    return out;
}

std::string format_cores(const std::vector<unsigned>& cores) {
    std::string out;
    for (std::size_t i = 0; i < cores.size();) {
        std::size_t j = i;
        while (j + 1 < cores.size() && cores[j + 1] == cores[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += std::to_string(cores[i]);
        if (j > i) out += '-' + std::to_string(cores[j]);
        i = j + 1;
    }
    return out;
}

std::vector<unsigned> parse_cores(std::string_view spec, core_set_error& err) {
    std::vector<unsigned> cores;
    auto fail = [&](std::string msg) {
        err.message = fmt::format("--cores '{}': {}", spec, msg);
        return std::vector<unsigned>{};
    };
    if (spec.empty()) return fail("empty core list");

    if (spec.size() > 2 && spec[0] == '0' && (spec[1] == 'x' || spec[1] == 'X')) {
        std::string_view hex = spec.substr(2);
        if (hex.size() > 16) return fail("mask wider than 64 bits");
        unsigned long long mask = 0;
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), mask, 16);
        if (ec != std::errc() || p != hex.data() + hex.size()) return fail("not a hexadecimal mask");
        if (mask == 0) return fail("mask selects no core");
        for (unsigned c = 0; c < 64; ++c) {
            if (mask & (1ULL << c)) cores.push_back(c);
        }
    } else {
        std::size_t pos = 0;
        while (pos <= spec.size()) {
            std::size_t comma = spec.find(',', pos);
            std::string_view item = spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            if (item.empty()) return fail("empty item in the list");
            std::size_t dash = item.find('-');
            unsigned lo = 0, hi = 0;
            if (dash == std::string_view::npos) {
                if (!parse_uint(item, lo)) return fail(fmt::format("'{}' is not a core number", item));
                hi = lo;
            } else {
                if (!parse_uint(item.substr(0, dash), lo) || !parse_uint(item.substr(dash + 1), hi)) {
                    return fail(fmt::format("'{}' is not a range like 0-3", item));
                }
                if (hi < lo) return fail(fmt::format("range '{}' runs backwards", item));
            }
            if (hi >= CPU_SETSIZE) return fail(fmt::format("core {} is beyond CPU_SETSIZE", hi));
            for (unsigned c = lo; c <= hi; ++c) cores.push_back(c);
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
    }

    std::sort(cores.begin(), cores.end());
    if (std::adjacent_find(cores.begin(), cores.end()) != cores.end()) {
        return fail("a core is listed twice");
    }
    const unsigned present = configured_cores();
    const std::vector<unsigned> allowed = allowed_cores();
    for (unsigned c : cores) {
        if (c >= present) {
            return fail(fmt::format("core {} does not exist (this machine has cores 0-{})", c, present - 1));
        }
        if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
            return fail(fmt::format("core {} is not allowed for this process (allowed: {})", c,
                                    format_cores(allowed)));
        }
    }
    return cores;
}

}  // namespace ioe
