// Command-line options of vhost-perf (the vhost-user-blk load generator),
// named as nvmf-perf's and spdk_nvme_perf's where they mean the same:
// -s socket -q depth -o io_size -w randread|randwrite|read|write|rw|randrw
// -M read% -t seconds -n queues -c cores --json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ioe::vperf {

enum class pattern { randread, randwrite, read, write, rw, randrw };

struct options {
    std::string socket;             // the back-end's unix socket
    unsigned depth = 1;             // I/Os in flight per queue
    std::uint32_t io_size = 4096;   // bytes per I/O
    pattern workload = pattern::randread;
    unsigned read_pct = 100;        // -M; fixed by -w except for rw/randrw
    double seconds = 10;            // measured
    double warmup = 0;              // before the measured window, not counted
    unsigned queues = 1;            // virtqueues, one thread each
    std::vector<unsigned> cores;    // queue i runs on cores[i % cores.size()]
    std::uint32_t ring_size = 0;    // descriptors per virtqueue; 0: the smallest power of two >= 3 * depth, >= 128
    bool hugepages = true;          // shared memory from huge pages when reserved
    int backend_pid = -1;           // the back-end's process, for its CPU per I/O
    bool json = false;
    std::string workload_name;      // as given to -w
    std::string cores_text;         // as given to -c (or the default)
};

bool is_random(pattern p) noexcept;
const char* pattern_name(pattern p) noexcept;

// Parses argv into `out`. Returns -1 to go on, or an exit code (0 after
// --help, 2 after a bad argument, with a message naming it already printed).
int parse_options(int argc, char** argv, options& out);

}  // namespace ioe::vperf
