// The nvmf:// children's server of nexus_bench: its process (--serve-nvmf)
// and starting and stopping it (nvmf_children_server.hh).
#include "bench/nvmf_children_server.hh"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <memory>
#include <thread>
#include <vector>

#include "bench/bench_util.hh"
#include "bench/nexus_load.hh"
#include "nvme/target/target.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"

namespace ioe::bench::nexus_bench {

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::atomic<bool> g_serve_stop{false};

// nexus_bench --serve-nvmf CORE SIZE_MB: one adaptive shard on CORE serving
// three null:/// devices of SIZE_MB (4 KiB blocks), one subsystem each
// (nvmf_child_nqn), on 127.0.0.1 at a free port. Prints the port on stdout,
// then serves until its stdin closes (the bench closes it, or dies).
future<int> serve_body(std::uint64_t size_mb) {
    ioe::device_registry reg;
    std::unique_ptr<ioe::nvme::nvmf_target> t;
    bool started = false;
    int rc = 0;
    try {
        t = std::make_unique<ioe::nvme::nvmf_target>("127.0.0.1", 0);
        for (unsigned i = 0; i < children; ++i) {
            ioe::nvme::subsystem_config c;
            c.nqn = nvmf_child_nqn(i);
            c.namespaces.push_back(
                co_await reg.create(fmt::format("null:///nb_n{}?size_mb={}&blk_size={}", i, size_mb, block_bytes)));
            co_await t->add_subsystem(std::move(c));
        }
        co_await t->start();
        started = true;
        std::printf("%u\n", static_cast<unsigned>(t->port()));
        std::fflush(stdout);
        while (!g_serve_stop.load()) co_await ioe::sleep(50ms);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nexus_bench --serve-nvmf: %s\n", e.what());
        rc = 1;
    }
    if (started) co_await t->stop();
    t.reset();
    co_await reg.close_all();
    co_return rc;
}

}  // namespace

std::string nvmf_child_nqn(unsigned i) { return fmt::format("nqn.2026-11.io.ioengine:nexus-bench-c{}", i); }

int serve_main(int argc, char** argv) {
    if (argc != 4) return 2;
    const auto core = static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10));
    const std::uint64_t size_mb = std::strtoull(argv[3], nullptr, 10);
    ioe::log::set_level(spdlog::level::warn);
    std::thread([] {
        char c = 0;
        while (::read(STDIN_FILENO, &c, 1) > 0) {
        }
        g_serve_stop = true;
    }).detach();
    ioe::engine_config cfg;
    cfg.cores = {core};
    cfg.reactor.mode = ioe::poll_mode::adaptive;
    cfg.memory.size_mb = 64;  // the daemon's default DMA pool
    try {
        ioe::engine e(cfg);
        return e.run([size_mb] { return serve_body(size_mb); });
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "nexus_bench --serve-nvmf: %s\n", ex.what());
        return 1;
    }
}

std::uint16_t start_nvmf_server(unsigned core, std::uint64_t size_mb, nvmf_server& s, std::string* error) {
    char self[4096] = {};
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return *error = "readlink /proc/self/exe failed", 0;
    const std::vector<std::string> args = {self, "--serve-nvmf", std::to_string(core), std::to_string(size_mb)};
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return *error = "pipe2 failed", 0;
    const pid_t parent = ::getpid();
    s.pid = ::fork();
    if (s.pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) std::_Exit(127);
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::execv(argv[0], argv.data());
        std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    s.stdin_fd = in[1];
    std::string got;
    const auto deadline = clk::now() + 20s;
    while (s.pid > 0 && got.find('\n') == std::string::npos && clk::now() < deadline) {
        pollfd pf{out[0], POLLIN, 0};
        if (::poll(&pf, 1, 100) > 0) {
            char buf[64];
            const ssize_t r = ::read(out[0], buf, sizeof buf);
            if (r <= 0) break;
            got.append(buf, static_cast<std::size_t>(r));
        }
    }
    ::close(out[0]);
    const unsigned long port = std::strtoul(got.c_str(), nullptr, 10);
    if (s.pid < 0 || port == 0 || port > 65535) {
        *error = fmt::format("the nvmf:// children's server did not start ({}): printed '{}'",
                             ioe::bench::json_escape(args[0] + " --serve-nvmf " + args[2] + " " + args[3]), got);
        return 0;
    }
    return static_cast<std::uint16_t>(port);
}

int stop_nvmf_server(nvmf_server& s) {
    if (s.stdin_fd >= 0) ::close(s.stdin_fd);
    s.stdin_fd = -1;
    if (s.pid <= 0) return 0;
    int st = 0;
    const auto deadline = clk::now() + 10s;
    while (::waitpid(s.pid, &st, WNOHANG) == 0) {
        if (clk::now() > deadline) {
            std::fprintf(stderr, "nexus_bench: the nvmf:// children's server did not stop: killed\n");
            ::kill(s.pid, SIGKILL);
            ::waitpid(s.pid, &st, 0);
            s.pid = -1;
            return -1;
        }
        std::this_thread::sleep_for(10ms);
    }
    s.pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace ioe::bench::nexus_bench
