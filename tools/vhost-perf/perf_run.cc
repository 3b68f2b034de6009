// vhost-perf's per-queue loop (see perf_run.hh).
#include "tools/vhost-perf/perf_run.hh"

#include <time.h>

#include <array>
#include <vector>

#include "vhost/spec/virtio_blk.hh"

namespace ioe::vperf {

namespace {

double thread_cpu() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct xorshift {
    std::uint64_t s;
    std::uint64_t next() noexcept {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

const char* status_text(std::uint8_t s) {
    switch (s) {
        case vhost::blk::status::ioerr: return "IOERR";
        case vhost::blk::status::unsupp: return "UNSUPP";
        case vhost::frontend_queue::bad_used_element: return "a used element naming no request of ours";
        default: return "no status written";
    }
}

}  // namespace

void run_queue(vhost::frontend_queue& q, const options& o, std::uint64_t capacity_bytes,
               perf_clock::time_point begin, perf_clock::time_point end, queue_result& out) {
    const std::uint64_t blocks = capacity_bytes / o.io_size;
    const bool random = is_random(o.workload);
    xorshift rng{0x9e3779b97f4a7c15ull * (q.index() + 1)};
    std::uint64_t next_block = blocks * q.index() / o.queues;
    // Set up before the loop: nothing below allocates.
    std::vector<perf_clock::time_point> started(q.slots());
    std::vector<std::uint8_t> is_read(q.slots());
    std::array<vhost::blk_completion, 256> done{};

    auto issue = [&](std::uint32_t slot, perf_clock::time_point now) {
        std::uint64_t block;
        if (random) {
            block = rng.next() % blocks;
        } else {
            block = next_block;
            next_block = next_block + 1 == blocks ? 0 : next_block + 1;
        }
        const bool read = o.read_pct == 100 || (o.read_pct != 0 && rng.next() % 100 < o.read_pct);
        is_read[slot] = read;
        started[slot] = now;
        q.prepare(slot, read ? vhost::driver_op::read : vhost::driver_op::write, block * o.io_size, o.io_size);
    };

    auto now = perf_clock::now();
    const std::uint32_t depth = std::min<std::uint32_t>(o.depth, q.slots());
    for (std::uint32_t s = 0; s < depth; ++s) issue(s, now);
    q.submit();
    std::uint32_t in_flight = depth;
    bool counting = false;
    double cpu0 = 0;
    std::uint64_t kicks0 = 0;
    while (now < end) {
        const std::uint32_t n = q.reap(done);
        now = perf_clock::now();
        if (!counting && now >= begin) {
            counting = true;
            cpu0 = thread_cpu();
            kicks0 = q.kicks();
        }
        for (std::uint32_t i = 0; i < n; ++i) {
            const auto& c = done[i];
            if (c.status != vhost::blk::status::ok) {
                if (out.errors++ == 0) out.first_error = status_text(c.status);
                if (c.status == vhost::frontend_queue::bad_used_element) {
                    // The ring is not trustworthy any more: stop here.
                    out.drained = false;
                    return;
                }
            } else if (counting && started[c.slot] >= begin) {
                out.latency.add(static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(now - started[c.slot]).count()));
                ++(is_read[c.slot] ? out.reads : out.writes);
            }
            if (now < end) {
                issue(c.slot, now);
            } else {
                --in_flight;
            }
        }
        if (n) q.submit();
    }
    if (counting) {
        out.cpu_seconds = thread_cpu() - cpu0;
        out.kicks = q.kicks() - kicks0;
    }
    // Drain: what is in flight must come back before the rings are stopped.
    const auto deadline = perf_clock::now() + std::chrono::seconds(10);
    while (in_flight && perf_clock::now() < deadline) {
        in_flight -= q.reap(done);
    }
    out.drained = in_flight == 0;
}

}  // namespace ioe::vperf
