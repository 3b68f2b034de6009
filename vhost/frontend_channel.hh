// The driver side of vhost-user (vhost-perf and tests): the control socket
// from the front-end's end. Encodes a request (header + payload, file
// descriptors as SCM_RIGHTS of the same sendmsg), sends it, and reads the
// reply when the request has one or when REPLY_ACK asked for one. Blocking,
// with a receive timeout: it runs at set-up and tear-down, never on the I/O
// path. Every failure throws std::runtime_error naming the request and
// what went wrong (the back-end closed, a reply for another request, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "vhost/spec/vhost_user.hh"

namespace ioe::vhost {

std::string_view request_name(user::request r) noexcept;

class frontend_channel {
public:
    // Connects to the back-end's unix socket. Throws saying what failed (the
    // caller names the path).
    explicit frontend_channel(const std::string& socket_path, int timeout_ms = 5000);
    ~frontend_channel();
    frontend_channel(const frontend_channel&) = delete;
    frontend_channel& operator=(const frontend_channel&) = delete;

    // Once REPLY_ACK is negotiated, requests without a reply of their own
    // carry NEED_REPLY and the back-end's u64 status is checked.
    void set_reply_ack(bool on) noexcept { _reply_ack = on; }

    // A request without a reply of its own (SET_*).
    void send(user::request r, std::span<const std::byte> payload = {}, std::span<const int> fds = {});
    void send_u64(user::request r, std::uint64_t v, std::span<const int> fds = {});
    // A request with a reply (GET_*): the reply's payload goes into `reply`,
    // whose size must be the reply's size exactly.
    void call(user::request r, std::span<const std::byte> payload, std::span<std::byte> reply);
    std::uint64_t get_u64(user::request r);

    const std::string& path() const noexcept { return _path; }

private:
    void write_message(user::request r, std::uint32_t flags, std::span<const std::byte> payload,
                       std::span<const int> fds);
    // Reads one reply to `r` into `payload` (exact size).
    void read_reply(user::request r, std::span<std::byte> payload);

    int _fd = -1;
    std::string _path;
    bool _reply_ack = false;
};

}  // namespace ioe::vhost
