// Fuzz target for the Snapshot Namespace payload parser (nvme/spec/
// nvme_vendor.cc, docs/nvmf-vendor.md): arbitrary bytes must be accepted or
// refused, never crash; an accepted payload must satisfy what the target
// relies on (txid 1..63 bytes, name 1..127 bytes without NUL or '/') and
// re-encode to exactly the same 256 bytes (one encoding per request).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nvme/spec/nvme_vendor.hh"

namespace nv = ioe::nvme;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size);
    const auto f = nv::parse_snapshot_payload(bytes);
    if (!f) return 0;
    require(size == sizeof(nv::snapshot_payload));
    require(!f->txid.empty() && f->txid.size() <= 63);
    require(!f->name.empty() && f->name.size() <= 127);
    require(f->name.find('/') == std::string::npos && f->name.find('\0') == std::string::npos);
    require(f->txid.find('\0') == std::string::npos);
    nv::snapshot_payload again;
    require(nv::encode_snapshot_payload(*f, again));
    require(std::memcmp(&again, data, sizeof again) == 0);
    return 0;
}
