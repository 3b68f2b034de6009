// A nexus incarnation's reservation key and host identifier (see
// nexus_epoch.hh).
#include "storage/nexus/nexus_epoch.hh"

namespace ioe {

std::uint64_t nexus_epoch::reservation_key() const noexcept {
    const std::uint64_t prefix = std::uint64_t{nexus.bytes[0]} << 8 | nexus.bytes[1];
    return prefix << 48 | std::uint64_t{generation & max_generation} << 32 | (epoch & 0xffffffffu);
}

std::array<std::uint8_t, 16> nexus_epoch::host_id() const noexcept {
    std::array<std::uint8_t, 16> id{};
    for (unsigned i = 0; i < 8; ++i) id[i] = nexus.bytes[i];
    for (unsigned i = 0; i < 4; ++i) id[8 + i] = static_cast<std::uint8_t>(generation >> (24 - 8 * i));
    for (unsigned i = 0; i < 4; ++i) id[12 + i] = static_cast<std::uint8_t>(epoch >> (24 - 8 * i));
    return id;
}

std::string host_id_hex(const std::array<std::uint8_t, 16>& id) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(32);
    for (std::uint8_t b : id) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

}  // namespace ioe
