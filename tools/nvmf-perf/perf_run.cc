// The per-shard I/O loop of nvmf-perf (see perf_run.hh).
#include "tools/nvmf-perf/perf_run.hh"

#include <cstring>
#include <stdexcept>
#include <vector>

#include "runtime/dma.hh"
#include "runtime/engine.hh"
#include "runtime/smp.hh"

namespace ioe::perf {

namespace {

constexpr std::uint64_t max_errors_per_shard = 1000;  // then the shard stops: the target is gone
constexpr unsigned ready_in_a_row_limit = 16;         // a failed queue answers at once: let the reactor run

std::uint64_t xorshift(std::uint64_t& x) noexcept {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

// The state the shard's coroutines share.
struct shard_run {
    io_channel* ch = nullptr;
    std::uint32_t blocks = 0;  // per I/O
    std::uint64_t slots = 0;   // I/O-sized slots on the device
    std::uint64_t next = 0;    // sequential cursor
    bool random = false;
    unsigned read_pct = 100;
    perf_clock::time_point begin, end;
    shard_result* out = nullptr;
};

dma_buffer allocate(std::size_t bytes, unsigned fill) {
    auto b = engine::current()->dma().allocate(bytes);
    if (!b) throw std::runtime_error("the DMA pool is exhausted (raise the depth x size budget)");
    std::memset(b->data(), static_cast<int>(0x5a ^ fill), bytes);
    return std::move(*b);
}

future<> worker(shard_run* s, io_vec v, std::uint64_t x) {
    const io_vecs iov(&v, 1);
    unsigned ready_in_a_row = 0;
    for (;;) {
        const perf_clock::time_point t0 = perf_clock::now();
        if (t0 >= s->end || s->out->errors >= max_errors_per_shard) break;
        std::uint64_t slot;
        if (s->random) {
            slot = xorshift(x) % s->slots;
        } else {
            slot = s->next;
            s->next = s->next + 1 == s->slots ? 0 : s->next + 1;
        }
        const bool read = s->read_pct == 100 || (s->read_pct > 0 && xorshift(x) % 100 < s->read_pct);
        const std::uint64_t lba = slot * s->blocks;
        future<io_status> f = read ? s->ch->read(lba, s->blocks, iov) : s->ch->write(lba, s->blocks, iov);
        const bool was_ready = f.available();
        const io_status st = co_await std::move(f);
        const perf_clock::time_point t1 = perf_clock::now();
        if (!ok(st)) {
            if (s->out->errors++ == 0) s->out->first_error = st;
        } else if (t1 >= s->begin && t1 <= s->end) {
            s->out->latency.add(static_cast<std::uint64_t>((t1 - t0) / std::chrono::nanoseconds(1)));
            ++(read ? s->out->reads : s->out->writes);
        }
        if (!was_ready) {
            ready_in_a_row = 0;
        } else if (++ready_in_a_row == ready_in_a_row_limit) {
            ready_in_a_row = 0;
            co_await yield();
        }
    }
}

}  // namespace

future<io_status> open_queue(block_device* dev, std::uint32_t io_size) {
    io_channel* ch = dev->channel();
    if (!ch) co_return io_status::namespace_not_ready;
    dma_buffer b = allocate(io_size, 0);
    io_vec v = to_io_vec(b);
    co_return co_await ch->read(0, io_size / dev->block_size(), io_vecs(&v, 1));
}

future<> run_shard(block_device* dev, const options* o, perf_clock::time_point begin, perf_clock::time_point end,
                   shard_result* out) {
    io_channel* ch = dev->channel();
    if (!ch) {
        out->errors = 1;
        out->first_error = io_status::namespace_not_ready;
        co_return;
    }
    shard_run s;
    s.ch = ch;
    s.blocks = o->io_size / dev->block_size();
    s.slots = dev->block_count() / s.blocks;
    s.random = is_random(o->workload);
    s.read_pct = o->read_pct;
    s.begin = begin;
    s.end = end;
    s.out = out;
    // Shards start their sequential streams at different places.
    s.next = s.slots * this_shard_id() / std::max(1u, shard_count());
    std::vector<dma_buffer> buffers;
    buffers.reserve(o->depth);
    for (unsigned i = 0; i < o->depth; ++i) buffers.push_back(allocate(o->io_size, i));
    std::vector<future<>> running;
    running.reserve(o->depth);
    for (unsigned i = 0; i < o->depth; ++i) {
        const std::uint64_t seed = 0x2545f4914f6cdd1dull * (i + 1) + 0x9e3779b97f4a7c15ull * (this_shard_id() + 1);
        running.push_back(worker(&s, to_io_vec(buffers[i]), seed));
    }
    for (auto& r : running) co_await std::move(r);
}

}  // namespace ioe::perf
