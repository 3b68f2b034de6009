// nexus_failover_bench: how long a nexus takeover takes (issue 13).
//   nexus_failover_bench [--json] [--runs N]
// Processes on loopback: one etcd, ioengine daemons b and c (each a replica
// per measurement, shared over NVMe/TCP) and, per run, a fresh daemon a
// that serves the nexus over those two nvmf:// children. Driven over the
// RPC (rpc_client), as the clustered service would drive it.
//
// * fence_ms: `nexus create --takeover` on b while a is alive and serving,
//   from the call to its answer. The call answers once the new epoch is in
//   etcd and every child is claimed (the older epoch preempted-and-aborted
//   on each: fenced) and the nexus is published.
// * failover_ms: kill -9 of a (the node serving the nexus) to the first
//   write completed on b, for a client on OUR NVMe/TCP initiator
//   (failover_client.hh) that was writing through a and moves to b's
//   address once the takeover call has returned. What it excludes: the
//   orchestration delay, i.e. noticing that a died (the bench plays the
//   clustered service and calls takeover right after the kill); what it
//   measures is takeover + our initiator's connect + one write. A kernel
//   host with ANA multipath is not measured here.
// Median of the runs; JSON with --json. Needs etcd (IOE_ETCD_BIN or
// /usr/bin/etcd), the ioengine daemon (built next to it) and two cores.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/child_process.hh"
#include "bench/failover_client.hh"
#include "rpc/client.hh"
#include "runtime/cores.hh"
#include "storage/uuid.hh"

namespace {

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Waits until `path` holds `needle`; the file's text either way.
std::string wait_text(const std::string& path, const std::string& needle, std::chrono::milliseconds limit) {
    const auto until = clk::now() + limit;
    std::string s;
    while (clk::now() < until) {
        s = slurp(path);
        if (s.find(needle) != std::string::npos) return s;
        std::this_thread::sleep_for(1ms);
    }
    throw std::runtime_error(fmt::format("no \"{}\" in {} after {} ms:\n{}", needle, path, limit.count(),
                                         s.substr(s.size() > 2000 ? s.size() - 2000 : 0)));
}

unsigned free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        throw std::runtime_error("no free loopback port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

bool port_open(unsigned port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}

void kill_wait(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
}

struct process {
    pid_t pid = -1;
    std::string log;
    ~process() { kill_wait(pid); }
};

void start_etcd(const std::string& dir, unsigned client, process& p) {
    std::string bin = std::getenv("IOE_ETCD_BIN") ? std::getenv("IOE_ETCD_BIN") : "/usr/bin/etcd";
    if (::access(bin.c_str(), X_OK) != 0) throw std::runtime_error("no etcd binary (" + bin + "; set IOE_ETCD_BIN)");
    const std::string c = fmt::format("http://127.0.0.1:{}", client);
    const std::string peer = fmt::format("http://127.0.0.1:{}", free_port());
    p.log = dir + "/etcd.log";
    p.pid = ioe::bench::spawn({bin, "--name=bench", "--data-dir=" + dir + "/etcd", "--listen-client-urls=" + c,
                               "--advertise-client-urls=" + c, "--listen-peer-urls=" + peer,
                               "--initial-advertise-peer-urls=" + peer, "--initial-cluster=bench=" + peer},
                              nullptr, {}, p.log);
    const auto until = clk::now() + 20s;
    while (!port_open(client)) {
        if (clk::now() > until) throw std::runtime_error("etcd did not listen in 20 s; see " + p.log);
        std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(1s);  // elected (a one-node cluster elects itself at once)
}

struct node {
    std::string name{}, dir{};
    unsigned port = 0;
    process p{};
    std::string rpc() const { return "unix:" + dir + "/rpc.sock"; }
    std::string share(const std::string& nqn_name, const std::string& params) const {
        return fmt::format("nvmf://127.0.0.1:{}/nqn.2019-05.io.ioengine:{}{}", port, nqn_name,
                           params.empty() ? "" : "?" + params);
    }
};

void start_node(node& n, const std::string& work, unsigned core, const std::string& etcd) {
    n.dir = work + "/" + n.name;
    std::filesystem::create_directories(n.dir);
    n.port = free_port();
    n.p.log = work + "/" + n.name + ".log";
    n.p.pid = ioe::bench::spawn({IOENGINE_BIN, "--name", n.name, "--data-dir", n.dir, "--rpc", n.rpc(), "--metrics",
                                 "off", "--nvmf-listen", fmt::format("127.0.0.1:{}", n.port), "--default-pool-mb", "96",
                                 "--dma-mb", "64", "--cores", std::to_string(core), "--etcd", etcd},
                                nullptr, {}, n.p.log);
    wait_text(n.p.log, "running (pid", 30s);
}

constexpr char child_params[] = "reconnect_delay_ms=100&fast_io_fail_ms=1000&io_timeout_ms=5000";

// A nexus `name` on `a` over a fresh replica on each of b and c; its spec.
ioe::rpc::nexus_spec make_nexus(node& a, node& b, node& c, const std::string& name) {
    ioe::rpc::nexus_spec spec{name, ioe::uuid::random().to_string(), {}, "", 0, 0, false};
    for (node* n : {&b, &c}) {
        ioe::rpc::rpc_client r(n->rpc());
        r.create_replica("default", name + n->name, 16ull << 20, false);
        r.share_replica(name + n->name, {});
        spec.children.push_back(n->share(name + n->name, child_params));
    }
    ioe::rpc::rpc_client ra(a.rpc());
    ra.create_nexus(spec);
    ra.publish_nexus(name, {}, "");
    spec.takeover = true;
    return spec;
}

// Gives the measurement's replicas back to b's and c's pools (the nexus on
// b is destroyed first): the pools hold a few replicas only, and a
// measurement leaves two behind otherwise.
void drop_replicas(node& b, node& c, const std::string& name) {
    for (node* n : {&b, &c}) {
        ioe::rpc::rpc_client r(n->rpc());
        r.unshare_replica(name + n->name);
        r.destroy_replica(name + n->name);
    }
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string list(const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += fmt::format("{}{:.2f}", s.empty() ? "" : ", ", x);
    return "[" + s + "]";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--client") return ioe::bench::failover::client_main(argc, argv);
    ioe::bench::set_program_name("nexus_failover_bench");
    bool json = false;
    unsigned runs = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "--runs" && i + 1 < argc) {
            runs = static_cast<unsigned>(std::max(1, std::atoi(argv[++i])));
        } else {
            std::fprintf(stderr, "nexus_failover_bench: unknown argument '%s' (--json, --runs N)\n", a.c_str());
            return 2;
        }
    }
    const auto cores = ioe::allowed_cores();
    const unsigned c0 = cores.empty() ? 0 : cores[0], c1 = cores.size() > 1 ? cores[1] : c0;
    char tmpl[] = "/tmp/ioe-failover-bench-XXXXXX";
    const std::string work = ::mkdtemp(tmpl);
    std::vector<double> fence, failover, takeover_after_kill;
    try {
        process etcd;
        const unsigned etcd_port = free_port();
        start_etcd(work, etcd_port, etcd);
        const std::string ep = fmt::format("127.0.0.1:{}", etcd_port);
        node b{"b"}, c{"c"};
        start_node(b, work, c1, ep);
        start_node(c, work, c0, ep);
        ioe::rpc::rpc_client rb(b.rpc());
        for (unsigned run = 0; run < runs; ++run) {
            node a{fmt::format("a{}", run)};
            start_node(a, work, c0, ep);
            // fence_ms: a alive and serving.
            auto spec = make_nexus(a, b, c, fmt::format("f{}", run));
            auto t = clk::now();
            auto e = rb.create_nexus(spec);
            fence.push_back(std::chrono::duration<double, std::milli>(clk::now() - t).count());
            if (e.nexus.epoch != 2) throw std::runtime_error(fmt::format("fence run {}: epoch {}", run, e.nexus.epoch));
            rb.destroy_nexus(spec.name);
            drop_replicas(b, c, spec.name);

            // failover_ms: a killed under a writing client.
            spec = make_nexus(a, b, c, fmt::format("o{}", run));
            process client;
            client.log = work + fmt::format("/client{}.log", run);
            client.pid = ioe::bench::spawn(
                {argv[0], "--client", std::to_string(c1), a.share(spec.name, "fast_io_fail_ms=500&io_timeout_ms=2000"),
                 b.share(spec.name, "name=new-path")},
                nullptr, {}, client.log);
            wait_text(client.log, "client: ready", 20s);
            const std::uint64_t t0 = monotonic_ns();
            kill_wait(a.p.pid);
            rb.create_nexus(spec);
            const std::uint64_t t_took = monotonic_ns();
            ::kill(client.pid, SIGUSR1);
            const std::string out = wait_text(client.log, "first_io_ns=", 30s);
            const std::uint64_t t1 = std::stoull(out.substr(out.find("first_io_ns=") + 12));
            failover.push_back(static_cast<double>(t1 - t0) / 1e6);
            takeover_after_kill.push_back(static_cast<double>(t_took - t0) / 1e6);
            ioe::bench::wait_child(client.pid, clk::now() + 20s);
            client.pid = -1;
            rb.destroy_nexus(spec.name);
            drop_replicas(b, c, spec.name);
            if (!json) {
                std::printf("run %u: fence_ms %.2f failover_ms %.2f (takeover call %.2f)\n", run, fence.back(),
                            failover.back(), takeover_after_kill.back());
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nexus_failover_bench: %s (logs kept in %s)\n", e.what(), work.c_str());
        return 1;
    }
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    if (json) {
        std::printf("{\"bench\": \"nexus_failover\", \"runs\": %u, \"fence_ms\": %.2f, \"failover_ms\": %.2f, "
                    "\"takeover_call_after_kill_ms\": %.2f, \"fence_ms_runs\": %s, \"failover_ms_runs\": %s, "
                    "\"client\": \"ioengine nvmf initiator\", \"excludes\": \"detecting the node's death\"}\n",
                    runs, median(fence), median(failover), median(takeover_after_kill), list(fence).c_str(),
                    list(failover).c_str());
    } else {
        std::printf("fence_ms %.2f  failover_ms %.2f  (medians of %u runs)\n", median(fence), median(failover), runs);
    }
    return 0;
}
