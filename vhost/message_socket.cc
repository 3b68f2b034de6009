// Reading and writing vhost-user messages on the socket (see
// message_socket.hh).
#include "vhost/message_socket.hh"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "runtime/socket_io.hh"

namespace ioe::vhost {

namespace {

void close_all(std::span<const int> fds) noexcept {
    for (int f : fds)
        if (f >= 0) ::close(f);
}

}  // namespace

future<> read_message(uring& io, int fd, const message_limits& limits, received_message& out) {
    out = received_message{};
    std::array<std::byte, sizeof(user::msg_header) + user::max_payload_bytes> bytes{};
    // Room for more fds than any request carries: a message with too many
    // is refused by the parser (wrong fd count), not truncated silently.
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * (user::max_fds + 8))> control{};
    iovec iov{bytes.data(), sizeof(user::msg_header)};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    io_result r = co_await io.recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (!r || r.value() == 0) co_return;  // closed
    std::array<int, user::max_fds + 8> fds{};
    std::size_t nfds = 0;
    bool truncated = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < n; ++i) {
            int f;
            std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
            if (nfds < fds.size()) {
                fds[nfds++] = f;
            } else {
                ::close(f);
                truncated = true;
            }
        }
    }
    std::span<const int> got{fds.data(), nfds};
    if (r.value() < sizeof(user::msg_header) &&
        !co_await recv_exact(io, fd, bytes.data() + r.value(), sizeof(user::msg_header) - r.value())) {
        close_all(got);
        co_return;
    }
    std::memcpy(&out.header, bytes.data(), sizeof out.header);
    if (auto e = check_header(out.header); e != message_error::ok) {
        close_all(got);
        out.status = read_status::bad_header;
        out.error = e;
        out.detail = fmt::format("request {} ({}), flags 0x{:x}, size {}", out.header.request,
                                 request_name(out.header.request), out.header.flags, out.header.size);
        co_return;
    }
    if (out.header.size > 0 && !co_await recv_exact(io, fd, bytes.data() + sizeof(user::msg_header), out.header.size)) {
        close_all(got);
        co_return;
    }
    if (truncated) {
        close_all(got);
        out.status = read_status::bad_message;
        out.error = message_error::wrong_fd_count;
        out.detail = "more fds than any request carries";
        co_return;
    }
    auto e = parse_message({bytes.data(), sizeof(user::msg_header) + out.header.size}, got, limits, out.msg);
    if (e != message_error::ok) {
        close_all(got);
        out.status = read_status::bad_message;
        out.error = e;
        out.detail = fmt::format("{}: {} byte(s), {} fd(s)", request_name(out.header.request), out.header.size, nfds);
        co_return;
    }
    out.status = read_status::ok;
}

namespace {

std::size_t build_reply(std::uint32_t request, std::span<const std::byte> payload,
                        std::array<std::byte, sizeof(user::msg_header) + user::max_payload_bytes>& buf) noexcept {
    user::msg_header h{request, user::header_flags::version | user::header_flags::reply,
                       static_cast<std::uint32_t>(payload.size())};
    std::memcpy(buf.data(), &h, sizeof h);
    if (!payload.empty()) std::memcpy(buf.data() + sizeof h, payload.data(), payload.size());
    return sizeof h + payload.size();
}

}  // namespace

future<bool> send_reply(uring& io, int fd, std::uint32_t request, std::span<const std::byte> payload, int send_fd) {
    std::array<std::byte, sizeof(user::msg_header) + user::max_payload_bytes> buf{};
    if (payload.size() > user::max_payload_bytes) co_return false;
    const std::size_t len = build_reply(request, payload, buf);
    iovec iov{buf.data(), len};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
    if (send_fd >= 0) {
        mh.msg_control = control.data();
        mh.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &send_fd, sizeof(int));
    }
    io_result r = co_await io.sendmsg(fd, &mh);
    if (!r) co_return false;
    if (r.value() == len) co_return true;
    // The rest of a short send (the fd went with the first byte).
    co_return co_await send_all(io, fd, buf.data() + r.value(), len - r.value());
}

}  // namespace ioe::vhost
