// uuid generation, parsing and formatting (see uuid.hh).
#include "storage/uuid.hh"

#include <random>

namespace ioe {

uuid uuid::random() {
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    uuid u;
    for (int i = 0; i < 16; i += 8) {
        std::uint64_t v = gen();
        for (int k = 0; k < 8; ++k) u.bytes[i + k] = static_cast<std::uint8_t>(v >> (8 * k));
    }
    u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0f) | 0x40);  // version 4
    u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return u;
}

std::optional<uuid> uuid::parse(std::string_view s) {
    if (s.size() != 36) return std::nullopt;
    uuid u;
    int b = 0;
    for (std::size_t i = 0; i < s.size();) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return std::nullopt;
            ++i;
            continue;
        }
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        int hi = hex(s[i]), lo = hex(s[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        u.bytes[b++] = static_cast<std::uint8_t>(hi << 4 | lo);
        i += 2;
    }
    return u;
}

std::string uuid::to_string() const {
    static const char* digits = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += digits[bytes[i] >> 4];
        s += digits[bytes[i] & 15];
    }
    return s;
}

bool uuid::is_nil() const noexcept {
    for (auto b : bytes)
        if (b) return false;
    return true;
}

}  // namespace ioe
