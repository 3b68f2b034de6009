// One shard's part of an nvmf-perf run: `depth` coroutines, each keeping one
// I/O in flight on its own DMA buffer through the shard's channel of the
// nvmf_device (that is, the shard's own NVMe/TCP I/O queue), until the end
// of the window. Latencies go into the shard's fixed-bucket histogram; the
// loop allocates nothing per I/O.
#pragma once

#include <chrono>
#include <cstdint>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "storage/io_status.hh"
#include "tools/nvmf-perf/latency_histogram.hh"
#include "tools/nvmf-perf/perf_options.hh"

namespace ioe::perf {

using perf_clock = std::chrono::steady_clock;

struct shard_result {
    latency_histogram latency;   // I/Os completed inside the window
    std::uint64_t reads = 0;     // inside the window
    std::uint64_t writes = 0;
    std::uint64_t errors = 0;    // at any time
    io_status first_error = io_status::success;
};

// Opens the calling shard's I/O queue with one read of block 0 (outside any
// measurement). Returns its status.
future<io_status> open_queue(block_device* dev, std::uint32_t io_size);

// On the calling shard: runs the workload of `o` on `dev` from now until
// `end`, counting what completes in [begin, end] into *out.
future<> run_shard(block_device* dev, const options* o, perf_clock::time_point begin, perf_clock::time_point end,
                   shard_result* out);

}  // namespace ioe::perf
