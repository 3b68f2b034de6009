// Whole-buffer socket I/O over the reactor's io_uring: read exactly N bytes,
// send all of a buffer, discard N bytes through a bounded scratch buffer.
// false means the peer closed or the socket failed (the caller ends the
// connection); short transfers are continued, never reported.
#pragma once

#include <cstddef>
#include <span>

#include "runtime/future.hh"
#include "runtime/uring.hh"

namespace ioe {

future<bool> recv_exact(uring& io, int fd, void* buf, std::size_t len);
future<bool> send_all(uring& io, int fd, const void* buf, std::size_t len);
future<bool> discard(uring& io, int fd, std::span<std::byte> scratch, std::size_t len);

}  // namespace ioe
