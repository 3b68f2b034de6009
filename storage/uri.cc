// Device URI parsing (see uri.hh).
#include "storage/uri.hh"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>

namespace ioe {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out += static_cast<char>(hi << 4 | lo);
            i += 2;
        } else {
            out += in[i];
        }
    }
    return true;
}

}  // namespace

std::optional<std::string> device_uri::param(std::string_view key) const {
    for (const auto& [k, v] : params)
        if (k == key) return v;
    return std::nullopt;
}

std::string device_uri::error(std::string_view what) const {
    return fmt::format("device URI '{}': {}", text, what);
}

std::optional<device_uri> parse_device_uri(std::string_view text, std::string& err) {
    device_uri u;
    u.text = std::string(text);
    auto fail = [&](std::string what) -> std::optional<device_uri> {
        err = u.error(what);
        return std::nullopt;
    };
    std::size_t colon = text.find("://");
    if (colon == std::string_view::npos || colon == 0) {
        return fail("no scheme (expected e.g. malloc:///NAME?size_mb=64, uring:///PATH, bdev:///NAME)");
    }
    u.scheme = std::string(text.substr(0, colon));
    std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view rest = text.substr(colon + 3);

    std::string_view query;
    if (std::size_t q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    std::string_view authority;
    std::string_view path;
    if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
        authority = rest.substr(0, slash);
        path = rest.substr(slash);  // keeps the '/'
    } else {
        authority = rest;
    }
    if (!authority.empty()) {
        std::size_t pc = authority.rfind(':');
        std::string_view host = pc == std::string_view::npos ? authority : authority.substr(0, pc);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        u.host = std::string(host);
        if (pc != std::string_view::npos) {
            std::string_view port = authority.substr(pc + 1);
            unsigned p = 0;
            auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
            if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
                return fail(fmt::format("port '{}' is not a number from 1 to 65535", port));
            }
            u.port = static_cast<std::uint16_t>(p);
        }
    }
    std::string decoded;
    if (!percent_decode(path, decoded)) return fail("bad percent-encoding in the path");
    u.path = decoded;

    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (item.empty()) continue;
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return fail(fmt::format("parameter '{}' is not key=value", item));
        }
        std::string key(item.substr(0, eq)), value;
        if (!percent_decode(item.substr(eq + 1), value)) {
            return fail(fmt::format("parameter '{}': bad percent-encoding", key));
        }
        if (u.param(key)) return fail(fmt::format("parameter '{}' given twice", key));
        u.params.emplace_back(std::move(key), std::move(value));
    }
    return u;
}

bool check_params(const device_uri& uri, std::initializer_list<std::string_view> known, std::string& err) {
    for (const auto& [k, v] : uri.params) {
        if (std::find(known.begin(), known.end(), k) == known.end()) {
            std::string list;
            for (auto n : known) list += (list.empty() ? "" : ", ") + std::string(n);
            err = uri.error(fmt::format("unknown parameter '{}' for {}:// (known: {})", k, uri.scheme,
                                        list.empty() ? "none" : list));
            return false;
        }
    }
    return true;
}

std::optional<std::uint64_t> uint_param(const device_uri& uri, std::string_view key,
                                        std::optional<std::uint64_t> fallback, std::string& err) {
    auto v = uri.param(key);
    if (!v) {
        if (!fallback) err = uri.error(fmt::format("parameter '{}' is required", key));
        return fallback;
    }
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || end != v->data() + v->size()) {
        err = uri.error(fmt::format("parameter '{}': '{}' is not a whole number", key, *v));
        return std::nullopt;
    }
    return n;
}

std::optional<std::uint32_t> block_size_param(const device_uri& uri, std::uint32_t fallback, std::string& err) {
    auto v = uint_param(uri, "blk_size", fallback, err);
    if (!v) return std::nullopt;
    if (*v != 512 && *v != 4096) {
        err = uri.error(fmt::format("blk_size {} is not supported (512 or 4096)", *v));
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(*v);
}

}  // namespace ioe
