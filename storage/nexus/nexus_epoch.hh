// A nexus incarnation's identity for fencing: the epoch it took from its
// health record (storage/nexus/child_health.hh) at creation, the connection
// generation of one child connection within that incarnation, and the NVMe
// reservation key and 128-bit host identifier derived from (nexus uuid,
// epoch, generation). Deriving them from the record means a new incarnation
// (on this node or another) knows exactly which keys to preempt, those of
// lower epochs, and never "whoever holds it". The generation exists for
// the stale-write fence (docs/nexus.md, "Fencing a faulted remote child"):
// each time the nexus opens a faulted remote child again it takes the next
// generation, so the new connection is another host at the target, with
// another key, and can preempt-and-abort the previous connection's
// commands (a connection cut by the network may still be live there).
// Layout (docs/nexus.md, Fencing):
//
//   reservation key = (first 2 bytes of the nexus uuid, big-endian) << 48
//                     | generation << 32 | epoch
//   host identifier = first 8 bytes of the nexus uuid, then the generation
//                     as 4 bytes big-endian, then the epoch as 4 bytes
//                     big-endian (generation 0: the layout before
//                     generations existed)
//
// Epochs start at 1 (0 means "no epoch": a record written before epochs),
// so a key is never 0 and two incarnations never share a host identifier.
// Generations run from 0 (the connections opened at creation) to
// max_generation within an incarnation; a new incarnation starts over at 0.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "storage/uuid.hh"

namespace ioe {

struct nexus_epoch {
    static constexpr std::uint32_t max_generation = 0xffff;

    uuid nexus;
    std::uint64_t epoch = 0;      // 1 .. 2^32 - 1
    std::uint32_t generation = 0; // 0 .. max_generation

    std::uint64_t reservation_key() const noexcept;
    std::array<std::uint8_t, 16> host_id() const noexcept;
    // The previous incarnation's (epoch - 1, generation 0); not valid for
    // epoch 1.
    nexus_epoch previous() const noexcept { return nexus_epoch{nexus, epoch - 1, 0}; }
    bool has_previous() const noexcept { return epoch > 1; }
    // The same incarnation at connection generation `g`.
    nexus_epoch at_generation(std::uint32_t g) const noexcept { return nexus_epoch{nexus, epoch, g}; }
};

// The epoch and generation a key carries (nexus_epoch layout).
inline std::uint64_t key_epoch(std::uint64_t key) noexcept { return key & 0xffffffffu; }
inline std::uint32_t key_generation(std::uint64_t key) noexcept {
    return static_cast<std::uint32_t>(key >> 32 & 0xffff);
}

// 32 hex digits, as nvme-cli and the reservation report print host ids.
std::string host_id_hex(const std::array<std::uint8_t, 16>& id);

}  // namespace ioe
