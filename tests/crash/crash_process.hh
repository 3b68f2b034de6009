// The crash tests' side of the child process: start pool_crash_child with
// its arguments, wait for its "ready" line. Shared by the kill loops.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace ioe::crash {

struct child {
    pid_t pid = -1;
    int out_fd = -1;
};

// Runs POOL_CRASH_CHILD IMAGE LOG SEED [flags...] with stdout on a pipe.
inline child spawn(const std::string& image, const std::string& log, std::uint64_t seed,
                   const std::vector<std::string>& flags) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return {};
    child c;
    c.pid = ::fork();
    if (c.pid == 0) {
        ::dup2(p[1], 1);
        std::string s = std::to_string(seed);
        std::vector<const char*> argv{POOL_CRASH_CHILD, image.c_str(), log.c_str(), s.c_str()};
        for (const auto& f : flags) argv.push_back(f.c_str());
        argv.push_back(nullptr);
        ::execv(POOL_CRASH_CHILD, const_cast<char**>(argv.data()));
        ::_exit(127);
    }
    ::close(p[1]);
    c.out_fd = p[0];
    return c;
}

inline bool wait_ready(int fd, int ms) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, ms) <= 0) return false;
    char buf[64];
    return ::read(fd, buf, sizeof buf) > 0;
}

}  // namespace ioe::crash
