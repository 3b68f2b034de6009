// One queue's part of a vhost-perf run: a thread pinned to its core keeps
// `depth` requests in flight on its virtqueue (frontend_queue), busy-polling
// the used ring, until the end of the window; then it stops issuing and
// waits for what is in flight. Latencies (issue to reap) go into a
// fixed-bucket histogram; the loop allocates nothing per I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "tools/nvmf-perf/latency_histogram.hh"
#include "tools/vhost-perf/perf_options.hh"
#include "vhost/frontend_queue.hh"

namespace ioe::vperf {

using perf_clock = std::chrono::steady_clock;

struct queue_result {
    perf::latency_histogram latency;  // I/Os completed inside the window
    std::uint64_t reads = 0;          // inside the window
    std::uint64_t writes = 0;
    std::uint64_t errors = 0;         // at any time
    std::string first_error;
    double cpu_seconds = 0;           // this thread's CPU time inside the window
    std::uint64_t kicks = 0;          // kick eventfd writes inside the window
    bool drained = true;              // everything in flight came back after the window
};

// Runs on the calling thread (pinned by the caller). The I/Os cover
// [0, capacity_bytes) at offsets aligned to the I/O size; sequential
// workloads start queue i at i / queues of the device.
void run_queue(vhost::frontend_queue& q, const options& o, std::uint64_t capacity_bytes,
               perf_clock::time_point begin, perf_clock::time_point end, queue_result& out);

}  // namespace ioe::vperf
