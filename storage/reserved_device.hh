// reserved_device: a local user's view of a device whose reservation a
// front-end keeps (storage/reservation_port.hh). The nexus opens its
// bdev:/// children through it, so that a local child is fenced exactly as
// a remote one: its reservation calls go to the device's table under the
// nexus incarnation's host identifier, and each I/O asks this shard's copy
// of the table first. A write the reservation does not allow completes with
// Reservation Conflict without reaching the device; an admitted write
// counts as in flight until the device completes it, so a preempt-and-abort
// by another host waits for it.
//
// Like fault_device it does not own `inner`: it presents the inner device's
// name, product and identity, forwards every operation to inner.channel()
// on the same shard, and is closed before the inner device goes.
#pragma once

#include <memory>

#include "storage/block_device.hh"
#include "storage/reservation_port.hh"

namespace ioe {

class reserved_device final : public block_device {
public:
    reserved_device(block_device& inner, std::unique_ptr<reservation_port> port);
    ~reserved_device() override;

    block_device& inner() const noexcept { return _inner; }
    reservation_port& port() const noexcept { return *_port; }

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
