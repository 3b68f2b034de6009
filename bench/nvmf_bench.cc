// nvmf_bench: NVMe/TCP throughput and latency of our target against SPDK's
// nvmf_tgt and against the transport limit, each driven by spdk_nvme_perf
// and by our nvmf-perf, and the idle CPU of both targets (see
// bench/README.md, section nvmf_bench).
//   nvmf_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S]
//              [--ioengine PATH] [--nvmf-perf PATH] [--spdk DIR | --no-spdk]
//              [--target-core N] [--perf-core N] [--perf-poll busy|adaptive]
// 1. Two targets, one at a time on --target-core (0): the ioengine daemon
//    serving null:///nvmf_bench (4 GiB, 4 KiB blocks, adaptive polling) and
//    SPDK's nvmf_tgt serving a null bdev of the same shape (--spdk DIR,
//    default ../shared/anchors/spdk-v24.09 beside the source tree; skipped
//    with a message, and its keys null, when it is not there). Each run
//    starts one, measures it, stops it, then the other; the order swaps
//    every run. nvmf_tgt busy-polls its core, so they never run together.
// 2. Against each target, per workload: spdk_nvme_perf -L on --perf-core
//    (1), then tools/nvmf-perf on the same core. Right after our target's
//    randread4k_qd32 the same nvmf-perf command against tcp_limit_server
//    (tcp_limit_server.hh) on the target core, while the daemon idles.
//    Figures are medians over the runs.
// 3. spdk_nvme_perf prints its results before it detaches; a run that has
//    not exited k_detach_grace s after printing them is killed and makes
//    detach_clean false (its figures still count).
// 4. In the last run, with each target: nvmf-perf --idle connects (admin +
//    I/O queue) and sends nothing but keep-alives; the target's utime +
//    stime from /proc/PID/stat over 5 s, as % of one core (_schedstat: the
//    same from its threads' schedstat, in ns).
// Every child has a deadline, every child dies with the bench
// (PR_SET_PDEATHSIG), and a watchdog ends the run if anything hangs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.hh"
#include "bench/tcp_limit_server.hh"

extern char** environ;

#ifndef IOE_SOURCE_DIR
#define IOE_SOURCE_DIR "."
#endif

namespace {

using clk = std::chrono::steady_clock;

constexpr char k_nqn[] = "nqn.2026-11.io.ioengine:nvmf-bench";
constexpr char k_spdk_nqn[] = "nqn.2016-06.io.spdk:null0";  // as the spdk wrapper's null-target
constexpr std::uint32_t k_block = 4096;
constexpr std::uint64_t k_size_mb = 4096;
constexpr double k_idle_seconds = 5;
// spdk_nvme_perf: seconds for DPDK's start and the connect before its I/O
// starts, and after it printed its results (a clean detach takes ms).
constexpr double k_spdk_perf_startup = 20;
constexpr double k_detach_grace = 5;

struct params {
    bool json = false;
    int runs = 3;
    double seconds = 5;
    double warmup = 0.5;
    std::string ioengine, perf;
    std::string spdk_dir;  // "" with --no-spdk
    unsigned target_core = 0, perf_core = 1;
    bool limit_per_command = false;  // --limit-per-command: the limit server sends once per read
    std::string perf_poll = "adaptive";  // nvmf-perf's reactor: the target's and the limit server's policy
    // spdk_nvme_perf takes whole seconds (-t, -a): --seconds rounded (at
    // least 1) and --warmup rounded up.
    int spdk_seconds() const { return std::max(1, static_cast<int>(std::lround(seconds))); }
    int spdk_warmup() const { return static_cast<int>(std::ceil(warmup)); }
};

struct workload {
    const char* name;
    const char* rw;
    std::uint32_t bytes;
    unsigned qd;
};

constexpr workload workloads[] = {
    {"randread4k_qd1", "randread", 4096, 1},       {"randread4k_qd32", "randread", 4096, 32},
    {"randread4k_qd128", "randread", 4096, 128},   {"randwrite4k_qd32", "randwrite", 4096, 32},
    {"read128k_qd32", "read", 128 << 10, 32},
};
constexpr std::size_t limit_workload = 1;  // randread4k_qd32
constexpr std::size_t qd1_workload = 0;

struct figures {
    double iops = 0, mibs = 0, p50_us = 0, p99_us = 0, p999_us = 0, avg_us = 0;
    double errors = 0;
    // CPU that processes other than ours (bench, target, the initiator) used
    // during the run, % of all CPUs: a run with much of it measured the
    // scheduler, not the target.
    double others_cpu_pct = 0;
    // CPU of the server (target process or limit server thread) and of
    // nvmf-perf per I/O, in us: less sensitive to the machine's load than
    // IOPS (a polling process spins while it waits, and that counts).
    double server_cpu_us_per_io = 0, perf_cpu_us_per_io = 0;
    // spdk_nvme_perf runs: the target's CPU over the measured window, % of
    // one core (SPDK's spins: below 100 it did not get its core).
    double server_cpu_pct = -1;
};

// The target that runs now and the initiator that runs now: the watchdog
// and the signal handler kill them.
std::atomic<pid_t> g_target_pid{-1}, g_child_pid{-1};

void usage() {
    std::fputs(
        "usage: nvmf_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S] [--ioengine PATH]\n"
        "                  [--nvmf-perf PATH] [--spdk DIR | --no-spdk] [--target-core N] [--perf-core N]\n"
        "                  [--perf-poll busy|adaptive]\n"
        "  --json: one JSON object on stdout (progress on stderr); --quick: 1 run of 2 s per workload;\n"
        "  --runs: repetitions, medians reported (default 3); --seconds: measured per workload (5);\n"
        "  --warmup: unmeasured before each (0.5); --ioengine, --nvmf-perf: the binaries (default: the\n"
        "  build's tools/ next to bench/); --spdk: SPDK's build with bin/nvmf_tgt and bin/spdk_nvme_perf\n"
        "  (default: ../shared/anchors/spdk-v24.09 beside the source tree); --no-spdk: our target only;\n"
        "  --target-core (0), --perf-core (1); --perf-poll: nvmf-perf's polling (default adaptive, as\n"
        "  the target and the limit server)\n",
        stderr);
}

std::string exe_dir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : p.parent_path().string();
}

bool parse_args(int argc, char** argv, params& p) {
    const std::string tools = exe_dir() + "/../tools/";
    p.ioengine = tools + "ioengine";
    p.perf = tools + "nvmf-perf";
    p.spdk_dir = std::filesystem::path(IOE_SOURCE_DIR "/../shared/anchors/spdk-v24.09").lexically_normal().string();
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto number = [&](double& out, double min, double max) {
            char* end = nullptr;
            if (i + 1 < argc) out = std::strtod(argv[++i], &end);
            if (!end || *end != '\0' || !(out >= min && out <= max)) {
                std::fprintf(stderr, "nvmf_bench: %s '%s': expected a number from %g to %g\n",
                             std::string(a).c_str(), argv[i], min, max);
                return false;
            }
            return true;
        };
        double v = 0;
        if (a == "--json") {
            p.json = true;
        } else if (a == "--quick") {
            p.runs = 1;
            p.seconds = 2;
            p.warmup = 0.3;
        } else if (a == "--runs") {
            if (!number(v, 1, 50)) return false;
            p.runs = static_cast<int>(v);
        } else if (a == "--seconds") {
            if (!number(p.seconds, 0.2, 600)) return false;
        } else if (a == "--warmup") {
            if (!number(p.warmup, 0, 60)) return false;
        } else if (a == "--target-core" || a == "--perf-core") {
            if (!number(v, 0, 4095)) return false;
            (a == "--target-core" ? p.target_core : p.perf_core) = static_cast<unsigned>(v);
        } else if (a == "--limit-per-command") {
            p.limit_per_command = true;
        } else if (a == "--perf-poll" && i + 1 < argc) {
            p.perf_poll = argv[++i];
            if (p.perf_poll != "busy" && p.perf_poll != "adaptive") {
                std::fprintf(stderr, "nvmf_bench: --perf-poll '%s': expected busy or adaptive\n", p.perf_poll.c_str());
                return false;
            }
        } else if ((a == "--ioengine" || a == "--nvmf-perf") && i + 1 < argc) {
            (a == "--ioengine" ? p.ioengine : p.perf) = argv[++i];
        } else if (a == "--spdk" && i + 1 < argc) {
            p.spdk_dir = argv[++i];
        } else if (a == "--no-spdk") {
            p.spdk_dir.clear();
        } else {
            std::fprintf(stderr, "nvmf_bench: unknown argument '%s'\n", std::string(a).c_str());
            return false;
        }
    }
    return true;
}

// ---- child processes -------------------------------------------------------------

// Starts args[0] with extra_env ("K=V", overriding ours) added to our
// environment. Its stdout goes to *out_fd when out_fd is not null, else to
// our stderr (our stdout carries only the results); with log set, its stdout
// and stderr go to that file instead. The child dies with the bench
// (PR_SET_PDEATHSIG): an nvmf_tgt left behind would spin on its core.
pid_t spawn(const std::vector<std::string>& args, int* out_fd, const std::vector<std::string>& extra_env = {},
            const std::string& log = {}) {
    int fds[2] = {-1, -1};
    if (out_fd && ::pipe2(fds, O_CLOEXEC) != 0) return -1;
    const int log_fd = log.empty() ? -1 : ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    // Everything the child needs is built before fork (no allocation after it).
    std::vector<char*> argv;
    for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string_view kv = *e;
        const bool overridden = std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) {
            return kv.substr(0, kv.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1);
        });
        if (!overridden) env.emplace_back(kv);
    }
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) std::_Exit(127);
        if (log_fd >= 0) {
            ::dup2(log_fd, STDOUT_FILENO);
            ::dup2(log_fd, STDERR_FILENO);
        } else {
            ::dup2(out_fd ? fds[1] : STDERR_FILENO, STDOUT_FILENO);
        }
        ::execve(argv[0], argv.data(), envp.data());
        std::fprintf(stderr, "nvmf_bench: exec %s: %s\n", argv[0], std::strerror(errno));
        std::_Exit(127);
    }
    if (log_fd >= 0) ::close(log_fd);
    if (out_fd) {
        ::close(fds[1]);
        if (pid < 0) {
            ::close(fds[0]);
            return -1;
        }
        *out_fd = fds[0];
    }
    return pid;
}

double rusage_seconds(const rusage& ru) {
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Waits for pid until the deadline, then kills it (*killed set). Returns its
// exit status (or -1 when it had to be killed or died by a signal); its CPU
// seconds (user + system) in *cpu when given.
int wait_child(pid_t pid, clk::time_point deadline, double* cpu = nullptr, bool* killed = nullptr) {
    for (;;) {
        int st = 0;
        rusage ru{};
        const pid_t r = ::wait4(pid, &st, WNOHANG, &ru);
        if (r == pid) {
            if (cpu) *cpu = rusage_seconds(ru);
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        if (r < 0) return -1;
        if (clk::now() > deadline) {
            std::fprintf(stderr, "nvmf_bench: pid %d overran its deadline: killed\n", static_cast<int>(pid));
            ::kill(pid, SIGKILL);
            ::wait4(pid, &st, 0, &ru);
            if (cpu) *cpu = rusage_seconds(ru);
            if (killed) *killed = true;
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// utime + stime of pid in seconds (from /proc/PID/stat), or -1.
double process_cpu_seconds(pid_t pid) {
    if (pid <= 0) return -1;
    FILE* f = std::fopen(fmt::format("/proc/{}/stat", pid).c_str(), "r");
    if (!f) return -1;
    char line[4096];
    const bool got = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    const char* p = got ? std::strrchr(line, ')') : nullptr;  // comm may hold spaces
    if (!p) return -1;
    unsigned long long utime = 0, stime = 0;
    // After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
    if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
    return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

struct cpu_sample {
    clk::time_point t;
    double cpu;
};

struct child_run {
    int rc = -1;          // exit status; -1 if killed or signalled
    bool killed = false;  // overran its deadline
    std::string out;      // its stdout
    double cpu = 0;       // its user + system seconds
    bool marker_seen = false;
    clk::time_point marker_at{};
    std::vector<cpu_sample> samples;  // sample_pid's CPU seconds over the run, every ~20 ms
};

// Runs args to completion, bounded by timeout_s. When marker is given and
// shows up in its stdout, the deadline becomes grace_s after that (the
// child printed what we wanted; it only has to exit). With sample_pid, that
// process's CPU time is sampled while the child runs.
child_run run_child(const std::vector<std::string>& args, double timeout_s, const std::vector<std::string>& env = {},
                    const char* marker = nullptr, double grace_s = 0, pid_t sample_pid = -1) {
    child_run r;
    int fd = -1;
    const pid_t pid = spawn(args, &fd, env);
    if (pid < 0) return r;
    g_child_pid = pid;
    auto deadline = clk::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
    auto sample = [&](bool force) {
        const auto now = clk::now();
        const bool due = r.samples.empty() || now - r.samples.back().t >= std::chrono::milliseconds(20);
        if (sample_pid > 0 && (force || due)) {
            const double c = process_cpu_seconds(sample_pid);
            if (c >= 0) r.samples.push_back({now, c});
        }
    };
    char buf[4096];
    for (;;) {
        sample(false);
        pollfd pf{fd, POLLIN, 0};
        const int left = static_cast<int>(std::max<long>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clk::now()).count()));
        if (::poll(&pf, 1, std::min(left, 20)) > 0) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            r.out.append(buf, static_cast<std::size_t>(n));
            if (marker && !r.marker_seen && r.out.find(marker) != std::string::npos) {
                r.marker_seen = true;
                r.marker_at = clk::now();
                sample(true);
                const auto grace = std::chrono::milliseconds(static_cast<long>(grace_s * 1000));
                deadline = std::min(deadline, r.marker_at + grace);
            }
        } else if (clk::now() > deadline) {
            break;
        }
    }
    ::close(fd);
    r.rc = wait_child(pid, deadline, &r.cpu, &r.killed);
    g_child_pid = -1;
    return r;
}

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

// Seconds on a CPU of every thread of pid, from /proc/PID/task/*/schedstat
// (nanoseconds, where /proc/PID/stat counts 10 ms ticks), or -1.
double process_run_seconds(pid_t pid) {
    std::error_code ec;
    double total = 0;
    bool any = false;
    for (const auto& t : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
        if (FILE* f = std::fopen((t.path() / "schedstat").c_str(), "r")) {
            unsigned long long ns = 0;
            if (std::fscanf(f, "%llu", &ns) == 1) total += double(ns) / 1e9, any = true;
            std::fclose(f);
        }
    }
    return any ? total : -1;
}

// Busy and total seconds of every CPU together (/proc/stat; steal counts as
// busy: the hypervisor gave the time to someone else).
struct cpu_times {
    double busy = 0, total = 0;
};
cpu_times machine_cpu() {
    cpu_times t;
    if (FILE* f = std::fopen("/proc/stat", "r")) {
        unsigned long long v[8] = {};
        if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                        &v[6], &v[7]) == 8) {
            const double hz = double(::sysconf(_SC_CLK_TCK));
            t.busy = double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
            t.total = t.busy + double(v[3] + v[4]) / hz;
        }
        std::fclose(f);
    }
    return t;
}

double self_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return rusage_seconds(ru);
}

double load_average() {
    double v = -1;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &v) != 1) v = -1;
        std::fclose(f);
    }
    return v;
}

std::string joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
}

// The last lines of a file (a target's log), for an error message.
std::string file_tail(const std::string& path, std::size_t bytes = 600) {
    std::ifstream f(path);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

// A DPDK core mask for one core (-c / -m of the SPDK tools).
std::string core_mask(unsigned core) {
    return core < 64 ? fmt::format("{:#x}", std::uint64_t{1} << core) : fmt::format("[{}]", core);
}

// ---- the targets -----------------------------------------------------------------

enum class target_kind { ours, spdk };

struct target {
    explicit target(target_kind k) : kind(k), name(k == target_kind::ours ? "ours" : "spdk") {}
    target_kind kind;
    const char* name;  // "ours" / "spdk": the keys' infix
    pid_t pid = -1;
    std::uint16_t port = 0;
    std::string nqn;
    std::vector<std::string> args;
    std::string dir;  // its private temporary directory
    std::string log;  // its stdout and stderr (SPDK's), or "" (ours: our stderr)
};

// How the daemon is started (it reads --help once): a daemon with a control
// plane would otherwise create a 1 GiB default pool under ./var, and listen
// for RPC and metrics on fixed ports that another engine on the machine may
// hold: a private data dir, no default pool, no TCP listeners but the
// target's.
struct daemon_flags {
    bool data_dir = false, default_pool = false, rpc = false, metrics = false;
};

void remove_dir(std::string& dir) {
    if (dir.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    dir.clear();
}

// Waits until t's port accepts (true) or t exits or 15/30 s pass (false).
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

// SIGTERM, then SIGKILL after 15 s. Returns its exit status (-1: signalled or killed).
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

// nvmf_tgt on the target core with what `spdk null-target PORT` sets up by
// RPC (nvmf_create_transport -t TCP -q 256; bdev_null_create null0 4096
// 4096; the subsystem with any host; the namespace; the listener), given as
// a JSON config instead: it is listening once the port accepts, and no
// Python is started.
bool start_spdk(const params& p, target& t, std::string& error) {
    t = target(target_kind::spdk);
    t.nqn = k_spdk_nqn;
    t.port = free_port();
    char dir_template[] = "/tmp/nvmf_bench_spdk.XXXXXX";
    if (const char* d = ::mkdtemp(dir_template)) t.dir = d;
    if (t.dir.empty()) return error = "mkdtemp for nvmf_tgt's config failed", false;
    const std::string config = t.dir + "/nvmf_tgt.json";
    {
        std::ofstream f(config);
        f << fmt::format(
            R"({{"subsystems": [
 {{"subsystem": "bdev", "config": [
  {{"method": "bdev_null_create", "params": {{"name": "null0", "num_blocks": {}, "block_size": {}}}}}]}},
 {{"subsystem": "nvmf", "config": [
  {{"method": "nvmf_create_transport", "params": {{"trtype": "TCP", "max_queue_depth": 256}}}},
  {{"method": "nvmf_create_subsystem", "params": {{"nqn": "{}", "allow_any_host": true, "serial_number": "SPDK00000001"}}}},
  {{"method": "nvmf_subsystem_add_ns", "params": {{"nqn": "{}", "namespace": {{"bdev_name": "null0"}}}}}},
  {{"method": "nvmf_subsystem_add_listener", "params": {{"nqn": "{}", "listen_address": {{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "{}"}}}}}}]}}]}}
)",
            (k_size_mb << 20) / k_block, k_block, k_spdk_nqn, k_spdk_nqn, k_spdk_nqn, t.port);
        if (!f) return error = "writing " + config + " failed", remove_dir(t.dir), false;
    }
    t.log = t.dir + "/nvmf_tgt.log";
    t.args = {p.spdk_dir + "/bin/nvmf_tgt", "-m", core_mask(p.target_core), "--no-pci", "-r", t.dir + "/spdk.sock",
              "--json", config};
    t.pid = spawn(t.args, nullptr, {"LD_LIBRARY_PATH=" + p.spdk_dir + "/lib"}, t.log);
    g_target_pid = t.pid;
    if (wait_listening(t, 30)) return true;
    error = fmt::format("SPDK's nvmf_tgt did not start listening: {}; its log ends: {}", joined(t.args),
                        file_tail(t.log));
    if (t.pid > 0) ::kill(t.pid, SIGKILL), wait_child(t.pid, clk::now() + std::chrono::seconds(5));
    t.pid = -1;
    g_target_pid = -1;
    remove_dir(t.dir);
    return false;
}

// Why SPDK cannot be used from dir, or "" when it can.
std::string spdk_unusable(const params& p) {
    if (p.spdk_dir.empty()) return "--no-spdk";
    for (const char* bin : {"/bin/nvmf_tgt", "/bin/spdk_nvme_perf"}) {
        if (::access((p.spdk_dir + bin).c_str(), X_OK) != 0) {
            return fmt::format("no SPDK at {} ({}{} is not an executable; --spdk DIR)", p.spdk_dir, p.spdk_dir, bin);
        }
    }
    long huge = 0;
    if (FILE* f = std::fopen("/proc/meminfo", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f)) {
            if (std::sscanf(line, "HugePages_Total: %ld", &huge) == 1) break;
        }
        std::fclose(f);
    }
    std::ifstream mounts("/proc/mounts");
    const std::string m((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
    if (huge <= 0 || m.find(" hugetlbfs ") == std::string::npos) {
        return fmt::format("SPDK at {} needs huge pages and a hugetlbfs mount: run `{}/spdk setup` once as root",
                           p.spdk_dir, p.spdk_dir);
    }
    return "";
}

// ---- the initiators --------------------------------------------------------------

double json_number(const std::string& s, const char* key, bool* found) {
    const std::string k = fmt::format("\"{}\": ", key);
    const auto at = s.find(k);
    if (at == std::string::npos) return *found = false, 0;
    return std::strtod(s.c_str() + at + k.size(), nullptr);
}

std::vector<std::string> perf_args(const params& p, std::uint16_t port, const std::string& nqn, const workload& w) {
    return {p.perf, "-a", fmt::format("127.0.0.1:{}", port), "-n", nqn, "-q", std::to_string(w.qd), "-o",
            std::to_string(w.bytes), "-w", w.rw, "-t", fmt::format("{}", p.seconds), "--warmup",
            fmt::format("{}", p.warmup), "--cores", std::to_string(p.perf_core), "--poll", p.perf_poll, "--json"};
}

std::vector<std::string> spdk_perf_args(const params& p, std::uint16_t port, const std::string& nqn,
                                        const workload& w) {
    std::vector<std::string> a = {p.spdk_dir + "/bin/spdk_nvme_perf", "-c", core_mask(p.perf_core), "-q",
                                  std::to_string(w.qd), "-o", std::to_string(w.bytes), "-w", w.rw, "-t",
                                  std::to_string(p.spdk_seconds())};
    if (p.spdk_warmup() > 0) {
        a.push_back("-a");
        a.push_back(std::to_string(p.spdk_warmup()));
    }
    a.push_back("-L");
    a.push_back("-r");
    a.push_back(fmt::format("trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{} subnqn:{}", port, nqn));
    return a;
}

// others_cpu_pct of figures: /proc/stat busy minus ours over the run.
struct machine_window {
    cpu_times m0 = machine_cpu();
    double self0 = self_cpu_seconds();
    double others_pct(double child_and_target_cpu) const {
        const cpu_times m1 = machine_cpu();
        const double ours = child_and_target_cpu + (self_cpu_seconds() - self0);
        return m1.total > m0.total ? std::max(0.0, (m1.busy - m0.busy - ours) / (m1.total - m0.total) * 100) : 0;
    }
};

// One nvmf-perf run against port (a target, or the limit server with
// server_pid -1); false (with *error set) if it failed.
bool run_perf(const params& p, std::uint16_t port, const std::string& nqn, pid_t server_pid, const workload& w,
              const std::string& label, figures& f, std::string* error) {
    const auto args = perf_args(p, port, nqn, w);
    std::fprintf(stderr, "nvmf_bench: %s: nvmf-perf %s\n", label.c_str(), w.name);
    const machine_window mw;
    const double target0 = process_cpu_seconds(server_pid);
    const child_run r = run_child(args, p.seconds + p.warmup + 30);
    const double target_cpu = server_pid > 0 ? process_cpu_seconds(server_pid) - target0 : 0;
    f.others_cpu_pct = mw.others_pct(r.cpu + target_cpu);
    bool found = true;
    f.iops = json_number(r.out, "iops", &found);
    f.mibs = json_number(r.out, "mibs", &found);
    f.avg_us = json_number(r.out, "avg_us", &found);
    f.p50_us = json_number(r.out, "p50_us", &found);
    f.p99_us = json_number(r.out, "p99_us", &found);
    f.p999_us = json_number(r.out, "p999_us", &found);
    f.errors = json_number(r.out, "errors", &found);
    const double ios = f.iops * (p.seconds + p.warmup);  // the warm-up does I/O too
    if (ios > 0) {
        f.server_cpu_us_per_io = target_cpu / ios * 1e6;
        f.perf_cpu_us_per_io = r.cpu / ios * 1e6;
    }
    if (r.rc != 0 || !found) {
        if (error->empty()) {
            *error = fmt::format("{} {}: nvmf-perf exited with {} ({}): {}", label, w.name, r.rc, joined(args),
                                 r.out.substr(0, 500));
        }
        return false;
    }
    return true;
}

// spdk_nvme_perf's results: the Total line (IOPS, MiB/s, average, min, max
// in us) and, with -L, the first "Summary latency data" block's 50 % and
// 99 % lines ("  50.00000% :    57.783us"). False without a Total line.
bool parse_spdk_perf(const std::string& out, figures& f, bool* have_percentiles) {
    std::size_t at = out.rfind("\nTotal");
    if (at == std::string::npos) return false;
    const std::size_t colon = out.find(':', at);
    double min_us = 0, max_us = 0;
    if (colon == std::string::npos || std::sscanf(out.c_str() + colon + 1, "%lf %lf %lf %lf %lf", &f.iops, &f.mibs,
                                                  &f.avg_us, &min_us, &max_us) != 5) {
        return false;
    }
    auto percentile = [&](const char* label, double& v) {
        const std::size_t summary = out.find("Summary latency data", at);
        const std::size_t k = summary == std::string::npos ? summary : out.find(label, summary);
        if (k == std::string::npos) return false;
        const std::size_t c = out.find(':', k);
        return c != std::string::npos && std::sscanf(out.c_str() + c + 1, "%lf", &v) == 1;
    };
    *have_percentiles = percentile(" 50.00000%", f.p50_us) && percentile(" 99.00000%", f.p99_us);
    return true;
}

// One spdk_nvme_perf run against t. *unclean: why it did not exit on its
// own with status 0 within its deadline ("" if it did); a run killed
// k_detach_grace s after it printed its results hung at detach, and its
// figures still count. False (with *error set) when it printed no results.
bool run_spdk_perf(const params& p, const target& t, const workload& w, const std::string& label, figures& f,
                   std::string* unclean, std::string* error, std::vector<std::string>* command) {
    const auto args = spdk_perf_args(p, t.port, t.nqn, w);
    if (command) *command = args;
    std::fprintf(stderr, "nvmf_bench: %s: spdk_nvme_perf %s\n", label.c_str(), w.name);
    const double measured = p.spdk_seconds();
    const machine_window mw;
    const double target0 = process_cpu_seconds(t.pid);
    const child_run r = run_child(args, k_spdk_perf_startup + p.spdk_warmup() + measured + k_detach_grace,
                                  {"LD_LIBRARY_PATH=" + p.spdk_dir + "/lib"}, "\nTotal", k_detach_grace, t.pid);
    const double target_cpu = process_cpu_seconds(t.pid) - target0;
    f.others_cpu_pct = mw.others_pct(r.cpu + target_cpu);
    bool percentiles = false;
    const bool parsed = parse_spdk_perf(r.out, f, &percentiles);
    if (r.killed) {
        *unclean = parsed ? fmt::format("killed {:.0f} s after its results (detach hang)", k_detach_grace)
                          : "killed at its deadline before any results";
    } else if (r.rc != 0) {
        *unclean = fmt::format("exited with {}", r.rc);
    }
    if (!unclean->empty()) {
        std::fprintf(stderr, "nvmf_bench: %s %s: spdk_nvme_perf %s\n", label.c_str(), w.name, unclean->c_str());
    }
    // The target's CPU over the measured window: it ends when the results
    // are printed (the Total line; spdk_nvme_perf flushes them before it
    // detaches) and lasted -t seconds. Not over the whole run: DPDK's start,
    // the connect and the warm-up are not in the I/O count, and a polling
    // target spins through them.
    if (parsed && r.marker_seen && f.iops > 0 && !r.samples.empty()) {
        const auto from = r.marker_at - std::chrono::milliseconds(static_cast<long>(measured * 1000));
        const auto s0 = std::min_element(r.samples.begin(), r.samples.end(), [&](const auto& a, const auto& b) {
            return std::abs((a.t - from).count()) < std::abs((b.t - from).count());
        });
        const auto s1 = std::find_if(r.samples.begin(), r.samples.end(),
                                     [&](const auto& s) { return s.t >= r.marker_at; });
        if (s1 != r.samples.end()) {
            const double window = std::chrono::duration<double>(s1->t - s0->t).count();
            if (window > measured * 0.5) {
                f.server_cpu_us_per_io = (s1->cpu - s0->cpu) / (f.iops * window) * 1e6;
                f.server_cpu_pct = (s1->cpu - s0->cpu) / window * 100;
            }
        }
    }
    if (!parsed || !percentiles) {
        if (error->empty()) {
            *error = fmt::format("{} {}: spdk_nvme_perf printed no {} (exit status {}{}; {}): {}", label, w.name,
                                 !parsed ? "Total line" : "latency percentiles", r.rc,
                                 r.killed ? ", killed at its deadline" : "", joined(args), r.out.substr(0, 800));
        }
        return false;
    }
    return true;
}

// The target's CPU while nvmf-perf --idle holds a connection (admin and one
// I/O queue, nothing but keep-alives) for k_idle_seconds, as % of one core;
// also from schedstat. False (with *error set) if nvmf-perf failed.
bool measure_idle(const params& p, const target& t, double& pct, double& pct_schedstat, std::string& error) {
    const double settle = 1.5;
    const std::vector<std::string> idle_args = {
        p.perf, "-a", fmt::format("127.0.0.1:{}", t.port), "-n", t.nqn, "-w", "randread", "-t",
        fmt::format("{}", k_idle_seconds + settle + 1), "--cores", std::to_string(p.perf_core), "--poll",
        "adaptive", "--idle"};
    std::fprintf(stderr, "nvmf_bench: %s: idle host for %.0f s\n", t.name, k_idle_seconds);
    const pid_t idle = spawn(idle_args, nullptr);
    if (idle < 0) return error = fmt::format("{}: idle host: fork failed", t.name), false;
    g_child_pid = idle;
    std::this_thread::sleep_for(std::chrono::duration<double>(settle));
    const double c0 = process_cpu_seconds(t.pid), r0 = process_run_seconds(t.pid);
    const auto t0 = clk::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(k_idle_seconds));
    const double c1 = process_cpu_seconds(t.pid), r1 = process_run_seconds(t.pid);
    const double wall = std::chrono::duration<double>(clk::now() - t0).count();
    const int rc = wait_child(idle, clk::now() + std::chrono::seconds(30));
    g_child_pid = -1;
    if (rc != 0) {
        error = fmt::format("{}: idle host: nvmf-perf exited with {} ({})", t.name, rc, joined(idle_args));
        return false;
    }
    if (c0 >= 0 && c1 >= 0) {
        pct = (c1 - c0) / wall * 100;
        if (r0 >= 0 && r1 >= 0) pct_schedstat = (r1 - r0) / wall * 100;
    }
    return true;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void kill_children() {
    if (const pid_t c = g_child_pid.load(); c > 0) ::kill(c, SIGKILL);
    if (const pid_t t = g_target_pid.load(); t > 0) ::kill(t, SIGKILL);
}

// Ends the process if the run hangs.
void start_watchdog(std::chrono::seconds limit) {
    std::thread([limit] {
        std::this_thread::sleep_for(limit);
        std::fprintf(stderr, "nvmf_bench: still running after %lld s: giving up\n", (long long)limit.count());
        kill_children();
        std::_Exit(3);
    }).detach();
}

extern "C" void on_signal(int sig) {
    kill_children();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
    params p;
    if (!parse_args(argc, argv, p)) return usage(), 2;
    for (const auto& bin : {p.ioengine, p.perf}) {
        if (::access(bin.c_str(), X_OK) != 0) {
            std::fprintf(stderr, "nvmf_bench: %s is not an executable (build the ioengine and nvmf-perf targets, "
                                 "or pass --ioengine / --nvmf-perf)\n", bin.c_str());
            return 1;
        }
    }
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);
    const std::string spdk_skip = spdk_unusable(p);
    const bool use_spdk = spdk_skip.empty();
    if (!use_spdk) std::fprintf(stderr, "nvmf_bench: SPDK skipped: %s\n", spdk_skip.c_str());

    // The bound of the whole run: per target and workload, spdk_nvme_perf
    // (DPDK's start, warm-up, measured time, a detach that may hang) and
    // nvmf-perf; the limit server; target starts; the idle measurements.
    const double nvmf_perf_s = p.seconds + p.warmup + 1.5;
    const double spdk_perf_s = use_spdk ? p.spdk_warmup() + p.spdk_seconds() + 3 + k_detach_grace : 0;
    const double per_target = std::size(workloads) * (nvmf_perf_s + spdk_perf_s) + 10;
    const double per_run = per_target * (use_spdk ? 2 : 1) + nvmf_perf_s;
    const double idle = (k_idle_seconds + 2.5 + 1) * (use_spdk ? 2 : 1);
    start_watchdog(std::chrono::seconds(static_cast<long>(p.runs * per_run + idle + 120)));
    const double load_start = load_average();

    daemon_flags flags;
    {
        const child_run help = run_child({p.ioengine, "--help"}, 10);
        flags.data_dir = help.out.find("--data-dir") != std::string::npos;
        flags.default_pool = help.out.find("--default-pool-mb") != std::string::npos;
        flags.rpc = help.out.find("--rpc") != std::string::npos;
        flags.metrics = help.out.find("--metrics") != std::string::npos;
    }

    std::map<std::string, std::vector<double>> samples;  // key -> one value per run
    std::string error, limit_problem;
    std::vector<std::string> target_cmd[2], spdk_perf_cmd;
    std::uint16_t our_port = 0;
    int spdk_perf_runs = 0;
    std::vector<std::string> spdk_perf_unclean;  // "<target> target <workload> run N: why" per unclean exit
    double idle_pct[2] = {-1, -1}, idle_pct_schedstat[2] = {-1, -1};

    // Every figure of one target under one initiator: "<prefix>_<workload>_<metric>".
    auto record = [&samples](const std::string& prefix, const workload& w, const figures& f) {
        samples[fmt::format("{}_{}_iops", prefix, w.name)].push_back(f.iops);
        samples[fmt::format("{}_{}_mibs", prefix, w.name)].push_back(f.mibs);
        samples[fmt::format("{}_{}_avg_us", prefix, w.name)].push_back(f.avg_us);
        samples[fmt::format("{}_{}_p50_us", prefix, w.name)].push_back(f.p50_us);
        samples[fmt::format("{}_{}_p99_us", prefix, w.name)].push_back(f.p99_us);
        samples["others_cpu_pct"].push_back(f.others_cpu_pct);
    };

    for (int run = 0; run < p.runs && error.empty(); ++run) {
        // One target at a time, the order swapped every run.
        std::vector<target_kind> order = {target_kind::ours};
        if (use_spdk) order.insert(run % 2 ? order.begin() : order.end(), target_kind::spdk);
        for (const target_kind kind : order) {
            if (!error.empty()) break;
            target t(kind);
            const bool up = kind == target_kind::ours ? start_ours(p, flags, t, error) : start_spdk(p, t, error);
            if (!up) break;
            target_cmd[kind == target_kind::spdk] = t.args;
            if (kind == target_kind::ours) our_port = t.port;
            const std::string label = fmt::format("run {}/{}, {} target", run + 1, p.runs, t.name);
            std::map<std::string, double> spdk_iops;  // this run's, for the paired ratios
            for (std::size_t i = 0; i < std::size(workloads) && error.empty(); ++i) {
                const workload& w = workloads[i];
                if (use_spdk) {
                    figures s;
                    std::string unclean;
                    ++spdk_perf_runs;
                    const bool ok = run_spdk_perf(p, t, w, label, s, &unclean, &error, &spdk_perf_cmd);
                    if (!unclean.empty()) {
                        spdk_perf_unclean.push_back(fmt::format("{} target {} run {}: {}", t.name, w.name, run + 1,
                                                                unclean));
                    }
                    if (!ok) break;
                    const std::string prefix = fmt::format("spdk_perf_{}", t.name);
                    record(prefix, w, s);
                    if (s.server_cpu_us_per_io > 0) {
                        samples[fmt::format("{}_{}_target_cpu_us_per_io", prefix, w.name)].push_back(
                            s.server_cpu_us_per_io);
                        samples[fmt::format("{}_{}_target_cpu_pct", prefix, w.name)].push_back(s.server_cpu_pct);
                    }
                }
                figures f;
                if (!run_perf(p, t.port, t.nqn, t.pid, w, label, f, &error)) break;
                // nvmf-perf against our target keeps its original keys: nvmf_<workload>_*.
                record(kind == target_kind::ours ? std::string("nvmf") : std::string("nvmf_perf_spdk"), w, f);
                if (kind == target_kind::spdk) continue;
                samples[fmt::format("target_cpu_us_per_io_{}", w.name)].push_back(f.server_cpu_us_per_io);
                samples[fmt::format("perf_cpu_us_per_io_{}", w.name)].push_back(f.perf_cpu_us_per_io);
                if (i != limit_workload) continue;
                ioe::bench::tcp_limit_server server(p.target_core,
                                                    ioe::bench::limit_namespace{k_block, (k_size_mb << 20) / k_block},
                                                    p.limit_per_command);
                figures l;
                bool ok = false;
                try {
                    const std::uint16_t lport = server.start();
                    ok = run_perf(p, lport, k_nqn, -1, w, label + ", tcp limit", l, &error);
                } catch (const std::exception& e) {
                    error = e.what();
                }
                server.stop();
                if (ok && l.iops > 0) {
                    samples["tcp_limit_cpu_us_per_io_randread4k_qd32"].push_back(
                        server.cpu_seconds() / (l.iops * (p.seconds + p.warmup)) * 1e6);
                    samples["tcp_limit_perf_cpu_us_per_io_randread4k_qd32"].push_back(l.perf_cpu_us_per_io);
                }
                if (!server.problem().empty() && limit_problem.empty()) limit_problem = server.problem();
                if (!ok) break;
                samples["tcp_limit_randread4k_qd32_iops"].push_back(l.iops);
                samples["tcp_limit_randread4k_qd32_p50_us"].push_back(l.p50_us);
                samples["tcp_limit_randread4k_qd32_p99_us"].push_back(l.p99_us);
                samples["nvmf_efficiency_paired"].push_back(l.iops > 0 ? f.iops / l.iops : 0);
                samples["others_cpu_pct"].push_back(l.others_cpu_pct);
            }
            const int k = kind == target_kind::spdk;
            if (error.empty() && run == p.runs - 1) measure_idle(p, t, idle_pct[k], idle_pct_schedstat[k], error);
            // Our target must stop cleanly on SIGTERM.
            const int rc = stop_target(t);
            if (rc != 0 && error.empty()) {
                error = fmt::format("the {} target exited with {} after SIGTERM{}", t.name, rc,
                                    t.log.empty() ? "" : "; its log ends: " + file_tail(t.log));
            }
        }
    }

    std::map<std::string, double> r;
    for (const auto& [k, v] : samples) r[k] = median(v);
    // Per-run ratios ours / SPDK's, both under spdk_nvme_perf (runs_detail).
    for (const auto& w : workloads) {
        const auto& a = samples[fmt::format("spdk_perf_ours_{}_iops", w.name)];
        const auto& b = samples[fmt::format("spdk_perf_spdk_{}_iops", w.name)];
        for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
            if (b[i] > 0) samples[fmt::format("nvmf_vs_spdk_{}_ratio", w.name)].push_back(a[i] / b[i]);
        }
    }
    const double eff = r["tcp_limit_randread4k_qd32_iops"] > 0
                           ? r["nvmf_randread4k_qd32_iops"] / r["tcp_limit_randread4k_qd32_iops"]
                           : 0;
    // A median when the key has samples, else nothing (null in the JSON).
    auto med = [&samples](const std::string& k) -> std::optional<double> {
        const auto it = samples.find(k);
        if (it == samples.end() || it->second.empty()) return std::nullopt;
        return median(it->second);
    };
    auto ratio = [](std::optional<double> a, std::optional<double> b) -> std::optional<double> {
        if (!a || !b || *b <= 0) return std::nullopt;
        return *a / *b;
    };
    std::map<std::string, std::optional<double>> vs_spdk;
    for (const auto& w : workloads) {
        vs_spdk[w.name] = ratio(med(fmt::format("spdk_perf_ours_{}_iops", w.name)),
                                med(fmt::format("spdk_perf_spdk_{}_iops", w.name)));
    }
    const auto initiator_ratio =
        ratio(med("nvmf_perf_spdk_randread4k_qd32_iops"), med("spdk_perf_spdk_randread4k_qd32_iops"));
    const std::string qd1 = workloads[qd1_workload].name;
    const auto qd1_latency_ratio =
        ratio(med("spdk_perf_ours_" + qd1 + "_avg_us"), med("spdk_perf_spdk_" + qd1 + "_avg_us"));
    const bool spdk_measured = use_spdk && spdk_perf_runs > 0;

    std::string j = "{\n";
    auto add = [&j](const std::string& k, double v, int prec = 1) {
        j += fmt::format("  \"{}\": {:.{}f},\n", k, v, prec);
    };
    auto add_opt = [&j](const std::string& k, std::optional<double> v, int prec = 1) {
        j += v ? fmt::format("  \"{}\": {:.{}f},\n", k, *v, prec) : fmt::format("  \"{}\": null,\n", k);
    };
    auto boolean = [](std::optional<bool> b) { return b ? (*b ? "true" : "false") : "null"; };
    for (const auto& w : workloads) {
        add(fmt::format("nvmf_{}_iops", w.name), r[fmt::format("nvmf_{}_iops", w.name)]);
        add(fmt::format("nvmf_{}_p50_us", w.name), r[fmt::format("nvmf_{}_p50_us", w.name)], 2);
        add(fmt::format("nvmf_{}_p99_us", w.name), r[fmt::format("nvmf_{}_p99_us", w.name)], 2);
        add(fmt::format("nvmf_{}_avg_us", w.name), r[fmt::format("nvmf_{}_avg_us", w.name)], 2);
    }
    add("nvmf_read128k_qd32_mibs", r["nvmf_read128k_qd32_mibs"], 2);
    add("tcp_limit_randread4k_qd32_iops", r["tcp_limit_randread4k_qd32_iops"]);
    add("tcp_limit_randread4k_qd32_p50_us", r["tcp_limit_randread4k_qd32_p50_us"], 2);
    add("tcp_limit_randread4k_qd32_p99_us", r["tcp_limit_randread4k_qd32_p99_us"], 2);
    add("nvmf_efficiency", eff, 3);
    add("nvmf_efficiency_paired_median", r["nvmf_efficiency_paired"], 3);
    add("idle_target_cpu_pct", idle_pct[0], 3);
    add("idle_target_cpu_pct_schedstat", idle_pct_schedstat[0], 4);
    add("target_cpu_us_per_io_randread4k_qd32", r["target_cpu_us_per_io_randread4k_qd32"], 2);
    add("tcp_limit_cpu_us_per_io_randread4k_qd32", r["tcp_limit_cpu_us_per_io_randread4k_qd32"], 2);
    add("perf_cpu_us_per_io_randread4k_qd32", r["perf_cpu_us_per_io_randread4k_qd32"], 2);
    add("tcp_limit_perf_cpu_us_per_io_randread4k_qd32", r["tcp_limit_perf_cpu_us_per_io_randread4k_qd32"], 2);
    // Against SPDK (null when SPDK was skipped or not reached).
    for (const auto& w : workloads) add_opt(fmt::format("nvmf_vs_spdk_{}_ratio", w.name), vs_spdk[w.name], 3);
    add_opt("initiator_vs_spdk_randread4k_qd32_ratio", initiator_ratio, 3);
    add_opt("nvmf_vs_spdk_" + qd1 + "_avg_latency_ratio", qd1_latency_ratio, 3);
    for (const char* prefix : {"spdk_perf_ours", "spdk_perf_spdk", "nvmf_perf_spdk"}) {
        for (const auto& w : workloads) {
            const std::string k = fmt::format("{}_{}", prefix, w.name);
            add_opt(k + "_iops", med(k + "_iops"));
            add_opt(k + "_avg_us", med(k + "_avg_us"), 2);
            add_opt(k + "_p50_us", med(k + "_p50_us"), 2);
            add_opt(k + "_p99_us", med(k + "_p99_us"), 2);
            if (prefix[0] == 's') add_opt(k + "_target_cpu_us_per_io", med(k + "_target_cpu_us_per_io"), 2);
        }
    }
    add_opt("idle_spdk_target_cpu_pct", idle_pct[1] >= 0 ? std::optional<double>(idle_pct[1]) : std::nullopt, 3);
    add_opt("idle_spdk_target_cpu_pct_schedstat",
            idle_pct_schedstat[1] >= 0 ? std::optional<double>(idle_pct_schedstat[1]) : std::nullopt, 4);
    const std::optional<bool> detach_clean =
        spdk_measured ? std::optional<bool>(spdk_perf_unclean.empty()) : std::nullopt;
    j += fmt::format("  \"detach_clean\": {},\n", boolean(detach_clean));
    {
        std::string unclean;
        for (const auto& s : spdk_perf_unclean) {
            unclean += (unclean.empty() ? "\"" : ", \"") + ioe::bench::json_escape(s) + "\"";
        }
        j += fmt::format("  \"spdk_perf_runs\": {},\n  \"spdk_perf_unclean\": [{}],\n", spdk_perf_runs, unclean);
    }

    std::optional<bool> ratios_met, qd1_met, initiator_met;
    if (spdk_measured) {
        ratios_met = std::all_of(vs_spdk.begin(), vs_spdk.end(), [](const auto& kv) { return kv.second >= 1.0; });
        if (qd1_latency_ratio) qd1_met = *qd1_latency_ratio <= 1.0;
        if (initiator_ratio) initiator_met = *initiator_ratio >= 0.9;
    }
    j += fmt::format(
        "  \"targets\": {{\"nvmf_efficiency_met\": {}, \"idle_target_cpu_pct_met\": {}, "
        "\"nvmf_vs_spdk_ratios_met\": {}, \"qd1_avg_latency_met\": {}, \"initiator_vs_spdk_met\": {}, "
        "\"detach_clean_met\": {}}},\n",
        eff >= 0.8 ? "true" : "false", idle_pct[0] >= 0 && idle_pct[0] < 1 ? "true" : "false", boolean(ratios_met),
        boolean(qd1_met), boolean(initiator_met), boolean(detach_clean));
    const auto& others = samples["others_cpu_pct"];
    j += fmt::format("  \"machine\": {{\"others_cpu_pct_median\": {:.1f}, \"others_cpu_pct_max\": {:.1f}}},\n",
                     median(others), others.empty() ? 0.0 : *std::max_element(others.begin(), others.end()));
    j += "  \"runs_detail\": {";
    bool first = true;
    for (const auto& [k, v] : samples) {
        std::string vals;
        for (double x : v) vals += (vals.empty() ? "" : ", ") + fmt::format("{:.2f}", x);
        j += fmt::format("{}\"{}\": [{}]", first ? "" : ", ", k, vals);
        first = false;
    }
    j += "},\n";
    j += fmt::format(
        "  \"spdk\": {{\"status\": \"{}\", \"dir\": \"{}\", \"target\": \"{}\", \"perf\": \"{}\", "
        "\"perf_seconds\": {}, \"perf_warmup_seconds\": {}, \"detach_grace_seconds\": {}}},\n",
        use_spdk ? "used" : ioe::bench::json_escape("skipped: " + spdk_skip), ioe::bench::json_escape(p.spdk_dir),
        ioe::bench::json_escape(joined(target_cmd[1])), ioe::bench::json_escape(joined(spdk_perf_cmd)),
        p.spdk_seconds(), p.spdk_warmup(), k_detach_grace);
    j += fmt::format(
        "  \"config\": {{\"runs\": {}, \"seconds\": {}, \"warmup_seconds\": {}, \"target_core\": {}, "
        "\"perf_core\": {}, \"namespace\": \"null:///nvmf_bench?size_mb={}&blk_size={}\", \"target\": \"{}\", "
        "\"perf\": \"{}\", \"perf_poll\": \"{}\", \"idle_seconds\": {}, \"load_average_start\": {:.2f}, "
        "\"load_average_end\": {:.2f}}},\n",
        p.runs, p.seconds, p.warmup, p.target_core, p.perf_core, k_size_mb, k_block,
        ioe::bench::json_escape(joined(target_cmd[0])),
        ioe::bench::json_escape(joined(perf_args(p, our_port, k_nqn, workloads[limit_workload]))), p.perf_poll,
        k_idle_seconds, load_start, load_average());
    j += fmt::format("  \"limit_server_problem\": \"{}\",\n", ioe::bench::json_escape(limit_problem));
    j += fmt::format("  \"error\": \"{}\"\n}}\n", ioe::bench::json_escape(error));
    if (p.json) {
        std::fputs(j.c_str(), stdout);
    } else {
        for (const auto& [k, v] : r) std::printf("%s %.3f\n", k.c_str(), v);
        std::printf("nvmf_efficiency %.3f\nidle_target_cpu_pct %.3f\n", eff, idle_pct[0]);
        for (const auto& [k, v] : vs_spdk) {
            if (v) std::printf("nvmf_vs_spdk_%s_ratio %.3f\n", k.c_str(), *v);
        }
        if (initiator_ratio) std::printf("initiator_vs_spdk_randread4k_qd32_ratio %.3f\n", *initiator_ratio);
        if (idle_pct[1] >= 0) std::printf("idle_spdk_target_cpu_pct %.3f\n", idle_pct[1]);
        std::printf("detach_clean %s\n", boolean(detach_clean));
        if (!use_spdk) std::printf("spdk skipped: %s\n", spdk_skip.c_str());
        if (!error.empty()) std::printf("error %s\n", error.c_str());
    }
    if (!error.empty()) std::fprintf(stderr, "nvmf_bench: %s\n", error.c_str());
    return error.empty() ? 0 : 1;
}
