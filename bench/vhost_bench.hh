// vhost_bench's shared vocabulary: its options, the workloads, the figures
// of one load-generator run and the back-ends under test (our vhost-user-blk
// export, qemu-storage-daemon's, our NVMe/TCP target). Used by
// vhost_bench.cc (options, run plan, JSON), vhost_backends.cc (starting and
// stopping the back-ends) and vhost_perf_run.cc (tools/vhost-perf runs).
// See bench/README.md, section vhost_bench.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ioe::bench::vhost_bench {

constexpr std::uint32_t k_block = 4096;
constexpr std::uint64_t k_size_mb = 4096;  // the null devices: null:///, null-co and the NVMe/TCP namespace

struct params {
    bool json = false;
    int runs = 3;
    double seconds = 5;
    double warmup = 0.5;
    std::string ioengine, vhost_perf, nvmf_perf, qsd, taskset;
    std::string dir;               // where the file of the file row lives (not tmpfs: O_DIRECT)
    std::uint64_t file_mb = 1024;  // its size
    bool file_row = true;
    unsigned target_core = 0, perf_core = 1;
};

struct workload {
    const char* name;
    const char* rw;
    std::uint32_t bytes;
    unsigned qd;
};

struct figures {
    double iops = 0, mibs = 0, avg_us = 0, p50_us = 0, p99_us = 0, max_us = 0;
    double backend_cpu_us_per_io = -1;  // the back-end process, over the measured window
    double perf_cpu_us_per_io = -1;     // the load generator's I/O threads
    double others_cpu_pct = 0;          // other processes' CPU during the run, % of all CPUs
};

enum class backend_kind { ours, qsd };

// A vhost-user-blk back-end process exporting one device on a unix socket.
struct vhost_backend {
    backend_kind kind = backend_kind::qsd;
    std::string name;  // "ours" / "qsd"
    pid_t pid = -1;
    std::string socket;
    std::string dir;   // its private temporary directory (the socket is in it)
    std::string log;   // its stdout and stderr
    std::vector<std::string> args;
};

}  // namespace ioe::bench::vhost_bench
