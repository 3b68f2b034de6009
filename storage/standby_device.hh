// A standby path's stand-in for a volume served elsewhere (docs/ana.md): it
// has the volume's identity (UUID, block size, block count) and no data.
// A target publishes it under the volume's NQN in ANA state inaccessible,
// so that a multipath host connects to this engine before it is needed;
// when a nexus of that volume is created here (a takeover), the target puts
// the nexus in its place. Every I/O that still reaches it fails with the
// ANA inaccessible path status.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "storage/block_device.hh"

namespace ioe {

class standby_device final : public block_device {
public:
    standby_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count);
    bool path_inaccessible() const noexcept override { return true; }

protected:
    std::unique_ptr<device_channel> open_channel() override;
};

}  // namespace ioe
