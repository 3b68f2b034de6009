// The ioengine daemon as a process: it starts, logs its shards, poll mode
// and memory, drains and exits 0 on SIGTERM and SIGINT; bad options exit 2
// with a message that names the problem.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

struct child {
    std::string dir;  // scratch data directory (removed once the daemon exits)
    pid_t pid = -1;
    int err_fd = -1;  // the daemon's stderr (logs)
    std::string log;
};

bool has(const std::vector<std::string>& args, const char* opt) {
    return std::find(args.begin(), args.end(), opt) != args.end();
}

// Each daemon gets a data directory of its own, its RPC on a unix socket
// there and any free ports (tests run side by side, beside a user's engine).
child spawn(std::vector<std::string> args) {
    std::string scratch;
    if (!has(args, "--help")) {
        char dir[] = "/tmp/ioe-daemon-XXXXXX";
        if (!::mkdtemp(dir)) return {};
        std::string d = dir;
        scratch = d;
        std::vector<std::string> extra = {"--data-dir", d, "--rpc", "unix:" + d + "/rpc.sock", "--metrics",
                                          "127.0.0.1:0", "--default-pool-mb", "64"};
        args.insert(args.end(), extra.begin(), extra.end());
        if (!has(args, "--nvmf-listen")) {
            args.push_back("--nvmf-listen");
            args.push_back("127.0.0.1:0");
        }
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return {};
    child c;
    c.dir = scratch;
    c.pid = ::fork();
    if (c.pid == 0) {
        ::dup2(p[1], 2);
        ::dup2(p[1], 1);
        std::vector<char*> argv;
        std::string bin = IOENGINE_BIN;
        argv.push_back(bin.data());
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(p[1]);
    c.err_fd = p[0];
    return c;
}

// Reads the child's output until `needle` shows up or the time runs out.
bool wait_for(child& c, const std::string& needle, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (c.log.find(needle) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd pfd{c.err_fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
        ssize_t n = ::read(c.err_fd, buf, sizeof buf);
        if (n <= 0) return c.log.find(needle) != std::string::npos;
        c.log.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

// Waits for exit (bounded); returns the exit status or -1.
int wait_exit(child& c, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(c.pid, &st, WNOHANG);
        if (r == c.pid) {
            wait_for(c, "\x01never", std::chrono::milliseconds(50));  // collect the rest of the log
            ::close(c.err_fd);
            if (!c.dir.empty()) std::filesystem::remove_all(c.dir);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(c.pid, SIGKILL);
            ::waitpid(c.pid, &st, 0);
            ::close(c.err_fd);
            if (!c.dir.empty()) std::filesystem::remove_all(c.dir);
            return -1;
        }
        ::usleep(10000);
    }
}

void stop_with(int signo) {
    child c = spawn({"--dma-mb", "8"});
    ASSERT_GT(c.pid, 0);
    ASSERT_TRUE(wait_for(c, "running (pid", std::chrono::seconds(20))) << c.log;
    EXPECT_NE(c.log.find("shard 0 on core"), std::string::npos) << c.log;
    EXPECT_NE(c.log.find("DMA pool: 8 MiB"), std::string::npos) << c.log;
    EXPECT_NE(c.log.find("adaptive polling"), std::string::npos) << c.log;
    ::kill(c.pid, signo);
    EXPECT_EQ(wait_exit(c, std::chrono::seconds(20)), 0) << c.log;
    EXPECT_NE(c.log.find("drained, exiting"), std::string::npos) << c.log;
}

}  // namespace

TEST(daemon, sigterm_drains_and_exits_zero) { stop_with(SIGTERM); }

TEST(daemon, sigint_drains_and_exits_zero) { stop_with(SIGINT); }

TEST(daemon, bad_cores_are_rejected_with_a_message) {
    for (const char* bad : {"999", "0x0", "1-0", "zero"}) {
        child c = spawn({"--cores", bad});
        ASSERT_GT(c.pid, 0);
        EXPECT_EQ(wait_exit(c, std::chrono::seconds(20)), 2) << bad << ": " << c.log;
        EXPECT_NE(c.log.find(std::string("--cores '") + bad + "'"), std::string::npos) << c.log;
    }
}

TEST(daemon, bad_poll_mode_is_rejected) {
    child c = spawn({"--poll", "sometimes"});
    ASSERT_GT(c.pid, 0);
    EXPECT_NE(wait_exit(c, std::chrono::seconds(20)), 0);
    EXPECT_NE(c.log.find("sometimes"), std::string::npos) << c.log;
}

TEST(daemon, help_documents_every_option) {
    child c = spawn({"--help"});
    ASSERT_GT(c.pid, 0);
    EXPECT_EQ(wait_exit(c, std::chrono::seconds(20)), 0);
    for (const char* opt : {"--cores", "--poll", "--idle-us", "--huge-mb", "--dma-mb", "--log-level"}) {
        EXPECT_NE(c.log.find(opt), std::string::npos) << opt;
    }
}

TEST(daemon, bad_nvmf_options_are_rejected_with_a_message) {
    {
        child c = spawn({"--nvmf-listen", "127.0.0.1"});
        ASSERT_GT(c.pid, 0);
        EXPECT_EQ(wait_exit(c, std::chrono::seconds(20)), 2);
        EXPECT_NE(c.log.find("expected ADDRESS:PORT"), std::string::npos) << c.log;
    }
    {
        // NVMe/TCP is on by default now (127.0.0.1:4420; here any free port):
        // --namespace alone serves on that listener.
        child c = spawn({"--dma-mb", "16", "--namespace", "malloc:///m?size_mb=8"});
        ASSERT_GT(c.pid, 0);
        EXPECT_TRUE(wait_for(c, "running (pid", std::chrono::seconds(20))) << c.log;
        EXPECT_NE(c.log.find("namespace 1: malloc:///m?size_mb=8"), std::string::npos) << c.log;
        ::kill(c.pid, SIGTERM);
        EXPECT_EQ(wait_exit(c, std::chrono::seconds(20)), 0) << c.log;
    }
    {
        // A namespace URI that cannot be opened stops the daemon with the reason.
        child c = spawn({"--dma-mb", "8", "--nvmf-listen", "127.0.0.1:0", "--namespace", "malloc:///m?size_mb=x"});
        ASSERT_GT(c.pid, 0);
        EXPECT_NE(wait_exit(c, std::chrono::seconds(20)), 0);
        EXPECT_NE(c.log.find("'size_mb': 'x' is not a whole number"), std::string::npos) << c.log;
    }
}

TEST(daemon, serves_nvmf_and_stops_cleanly) {
    child c = spawn({"--dma-mb", "16", "--nvmf-listen", "127.0.0.1:0", "--namespace", "malloc:///m?size_mb=8"});
    ASSERT_GT(c.pid, 0);
    ASSERT_TRUE(wait_for(c, "running (pid", std::chrono::seconds(20))) << c.log;
    EXPECT_NE(c.log.find("NVMe/TCP target listening on 127.0.0.1:"), std::string::npos) << c.log;
    EXPECT_NE(c.log.find("namespace 1: malloc:///m?size_mb=8 (16384 blocks of 512 bytes)"), std::string::npos) << c.log;
    ::kill(c.pid, SIGTERM);
    EXPECT_EQ(wait_exit(c, std::chrono::seconds(20)), 0) << c.log;
}
