// A forwarding path to a volume served elsewhere (docs/ana.md, "Forwarding
// paths"): it has the volume's identity (UUID, block size, block count) and
// sends every operation on to `inner`, a connection to the node whose
// nexus serves the volume (an nvmf:// device to that node's share). A
// target publishes it under the volume's NQN in ANA state non-optimized:
// a multipath host has a second live path, used when the optimized one
// fails, and when a nexus of the volume is created here (a takeover) the
// target puts the nexus in its place, as for a standby.
//
// When the far side is unreachable, a forwarded operation fails with a
// transport status (namespace not ready, aborted, a data transfer or
// internal error). Those complete with the ANA inaccessible path status
// instead (no DNR: the host retries on another path), and the device says
// its path is lost (path_inaccessible), so the ANA log reports this path
// inaccessible and the hosts get an ANA Change event. A probe on the owner
// shard reads block 0 through `inner` every `probe_interval` while the
// path is lost; the first read that succeeds makes the path serve again.
// Statuses that are the command's own (LBA out of range, reservation
// conflict, write protected, ...) pass through unchanged.
//
// The device owns `inner` and closes it after itself.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "runtime/future.hh"
#include "storage/block_device.hh"

namespace ioe {

class forward_device final : public block_device {
public:
    // Throws storage_error (invalid_argument) when `inner` does not have
    // the identity given: a host would see another volume. Call it before
    // handing `inner` over (the caller still closes it then).
    static void check_identity(const std::string& name, uuid id, std::uint32_t block_size,
                               std::uint64_t block_count, const block_device& inner);
    // Owner shard; `inner` checked with check_identity.
    forward_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count,
                   std::unique_ptr<block_device> inner,
                   std::chrono::milliseconds probe_interval = std::chrono::milliseconds(200));
    ~forward_device() override;

    block_device& inner() const noexcept { return *_inner; }
    bool path_inaccessible() const noexcept override { return _lost.load(std::memory_order_relaxed); }

    // Any shard: an operation forwarded to `inner` ended with `st`. Returns
    // what the caller gets, and marks the path lost on a transport failure.
    io_status forwarded(io_status st) noexcept;

protected:
    std::unique_ptr<device_channel> open_channel() override;
    future<> close_backend() override;

private:
    future<> probe_loop();

    std::unique_ptr<block_device> _inner;
    std::chrono::milliseconds _probe_interval;
    std::atomic<bool> _lost{false};
    std::atomic<bool> _stopping{false};
    std::optional<future<>> _probe;
};

}  // namespace ioe
