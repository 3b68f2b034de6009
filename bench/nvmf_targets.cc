// Free ports, waiting for a target to listen, stopping it, and starting our
// daemon as nvmf_bench's target (nvmf_targets.hh).
#include "bench/nvmf_targets.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <thread>

#include "bench/child_process.hh"

namespace ioe::bench::nvmf_bench {

namespace {

using clk = std::chrono::steady_clock;

bool connectable(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}

}  // namespace

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    std::uint16_t port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) ::close(fd);
    return port;
}

void remove_dir(std::string& dir) {
    if (dir.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    dir.clear();
}

bool wait_listening(target& t, double timeout_s) {
    const auto up_by = clk::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
    while (t.pid > 0 && !connectable(t.port) && clk::now() < up_by) {
        int st = 0;
        if (::waitpid(t.pid, &st, WNOHANG) == t.pid) {
            t.pid = -1;
            g_target_pid = -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return t.pid > 0 && connectable(t.port);
}

int stop_target(target& t) {
    if (t.pid <= 0) return remove_dir(t.dir), 0;
    ::kill(t.pid, SIGTERM);
    const int rc = wait_child(t.pid, clk::now() + std::chrono::seconds(15));
    t.pid = -1;
    g_target_pid = -1;
    remove_dir(t.dir);
    return rc;
}

bool start_ours(const params& p, const daemon_flags& flags, target& t, std::string& error) {
    t = target(target_kind::ours);
    t.nqn = k_nqn;
    t.port = free_port();
    const std::string ns_uri = fmt::format("null:///nvmf_bench?size_mb={}&blk_size={}", k_size_mb, k_block);
    t.args = {p.ioengine, "--cores", std::to_string(p.target_core), "--poll", "adaptive", "--nvmf-listen",
              fmt::format("127.0.0.1:{}", t.port), "--namespace", ns_uri, "--nqn", k_nqn, "--log-level", "warn"};
    if (flags.data_dir) {
        char dir_template[] = "/tmp/nvmf_bench.XXXXXX";
        if (const char* d = ::mkdtemp(dir_template)) t.dir = d;
    }
    if (!t.dir.empty()) {
        for (std::string a : {"--data-dir", t.dir.c_str()}) t.args.push_back(a);
        if (flags.default_pool) {
            for (std::string a : {"--default-pool-mb", "0"}) t.args.push_back(a);
        }
        if (flags.rpc) {
            t.args.push_back("--rpc");
            t.args.push_back(fmt::format("unix:{}/rpc.sock", t.dir));
        }
        if (flags.metrics) {
            for (std::string a : {"--metrics", "off"}) t.args.push_back(a);
        }
    }
    t.pid = spawn(t.args, nullptr);
    g_target_pid = t.pid;
    if (wait_listening(t, 15)) return true;
    error = fmt::format("our target did not start listening: {}", joined(t.args));
    if (t.pid > 0) ::kill(t.pid, SIGKILL), wait_child(t.pid, clk::now() + std::chrono::seconds(5));
    t.pid = -1;
    g_target_pid = -1;
    remove_dir(t.dir);
    return false;
}

}  // namespace ioe::bench::nvmf_bench
