// reserved_device: a local user's view of a device whose reservation a
// front-end keeps (storage/reservation_port.hh). The nexus opens its
// bdev:/// children through it, so that a local child is fenced exactly as
// a remote one: its reservation calls go to the device's table under the
// nexus incarnation's host identifier, and each I/O asks this shard's copy
// of the table first. A write the reservation does not allow completes with
// Reservation Conflict without reaching the device. What is in flight
// through this device on a shard (its io_channel's count: every operation
// until the inner device completed it) is what a preempt-and-abort by
// another host waits for.
//
// Like fault_device it does not own `inner`: it presents the inner device's
// name, product and identity, forwards every operation to inner.channel()
// on the same shard (the inner's future as is: no coroutine, no
// allocation), and is closed before the inner device goes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "storage/block_device.hh"
#include "storage/reservation_port.hh"

namespace ioe {

class reserved_device final : public block_device {
public:
    // Attaches to `authority` as `host` (owner shard).
    reserved_device(block_device& inner, reservation_authority& authority, const std::array<std::uint8_t, 16>& host);
    ~reserved_device() override;

    block_device& inner() const noexcept { return _inner; }
    const reservation_port& port() const noexcept { return *_port; }
    reservation_port& port() noexcept { return *_port; }

    bool path_inaccessible() const noexcept override { return _inner.path_inaccessible(); }
    future<> rescan() override;
    future<> settle(std::chrono::milliseconds limit) override { return _inner.settle(limit); }

protected:
    std::unique_ptr<device_channel> open_channel() override;

private:
    block_device& _inner;
    std::unique_ptr<reservation_port> _port;
};

}  // namespace ioe
