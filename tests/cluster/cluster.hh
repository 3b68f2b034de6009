// The harness of the multi-process nexus tests: child processes whose
// output goes to a file (a daemon that logs a lot never blocks on a pipe),
// ioengine daemons as cluster nodes (own data dir, RPC socket, NVMe/TCP port,
// metrics off, the default pool on a uring file in the data dir so that it
// survives SIGKILL; optionally inside a network namespace), ioengine-ctl
// with --json parsed by runtime/json, blockstamp runs, and the nexus health
// record read straight from etcd's JSON gateway.
//
// Every process is started in a process group of its own and killed with it
// when its handle goes away, so a failed assertion leaves nothing running.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cores.hh"
#include "runtime/etcd_protocol.hh"
#include "runtime/json.hh"
#include "storage/nexus/etcd_health_store.hh"
#include "tests/etcd/etcd_fixture.hh"

extern char** environ;

namespace ioe::cluster_test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// The i-th of the first two cores this process may use (one core: that one).
inline unsigned test_core(std::size_t i) {
    static const std::vector<unsigned> cores = allowed_cores();
    if (cores.empty()) return 0;
    return cores[i % std::min<std::size_t>(2, cores.size())];
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline std::string tail(const std::string& s, std::size_t lines = 40) {
    std::size_t at = s.size();
    for (std::size_t n = 0; n <= lines && at > 0; ++n) {
        at = s.rfind('\n', at - 1);
        if (at == std::string::npos) return s;
    }
    return s.substr(at + 1);
}

// A child process, stdout and stderr appended to `log`.
class proc {
public:
    proc() = default;
    proc(const proc&) = delete;
    proc& operator=(const proc&) = delete;
    proc(proc&& o) noexcept { *this = std::move(o); }
    proc& operator=(proc&& o) noexcept {
        std::swap(_pid, o._pid);
        _log = o._log;
        _from = o._from;
        return *this;
    }
    ~proc() { kill9(); }

    // Starts argv[0] with argv; false (and why in `error`) if it cannot.
    bool start(const std::vector<std::string>& argv, const std::string& log) {
        kill9();
        _log = log;
        std::error_code ec;
        _from = std::filesystem::exists(log, ec) ? std::filesystem::file_size(log, ec) : 0;
        std::vector<std::string> copy = argv;
        std::vector<char*> args;
        for (auto& a : copy) args.push_back(a.data());
        args.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawnattr_t at;
        posix_spawnattr_init(&at);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&at, 0);
        const int rc = posix_spawnp(&_pid, copy[0].c_str(), &fa, &at, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        if (rc != 0) {
            _pid = -1;
            return false;
        }
        return true;
    }

    pid_t pid() const noexcept { return _pid; }
    bool running() {
        if (_pid <= 0) return false;
        int st = 0;
        if (::waitpid(_pid, &st, WNOHANG) == _pid) {
            _status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            _pid = -1;
            return false;
        }
        return true;
    }
    // The output since the last start.
    std::string output() const {
        auto all = read_file(_log);
        return _from < all.size() ? all.substr(_from) : std::string();
    }
    const std::string& log_path() const noexcept { return _log; }

    bool wait_for(const std::string& needle, std::chrono::milliseconds limit) {
        const auto until = steady::now() + limit;
        while (steady::now() < until) {
            if (output().find(needle) != std::string::npos) return true;
            if (!running()) return output().find(needle) != std::string::npos;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
    // Waits for the exit (SIGKILL after `limit`): status, 128+signal, or -1.
    int wait(std::chrono::milliseconds limit) {
        const auto until = steady::now() + limit;
        while (running()) {
            if (steady::now() > until) {
                kill9();
                return -1;
            }
            std::this_thread::sleep_for(10ms);
        }
        return _status;
    }
    void signal(int sig) {
        if (_pid > 0) ::kill(_pid, sig);
    }
    void kill9() {
        if (_pid <= 0) return;
        ::kill(-_pid, SIGKILL);
        ::kill(_pid, SIGKILL);
        int st = 0;
        ::waitpid(_pid, &st, 0);
        _status = 128 + SIGKILL;
        _pid = -1;
    }
    int status() const noexcept { return _status; }

private:
    pid_t _pid = -1;
    int _status = -1;
    std::string _log;
    std::size_t _from = 0;
};

struct run_result {
    int status = -1;
    std::string out;
};
inline run_result run(const std::vector<std::string>& argv, const std::string& log,
                      std::chrono::milliseconds limit = 60s) {
    std::filesystem::remove(log);
    proc p;
    run_result r;
    if (!p.start(argv, log)) return r;
    r.status = p.wait(limit);
    r.out = read_file(log);
    return r;
}

// The work directory of one test: removed when the test passed, kept (and
// named) when it failed.
struct work_dir {
    std::string path;
    work_dir() {
        char t[] = "/tmp/ioe-cluster-XXXXXX";
        path = ::mkdtemp(t);
    }
    ~work_dir() {
        if (::testing::Test::HasFailure() || std::getenv("IOE_CLUSTER_KEEP")) {
            std::fprintf(stderr, "cluster test: logs kept in %s\n", path.c_str());
            return;
        }
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

inline json::value parse_json_output(const std::string& out) {
    const auto at = out.find_first_of("[{");
    if (at == std::string::npos) return {};
    const auto end = out.find_last_of("]}");
    try {
        return json::parse(std::string_view(out).substr(at, end + 1 - at));
    } catch (const std::exception&) {
        return {};
    }
}
inline std::string str(const json::value* v) { return v ? v->text() : std::string(); }
inline std::int64_t num(const json::value* v) {
    std::int64_t n = -1;
    if (v) {
        if (!v->as_int64(n)) n = static_cast<std::int64_t>(std::stod(v->text()));
    }
    return n;
}

// One ioengine daemon.
class node {
public:
    std::string name;
    std::string dir;          // its data directory
    std::string address = "127.0.0.1";
    std::uint16_t nvmf_port = 0;
    std::string etcd;         // endpoint, or empty: none
    std::string cores = "0";
    std::string netns;        // run inside this network namespace
    std::string logs;         // where ctl and the daemon log
    unsigned pool_mb = 128;
    std::vector<std::string> extra_args;  // more daemon options

    node(std::string n, const std::string& work, std::string etcd_endpoint, std::string core)
        : name(std::move(n)), dir(work + "/" + name), etcd(std::move(etcd_endpoint)), cores(std::move(core)),
          logs(work) {
        std::filesystem::create_directories(dir);
        nvmf_port = static_cast<std::uint16_t>(test::free_loopback_port());
    }

    std::string rpc() const { return "unix:" + dir + "/rpc.sock"; }
    std::string log_path() const { return logs + "/" + name + ".log"; }

    std::vector<std::string> argv() const {
        std::vector<std::string> a;
        if (!netns.empty()) a = {"ip", "netns", "exec", netns};
        std::vector<std::string> d = {IOENGINE_BIN,    "--name",          name,
                                      "--data-dir",    dir,               "--rpc",
                                      rpc(),           "--metrics",       "off",
                                      "--nvmf-listen", address + ":" + std::to_string(nvmf_port),
                                      "--default-pool-mb", std::to_string(pool_mb),
                                      "--dma-mb",      "64",              "--cores",
                                      cores};
        a.insert(a.end(), d.begin(), d.end());
        if (!etcd.empty()) {
            a.push_back("--etcd");
            a.push_back(etcd);
        }
        a.insert(a.end(), extra_args.begin(), extra_args.end());
        return a;
    }

    // Starts (or restarts) it and waits until it runs.
    ::testing::AssertionResult start() {
        if (!_p.start(argv(), log_path())) return ::testing::AssertionFailure() << "cannot spawn " << name;
        if (!_p.wait_for("running (pid", 30s))
            return ::testing::AssertionFailure() << name << " did not start:\n" << tail(_p.output());
        return ::testing::AssertionSuccess();
    }
    void kill9() { _p.kill9(); }
    int stop() {
        _p.signal(SIGTERM);
        return _p.wait(30s);
    }
    bool running() { return _p.running(); }
    pid_t pid() const { return _p.pid(); }
    std::string output() const { return _p.output(); }
    std::string log_tail() const { return tail(read_file(log_path()), 60); }
    // Waits until the daemon's output (since its last start) holds `needle`.
    bool wait_log(const std::string& needle, std::chrono::milliseconds limit) { return _p.wait_for(needle, limit); }

    run_result ctl(std::vector<std::string> args) const {
        args.insert(args.begin(), {IOENGINE_CTL_BIN, "--rpc", rpc()});
        return run(args, logs + "/ctl-" + name + ".out", 60s);
    }
    // ctl --json; the parsed answer, with a gtest failure if the call failed.
    json::value ctl_json(std::vector<std::string> args) const {
        args.push_back("--json");
        auto r = ctl(args);
        if (r.status != 0) {
            std::string cmd;
            for (auto& a : args) cmd += a + " ";
            ADD_FAILURE() << name << ": ioengine-ctl " << cmd << "exited " << r.status << ":\n" << r.out;
            return {};
        }
        return parse_json_output(r.out);
    }

    // The NVMe/TCP URI of a replica this node shares, with initiator options.
    std::string share_uri(const std::string& replica, const std::string& params = "") const {
        return "nvmf://" + address + ":" + std::to_string(nvmf_port) + "/nqn.2019-05.io.ioengine:" + replica +
               (params.empty() ? "" : "?" + params);
    }

private:
    proc _p;
};

// ---- the nexus as `nexus list --json` shows it ----

struct child_view {
    std::string uri, uuid, state, reason;
};
struct nexus_view {
    bool found = false;
    std::string state;
    std::uint64_t block_count = 0;
    std::vector<child_view> children;
    json::value rebuilds;
    child_view missing{"", "", "(missing)", ""};
    // The child whose URI starts like `uri` up to its parameters (a child
    // in state "(missing)" when there is none).
    const child_view* child(const std::string& uri) const {
        const std::string prefix = uri.substr(0, uri.find('?'));
        for (const auto& c : children)
            if (c.uri.rfind(prefix, 0) == 0) return &c;
        return &missing;
    }
};

inline nexus_view query_nexus(const node& n, const std::string& nexus) {
    nexus_view v;
    auto r = n.ctl({"nexus", "list", nexus, "--json"});
    if (r.status != 0) return v;
    auto j = parse_json_output(r.out);
    const json::value* x = nullptr;
    if (j.is_array()) {
        for (const auto& i : j.items())
            if (str(i.find("name")) == nexus) x = &i;
    } else if (j.is_object()) {
        x = &j;
    }
    if (!x) return v;
    v.found = true;
    v.state = str(x->find("state"));
    v.block_count = static_cast<std::uint64_t>(num(x->find("block_count")));
    if (auto* cs = x->find("children"); cs && cs->is_array()) {
        for (const auto& c : cs->items())
            v.children.push_back({str(c.find("uri")), str(c.find("uuid")), str(c.find("state")), str(c.find("reason"))});
    }
    if (auto* rb = x->find("rebuilds")) v.rebuilds = *rb;
    return v;
}

inline std::string describe(const nexus_view& v) {
    std::string s = "nexus " + (v.found ? v.state : std::string("(not found)"));
    for (const auto& c : v.children) s += "\n  " + c.uri + " " + c.uuid + " " + c.state + " " + c.reason;
    return s;
}

// Polls until pred(nexus) holds; the last view either way.
template <typename Pred>
nexus_view wait_nexus(const node& n, const std::string& nexus, Pred pred, std::chrono::milliseconds limit) {
    const auto until = steady::now() + limit;
    nexus_view v;
    for (;;) {
        v = query_nexus(n, nexus);
        if (pred(v) || steady::now() > until) return v;
        std::this_thread::sleep_for(100ms);
    }
}

// ---- etcd ----

// One POST to the gateway; the body of a 200 answer, or nullopt.
inline std::optional<std::string> etcd_post(unsigned port, const std::string& path, const std::string& body) {
    const std::string out = test::http_exchange_loopback(
        port,
        "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body,
        std::chrono::seconds(2));
    if (out.rfind("HTTP/1.1 200", 0) != 0) return std::nullopt;
    const auto at = out.find("\r\n\r\n");
    if (at == std::string::npos) return std::nullopt;
    std::string b = out.substr(at + 4);
    // A chunked answer: keep what lies between the first '{' and the last '}'.
    const auto l = b.find('{'), r = b.rfind('}');
    if (l == std::string::npos || r == std::string::npos) return std::nullopt;
    return b.substr(l, r + 1 - l);
}

// The nexus health record at `key` (nullopt: absent or unreadable).
inline std::optional<nexus_health_record> health_record(unsigned etcd_port, const std::string& key,
                                                        std::string* raw = nullptr) {
    auto body = etcd_post(etcd_port, std::string(etcd::range_path), etcd::range_request(key));
    if (!body) return std::nullopt;
    try {
        auto r = etcd::parse_range_response(*body, key);
        if (!r.kv) return std::nullopt;
        if (raw) *raw = r.kv->value;
        return decode_health_record(r.kv->value, key);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "etcd record at " << key << ": " << e.what();
        return std::nullopt;
    }
}
// healthy flag of child `uuid` in the record; nullopt when not listed.
inline std::optional<bool> recorded_healthy(const nexus_health_record& r, const std::string& uuid) {
    for (const auto& [u, h] : r.children)
        if (u == uuid) return h;
    return std::nullopt;
}

// ---- blockstamp ----

struct stamp_run {
    proc p;
    // The last "acked=N" of the progress lines (-1: none yet).
    std::int64_t acked() const {
        static const std::regex re("acked=([0-9]+)");
        const std::string out = p.output();
        std::int64_t last = -1;
        for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
            last = std::stoll((*it)[1]);
        return last;
    }
    // Waits until at least `n` more writes are acknowledged than now.
    bool advance(std::int64_t n, std::chrono::milliseconds limit) {
        const std::int64_t from = std::max<std::int64_t>(acked(), 0);
        const auto until = steady::now() + limit;
        while (steady::now() < until) {
            if (acked() >= from + n) return true;
            if (!p.running()) return false;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }
};

inline std::vector<std::string> blockstamp_args(const std::string& mode, const std::string& uri,
                                                const std::string& log, std::vector<std::string> more = {}) {
    std::vector<std::string> a = {BLOCKSTAMP_BIN, mode, "--uri", uri, "--cores", std::to_string(test_core(1))};
    if (!log.empty()) {
        a.push_back("--log");
        a.push_back(log);
    }
    a.insert(a.end(), more.begin(), more.end());
    return a;
}

// Runs blockstamp to its end.
inline run_result blockstamp(const std::string& work, const std::string& mode, const std::string& uri,
                             const std::string& log, std::vector<std::string> more = {},
                             std::chrono::milliseconds limit = 90s) {
    static int seq = 0;
    return run(blockstamp_args(mode, uri, log, std::move(more)),
               work + "/blockstamp-" + mode + "-" + std::to_string(++seq) + ".out", limit);
}

inline std::string checksum_of(const run_result& r) {
    std::smatch m;
    if (r.status == 0 && std::regex_search(r.out, m, std::regex("checksum ([0-9a-f]{8}) blocks ([0-9]+)")))
        return m[1].str() + "/" + m[2].str();
    return "(failed: " + r.out + ")";
}

}  // namespace ioe::cluster_test
