// Parsing and building the Snapshot Namespace payload (nvme_vendor.hh).
#include "nvme/spec/nvme_vendor.hh"

#include <algorithm>
#include <cstring>

namespace ioe::nvme {

namespace {

bool all_zero(const void* p, std::size_t n) noexcept {
    const auto* b = static_cast<const unsigned char*>(p);
    return std::all_of(b, b + n, [](unsigned char c) { return c == 0; });
}

}  // namespace

std::optional<snapshot_fields> parse_snapshot_payload(std::span<const std::byte> data) noexcept {
    if (data.size() != sizeof(snapshot_payload)) return std::nullopt;
    snapshot_payload p;
    std::memcpy(&p, data.data(), sizeof p);
    if (p.magic != snapshot_payload_magic || p.version != snapshot_payload_version) return std::nullopt;
    if (p.txid_len == 0 || p.txid_len > 63 || p.name_len == 0 || p.name_len > 127) return std::nullopt;
    if (!all_zero(p.reserved, sizeof p.reserved) || !all_zero(p.reserved2, sizeof p.reserved2)) return std::nullopt;
    if (!all_zero(p.txid + p.txid_len, sizeof p.txid - p.txid_len)) return std::nullopt;
    if (!all_zero(p.name + p.name_len, sizeof p.name - p.name_len)) return std::nullopt;
    const std::string_view txid(p.txid, p.txid_len), name(p.name, p.name_len);
    if (txid.find('\0') != txid.npos || name.find('\0') != name.npos || name.find('/') != name.npos) {
        return std::nullopt;
    }
    try {
        return snapshot_fields{std::string(txid), std::string(name)};
    } catch (...) {
        return std::nullopt;
    }
}

bool encode_snapshot_payload(const snapshot_fields& f, snapshot_payload& out) noexcept {
    if (f.txid.empty() || f.txid.size() > 63 || f.name.empty() || f.name.size() > 127) return false;
    std::memset(&out, 0, sizeof out);
    out.magic = snapshot_payload_magic;
    out.version = snapshot_payload_version;
    out.txid_len = static_cast<std::uint8_t>(f.txid.size());
    out.name_len = static_cast<std::uint8_t>(f.name.size());
    std::memcpy(out.txid, f.txid.data(), f.txid.size());
    std::memcpy(out.name, f.name.data(), f.name.size());
    return true;
}

}  // namespace ioe::nvme
