// One socket receive into a pdu_receiver (pdu_receiver.hh stays socket-free):
// the step the target's and the initiator's receive loops share.
#pragma once

#include "nvme/transport/pdu_receiver.hh"
#include "runtime/future.hh"
#include "runtime/uring.hh"

namespace ioe::nvme::tcp {

// Receives what the socket holds into the places rx.receive_iov() names
// (recv for one iovec, recvmsg for several) and hands the count to
// rx.received(). false: the peer closed or the socket failed.
future<bool> receive_into(uring& io, int fd, pdu_receiver& rx);

}  // namespace ioe::nvme::tcp
