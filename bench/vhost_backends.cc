// Starting and stopping vhost_bench's vhost-user-blk back-ends
// (vhost_backends.hh).
#include "bench/vhost_backends.hh"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <thread>

#include "bench/child_process.hh"
#include "runtime/unix_listener.hh"

namespace ioe::bench::vhost_bench {

namespace {

using clk = std::chrono::steady_clock;

bool make_dir(vhost_backend& b) {
    char dir_template[] = "/tmp/vhost_bench.XXXXXX";
    const char* d = ::mkdtemp(dir_template);
    if (!d) return false;
    b.dir = d;
    b.socket = b.dir + "/vhost.sock";
    b.log = b.dir + "/backend.log";
    return true;
}

void remove_dir(vhost_backend& b) {
    if (b.dir.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(b.dir, ec);
    b.dir.clear();
}

// Listening, not merely bound: the file appears before listen().
bool is_socket(const std::string& path) { return ioe::unix_socket_listening(path); }

// Starts b.args and waits up to 15 s for its socket.
bool launch(vhost_backend& b, std::string& error) {
    b.pid = spawn(b.args, nullptr, {}, b.log);
    g_target_pid = b.pid;
    const auto up_by = clk::now() + std::chrono::seconds(15);
    while (b.pid > 0 && !is_socket(b.socket) && clk::now() < up_by) {
        int st = 0;
        if (::waitpid(b.pid, &st, WNOHANG) == b.pid) {
            b.pid = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (b.pid > 0 && is_socket(b.socket)) return true;
    error = fmt::format("the {} back-end did not create its socket: {}; its log ends: {}", b.name, joined(b.args),
                        file_tail(b.log));
    if (b.pid > 0) ::kill(b.pid, SIGKILL), wait_child(b.pid, clk::now() + std::chrono::seconds(5));
    b.pid = -1;
    g_target_pid = -1;
    remove_dir(b);
    return false;
}

}  // namespace

std::string ours_unavailable(const params& p) {
    const child_run help = run_child({p.ioengine, "--help"}, 10);
    if (help.out.find("--vhost-blk") == std::string::npos) {
        return "the daemon has no --vhost-blk option (the vhost-user-blk server of issue 15)";
    }
    return {};
}

bool start_qsd(const params& p, const std::string& file, vhost_backend& b, std::string& error) {
    b = vhost_backend{};
    b.kind = backend_kind::qsd;
    b.name = "qsd";
    if (!make_dir(b)) return error = "mkdtemp failed", false;
    const std::string blockdev =
        file.empty() ? fmt::format("driver=null-co,node-name=n0,size={},read-zeroes=on", k_size_mb << 20)
                     : fmt::format("driver=file,node-name=n0,filename={},aio=io_uring,cache.direct=on", file);
    const std::string exp = fmt::format(
        "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path={},writable=on,num-queues=1,"
        "logical-block-size={}",
        b.socket, k_block);
    b.args = {p.taskset, "-c", std::to_string(p.target_core), p.qsd, "--blockdev", blockdev, "--export", exp};
    return launch(b, error);
}

bool start_ours(const params& p, const std::string& file, vhost_backend& b, std::string& error) {
    b = vhost_backend{};
    b.kind = backend_kind::ours;
    b.name = "ours";
    if (!make_dir(b)) return error = "mkdtemp failed", false;
    const std::string device = file.empty()
                                   ? fmt::format("null:///vhost_bench?size_mb={}&blk_size={}", k_size_mb, k_block)
                                   : "uring://" + file;
    // As nvmf_bench starts our target: the target core, adaptive polling
    // (the daemon's default), a private data directory, no default pool, no
    // TCP listener (NVMe/TCP on a free port nobody connects to), RPC on a
    // socket in the directory, no metrics.
    b.args = {p.ioengine, "--cores", std::to_string(p.target_core), "--poll", "adaptive", "--vhost-blk",
              fmt::format("vhost_bench={},device={},queues=1", b.socket, device), "--log-level", "warn"};
    const child_run help = run_child({p.ioengine, "--help"}, 10);
    if (help.out.find("--data-dir") != std::string::npos) {
        for (const std::string& a : {std::string("--data-dir"), b.dir + "/data"}) b.args.push_back(a);
    }
    if (help.out.find("--default-pool-mb") != std::string::npos) {
        for (const char* a : {"--default-pool-mb", "0"}) b.args.push_back(a);
    }
    if (help.out.find("--rpc") != std::string::npos) {
        for (const std::string& a : {std::string("--rpc"), "unix:" + b.dir + "/rpc.sock"}) b.args.push_back(a);
    }
    if (help.out.find("--metrics") != std::string::npos) {
        for (const char* a : {"--metrics", "off"}) b.args.push_back(a);
    }
    if (help.out.find("--nvmf-listen") != std::string::npos) {
        for (const char* a : {"--nvmf-listen", "127.0.0.1:0"}) b.args.push_back(a);
    }
    return launch(b, error);
}

int stop_backend(vhost_backend& b) {
    if (b.pid <= 0) return remove_dir(b), 0;
    ::kill(b.pid, SIGTERM);
    const int rc = wait_child(b.pid, clk::now() + std::chrono::seconds(10));
    b.pid = -1;
    g_target_pid = -1;
    remove_dir(b);
    return rc;
}

}  // namespace ioe::bench::vhost_bench
