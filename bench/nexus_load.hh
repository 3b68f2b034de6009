// nexus_bench's I/O on the reactor: the shapes it measures with (queue
// depth, I/O and block size, three children), one measured window of 4 KiB
// random I/O at QD 32 (QD coroutines with one DMA buffer each, latency of
// 1 I/O in 16 into a preallocated array, no heap use inside the window),
// the plain copy that a rebuild is compared with, and the setup (DMA
// buffers, replicas written whole). See bench/README.md, "nexus_bench".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/dma.hh"
#include "runtime/future.hh"

namespace ioe {
class block_device;
class device_registry;
class pool;
class replica;
struct nexus_options;
}  // namespace ioe

namespace ioe::bench::nexus_bench {

constexpr unsigned queue_depth = 32;
constexpr std::uint32_t io_bytes = 4096;
constexpr std::uint32_t block_bytes = 4096;
constexpr unsigned sample_every = 16;  // latency of 1 I/O in 16 (two clock reads each)
constexpr unsigned children = 3;

struct window {
    double iops = 0, p50_us = 0;
    double iops_cpu = 0;  // per second of the reactor thread's CPU time: what preemption does not change
    double allocs_per_io = 0;
    double cpu_wait_pct = 0;  // of the window, the reactor was runnable but off its core
};

// Everything a window needs, allocated once before the first.
struct generator {
    std::vector<ioe::dma_buffer> bufs;
    std::vector<future<>> running;
    std::vector<std::uint32_t> samples;
};

// One window on `devs` (one device, or the mirror's three): QD coroutines
// for warmup_s + seconds_s; IOPS and the counters over the measured part
// only. Adds its I/O errors to *io_errors.
future<window> run_window(generator* g, double warmup_s, double seconds_s, std::vector<ioe::block_device*> devs,
                          bool write, const char* label, std::uint64_t* io_errors);

// Copies `blocks` from `from` to `to` as a rebuild does (o's segment size,
// one worker per buffer), without the range locks; MiB/s.
future<double> copy_once(ioe::block_device* from, ioe::block_device* to, std::uint64_t blocks,
                         const ioe::nexus_options* o, std::vector<ioe::dma_buffer>* bufs);

// Writes every block (a malloc device commits its pages on first write: no
// window may pay for that, and reads must not hit never-written pages).
future<> fill(ioe::block_device* dev, std::vector<ioe::dma_buffer>* bufs);

// A malloc device, a pool on it, one thick replica of `size_mb` (written whole).
future<ioe::replica*> make_replica(ioe::device_registry* reg, unsigned i, std::uint64_t size_mb,
                                   std::vector<std::unique_ptr<ioe::pool>>* pools,
                                   std::vector<ioe::dma_buffer>* bufs);

// n DMA buffers of `bytes` from this shard's pool, each filled with a pattern.
std::vector<ioe::dma_buffer> dma_buffers(unsigned n, std::size_t bytes);

}  // namespace ioe::bench::nexus_bench
