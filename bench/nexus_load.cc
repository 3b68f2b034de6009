// nexus_bench's windows, copy baseline and setup on the reactor
// (nexus_load.hh).
#include "bench/nexus_load.hh"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <optional>
#include <stdexcept>
#include <string>

#include "bench/heap_count.hh"
#include "runtime/engine.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/nexus/nexus.hh"
#include "storage/pool.hh"

namespace ioe::bench::nexus_bench {

namespace {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr unsigned yield_every = 16;   // malloc completes in place: let the others run
constexpr std::uint64_t pool_slack_mb = 32;  // pool metadata and rounding beside the replica

std::uint64_t xorshift(std::uint64_t& x) noexcept {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

// One window in progress, shared by its QD coroutines (one shard).
struct load {
    std::array<ioe::io_channel*, children> ch{};  // ch[0] only, or every child (mirror)
    unsigned targets = 1;
    bool write = false;
    std::uint64_t slots = 0;  // io_bytes slots in the device
    bool stop = false, sampling = false;
    std::uint64_t ops = 0, errors = 0;
    ioe::io_status first_error = ioe::io_status::success;
    std::uint32_t* samples = nullptr;
    std::size_t cap = 0, n = 0;
};

future<> io_worker(load* s, ioe::io_vec v, std::uint64_t x) {
    const ioe::io_vecs iov(&v, 1);
    constexpr std::uint32_t blocks = io_bytes / block_bytes;
    unsigned count = 0, ready_in_a_row = 0;
    while (!s->stop) {
        const std::uint64_t lba = (xorshift(x) % s->slots) * blocks;
        const unsigned turn = count++;  // picks the child (roundrobin3) and the sampled I/Os
        const bool timed = s->sampling && turn % sample_every == 0 && s->n < s->cap;
        const clk::time_point t0 = timed ? clk::now() : clk::time_point{};
        ioe::io_status st = ioe::io_status::success;
        bool was_ready = true;
        if (s->targets == 1 || !s->write) {
            ioe::io_channel* ch = s->ch[s->targets == 1 ? 0 : turn % s->targets];
            future<ioe::io_status> f = s->write ? ch->write(lba, blocks, iov) : ch->read(lba, blocks, iov);
            was_ready = f.available();
            st = co_await std::move(f);
        } else {
            // The hand-written mirror: issue to every child, then await each.
            std::array<std::optional<future<ioe::io_status>>, children> f;
            for (unsigned i = 0; i < s->targets; ++i) f[i].emplace(s->ch[i]->write(lba, blocks, iov));
            for (unsigned i = 0; i < s->targets; ++i) {
                was_ready = was_ready && f[i]->available();
                const ioe::io_status one = co_await std::move(*f[i]);
                if (!ioe::ok(one)) st = one;
            }
        }
        if (timed) {
            const auto ns = (clk::now() - t0) / 1ns;
            s->samples[s->n++] = static_cast<std::uint32_t>(std::min<std::int64_t>(ns, ~0u));
        }
        if (!ioe::ok(st) && s->errors++ == 0) s->first_error = st;
        ++s->ops;
        if (was_ready && ++ready_in_a_row == yield_every) {
            ready_in_a_row = 0;
            co_await ioe::yield();
        }
    }
}

// The number at `field` (from 0) of a /proc file, or -1.
double proc_number(const char* path, int field) {
    double v = -1;
    if (FILE* f = std::fopen(path, "r")) {
        for (int i = 0; i <= field; ++i) v = std::fscanf(f, "%lf", &v) == 1 ? v : -1;
        std::fclose(f);
    }
    return v;
}
double cpu_wait_ns() { return proc_number("/proc/thread-self/schedstat", 1); }
double thread_cpu_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct copy_state {
    ioe::io_channel* from = nullptr;
    ioe::io_channel* to = nullptr;
    std::uint64_t segments = 0, next = 0;
    std::uint64_t blocks_per_segment = 0, block_count = 0;
    ioe::io_status error = ioe::io_status::success;
};

// As a rebuild worker does, without the range locks: take the next segment,
// read it from the source, write it to the target.
future<> copy_worker(copy_state* c, ioe::dma_buffer* buf) {
    while (ioe::ok(c->error) && c->next < c->segments) {
        const std::uint64_t lba = c->next++ * c->blocks_per_segment;
        const auto blocks = static_cast<std::uint32_t>(std::min(c->blocks_per_segment, c->block_count - lba));
        ioe::io_vec v = ioe::to_io_vec(*buf, 0, std::size_t{blocks} * block_bytes);
        ioe::io_status st = co_await c->from->read(lba, blocks, ioe::io_vecs(&v, 1));
        if (ioe::ok(st)) st = co_await c->to->write(lba, blocks, ioe::io_vecs(&v, 1));
        if (!ioe::ok(st)) c->error = st;
    }
}

future<> fill_worker(ioe::io_channel* ch, std::uint64_t* next, std::uint64_t total, ioe::io_vec v,
                     ioe::io_status* err) {
    const std::uint64_t per = v.len / block_bytes;
    while (*next < total && ioe::ok(*err)) {
        const std::uint64_t lba = *next;
        const auto n = static_cast<std::uint32_t>(std::min(per, total - lba));
        *next += n;
        ioe::io_vec part{v.data, n * block_bytes, v.buf_index};
        const ioe::io_status st = co_await ch->write(lba, n, ioe::io_vecs(&part, 1));
        if (!ioe::ok(st)) *err = st;
    }
}

}  // namespace

future<window> run_window(generator* g, double warmup_s, double seconds_s, std::vector<ioe::block_device*> devs,
                          bool write, const char* label, std::uint64_t* io_errors) {
    load s;
    s.targets = static_cast<unsigned>(devs.size());
    for (unsigned i = 0; i < s.targets; ++i) {
        s.ch[i] = devs[i]->channel();
        if (!s.ch[i]) throw std::runtime_error(fmt::format("no channel to {}", devs[i]->name()));
    }
    s.write = write;
    s.slots = devs[0]->size_bytes() / io_bytes;
    s.samples = g->samples.data();
    s.cap = g->samples.size();
    std::fprintf(stderr, "nexus_bench: %s\n", label);
    g->running.clear();
    for (unsigned i = 0; i < queue_depth; ++i) {
        g->running.push_back(io_worker(&s, ioe::to_io_vec(g->bufs[i]), 0x9e3779b97f4a7c15ull * (i + 1)));
    }
    co_await ioe::sleep(std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(warmup_s)));
    const std::uint64_t ops0 = s.ops, allocs0 = ioe::bench::heap_allocations();
    const double wait0 = cpu_wait_ns(), cpu0 = thread_cpu_s();
    const clk::time_point t0 = clk::now();
    s.sampling = true;
    co_await ioe::sleep(std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds_s)));
    const std::uint64_t ops1 = s.ops, allocs1 = ioe::bench::heap_allocations();
    const clk::time_point t1 = clk::now();
    const double wait1 = cpu_wait_ns(), cpu1 = thread_cpu_s();
    s.sampling = false;
    s.stop = true;
    for (auto& r : g->running) co_await std::move(r);
    g->running.clear();
    *io_errors += s.errors;
    if (s.errors) {
        std::fprintf(stderr, "nexus_bench: %s: %llu I/O errors, the first: %s\n", label,
                     static_cast<unsigned long long>(s.errors), std::string(ioe::to_string(s.first_error)).c_str());
    }
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    window w;
    w.iops = double(ops1 - ops0) / secs;
    w.iops_cpu = cpu1 > cpu0 ? double(ops1 - ops0) / (cpu1 - cpu0) : 0;
    w.allocs_per_io = ops1 > ops0 ? double(allocs1 - allocs0) / double(ops1 - ops0) : 0;
    w.cpu_wait_pct = wait0 < 0 || wait1 < 0 ? -1 : (wait1 - wait0) / (secs * 1e9) * 100;
    std::sort(s.samples, s.samples + s.n);
    w.p50_us = s.n ? s.samples[s.n / 2] / 1000.0 : 0;
    co_return w;
}

future<double> copy_once(ioe::block_device* from, ioe::block_device* to, std::uint64_t blocks,
                         const ioe::nexus_options* o, std::vector<ioe::dma_buffer>* bufs) {
    copy_state c;
    c.from = from->channel();
    c.to = to->channel();
    c.blocks_per_segment = o->segment_bytes / block_bytes;
    c.block_count = blocks;
    c.segments = (blocks + c.blocks_per_segment - 1) / c.blocks_per_segment;
    std::vector<future<>> workers;
    workers.reserve(bufs->size());
    const clk::time_point t0 = clk::now();
    for (auto& b : *bufs) workers.push_back(copy_worker(&c, &b));
    for (auto& w : workers) co_await std::move(w);
    const double secs = std::chrono::duration<double>(clk::now() - t0).count();
    if (!ioe::ok(c.error)) throw std::runtime_error(fmt::format("copy: {}", ioe::to_string(c.error)));
    co_return double(blocks * block_bytes) / double(1 << 20) / secs;
}

future<> fill(ioe::block_device* dev, std::vector<ioe::dma_buffer>* bufs) {
    std::vector<future<>> running;
    std::uint64_t next = 0;
    ioe::io_status err = ioe::io_status::success;
    for (auto& b : *bufs) {
        running.push_back(fill_worker(dev->channel(), &next, dev->block_count(), ioe::to_io_vec(b), &err));
    }
    for (auto& r : running) co_await std::move(r);
    if (!ioe::ok(err)) throw std::runtime_error(fmt::format("writing {}: {}", dev->name(), ioe::to_string(err)));
}

future<ioe::replica*> make_replica(ioe::device_registry* reg, unsigned i, std::uint64_t size_mb,
                                   std::vector<std::unique_ptr<ioe::pool>>* pools,
                                   std::vector<ioe::dma_buffer>* bufs) {
    ioe::block_device* dev = co_await reg->create(
        fmt::format("malloc:///nb_m{}?size_mb={}&blk_size={}", i, size_mb + pool_slack_mb, block_bytes));
    ioe::pool_create_options o;
    o.name = fmt::format("nb_p{}", i);
    o.overwrite = true;
    pools->push_back(co_await ioe::pool::create(dev, o, reg));
    const std::uint64_t bytes = size_mb << 20;
    if (pools->back()->info().capacity_bytes < bytes) {
        throw std::runtime_error(fmt::format("pool nb_p{}: {} MiB of capacity, {} MiB needed", i,
                                             pools->back()->info().capacity_bytes >> 20, size_mb));
    }
    ioe::replica* r =
        co_await pools->back()->create_replica(fmt::format("nb_r{}", i), ioe::uuid::random(), bytes, false);
    const auto t0 = clk::now();
    co_await fill(r, bufs);
    std::fprintf(stderr, "nexus_bench: replica nb_r%u (%llu MiB) written in %.2f s\n", i,
                 static_cast<unsigned long long>(size_mb), std::chrono::duration<double>(clk::now() - t0).count());
    co_return r;
}

std::vector<ioe::dma_buffer> dma_buffers(unsigned n, std::size_t bytes) {
    std::vector<ioe::dma_buffer> v;
    for (unsigned i = 0; i < n; ++i) {
        auto b = ioe::engine::current()->dma().allocate(bytes);
        if (!b) throw std::runtime_error(fmt::format("DMA pool exhausted ({} x {} bytes)", n, bytes));
        std::memset(b->data(), 0x5a ^ static_cast<int>(i), bytes);
        v.push_back(std::move(b.value()));
    }
    return v;
}

}  // namespace ioe::bench::nexus_bench
