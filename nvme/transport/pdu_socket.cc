// One socket receive into a pdu_receiver (see pdu_socket.hh).
#include "nvme/transport/pdu_socket.hh"

#include <sys/socket.h>

namespace ioe::nvme::tcp {

future<bool> receive_into(uring& io, int fd, pdu_receiver& rx) {
    iovec iov[pdu_receiver::max_receive_iov];
    const unsigned n = rx.receive_iov(iov);
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = n;
    io_result r = n == 1 ? co_await io.recv(fd, iov[0].iov_base, iov[0].iov_len, 0) : co_await io.recvmsg(fd, &m, 0);
    if (!r || r.value() == 0) co_return false;
    rx.received(r.value());
    co_return true;
}

}  // namespace ioe::nvme::tcp
