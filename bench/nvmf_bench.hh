// nvmf_bench's shared vocabulary: its options, the workloads, the figures of
// one initiator run, and the target under test (ours or SPDK's nvmf_tgt).
// Used by nvmf_bench.cc (options, run plan, JSON), nvmf_targets.cc (our
// daemon), spdk_peer.cc (SPDK's target and initiator) and nvmf_perf_run.cc
// (our initiator). See bench/README.md, section nvmf_bench.
#pragma once

#include <sys/types.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ioe::bench::nvmf_bench {

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
    int spdk_seconds() const {
        const int s = static_cast<int>(std::lround(seconds));
        return s > 1 ? s : 1;
    }
    int spdk_warmup() const { return static_cast<int>(std::ceil(warmup)); }
};

struct workload {
    const char* name;
    const char* rw;
    std::uint32_t bytes;
    unsigned qd;
};

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

}  // namespace ioe::bench::nvmf_bench
