// null:///NAME?size_mb=N[&blk_size=512|4096]: a device that completes every
// operation at once with success and never touches the data (a read leaves
// the caller's buffers as they were), as SPDK's null bdev. For measuring the
// engine's own overhead: no memory, no syscalls, ready futures only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "storage/block_device.hh"

namespace ioe {

class null_device final : public block_device {
public:
    null_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count);

protected:
    std::unique_ptr<device_channel> open_channel() override;
};

}  // namespace ioe
