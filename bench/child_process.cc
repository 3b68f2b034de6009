// Spawning, waiting for and killing child processes, and CPU accounting
// from /proc (child_process.hh).
#include "bench/child_process.hh"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <string_view>
#include <thread>

extern char** environ;

namespace ioe::bench {

namespace {

using clk = std::chrono::steady_clock;

const char* g_program = "bench";

double rusage_seconds(const rusage& ru) {
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

std::atomic<pid_t> g_target_pid{-1}, g_child_pid{-1};

void set_program_name(const char* name) { g_program = name; }

void kill_children() {
    if (const pid_t c = g_child_pid.load(); c > 0) ::kill(c, SIGKILL);
    if (const pid_t t = g_target_pid.load(); t > 0) ::kill(t, SIGKILL);
}

pid_t spawn(const std::vector<std::string>& args, int* out_fd, const std::vector<std::string>& extra_env,
            const std::string& log) {
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
        std::fprintf(stderr, "%s: exec %s: %s\n", g_program, argv[0], std::strerror(errno));
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

int wait_child(pid_t pid, clk::time_point deadline, double* cpu, bool* killed) {
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
            std::fprintf(stderr, "%s: pid %d overran its deadline: killed\n", g_program, static_cast<int>(pid));
            ::kill(pid, SIGKILL);
            ::wait4(pid, &st, 0, &ru);
            if (cpu) *cpu = rusage_seconds(ru);
            if (killed) *killed = true;
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

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

child_run run_child(const std::vector<std::string>& args, double timeout_s, const std::vector<std::string>& env,
                    const char* marker, double grace_s, pid_t sample_pid) {
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

double machine_window::others_pct(double child_and_target_cpu) const {
    const cpu_times m1 = machine_cpu();
    const double ours = child_and_target_cpu + (self_cpu_seconds() - self0);
    return m1.total > m0.total ? std::max(0.0, (m1.busy - m0.busy - ours) / (m1.total - m0.total) * 100) : 0;
}

std::string joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
}

std::string file_tail(const std::string& path, std::size_t bytes) {
    std::ifstream f(path);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace ioe::bench
