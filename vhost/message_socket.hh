// vhost-user messages on the unix socket: reading one request with the fds
// that came with it (SCM_RIGHTS on the header's first byte, as front-ends
// send them: one sendmsg per message) and sending one reply, with an fd
// when the reply carries one (GET_INFLIGHT_FD). Through the reactor's
// io_uring; control path only (the connection's shard).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "runtime/future.hh"
#include "runtime/uring.hh"
#include "vhost/message.hh"

namespace ioe::vhost {

enum class read_status : std::uint8_t {
    ok,           // `msg` holds the request
    closed,       // the front-end closed the socket (or it failed)
    bad_header,   // the stream cannot be trusted further: drop the connection
    bad_message,  // the request broke a rule: answer with an error (or drop)
};

struct received_message {
    read_status status = read_status::closed;
    message msg;
    user::msg_header header{};
    message_error error = message_error::ok;
    std::string detail;  // for the log line
};

// Reads one request; fds of a refused message are closed here.
future<> read_message(uring& io, int fd, const message_limits& limits, received_message& out);

// Sends a reply to `request`: the header (REPLY set) and the payload, with
// `send_fd` attached when >= 0 (not closed here). false: the socket failed.
future<bool> send_reply(uring& io, int fd, std::uint32_t request, std::span<const std::byte> payload,
                        int send_fd = -1);

}  // namespace ioe::vhost
