// io_vec: one piece of memory an I/O reads from or writes to, as every
// block device channel takes it (storage/block_device.hh). Its own small
// header so that a front-end that only builds io_vec arrays (the virtqueue
// walker of vhost/, over guest memory) need not include the device contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ioe {

// A piece of memory for one I/O (buf_index: io_uring fixed buffer, or -1).
struct io_vec {
    std::byte* data = nullptr;
    std::uint32_t len = 0;
    std::int32_t buf_index = -1;
};
using io_vecs = std::span<const io_vec>;

std::uint64_t total_bytes(io_vecs iov) noexcept;  // defined in block_device.cc

}  // namespace ioe
