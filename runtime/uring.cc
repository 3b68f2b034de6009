// io_uring wrapper (see uring.hh).
#include "runtime/uring.hh"

#include <sys/utsname.h>

#include <cstring>
#include <stdexcept>

#include "runtime/log.hh"

namespace ioe {
namespace {

// user_data of the wake-up eventfd read; real operations use the address of
// their state, which is never 1.
constexpr std::uint64_t wakeup_tag = 1;
constexpr std::uint64_t ignore_tag = 2;  // cancel requests from cancel_all

using op_state = internal::pooled_state<io_result>;

struct required_op {
    int op;
    const char* name;
};

constexpr required_op required_ops[] = {
    {IORING_OP_READ, "IORING_OP_READ"},
    {IORING_OP_WRITE, "IORING_OP_WRITE"},
    {IORING_OP_READV, "IORING_OP_READV"},
    {IORING_OP_WRITEV, "IORING_OP_WRITEV"},
    {IORING_OP_READ_FIXED, "IORING_OP_READ_FIXED"},
    {IORING_OP_WRITE_FIXED, "IORING_OP_WRITE_FIXED"},
    {IORING_OP_FSYNC, "IORING_OP_FSYNC"},
    {IORING_OP_FALLOCATE, "IORING_OP_FALLOCATE"},
    {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},
    {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
    {IORING_OP_RECV, "IORING_OP_RECV"},
    {IORING_OP_SEND, "IORING_OP_SEND"},
    {IORING_OP_TIMEOUT, "IORING_OP_TIMEOUT"},
    {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
};

std::string kernel_release() {
    utsname u{};
    uname(&u);
    return u.release;
}

}  // namespace

uring::uring(unsigned entries) {
    io_uring_params p{};
    // COOP_TASKRUN defers completion work until we enter the kernel;
    // TASKRUN_FLAG makes the kernel say so in the SQ flags, which liburing's
    // peek checks. Without it a busy reactor that has nothing to submit never
    // enters and every completion waits for a scheduler tick (4 ms at 250 Hz).
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    int rc = io_uring_queue_init_params(entries, &_ring, &p);
    if (rc == -EINVAL) {
        // Older kernels reject the optional setup flags: run without them.
        p = io_uring_params{};
        rc = io_uring_queue_init_params(entries, &_ring, &p);
    } else if (rc == 0) {
        _features.single_issuer = true;
        _features.coop_taskrun = true;
    }
    if (rc < 0) {
        throw std::runtime_error("io_uring_setup(" + std::to_string(entries) + " entries) failed: " +
                                 std::strerror(-rc) +
                                 (rc == -EPERM || rc == -ENOSYS
                                      ? " (io_uring is disabled: check /proc/sys/kernel/io_uring_disabled)"
                                      : ""));
    }
    _features.ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
    _features.nodrop = (p.features & IORING_FEAT_NODROP) != 0;

    io_uring_probe* probe = io_uring_get_probe_ring(&_ring);
    if (!probe) {
        io_uring_queue_exit(&_ring);
        throw std::runtime_error("io_uring: the kernel " + kernel_release() +
                                 " cannot report its opcodes (IORING_REGISTER_PROBE needs Linux 5.6+)");
    }
    std::string missing;
    for (const auto& r : required_ops) {
        if (!io_uring_opcode_supported(probe, r.op)) {
            missing += missing.empty() ? r.name : std::string(", ") + r.name;
        }
    }
    io_uring_free_probe(probe);
    if (!missing.empty()) {
        io_uring_queue_exit(&_ring);
        throw std::runtime_error("io_uring: the kernel " + kernel_release() + " lacks " + missing +
                                 " (the engine needs Linux 5.19 or newer)");
    }
}

uring::~uring() { io_uring_queue_exit(&_ring); }

status uring::register_buffers(const iovec* iov, unsigned count) {
    int rc = io_uring_register_buffers(&_ring, iov, count);
    if (rc < 0) {
        return errno_error(-rc);
    }
    _features.fixed_buffers = true;
    return {};
}

io_uring_sqe* uring::get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    while (!sqe) {
        // SQ full: hand what we have to the kernel and try again. A busy
        // CQ (EBUSY) is drained first; nothing is dropped.
        int rc = io_uring_submit(&_ring);
        if (rc == -EBUSY || rc == -EAGAIN) {
            reap();
        }
        _queued = 0;
        sqe = io_uring_get_sqe(&_ring);
    }
    ++_queued;
    return sqe;
}

future<io_result> uring::start(io_uring_sqe* sqe) {
    auto* st = new op_state();  // refs: 1 (the op) ...
    st->add_ref();              // ... + 1 (the future)
    io_uring_sqe_set_data(sqe, st);
    _last_op = reinterpret_cast<std::uint64_t>(st);
    ++_in_flight;
    return future<io_result>(static_cast<future_state<io_result>*>(st));
}

future<io_result> uring::read(int fd, void* buf, std::size_t len, std::uint64_t offset, int buf_index) {
    io_uring_sqe* sqe = get_sqe();
    if (buf_index >= 0) {
        io_uring_prep_read_fixed(sqe, fd, buf, static_cast<unsigned>(len), offset, buf_index);
    } else {
        io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), offset);
    }
    return start(sqe);
}

future<io_result> uring::write(int fd, const void* buf, std::size_t len, std::uint64_t offset, int buf_index) {
    io_uring_sqe* sqe = get_sqe();
    if (buf_index >= 0) {
        io_uring_prep_write_fixed(sqe, fd, buf, static_cast<unsigned>(len), offset, buf_index);
    } else {
        io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), offset);
    }
    return start(sqe);
}

future<io_result> uring::readv(int fd, const iovec* iov, unsigned count, std::uint64_t offset) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_readv(sqe, fd, iov, count, offset);
    return start(sqe);
}

future<io_result> uring::writev(int fd, const iovec* iov, unsigned count, std::uint64_t offset) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_writev(sqe, fd, iov, count, offset);
    return start(sqe);
}

future<io_result> uring::fsync(int fd, bool datasync) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    return start(sqe);
}

future<io_result> uring::fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t len) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_fallocate(sqe, fd, mode, offset, len);
    return start(sqe);
}

future<io_result> uring::accept(int listen_fd) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    return start(sqe);
}

future<io_result> uring::connect(int fd, const sockaddr* addr, socklen_t len) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_connect(sqe, fd, addr, len);
    return start(sqe);
}

future<io_result> uring::recv(int fd, void* buf, std::size_t len, int flags) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv(sqe, fd, buf, len, flags);
    return start(sqe);
}

future<io_result> uring::send(int fd, const void* buf, std::size_t len, int flags) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, fd, buf, len, flags);
    return start(sqe);
}

future<io_result> uring::sendmsg(int fd, const msghdr* msg, int flags) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_sendmsg(sqe, fd, msg, static_cast<unsigned>(flags));
    return start(sqe);
}

future<io_result> uring::sendmsg_zc(int fd, const msghdr* msg, int flags) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_sendmsg_zc(sqe, fd, msg, static_cast<unsigned>(flags));
    return start(sqe);
}

future<io_result> uring::recvmsg(int fd, msghdr* msg, int flags) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recvmsg(sqe, fd, msg, static_cast<unsigned>(flags));
    return start(sqe);
}

future<io_result> uring::timeout(std::chrono::nanoseconds after) {
    // The SQE points at the timespec and the kernel copies it when the SQE
    // is submitted: submit now, while `ts` is alive.
    __kernel_timespec ts{};
    ts.tv_sec = after.count() / 1'000'000'000;
    ts.tv_nsec = after.count() % 1'000'000'000;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_timeout(sqe, &ts, 0, 0);
    auto f = start(sqe);
    submit();
    return f;
}

future<io_result> uring::cancel(std::uint64_t op_id) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, op_id, 0);
    return start(sqe);
}

void uring::cancel_all() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, ignore_tag);
    submit();
}

unsigned uring::submit() {
    if (_queued == 0) return 0;
    int rc = io_uring_submit(&_ring);
    while (rc == -EBUSY || rc == -EAGAIN || rc == -EINTR) {
        reap();
        rc = io_uring_submit(&_ring);
    }
    if (rc < 0) {
        log::error("io_uring_submit failed: {}", std::strerror(-rc));
        return 0;
    }
    _queued = 0;
    return static_cast<unsigned>(rc);
}

unsigned uring::reap() {
    io_uring_cqe* cqes[64];
    unsigned total = 0;
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&_ring, cqes, 64);
        if (n == 0) break;
        for (unsigned i = 0; i < n; ++i) {
            std::uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
            int res = cqes[i]->res;
            if (tag == wakeup_tag) {
                _wakeup_armed = false;
                continue;
            }
            if (tag == ignore_tag || tag == 0) continue;
            auto* st = reinterpret_cast<op_state*>(tag);
            const unsigned flags = cqes[i]->flags;
            if (flags & IORING_CQE_F_MORE) {
                // Zero-copy send: the result now, the buffers are the
                // kernel's until the notification; the waiter runs then.
                st->_result.set_value(io_result(res >= 0 ? io_result(static_cast<std::size_t>(res))
                                                         : io_result(errno_error(-res))));
                continue;
            }
            if (flags & IORING_CQE_F_NOTIF) {
                --_in_flight;
                st->notify();
                st->release();
                continue;
            }
            --_in_flight;
            if (res >= 0) {
                st->set_value(io_result(static_cast<std::size_t>(res)));
            } else {
                st->set_value(io_result(errno_error(-res)));
            }
            st->release();
        }
        io_uring_cq_advance(&_ring, n);
        total += n;
    }
    return total;
}

void uring::arm_wakeup(int eventfd) {
    if (_wakeup_armed) return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, eventfd, &_wakeup_value, sizeof(_wakeup_value), 0);
    io_uring_sqe_set_data64(sqe, wakeup_tag);
    _wakeup_armed = true;
}

void uring::wait(const std::chrono::nanoseconds* timeout) {
    io_uring_cqe* cqe = nullptr;
    if (timeout) {
        __kernel_timespec ts{};
        ts.tv_sec = timeout->count() / 1'000'000'000;
        ts.tv_nsec = timeout->count() % 1'000'000'000;
        if (_features.ext_arg) {
            io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, nullptr);
        } else {
            submit();
            io_uring_wait_cqe_timeout(&_ring, &cqe, &ts);
        }
    } else {
        io_uring_submit_and_wait(&_ring, 1);
    }
    _queued = 0;
}

}  // namespace ioe
