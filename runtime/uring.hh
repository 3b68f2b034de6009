// The reactor's io_uring: one ring per shard, for files and block devices
// (O_DIRECT, registered buffers), TCP sockets, timeouts and cancellation.
//
// Each operation is a slab-allocated future state whose address is the SQE's
// user_data; the completion stores the result in it and wakes the waiter, so
// an operation allocates nothing from the heap. SQEs are batched and
// submitted once per reactor loop; when the SQ is full the ring is submitted
// and the SQE retried, so no request is ever dropped. Kernel features are
// probed at start: what the engine needs and the kernel lacks is an error that
// names the missing opcode; what is optional falls back.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/future.hh"
#include "runtime/result.hh"

namespace ioe {

// Bytes transferred (or the new fd for accept), or the OS error.
using io_result = result<std::size_t>;

struct uring_features {
    bool ext_arg = false;         // wait with a timeout without a timeout SQE
    bool nodrop = false;          // CQ overflow is kept by the kernel
    bool single_issuer = false;   // IORING_SETUP_SINGLE_ISSUER accepted
    bool coop_taskrun = false;    // IORING_SETUP_COOP_TASKRUN accepted
    bool fixed_buffers = false;   // buffers registered
};

class uring {
public:
    explicit uring(unsigned entries);
    ~uring();
    uring(const uring&) = delete;
    uring& operator=(const uring&) = delete;

    const uring_features& features() const noexcept { return _features; }
    int ring_fd() const noexcept { return _ring.ring_fd; }

    // Registers the DMA regions as fixed buffers (index = position in iov).
    status register_buffers(const iovec* iov, unsigned count);

    // Files and block devices. buf_index >= 0 uses the registered buffer.
    future<io_result> read(int fd, void* buf, std::size_t len, std::uint64_t offset, int buf_index = -1);
    future<io_result> write(int fd, const void* buf, std::size_t len, std::uint64_t offset, int buf_index = -1);
    future<io_result> readv(int fd, const iovec* iov, unsigned count, std::uint64_t offset);
    future<io_result> writev(int fd, const iovec* iov, unsigned count, std::uint64_t offset);
    future<io_result> fsync(int fd, bool datasync = false);
    // fallocate(2) through the ring: FALLOC_FL_ZERO_RANGE, FALLOC_FL_PUNCH_HOLE
    // | FALLOC_FL_KEEP_SIZE (files and block devices).
    future<io_result> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t len);

    // Sockets.
    future<io_result> accept(int listen_fd);
    future<io_result> connect(int fd, const sockaddr* addr, socklen_t len);
    future<io_result> recv(int fd, void* buf, std::size_t len, int flags = 0);
    future<io_result> send(int fd, const void* buf, std::size_t len, int flags = MSG_NOSIGNAL);
    // Vectored socket I/O. `msg` and the iovecs it points to must stay
    // valid until the operation completes.
    future<io_result> sendmsg(int fd, const msghdr* msg, int flags = MSG_NOSIGNAL);
    future<io_result> recvmsg(int fd, msghdr* msg, int flags = 0);
    // Zero-copy sendmsg (Linux 6.1+): completes once the kernel has let go
    // of the buffers (its notification), with the bytes sent.
    future<io_result> sendmsg_zc(int fd, const msghdr* msg, int flags = MSG_NOSIGNAL);

    // A timeout operation (completes with ETIME when it expires).
    future<io_result> timeout(std::chrono::nanoseconds after);

    // The id of the operation started last (for cancel()). Its result still
    // arrives through its own future, as ECANCELED when the cancel won.
    std::uint64_t last_op_id() const noexcept { return _last_op; }
    future<io_result> cancel(std::uint64_t op_id);
    // Cancels every operation in flight (shutdown; IORING_ASYNC_CANCEL_ANY,
    // Linux 5.19+).
    void cancel_all();

    // Reactor side.
    unsigned submit();                 // submits queued SQEs; returns how many
    unsigned reap();                   // handles ready CQEs; returns how many
    // Sleeps until a CQE arrives or `timeout` passes (nullptr: no limit).
    void wait(const std::chrono::nanoseconds* timeout);
    // Arms a read of the reactor's wake-up eventfd (once per sleep).
    void arm_wakeup(int eventfd);
    bool wakeup_armed() const noexcept { return _wakeup_armed; }

    unsigned in_flight() const noexcept { return _in_flight; }
    unsigned queued() const noexcept { return _queued; }

private:
    io_uring_sqe* get_sqe();
    future<io_result> start(io_uring_sqe* sqe);

    io_uring _ring{};
    uring_features _features;
    unsigned _in_flight = 0;
    unsigned _queued = 0;
    std::uint64_t _last_op = 0;
    bool _wakeup_armed = false;
    std::uint64_t _wakeup_value = 0;
};

}  // namespace ioe
