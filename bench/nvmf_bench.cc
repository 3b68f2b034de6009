// nvmf_bench: NVMe/TCP throughput and latency of our target, the transport
// limit measured in the same run, and the target's idle CPU (see
// bench/README.md, section nvmf_bench).
//   nvmf_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S]
//              [--ioengine PATH] [--nvmf-perf PATH] [--target-core N] [--perf-core N]
//              [--perf-poll busy|adaptive]
// 1. The ioengine daemon on --target-core (0) serves null:///nvmf_bench
//    (4 GiB, 4 KiB blocks) on 127.0.0.1:<a free port>, adaptive polling.
// 2. Each run, in order: tools/nvmf-perf on --perf-core (1) with every
//    workload against the daemon; right after randread4k_qd32 the same
//    nvmf-perf command against tcp_limit_server (tcp_limit_server.hh) on the
//    target core, while the daemon idles. Figures are medians over the runs.
// 3. idle_target_cpu_pct: nvmf-perf --idle connects (admin + I/O queue) and
//    sends nothing but keep-alives; the daemon's utime + stime from
//    /proc/PID/stat over 5 s, as % of one core (10 ms ticks: a resolution of
//    0.2 %; _schedstat is the same from its threads' schedstat, in ns).
// Every child has a deadline; a watchdog ends the run if anything hangs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.hh"
#include "bench/tcp_limit_server.hh"

namespace {

using clk = std::chrono::steady_clock;

constexpr char k_nqn[] = "nqn.2026-11.io.ioengine:nvmf-bench";
constexpr std::uint32_t k_block = 4096;
constexpr std::uint64_t k_size_mb = 4096;
constexpr double k_idle_seconds = 5;

struct params {
    bool json = false;
    int runs = 3;
    double seconds = 5;
    double warmup = 0.5;
    std::string ioengine, perf;
    unsigned target_core = 0, perf_core = 1;
    bool limit_per_command = false;  // --limit-per-command: the limit server sends once per read
    std::string perf_poll = "adaptive";  // nvmf-perf's reactor: the target's and the limit server's policy
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

struct figures {
    double iops = 0, mibs = 0, p50_us = 0, p99_us = 0, p999_us = 0, avg_us = 0;
    double errors = 0;
    // CPU that processes other than ours (bench, target, nvmf-perf) used
    // during the run, % of all CPUs: a run with much of it measured the
    // scheduler, not the target.
    double others_cpu_pct = 0;
    // CPU of the server (target process or limit server thread) and of
    // nvmf-perf per I/O, in us: less sensitive to the machine's load than
    // IOPS (a polling process spins while it waits, and that counts).
    double server_cpu_us_per_io = 0, perf_cpu_us_per_io = 0;
};

pid_t g_target_pid = -1;  // the daemon, once started

void usage() {
    std::fputs(
        "usage: nvmf_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S] [--ioengine PATH]\n"
        "                  [--nvmf-perf PATH] [--target-core N] [--perf-core N] [--perf-poll busy|adaptive]\n"
        "  --json: one JSON object on stdout (progress on stderr); --quick: 1 run of 2 s per workload;\n"
        "  --runs: repetitions, medians reported (default 3); --seconds: measured per workload (5);\n"
        "  --warmup: unmeasured before each (0.5); --ioengine, --nvmf-perf: the binaries (default: the\n"
        "  build's tools/ next to bench/); --target-core (0), --perf-core (1); --perf-poll: nvmf-perf's\n"
        "  polling (default adaptive, as the target and the limit server)\n",
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
        } else {
            std::fprintf(stderr, "nvmf_bench: unknown argument '%s'\n", std::string(a).c_str());
            return false;
        }
    }
    return true;
}

// ---- child processes -------------------------------------------------------------

// Starts argv[0]; its stdout goes to *out_fd when out_fd is not null, else
// to our stderr (our stdout carries only the results).
pid_t spawn(const std::vector<std::string>& args, int* out_fd) {
    int fds[2] = {-1, -1};
    if (out_fd && ::pipe2(fds, O_CLOEXEC) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out_fd ? fds[1] : STDERR_FILENO, STDOUT_FILENO);
        std::vector<char*> argv;
        for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        std::fprintf(stderr, "nvmf_bench: exec %s: %s\n", argv[0], std::strerror(errno));
        std::_Exit(127);
    }
    if (out_fd) {
        ::close(fds[1]);
        *out_fd = fds[0];
    }
    return pid;
}

// Waits for pid until the deadline, then kills it. Returns its exit status
// (or -1 when it had to be killed or died by a signal); its CPU seconds
// (user + system) in *cpu when given.
int wait_child(pid_t pid, clk::time_point deadline, double* cpu = nullptr) {
    for (;;) {
        int st = 0;
        rusage ru{};
        const pid_t r = ::wait4(pid, &st, WNOHANG, &ru);
        if (r == pid) {
            if (cpu) {
                *cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
            }
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        if (r < 0) return -1;
        if (clk::now() > deadline) {
            std::fprintf(stderr, "nvmf_bench: pid %d overran its deadline: killed\n", static_cast<int>(pid));
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// Runs args to completion (bounded); its stdout in out, its CPU seconds in *cpu.
int run_capture(const std::vector<std::string>& args, double timeout_s, std::string& out, double* cpu = nullptr) {
    out.clear();
    int fd = -1;
    const pid_t pid = spawn(args, &fd);
    if (pid < 0) return -1;
    const auto deadline = clk::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int left = static_cast<int>(std::max<long>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clk::now()).count()));
        if (::poll(&p, 1, std::min(left, 200)) > 0) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            out.append(buf, static_cast<std::size_t>(n));
        } else if (clk::now() > deadline) {
            break;
        }
    }
    ::close(fd);
    return wait_child(pid, deadline, cpu);
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

// utime + stime of pid in seconds (from /proc/PID/stat), or -1.
double process_cpu_seconds(pid_t pid) {
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
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double load_average() {
    double v = -1;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &v) != 1) v = -1;
        std::fclose(f);
    }
    return v;
}

// ---- nvmf-perf -------------------------------------------------------------------

double json_number(const std::string& s, const char* key, bool* found) {
    const std::string k = fmt::format("\"{}\": ", key);
    const auto at = s.find(k);
    if (at == std::string::npos) return *found = false, 0;
    return std::strtod(s.c_str() + at + k.size(), nullptr);
}

std::vector<std::string> perf_args(const params& p, std::uint16_t port, const workload& w) {
    return {p.perf, "-a", fmt::format("127.0.0.1:{}", port), "-n", k_nqn, "-q", std::to_string(w.qd), "-o",
            std::to_string(w.bytes), "-w", w.rw, "-t", fmt::format("{}", p.seconds), "--warmup",
            fmt::format("{}", p.warmup), "--cores", std::to_string(p.perf_core), "--poll", p.perf_poll, "--json"};
}

std::string joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
}

// One nvmf-perf run; false (with *error set) if it failed.
bool run_perf(const params& p, std::uint16_t port, const workload& w, const char* label, figures& f,
              std::string* error) {
    const auto args = perf_args(p, port, w);
    std::fprintf(stderr, "nvmf_bench: %s %s\n", label, w.name);
    std::string out;
    const cpu_times m0 = machine_cpu();
    const double self0 = self_cpu_seconds(), target0 = process_cpu_seconds(g_target_pid);
    double child = 0;
    const int rc = run_capture(args, p.seconds + p.warmup + 30, out, &child);
    const cpu_times m1 = machine_cpu();
    const double target_cpu = process_cpu_seconds(g_target_pid) - target0;
    const double ours = child + (self_cpu_seconds() - self0) + target_cpu;
    f.others_cpu_pct = m1.total > m0.total ? std::max(0.0, (m1.busy - m0.busy - ours) / (m1.total - m0.total) * 100)
                                           : 0;
    bool found = true;
    f.iops = json_number(out, "iops", &found);
    f.mibs = json_number(out, "mibs", &found);
    f.avg_us = json_number(out, "avg_us", &found);
    f.p50_us = json_number(out, "p50_us", &found);
    f.p99_us = json_number(out, "p99_us", &found);
    f.p999_us = json_number(out, "p999_us", &found);
    f.errors = json_number(out, "errors", &found);
    const double ios = f.iops * (p.seconds + p.warmup);  // the warm-up does I/O too
    if (ios > 0) {
        f.server_cpu_us_per_io = target_cpu / ios * 1e6;
        f.perf_cpu_us_per_io = child / ios * 1e6;
    }
    if (rc != 0 || !found) {
        if (error->empty()) {
            *error = fmt::format("{} {}: nvmf-perf exited with {} ({}): {}", label, w.name, rc, joined(args),
                                 out.substr(0, 500));
        }
        return false;
    }
    return true;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Ends the process if the run hangs.
void start_watchdog(std::chrono::seconds limit, const pid_t* target) {
    std::thread([limit, target] {
        std::this_thread::sleep_for(limit);
        std::fprintf(stderr, "nvmf_bench: still running after %lld s: giving up\n", (long long)limit.count());
        if (*target > 0) ::kill(*target, SIGKILL);
        std::_Exit(3);
    }).detach();
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
        const double per_run = std::size(workloads) * (p.seconds + p.warmup + 1.5) + (p.seconds + p.warmup + 1.5);
    start_watchdog(std::chrono::seconds(static_cast<long>(p.runs * per_run + k_idle_seconds + 120)), &g_target_pid);
    const double load_start = load_average();

    // 1. The target.
    const std::uint16_t port = free_port();
    const std::string ns_uri = fmt::format("null:///nvmf_bench?size_mb={}&blk_size={}", k_size_mb, k_block);
    std::vector<std::string> target_args = {
        p.ioengine, "--cores", std::to_string(p.target_core), "--poll", "adaptive", "--nvmf-listen",
        fmt::format("127.0.0.1:{}", port), "--namespace", ns_uri, "--nqn", k_nqn, "--log-level", "warn"};
    // A daemon with a control plane would otherwise create a 1 GiB default
    // pool under ./var, and listen for RPC and metrics on fixed ports that
    // another engine on the machine may hold: a private data dir, no default
    // pool, no TCP listeners but the target's.
    std::string help;
    run_capture({p.ioengine, "--help"}, 10, help, nullptr);
    char dir_template[] = "/tmp/nvmf_bench.XXXXXX";
    const char* data_dir = help.find("--data-dir") != std::string::npos ? ::mkdtemp(dir_template) : nullptr;
    if (data_dir) {
        for (std::string a : {"--data-dir", data_dir}) target_args.push_back(a);
        if (help.find("--default-pool-mb") != std::string::npos) {
            for (std::string a : {"--default-pool-mb", "0"}) target_args.push_back(a);
        }
        if (help.find("--rpc") != std::string::npos) {
            target_args.push_back("--rpc");
            target_args.push_back(fmt::format("unix:{}/rpc.sock", data_dir));
        }
        if (help.find("--metrics") != std::string::npos) {
            for (std::string a : {"--metrics", "off"}) target_args.push_back(a);
        }
    }
    g_target_pid = spawn(target_args, nullptr);
    std::string error;
    const auto up_by = clk::now() + std::chrono::seconds(15);
    while (g_target_pid > 0 && !connectable(port) && clk::now() < up_by) {
        int st = 0;
        if (::waitpid(g_target_pid, &st, WNOHANG) == g_target_pid) {
            g_target_pid = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (g_target_pid <= 0 || !connectable(port)) {
        std::fprintf(stderr, "nvmf_bench: the target did not start listening: %s\n", joined(target_args).c_str());
        if (g_target_pid > 0) ::kill(g_target_pid, SIGKILL);
        if (data_dir) {
            std::error_code ec;
            std::filesystem::remove_all(data_dir, ec);
        }
        return 1;
    }

    // 2. The workloads and the transport limit, run after run.
    std::map<std::string, std::vector<double>> samples;  // key -> one value per run
    std::string limit_problem;
    for (int run = 0; run < p.runs && error.empty(); ++run) {
        for (std::size_t i = 0; i < std::size(workloads) && error.empty(); ++i) {
            const workload& w = workloads[i];
            figures f;
            if (!run_perf(p, port, w, "target", f, &error)) break;
            samples[fmt::format("nvmf_{}_iops", w.name)].push_back(f.iops);
            samples[fmt::format("nvmf_{}_p50_us", w.name)].push_back(f.p50_us);
            samples[fmt::format("nvmf_{}_p99_us", w.name)].push_back(f.p99_us);
            samples[fmt::format("nvmf_{}_mibs", w.name)].push_back(f.mibs);
            samples["others_cpu_pct"].push_back(f.others_cpu_pct);
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
                ok = run_perf(p, lport, w, "tcp limit", l, &error);
            } catch (const std::exception& e) {
                error = e.what();
            }
            server.stop();
            if (ok && l.iops > 0) {
                samples["tcp_limit_cpu_us_per_io_randread4k_qd32"].push_back(server.cpu_seconds() /
                                                                            (l.iops * (p.seconds + p.warmup)) * 1e6);
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
    }

    // 3. Idle target with a connected host.
    double idle_pct = -1, idle_pct_schedstat = -1;
    if (error.empty()) {
        const double settle = 1.5;
        const std::vector<std::string> idle_args = {
            p.perf, "-a", fmt::format("127.0.0.1:{}", port), "-n", k_nqn, "-w", "randread", "-t",
            fmt::format("{}", k_idle_seconds + settle + 1), "--cores", std::to_string(p.perf_core), "--poll",
            "adaptive", "--idle"};
        std::fprintf(stderr, "nvmf_bench: idle host for %.0f s\n", k_idle_seconds);
        const pid_t idle = spawn(idle_args, nullptr);
        std::this_thread::sleep_for(std::chrono::duration<double>(settle));
        const double c0 = process_cpu_seconds(g_target_pid), r0 = process_run_seconds(g_target_pid);
        const auto t0 = clk::now();
        std::this_thread::sleep_for(std::chrono::duration<double>(k_idle_seconds));
        const double c1 = process_cpu_seconds(g_target_pid), r1 = process_run_seconds(g_target_pid);
        const double wall = std::chrono::duration<double>(clk::now() - t0).count();
        const int rc = wait_child(idle, clk::now() + std::chrono::seconds(30));
        if (rc != 0) {
            error = fmt::format("idle host: nvmf-perf exited with {} ({})", rc, joined(idle_args));
        } else if (c0 >= 0 && c1 >= 0) {
            idle_pct = (c1 - c0) / wall * 100;
            if (r0 >= 0 && r1 >= 0) idle_pct_schedstat = (r1 - r0) / wall * 100;
        }
    }

    // The target stops cleanly on SIGTERM.
    ::kill(g_target_pid, SIGTERM);
    const int target_rc = wait_child(g_target_pid, clk::now() + std::chrono::seconds(15));
    g_target_pid = -1;
    if (data_dir) {
        std::error_code ec;
        std::filesystem::remove_all(data_dir, ec);
    }
    if (target_rc != 0 && error.empty()) error = fmt::format("the target exited with {} after SIGTERM", target_rc);

    std::map<std::string, double> r;
    for (const auto& [k, v] : samples) r[k] = median(v);
    const double eff = r["tcp_limit_randread4k_qd32_iops"] > 0
                           ? r["nvmf_randread4k_qd32_iops"] / r["tcp_limit_randread4k_qd32_iops"]
                           : 0;

    std::string j = "{\n";
    auto add = [&j](const std::string& k, double v, int prec = 1) {
        j += fmt::format("  \"{}\": {:.{}f},\n", k, v, prec);
    };
    for (const auto& w : workloads) {
        add(fmt::format("nvmf_{}_iops", w.name), r[fmt::format("nvmf_{}_iops", w.name)]);
        add(fmt::format("nvmf_{}_p50_us", w.name), r[fmt::format("nvmf_{}_p50_us", w.name)], 2);
        add(fmt::format("nvmf_{}_p99_us", w.name), r[fmt::format("nvmf_{}_p99_us", w.name)], 2);
    }
    add("nvmf_read128k_qd32_mibs", r["nvmf_read128k_qd32_mibs"], 2);
    add("tcp_limit_randread4k_qd32_iops", r["tcp_limit_randread4k_qd32_iops"]);
    add("tcp_limit_randread4k_qd32_p50_us", r["tcp_limit_randread4k_qd32_p50_us"], 2);
    add("tcp_limit_randread4k_qd32_p99_us", r["tcp_limit_randread4k_qd32_p99_us"], 2);
    add("nvmf_efficiency", eff, 3);
    add("nvmf_efficiency_paired_median", r["nvmf_efficiency_paired"], 3);
    add("idle_target_cpu_pct", idle_pct, 3);
    add("idle_target_cpu_pct_schedstat", idle_pct_schedstat, 4);
    add("target_cpu_us_per_io_randread4k_qd32", r["target_cpu_us_per_io_randread4k_qd32"], 2);
    add("tcp_limit_cpu_us_per_io_randread4k_qd32", r["tcp_limit_cpu_us_per_io_randread4k_qd32"], 2);
    add("perf_cpu_us_per_io_randread4k_qd32", r["perf_cpu_us_per_io_randread4k_qd32"], 2);
    add("tcp_limit_perf_cpu_us_per_io_randread4k_qd32", r["tcp_limit_perf_cpu_us_per_io_randread4k_qd32"], 2);
    j += fmt::format("  \"targets\": {{\"nvmf_efficiency_met\": {}, \"idle_target_cpu_pct_met\": {}}},\n",
                     eff >= 0.8 ? "true" : "false", idle_pct >= 0 && idle_pct < 2 ? "true" : "false");
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
        "  \"config\": {{\"runs\": {}, \"seconds\": {}, \"warmup_seconds\": {}, \"target_core\": {}, "
        "\"perf_core\": {}, \"namespace\": \"{}\", \"target\": \"{}\", \"perf\": \"{}\", "
        "\"perf_poll\": \"{}\", \"idle_seconds\": {}, \"load_average_start\": {:.2f}, \"load_average_end\": {:.2f}}},\n",
        p.runs, p.seconds, p.warmup, p.target_core, p.perf_core, ns_uri, ioe::bench::json_escape(joined(target_args)),
        ioe::bench::json_escape(joined(perf_args(p, port, workloads[limit_workload]))), p.perf_poll, k_idle_seconds, load_start,
        load_average());
    j += fmt::format("  \"limit_server_problem\": \"{}\",\n", ioe::bench::json_escape(limit_problem));
    j += fmt::format("  \"error\": \"{}\"\n}}\n", ioe::bench::json_escape(error));
    if (p.json) {
        std::fputs(j.c_str(), stdout);
    } else {
        for (const auto& [k, v] : r) std::printf("%s %.3f\n", k.c_str(), v);
        std::printf("nvmf_efficiency %.3f\nidle_target_cpu_pct %.3f\n", eff, idle_pct);
        if (!error.empty()) std::printf("error %s\n", error.c_str());
    }
    if (!error.empty()) std::fprintf(stderr, "nvmf_bench: %s\n", error.c_str());
    return error.empty() ? 0 : 1;
}
