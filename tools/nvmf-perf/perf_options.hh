// Command-line options of nvmf-perf (the NVMe/TCP load generator), in the
// shape of spdk_nvme_perf: -a host:port -n nqn -q depth -o io_size
// -w randread|randwrite|read|write|rw|randrw -M read% -t seconds --cores list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/reactor.hh"

namespace ioe::perf {

enum class pattern { randread, randwrite, read, write, rw, randrw };

struct options {
    std::string host;
    std::uint16_t port = 0;
    std::string subnqn;
    std::string hostnqn;          // empty: a random uuid-based host NQN
    unsigned depth = 1;           // I/Os in flight per shard
    std::uint32_t io_size = 4096; // bytes per I/O
    pattern workload = pattern::randread;
    unsigned read_pct = 100;      // -M; fixed by -w except for rw/randrw
    double seconds = 10;          // measured
    double warmup = 0;            // before the measured window, not counted
    std::vector<unsigned> cores;  // one shard per core (one I/O queue each)
    poll_mode poll = poll_mode::busy;
    bool json = false;
    bool idle = false;            // connect, open the I/O queues, then send nothing for -t seconds
    std::string workload_name;    // as given to -w
    std::string cores_text;       // as given to --cores (or the default)
};

bool is_random(pattern p) noexcept;

// Parses argv into `out`. Returns -1 to go on, or an exit code (0 after
// --help, 2 after a bad argument, with a message naming it already printed).
int parse_options(int argc, char** argv, options& out);

}  // namespace ioe::perf
