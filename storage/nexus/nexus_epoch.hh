// A nexus incarnation's identity for fencing: the epoch it took from its
// health record (storage/nexus/child_health.hh) at creation, and the NVMe
// reservation key and 128-bit host identifier derived from (nexus uuid,
// epoch). Deriving both from the record means a new incarnation (on this
// node or another) knows exactly which key to preempt, the previous
// epoch's, and never "whoever holds it". Layout (docs/nexus.md, Fencing):
//
//   reservation key = (first 4 bytes of the nexus uuid, big-endian) << 32 | epoch
//   host identifier = first 8 bytes of the nexus uuid, then the epoch as
//                     8 bytes big-endian
//
// Epochs start at 1 (0 means "no epoch": a record written before epochs),
// so a key is never 0 and two incarnations never share a host identifier.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "storage/uuid.hh"

namespace ioe {

struct nexus_epoch {
    uuid nexus;
    std::uint64_t epoch = 0;  // 1 .. 2^32 - 1

    std::uint64_t reservation_key() const noexcept;
    std::array<std::uint8_t, 16> host_id() const noexcept;
    // The previous incarnation's (epoch - 1); not valid for epoch 1.
    nexus_epoch previous() const noexcept { return nexus_epoch{nexus, epoch - 1}; }
    bool has_previous() const noexcept { return epoch > 1; }
};

// 32 hex digits, as nvme-cli and the reservation report print host ids.
std::string host_id_hex(const std::array<std::uint8_t, 16>& id);

}  // namespace ioe
