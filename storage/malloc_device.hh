// malloc:///NAME?size_mb=N[&blk_size=512|4096]: a RAM disk, as Mayastor's
// malloc bdev. The memory is one anonymous mapping (MAP_NORESERVE: pages are
// committed as they are first written), zero-filled at creation and shared by
// every shard's channel. I/O copies synchronously between the caller's io_vecs
// and the mapping and completes with a ready future: nothing is allocated per
// I/O and nothing is queued.
//
// Semantics: write_zeroes and unmap both zero the range (unmap is a hint for
// other backends, but a RAM disk can afford to make it deterministic, so a
// read after unmap returns zeros); flush does nothing (there is nothing to
// make durable). Concurrent writes to overlapping blocks from two shards are
// not ordered, as on a real disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/block_device.hh"
#include "storage/uri.hh"

namespace ioe {

class malloc_device final : public block_device {
public:
    // Maps block_size * block_count bytes; throws storage_error(no_space)
    // naming `uri` when the mapping cannot be had.
    malloc_device(const device_uri& uri, std::string name, uuid id, std::uint32_t block_size,
                  std::uint64_t block_count);
    ~malloc_device() override;

    // The device's memory (tests and debugging).
    std::byte* memory() const noexcept { return _memory; }

protected:
    std::unique_ptr<device_channel> open_channel() override;

private:
    std::byte* _memory = nullptr;
    std::size_t _size_bytes = 0;
};

}  // namespace ioe
