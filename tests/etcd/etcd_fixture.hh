// A real etcd server for tests: Debian's etcd-server binary started on free
// loopback ports with a temporary data directory, waited for until it
// answers /health, and stopped (SIGTERM, then SIGKILL) at the end. pause()
// and resume() freeze it with SIGSTOP/SIGCONT; restart() keeps the data.
// Tests skip (GTEST_SKIP) only when there is no etcd binary at all.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace ioe::test {

inline std::string find_etcd_binary() {
    if (const char* env = std::getenv("IOE_ETCD_BIN"); env && *env) return env;
    for (const char* p : {"/usr/bin/etcd", "/usr/local/bin/etcd"}) {
        if (::access(p, X_OK) == 0) return p;
    }
    return {};
}

// A loopback TCP port nobody listens on right now.
inline unsigned free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot find a free loopback port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

// One blocking HTTP exchange on loopback: sends `request` (a whole HTTP/1.1
// request with Connection: close) and returns the whole answer, or "" when
// nothing could be sent; each send and receive waits `timeout` at most.
inline std::string http_exchange_loopback(unsigned port, const std::string& request,
                                          std::chrono::milliseconds timeout) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return {};
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// One blocking HTTP GET on loopback with a short timeout; the whole answer or "".
inline std::string http_get_loopback(unsigned port, const std::string& path) {
    return http_exchange_loopback(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                  std::chrono::milliseconds(300));
}

class etcd_server {
public:
    etcd_server() : _binary(find_etcd_binary()) {
        if (_binary.empty()) return;
        char tmpl[] = "/tmp/ioe-etcd-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        _dir = tmpl;
        _client_port = free_loopback_port();
        _peer_port = free_loopback_port();
        start();
    }
    ~etcd_server() {
        stop();
        if (!_dir.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(_dir, ec);
        }
    }
    etcd_server(const etcd_server&) = delete;
    etcd_server& operator=(const etcd_server&) = delete;

    bool available() const noexcept { return !_binary.empty(); }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(_client_port); }
    unsigned client_port() const noexcept { return _client_port; }
    pid_t pid() const noexcept { return _pid; }

    void start() {
        std::string client = "http://127.0.0.1:" + std::to_string(_client_port);
        std::string peer = "http://127.0.0.1:" + std::to_string(_peer_port);
        std::vector<std::string> args = {_binary,
                                         "--name=ioe-test",
                                         "--data-dir=" + _dir + "/data",
                                         "--listen-client-urls=" + client,
                                         "--advertise-client-urls=" + client,
                                         "--listen-peer-urls=" + peer,
                                         "--initial-advertise-peer-urls=" + peer,
                                         "--initial-cluster=ioe-test=" + peer,
                                         "--logger=zap",
                                         "--log-outputs=" + _dir + "/etcd.log"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        std::string out = _dir + "/etcd.out";
        posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        // ETCD_UNSUPPORTED_ARCH etc. are not needed on amd64; keep the environment.
        int rc = posix_spawn(&_pid, _binary.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::runtime_error("cannot start " + _binary + ": " + std::strerror(rc));
        // Ready when /health says so (a one-node cluster elects itself quickly).
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < until) {
            int status = 0;
            if (::waitpid(_pid, &status, WNOHANG) == _pid) {
                _pid = -1;
                throw std::runtime_error("etcd exited at start; see " + out);
            }
            if (http_get_loopback(_client_port, "/health").find("\"health\":\"true\"") != std::string::npos) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        stop();
        throw std::runtime_error("etcd did not become healthy in 20 s; see " + out);
    }

    void stop() {
        if (_pid <= 0) return;
        ::kill(_pid, SIGCONT);
        ::kill(_pid, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(_pid, nullptr, WNOHANG) == _pid) {
                _pid = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(_pid, SIGKILL);
        ::waitpid(_pid, nullptr, 0);
        _pid = -1;
    }
    void restart() {
        stop();
        start();
    }
    void pause() { ::kill(_pid, SIGSTOP); }
    void resume() { ::kill(_pid, SIGCONT); }

private:
    std::string _binary;
    std::string _dir;
    unsigned _client_port = 0;
    unsigned _peer_port = 0;
    pid_t _pid = -1;
};

#define IOE_NEED_ETCD(server)                                                                      \
    do {                                                                                           \
        if (!(server).available())                                                                 \
            GTEST_SKIP() << "no etcd binary (install Debian's etcd-server: scripts/deps.sh)";      \
    } while (0)

}  // namespace ioe::test
