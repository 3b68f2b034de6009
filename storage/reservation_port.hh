// How a local user of a device (a nexus's bdev:/// child) takes part in the
// device's reservation, the same one that hosts reach through a front-end's
// share of it (docs/nexus.md, "Fencing local children").
//
// The reservation of a device exists because other hosts can reach it: the
// front-end that lets them (the NVMe/TCP target) keeps one table per device
// and is its authority. It registers itself with the device registry; a
// local open asks it for a port that carries the local user's 128-bit host
// identifier. Through the port the user registers, acquires and reads the
// reservation like any host, and every I/O it sends asks the port first:
// admits() checks this shard's copy of the table (no lock, no hop). The
// user tells the authority how many of its operations are in flight on a
// shard, so that a preempt-and-abort by another host waits for them as for
// a remote host's commands. An engine without such a front-end has no
// authority: nobody else can reach its devices, and local opens go without
// a port.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "runtime/future.hh"
#include "storage/io_status.hh"
#include "storage/reservation.hh"

namespace ioe {

class block_device;

class reservation_port {
public:
    virtual ~reservation_port() = default;
    // Any shard; applied by the authority, in effect on every shard (and a
    // preempt-and-abort's drain done) before the future resolves.
    virtual future<io_status> reservation_register(const reservation_register_request& r) = 0;
    virtual future<io_status> reservation_acquire(const reservation_acquire_request& r) = 0;
    virtual future<io_status> read_reservation(reservation_report& out) = 0;
    // The calling shard: may this user read (write = false) or write now?
    virtual bool admits(bool write) const noexcept = 0;
};

class reservation_authority {
public:
    virtual ~reservation_authority() = default;
    // Any shard. The port of user `host` on `dev` (the device's table is
    // created when it has none yet). `in_flight_here` counts the user's
    // operations in flight on the calling shard; the authority calls it on
    // any shard, under its own lock, until the port is destroyed (which
    // takes that lock: the function's captures must outlive the port).
    virtual std::unique_ptr<reservation_port> attach(block_device& dev, const std::array<std::uint8_t, 16>& host,
                                                     std::function<unsigned()> in_flight_here) = 0;
};

}  // namespace ioe
