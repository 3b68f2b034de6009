// 128-bit identifiers of devices, pools and replicas (RFC 4122 text form).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ioe {

struct uuid {
    std::array<std::uint8_t, 16> bytes{};

    static uuid random();                                  // version 4
    static std::optional<uuid> parse(std::string_view s);  // 8-4-4-4-12 hex
    std::string to_string() const;
    bool is_nil() const noexcept;
    friend bool operator==(const uuid&, const uuid&) = default;
};

}  // namespace ioe
