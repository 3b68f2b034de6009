// Tables, JSON and sizes for ioengine-ctl (output.hh).
#include "tools/ioengine-ctl/output.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <ostream>

namespace ioe::ctl {

json json::str(std::string s) {
    json j;
    j._k = kind::string;
    j._s = std::move(s);
    return j;
}
json json::num(std::uint64_t n) {
    json j;
    j._k = kind::number;
    j._n = n;
    return j;
}
json json::real(double d) {
    json j;
    j._k = kind::real;
    j._s = std::isfinite(d) ? fmt::format("{:.3f}", d) : "0";
    return j;
}
json json::boolean(bool b) {
    json j;
    j._k = kind::boolean;
    j._b = b;
    return j;
}
json json::array() {
    json j;
    j._k = kind::array;
    return j;
}
json json::object() {
    json j;
    j._k = kind::object;
    return j;
}
json& json::push(json v) {
    _items.push_back(std::move(v));
    return *this;
}
json& json::set(std::string key, json v) {
    _fields.emplace_back(std::move(key), std::move(v));
    return *this;
}

namespace {
std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
            if (c < 0x20) {
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}
}  // namespace

std::string json::dump() const {
    switch (_k) {
    case kind::null: return "null";
    case kind::string: return quote(_s);
    case kind::number: return std::to_string(_n);
    case kind::real: return _s;
    case kind::boolean: return _b ? "true" : "false";
    case kind::array: {
        std::string out = "[";
        for (std::size_t i = 0; i < _items.size(); ++i) out += (i ? "," : "") + _items[i].dump();
        return out + "]";
    }
    case kind::object: {
        std::string out = "{";
        for (std::size_t i = 0; i < _fields.size(); ++i) {
            out += (i ? "," : "") + quote(_fields[i].first) + ":" + _fields[i].second.dump();
        }
        return out + "}";
    }
    }
    return "null";
}

void table::print(std::ostream& out) const {
    std::vector<std::size_t> width(header.size());
    for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s;
        for (std::size_t i = 0; i < cells.size() && i < width.size(); ++i) {
            s += cells[i];
            if (i + 1 < cells.size()) s += std::string(width[i] - cells[i].size() + 2, ' ');
        }
        out << s << "\n";
    };
    line(header);
    for (const auto& r : rows) line(r);
}

std::string human_bytes(std::uint64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned u = 0;
    double v = static_cast<double>(n);
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    if (u == 0) return fmt::format("{} B", n);
    if (v == static_cast<double>(static_cast<std::uint64_t>(v))) return fmt::format("{} {}", static_cast<std::uint64_t>(v), units[u]);
    return fmt::format("{:.1f} {}", v, units[u]);
}

bool parse_size(const std::string& text, std::uint64_t& bytes) {
    std::size_t i = 0;
    std::uint64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        std::uint64_t d = static_cast<std::uint64_t>(text[i] - '0');
        if (n > (UINT64_MAX - d) / 10) return false;
        n = n * 10 + d;
        ++i;
    }
    if (i == 0) return false;
    std::string unit = text.substr(i);
    for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    unsigned shift = 0;
    if (unit.empty() || unit == "b") {
        shift = 0;
    } else if (unit == "k" || unit == "kb" || unit == "kib") {
        shift = 10;
    } else if (unit == "m" || unit == "mb" || unit == "mib") {
        shift = 20;
    } else if (unit == "g" || unit == "gb" || unit == "gib") {
        shift = 30;
    } else if (unit == "t" || unit == "tb" || unit == "tib") {
        shift = 40;
    } else {
        return false;
    }
    if (shift && n > (UINT64_MAX >> shift)) return false;
    bytes = n << shift;
    return true;
}

}  // namespace ioe::ctl
