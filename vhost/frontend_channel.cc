// frontend_channel: vhost-user requests from the front-end's end of the
// control socket. See frontend_channel.hh.
#include "vhost/frontend_channel.hh"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ioe::vhost {

namespace {

std::string fail(user::request r, const std::string& what) {
    return "vhost-user " + std::string(request_name(r)) + ": " + what;
}

}  // namespace

std::string_view request_name(user::request r) noexcept {
    using user::request;
    switch (r) {
        case request::get_features: return "GET_FEATURES";
        case request::set_features: return "SET_FEATURES";
        case request::set_owner: return "SET_OWNER";
        case request::set_mem_table: return "SET_MEM_TABLE";
        case request::set_vring_num: return "SET_VRING_NUM";
        case request::set_vring_addr: return "SET_VRING_ADDR";
        case request::set_vring_base: return "SET_VRING_BASE";
        case request::get_vring_base: return "GET_VRING_BASE";
        case request::set_vring_kick: return "SET_VRING_KICK";
        case request::set_vring_call: return "SET_VRING_CALL";
        case request::get_protocol_features: return "GET_PROTOCOL_FEATURES";
        case request::set_protocol_features: return "SET_PROTOCOL_FEATURES";
        case request::get_queue_num: return "GET_QUEUE_NUM";
        case request::set_vring_enable: return "SET_VRING_ENABLE";
        case request::get_config: return "GET_CONFIG";
        default: return "request";
    }
}

frontend_channel::frontend_channel(const std::string& socket_path, int timeout_ms) : _path(socket_path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
        throw std::runtime_error("socket path: 1 to " +
                                 std::to_string(sizeof(addr.sun_path) - 1) + " bytes, not " + std::to_string(socket_path.size()));
    }
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    _fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (_fd < 0) throw std::runtime_error("socket(): " + std::string(std::strerror(errno)));
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        const int err = errno;
        close(_fd);
        _fd = -1;
        throw std::runtime_error("connect: " + std::string(std::strerror(err)) +
                                 (err == ENOENT || err == ECONNREFUSED ? " (is the back-end listening on it?)" : ""));
    }
}

frontend_channel::~frontend_channel() {
    if (_fd >= 0) close(_fd);
}

void frontend_channel::write_message(user::request r, std::uint32_t flags, std::span<const std::byte> payload,
                                     std::span<const int> fds) {
    if (payload.size() > user::max_payload_bytes) throw std::runtime_error(fail(r, "payload too large"));
    if (fds.size() > user::max_fds) throw std::runtime_error(fail(r, "too many fds"));
    user::msg_header h{static_cast<std::uint32_t>(r), user::header_flags::version | flags,
                       static_cast<std::uint32_t>(payload.size())};
    std::byte buf[sizeof(h) + user::max_payload_bytes];
    std::memcpy(buf, &h, sizeof(h));
    if (!payload.empty()) std::memcpy(buf + sizeof(h), payload.data(), payload.size());
    iovec iov{buf, sizeof(h) + payload.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * user::max_fds)];
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n;
    do {
        n = sendmsg(_fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw std::runtime_error(fail(r, "send: " + std::string(std::strerror(errno))));
    if (static_cast<std::size_t>(n) != iov.iov_len) throw std::runtime_error(fail(r, "short send"));
}

void frontend_channel::read_reply(user::request r, std::span<std::byte> payload) {
    auto read_exact = [&](void* p, std::size_t len) {
        auto* b = static_cast<std::byte*>(p);
        while (len) {
            const ssize_t n = recv(_fd, b, len, 0);
            if (n == 0) throw std::runtime_error(fail(r, "the back-end closed the connection"));
            if (n < 0) {
                if (errno == EINTR) continue;
                throw std::runtime_error(fail(r, errno == EAGAIN ? std::string("no reply in time")
                                                                 : "receive: " + std::string(std::strerror(errno))));
            }
            b += n;
            len -= static_cast<std::size_t>(n);
        }
    };
    user::msg_header h{};
    read_exact(&h, sizeof(h));
    if (h.request != static_cast<std::uint32_t>(r)) {
        throw std::runtime_error(fail(r, "reply for request " + std::to_string(h.request)));
    }
    if (!(h.flags & user::header_flags::reply)) throw std::runtime_error(fail(r, "reply without the REPLY flag"));
    if (h.size != payload.size()) {
        throw std::runtime_error(fail(r, "reply of " + std::to_string(h.size) + " bytes, expected " +
                                             std::to_string(payload.size())));
    }
    read_exact(payload.data(), payload.size());
}

void frontend_channel::send(user::request r, std::span<const std::byte> payload, std::span<const int> fds) {
    write_message(r, _reply_ack ? user::header_flags::need_reply : 0, payload, fds);
    if (_reply_ack) {
        std::uint64_t status = 0;
        read_reply(r, std::as_writable_bytes(std::span{&status, 1}));
        if (status != 0) throw std::runtime_error(fail(r, "the back-end refused it (status " +
                                                          std::to_string(status) + ")"));
    }
}

void frontend_channel::send_u64(user::request r, std::uint64_t v, std::span<const int> fds) {
    send(r, std::as_bytes(std::span{&v, 1}), fds);
}

void frontend_channel::call(user::request r, std::span<const std::byte> payload, std::span<std::byte> reply) {
    write_message(r, 0, payload, {});
    read_reply(r, reply);
}

std::uint64_t frontend_channel::get_u64(user::request r) {
    std::uint64_t v = 0;
    call(r, {}, std::as_writable_bytes(std::span{&v, 1}));
    return v;
}

}  // namespace ioe::vhost
