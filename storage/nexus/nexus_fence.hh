// Fencing a child: before a nexus incarnation serves I/O through a child,
// it registers its reservation key there and takes the reservation
// (Write Exclusive), preempting-and-aborting the holder only when the
// holder is an older incarnation of the same nexus (its key carries this
// nexus's uuid prefix and a lower epoch, nexus_epoch.hh) or an older
// connection generation of this incarnation (the same epoch, a lower
// generation: the connection to a faulted child that the nexus replaced).
// Our target answers a preempt-and-abort only once the preempted hosts'
// commands have finished at its device (bounded; an error otherwise), so a
// success here means no write of theirs lands afterwards. A child held by
// anybody else is refused. Why Write Exclusive: writes are what a stale
// incarnation corrupts, while reads by other hosts (checksums, backups,
// inspection of a replica) are legitimate; a fenced incarnation learns it
// is fenced at its next write (or health-record write) and then answers
// nothing (docs/nexus.md says what that leaves open).
#pragma once

#include <string>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "storage/nexus/nexus_epoch.hh"

namespace ioe {

// On the calling shard, through dev's channel there. success: this
// incarnation holds the reservation. invalid_opcode: the device has no
// reservations (then nothing is fenced; docs/nexus.md says which devices).
// Anything else: refused, with `why` naming the holder or the step.
future<io_status> claim_reservation(block_device& dev, const nexus_epoch& me, std::string& why);

// True when `key` is the reservation key of an incarnation of `me`'s nexus
// older than `me`, or of an older connection generation of `me`'s epoch.
bool older_incarnation_key(std::uint64_t key, const nexus_epoch& me) noexcept;
// A registrant is an older incarnation of this nexus when its key says so
// and its host identifier starts with this nexus's first 8 uuid bytes (as
// every incarnation's does): the key alone carries only 16 bits of the
// uuid, too few to tell two nexuses that share a child apart for sure.
bool older_incarnation(const reservation_registrant& r, const nexus_epoch& me) noexcept;

}  // namespace ioe
