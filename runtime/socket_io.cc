// Whole-buffer socket I/O (see socket_io.hh).
#include "runtime/socket_io.hh"

#include <algorithm>

namespace ioe {

future<bool> recv_exact(uring& io, int fd, void* buf, std::size_t len) {
    auto* p = static_cast<std::byte*>(buf);
    std::size_t done = 0;
    while (done < len) {
        io_result r = co_await io.recv(fd, p + done, len - done);
        if (!r || r.value() == 0) co_return false;
        done += r.value();
    }
    co_return true;
}

future<bool> send_all(uring& io, int fd, const void* buf, std::size_t len) {
    auto* p = static_cast<const std::byte*>(buf);
    std::size_t done = 0;
    while (done < len) {
        io_result r = co_await io.send(fd, p + done, len - done);
        if (!r || r.value() == 0) co_return false;
        done += r.value();
    }
    co_return true;
}

future<bool> discard(uring& io, int fd, std::span<std::byte> scratch, std::size_t len) {
    while (len > 0) {
        const std::size_t piece = std::min(len, scratch.size());
        if (!co_await recv_exact(io, fd, scratch.data(), piece)) co_return false;
        len -= piece;
    }
    co_return true;
}

}  // namespace ioe
