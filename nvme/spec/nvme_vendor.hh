// Our vendor-specific NVMe admin commands as plain data (docs/nvmf-vendor.md):
// Snapshot Namespace (C1h) asks the controller to snapshot the volume behind
// a namespace under a transaction id. Its data (host to controller, 256
// bytes) is snapshot_payload, pinned by static_asserts; parse_snapshot_payload
// checks every field of bytes that came off the network (fuzzed in
// tests/fuzz), encode_snapshot_payload builds them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace ioe::nvme {

namespace admin_opcode {
// Vendor range C0h-FFh; bits 1:0 = 01b: data from host to controller.
inline constexpr std::uint8_t vendor_snapshot_namespace = 0xc1;
}  // namespace admin_opcode

inline constexpr std::uint32_t snapshot_payload_magic = 0x4e534f49;  // "IOSN" little-endian
inline constexpr std::uint16_t snapshot_payload_version = 1;
// CQE DW0 bit 0 of a successful Snapshot Namespace: the snapshot existed
// already under this transaction id (a retry), nothing new was taken.
inline constexpr std::uint32_t snapshot_dw0_existed = 1;

struct __attribute__((packed)) snapshot_payload {
    std::uint32_t magic;      // snapshot_payload_magic
    std::uint16_t version;    // snapshot_payload_version
    std::uint8_t txid_len;    // 1..63
    std::uint8_t name_len;    // 1..127
    std::uint8_t reserved[8]; // zero
    char txid[64];            // txid_len bytes, the rest zero
    char name[128];           // name_len bytes, the rest zero
    std::uint8_t reserved2[48];
};
static_assert(sizeof(snapshot_payload) == 256);
static_assert(offsetof(snapshot_payload, magic) == 0);
static_assert(offsetof(snapshot_payload, version) == 4);
static_assert(offsetof(snapshot_payload, txid_len) == 6);
static_assert(offsetof(snapshot_payload, name_len) == 7);
static_assert(offsetof(snapshot_payload, txid) == 16);
static_assert(offsetof(snapshot_payload, name) == 80);
static_assert(offsetof(snapshot_payload, reserved2) == 208);

struct snapshot_fields {
    std::string txid;
    std::string name;
};

// The fields of a payload, or nullopt if any check fails (size, magic,
// version, lengths, reserved bytes and padding zero, no NUL or '/' in the
// name, no NUL in the txid).
std::optional<snapshot_fields> parse_snapshot_payload(std::span<const std::byte> data) noexcept;
// Fills `out`; false if a field is too long or empty.
bool encode_snapshot_payload(const snapshot_fields& f, snapshot_payload& out) noexcept;

}  // namespace ioe::nvme
