// Test helpers for spawning the daemon and the CLI: a child process with its
// output captured, bounded waits, and a scratch data directory per daemon.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace ioe::test {

struct process {
    pid_t pid = -1;
    int out_fd = -1;  // stdout and stderr together
    std::string out;

    static process spawn(const std::string& bin, const std::vector<std::string>& args) {
        int p[2];
        process c;
        if (::pipe2(p, O_CLOEXEC) != 0) return c;
        c.pid = ::fork();
        if (c.pid == 0) {
            ::dup2(p[1], 1);
            ::dup2(p[1], 2);
            std::vector<std::string> copy = args;
            std::vector<char*> argv;
            std::string b = bin;
            argv.push_back(b.data());
            for (auto& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(b.c_str(), argv.data());
            ::_exit(127);
        }
        ::close(p[1]);
        c.out_fd = p[0];
        return c;
    }

    // Reads output until `needle` shows up (true) or the time runs out.
    bool wait_for(const std::string& needle, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        char buf[4096];
        while (out.find(needle) == std::string::npos) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || out_fd < 0) return false;
            pollfd pfd{out_fd, POLLIN, 0};
            if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
            ssize_t n = ::read(out_fd, buf, sizeof buf);
            if (n <= 0) return out.find(needle) != std::string::npos;
            out.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }

    // Waits for the exit (bounded; SIGKILL after); the exit status, 128+signal or -1.
    int wait_exit(std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            int st = 0;
            pid_t r = ::waitpid(pid, &st, WNOHANG);
            if (r == pid) {
                wait_for("\x01never", std::chrono::milliseconds(20));
                if (out_fd >= 0) ::close(out_fd);
                out_fd = -1;
                pid = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &st, 0);
                if (out_fd >= 0) ::close(out_fd);
                out_fd = -1;
                pid = -1;
                return -1;
            }
            // Keep the pipe drained so that a chatty child does not block.
            wait_for("\x01never", std::chrono::milliseconds(5));
        }
    }
};

// Runs a command to its end: exit status and output.
struct run_result {
    int status = -1;
    std::string out;
};
inline run_result run(const std::string& bin, const std::vector<std::string>& args,
                      std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto p = process::spawn(bin, args);
    run_result r;
    r.status = p.wait_exit(limit);
    r.out = p.out;
    return r;
}

struct scratch_dir {
    std::string path;
    scratch_dir() {
        char t[] = "/tmp/ioe-ctl-XXXXXX";
        path = ::mkdtemp(t);
    }
    ~scratch_dir() { std::filesystem::remove_all(path); }
};

}  // namespace ioe::test
