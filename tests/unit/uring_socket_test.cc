// io_uring on TCP sockets: an echo server on shard 1 and a client on shard 0
// over loopback; cancelling a receive that would wait forever.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "runtime/smp.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;

namespace {

int listen_loopback(std::uint16_t& port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
        ::close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

// Shard 1: accept one connection and echo until the peer closes.
future<std::size_t> echo_server(int listen_fd) {
    uring& io = local_reactor()->io();
    auto c = co_await io.accept(listen_fd);
    if (!c) throw std::system_error(c.error(), "accept");
    int fd = static_cast<int>(c.value());
    std::size_t echoed = 0;
    char buf[4096];
    for (;;) {
        auto r = co_await io.recv(fd, buf, sizeof buf);
        if (!r || r.value() == 0) break;
        std::size_t off = 0;
        while (off < r.value()) {
            auto s = co_await io.send(fd, buf + off, r.value() - off);
            if (!s) break;
            off += s.value();
        }
        echoed += r.value();
    }
    ::close(fd);
    co_return echoed;
}

}  // namespace

TEST(uring_socket, tcp_echo_over_loopback_across_shards) {
    IOE_NEED_CORES(2);
    std::uint16_t port = 0;
    int lfd = listen_loopback(port);
    ASSERT_GE(lfd, 0);
    std::string sent(256 * 1024, '\0');
    for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 23);
    std::string got;
    std::size_t server_count = 0;
    int rc = test::run_engine(test::small_config(2), [&](engine*) -> future<int> {
        auto server = submit_to(1, [lfd] { return echo_server(lfd); });
        uring& io = local_reactor()->io();
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        auto c = co_await io.connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        if (!c) co_return c.error().value();
        // Send in chunks and read the echo as it comes back.
        std::size_t off = 0;
        char buf[8192];
        while (got.size() < sent.size()) {
            if (off < sent.size()) {
                auto s = co_await io.send(fd, sent.data() + off, std::min<std::size_t>(16384, sent.size() - off));
                if (!s) co_return s.error().value();
                off += s.value();
            }
            while (got.size() < off) {
                auto r = co_await io.recv(fd, buf, sizeof buf);
                if (!r) co_return r.error().value();
                if (r.value() == 0) co_return -1;
                got.append(buf, r.value());
            }
        }
        ::shutdown(fd, SHUT_WR);
        server_count = co_await std::move(server);
        ::close(fd);
        co_return 0;
    });
    ::close(lfd);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(server_count, sent.size());
    EXPECT_TRUE(got == sent) << "echoed bytes differ";
}

TEST(uring_socket, cancel_ends_a_pending_receive) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        uring& io = local_reactor()->io();
        char buf[16];
        auto pending = io.recv(sv[0], buf, sizeof buf);  // nothing will ever arrive
        std::uint64_t id = io.last_op_id();
        co_await yield();
        auto c = co_await io.cancel(id);
        auto r = co_await std::move(pending);
        co_return (!r.ok() && r.error().value() == ECANCELED && c.ok()) ? 0 : 1;
    });
    ::close(sv[0]);
    ::close(sv[1]);
    EXPECT_EQ(rc, 0);
}

TEST(uring_socket, shutdown_cancels_operations_left_in_flight) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int result_code = 0;
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        // A receive nobody will satisfy; the engine stops with it in flight.
        [](int fd, int* out) -> future<> {
            char buf[16];
            auto r = co_await local_reactor()->io().recv(fd, buf, sizeof buf);
            *out = r.ok() ? 0 : r.error().value();
        }(sv[0], &result_code).ignore();
        co_return 0;
    });
    ::close(sv[0]);
    ::close(sv[1]);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(result_code, ECANCELED);
}
