// snapshot_bench: what snapshots cost a replica's I/O, in one run on one
// replica (see bench/README.md).
//   snapshot_bench [--json] [--seconds N] [--warmup N] [--size-mb N] [--file PATH]
// Device: malloc:/// (a RAM disk in the process). It is the fastest real
// device every CI machine has; /tmp is often tmpfs, where uring:/// gets no
// O_DIRECT, and a RAM disk shows the engine's own COW cost, not a disk's.
// --file puts the pool on a file through uring:/// (O_DIRECT) instead: a
// real disk, where a 4K write costs a device round trip, not a memcpy.
// One engine, one shard, busy polling; a pool on the device with one thick
// replica (--size-mb, default 512) and a baseline: a second thick replica
// of the same size that is never snapshotted; both written whole first.
// Each ratio compares windows next to each other in time: measured and
// baseline windows alternate. In order:
//   1. plain: 4K randwrite QD32 and 4K randread QD32 on the replica (timed
//      windows after a warm-up; reported, not used in a ratio).
//   2. snapshot_ms: a snapshot taken while a 4K randwrite QD32 load runs;
//      the load's worst latency in that window is reported beside it. Then
//      every granule of the replica is written once again (so that the next
//      phase starts from a replica that owns all its data).
//   3. cow_first_write: a snapshot, then exactly one 4K write in every COW
//      unit of the replica (random order, QD32): every measured I/O is a
//      first write of its unit since the snapshot. The unit is what the
//      pool materializes at once: the subgranule (cluster / 1024, 4 KiB by
//      default: each such write is redirected, no copy), or 4K when that is
//      larger. IOPS = units / elapsed, over the mean of a baseline
//      randwrite window just before and one just after.
//   4. post_cow: after phase 3 every unit was written once: 4K randwrite
//      QD32, seven windows of a fifth of the time, each followed by a
//      baseline randwrite window; the ratio is the median of the seven
//      pairs'.
//   5. clone_read: a clone of phase 3's snapshot (all its data in the
//      snapshot), 4K randread QD32, paired with baseline randread windows
//      the same way.
//   6. nexus_snapshot_pause_ms: a nexus over the replica (one child), under
//      4K randwrite QD32; the worst write latency seen while nexus::snapshot
//      runs (flush, pause, drain, snapshot, resume); nexus_snapshot_held_ms
//      is how long the nexus held I/O. Before it, flush_load_max_latency_ms:
//      the same load's worst latency across a plain flush of the nexus after
//      as long a run, what the device's flush alone costs writes.
// allocs_per_io: global operator new calls per I/O in the plain and
// steady-state windows (heap_count.cc); cow_allocs_per_io: in phase 3.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <numeric>
#include <stdexcept>
#include <string>
#include <fcntl.h>
#include <unistd.h>
#include <string_view>
#include <vector>

#include "bench/bench_util.hh"
#include "bench/heap_count.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "storage/pool.hh"

namespace {

using ioe::future;
using clk = std::chrono::steady_clock;

constexpr unsigned qd = 32;
constexpr std::uint32_t io_bytes = 4096;

struct params {
    bool json = false;
    double seconds = 5, warmup = 0.5;
    std::uint64_t size_mb = 512;
    std::string file;  // empty: the RAM disk; else a file the pool goes on (uring:///, O_DIRECT)
};

// Measured and baseline windows alternate this many times (the ratio is the
// median of the pairs').
constexpr unsigned pairs = 7;
// Snapshot-then-first-writes rounds (each about 0.2 s on the RAM disk), a
// baseline window before and after each; the ratio is the median round's.
constexpr unsigned cow_rounds = 3;

struct results {
    double plain_write_iops = 0, plain_read_iops = 0;
    double plain_pair_ratios[pairs] = {};  // the replica over the baseline before any snapshot: their placement
    double cow_first_iops[cow_rounds] = {}, cow_first_base_iops[cow_rounds] = {};
    double post_cow_iops[pairs] = {}, post_cow_base_iops[pairs] = {};
    double clone_read_iops[pairs] = {}, clone_read_base_iops[pairs] = {};
    double snapshot_ms = -1, snapshot_load_max_ms = -1, nexus_pause_ms = -1, nexus_snapshot_ms = -1;
    double nexus_held_ms = -1, flush_ms = -1, flush_load_max_ms = -1;
    double allocs_per_io = 0, cow_allocs_per_io = 0;
    std::uint64_t granules = 0, errors = 0;
    std::string error;
};

std::uint64_t xorshift(std::uint64_t& x) noexcept {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

clk::duration secs(double s) { return std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(s)); }

// One load: QD coroutines sharing this (one shard). With `order` set, each
// I/O takes the next entry (a granule) and the load ends when none is left;
// else random 4K slots until `stop`.
struct load_state {
    ioe::io_channel* ch = nullptr;
    bool write = false, stop = false;
    std::uint32_t blocks = 0;          // per I/O
    std::uint64_t slots = 0;           // 4K slots in the device
    const std::uint32_t* order = nullptr;
    std::uint64_t order_len = 0, next = 0;
    std::uint64_t blocks_per_granule = 0;
    std::uint64_t ops = 0, errors = 0;
    // Since the last reset: the worst latency of one I/O, and the longest
    // time without any completion (a stall of the shard that kept the
    // workers from issuing at all, which no I/O's latency shows).
    std::uint64_t max_latency_ns = 0;
    clk::time_point last_completion{};
    ioe::io_status first_error = ioe::io_status::success;
};

future<> worker(load_state* s, ioe::io_vec v, std::uint64_t x) {
    const ioe::io_vecs iov(&v, 1);
    unsigned ready_in_a_row = 0;
    while (!s->stop && s->errors < 1000) {
        std::uint64_t lba;
        if (s->order) {
            if (s->next == s->order_len) break;
            const std::uint64_t g = s->order[s->next++];
            lba = g * s->blocks_per_granule + (xorshift(x) % (s->blocks_per_granule / s->blocks)) * s->blocks;
        } else {
            lba = (xorshift(x) % s->slots) * s->blocks;
        }
        const clk::time_point t0 = clk::now();
        future<ioe::io_status> f = s->write ? s->ch->write(lba, s->blocks, iov) : s->ch->read(lba, s->blocks, iov);
        const bool was_ready = f.available();
        const ioe::io_status st = co_await std::move(f);
        const clk::time_point t1 = clk::now();
        const auto ns = static_cast<std::uint64_t>((t1 - t0) / std::chrono::nanoseconds(1));
        const auto gap = s->last_completion == clk::time_point{}
                             ? 0
                             : static_cast<std::uint64_t>((t1 - s->last_completion) / std::chrono::nanoseconds(1));
        s->last_completion = t1;
        s->max_latency_ns = std::max({s->max_latency_ns, ns, gap});
        if (!ioe::ok(st)) {
            if (s->errors++ == 0) s->first_error = st;
            continue;
        }
        ++s->ops;
        if (was_ready && ++ready_in_a_row == 16) {  // malloc completes in place: let the others run
            ready_in_a_row = 0;
            co_await ioe::yield();
        }
    }
}

// The buffers and coroutines of one load on one device.
struct load {
    load_state s;
    std::vector<ioe::dma_buffer> bufs;
    std::vector<future<>> running;

    load(ioe::block_device* dev, bool write) {
        s.ch = dev->channel();
        if (!s.ch) throw std::runtime_error("no channel to " + dev->name());
        s.write = write;
        s.blocks = io_bytes / dev->block_size();
        s.slots = dev->block_count() / s.blocks;
        for (unsigned i = 0; i < qd; ++i) {
            auto b = ioe::engine::current()->dma().allocate(io_bytes);
            if (!b) throw std::runtime_error("DMA pool exhausted");
            std::memset(b->data(), 0x30 + static_cast<int>(i), io_bytes);
            bufs.push_back(std::move(b.value()));
        }
        running.reserve(qd);
    }
    void start() {
        for (unsigned i = 0; i < qd; ++i) {
            running.push_back(worker(&s, ioe::to_io_vec(bufs[i]), 0x9e3779b97f4a7c15ull * (i + 1) + s.slots));
        }
    }
    future<> finish(std::uint64_t* errors) {
        s.stop = true;
        for (auto& r : running) co_await std::move(r);
        running.clear();
        *errors += s.errors;
        if (s.errors) {
            std::fprintf(stderr, "snapshot_bench: %s: %llu I/O errors, the first: %s\n", s.ch->device().name().c_str(),
                         static_cast<unsigned long long>(s.errors), std::string(ioe::to_string(s.first_error)).c_str());
        }
    }
};

struct window {
    double iops = 0, allocs_per_io = 0;
};

// A timed window of 4K random I/O at QD32 after a warm-up.
future<window> timed(ioe::block_device* dev, bool write, const params* p, results* res, const char* label) {
    std::fprintf(stderr, "snapshot_bench: %s\n", label);
    load l(dev, write);
    l.start();
    co_await ioe::sleep(secs(p->warmup));
    const std::uint64_t ops0 = l.s.ops, allocs0 = ioe::bench::heap_allocations();
    const clk::time_point t0 = clk::now();
    co_await ioe::sleep(secs(p->seconds));
    const std::uint64_t ops1 = l.s.ops, allocs1 = ioe::bench::heap_allocations();
    const double elapsed = std::chrono::duration<double>(clk::now() - t0).count();
    co_await l.finish(&res->errors);
    window w;
    w.iops = double(ops1 - ops0) / elapsed;
    w.allocs_per_io = ops1 > ops0 ? double(allocs1 - allocs0) / double(ops1 - ops0) : 0;
    co_return w;
}

// Every block of `dev` in 1 MiB I/Os, one at a time: written with `byte`,
// or read.
future<> sweep(ioe::block_device* dev, bool write, std::uint8_t byte) {
    ioe::io_channel* ch = dev->channel();
    auto b = ioe::engine::current()->dma().allocate(1 << 20);
    if (!b) throw std::runtime_error("DMA pool exhausted");
    std::memset(b->data(), byte, 1 << 20);
    const std::uint64_t per = (1u << 20) / dev->block_size();
    for (std::uint64_t lba = 0; lba < dev->block_count(); lba += per) {
        const auto n = static_cast<std::uint32_t>(std::min(per, dev->block_count() - lba));
        ioe::io_vec v{b->data(), n * dev->block_size(), b->buf_index()};
        const ioe::io_status st =
            co_await (write ? ch->write(lba, n, ioe::io_vecs(&v, 1)) : ch->read(lba, n, ioe::io_vecs(&v, 1)));
        if (!ioe::ok(st)) {
            throw std::runtime_error(
                fmt::format("{} {}: {}", write ? "filling" : "reading", dev->name(), ioe::to_string(st)));
        }
    }
}

// Writes every block of `dev` and flushes.
future<> fill(ioe::block_device* dev, std::uint8_t byte) {
    co_await sweep(dev, true, byte);
    if (const ioe::io_status st = co_await dev->channel()->flush(); !ioe::ok(st)) {
        throw std::runtime_error(fmt::format("flushing {}: {}", dev->name(), ioe::to_string(st)));
    }
}

// Reads every page of the RAM disk. On this VM a page of guest memory left
// untouched for some tens of seconds costs about twice as much on its next
// write (measured: 0.88M vs 1.9M random 4K memcpy/s after 40 s idle, 2.1M
// once one byte per page was read first): the host ages idle memory. The
// COW rounds write fresh clusters that were last touched by the prefault a
// minute earlier, so without this they paid the host's cost, which a disk
// never does, and the rounds got slower the later they ran (0.55, 0.33,
// 0.36 of the baseline, whose pages stay hot).
future<> warm(ioe::block_device* mem) { return sweep(mem, false, 0); }

// `pairs` windows on `subject`, each followed by one on `base`; the
// worst allocation rate of them raises *allocs.
future<> paired(ioe::block_device* subject, ioe::block_device* base, bool write, const params* p, results* res,
                double* subject_iops, double* base_iops, double* allocs) {
    for (unsigned i = 0; i < pairs; ++i) {
        const window a = co_await timed(subject, write, p, res, write ? "randwrite (pair)" : "randread (pair)");
        const window b = co_await timed(base, write, p, res, write ? "baseline randwrite" : "baseline randread");
        subject_iops[i] = a.iops;
        base_iops[i] = b.iops;
        *allocs = std::max({*allocs, a.allocs_per_io, b.allocs_per_io});
    }
}

double ms_since(clk::time_point t0) { return std::chrono::duration<double, std::milli>(clk::now() - t0).count(); }

// Phase 2: a snapshot under a write load.
future<> snapshot_under_load(ioe::pool* pl, ioe::replica* r, const params* p, results* res) {
    std::fprintf(stderr, "snapshot_bench: snapshot under load\n");
    load l(r, true);
    l.start();
    co_await ioe::sleep(secs(p->warmup));
    l.s.max_latency_ns = 0;
    const clk::time_point t0 = clk::now();
    co_await pl->snapshot_replica(r->name(), ioe::snapshot_options{.name = "snap_load", .id = {}, .txid = "load"});
    res->snapshot_ms = ms_since(t0);
    co_await ioe::sleep(secs(std::min(p->seconds, 0.5)));
    res->snapshot_load_max_ms = double(l.s.max_latency_ns) / 1e6;
    co_await l.finish(&res->errors);
}

// Phase 3: one 4K write in every COW unit of `r`, just after a snapshot.
future<> first_writes(ioe::pool* pl, ioe::replica* r, std::string snapshot, unsigned round, results* res) {
    std::fprintf(stderr, "snapshot_bench: first writes after a snapshot\n");
    co_await pl->snapshot_replica(r->name(), ioe::snapshot_options{.name = snapshot, .id = {}, .txid = snapshot});
    // The unit a first write materializes (a "granule" in the names below).
    const std::uint64_t granule_bytes =
        std::max<std::uint64_t>(ioe::pool_format::subgranule_bytes(pl->geometry()), io_bytes);
    const std::uint64_t granules = r->size_bytes() / granule_bytes;
    std::vector<std::uint32_t> order(granules);
    std::iota(order.begin(), order.end(), 0u);
    std::uint64_t x = 0x2545f4914f6cdd1dull;
    for (std::uint64_t i = granules; i > 1; --i) std::swap(order[i - 1], order[xorshift(x) % i]);
    load l(r, true);
    l.s.order = order.data();
    l.s.order_len = order.size();
    l.s.blocks_per_granule = granule_bytes / r->block_size();
    const std::uint64_t allocs0 = ioe::bench::heap_allocations();
    const clk::time_point t0 = clk::now();
    l.start();
    for (auto& f : l.running) co_await std::move(f);
    l.running.clear();
    const double elapsed = std::chrono::duration<double>(clk::now() - t0).count();
    co_await l.finish(&res->errors);
    res->granules = granules;
    res->cow_first_iops[round] = double(l.s.ops) / elapsed;
    res->cow_allocs_per_io = std::max(
        res->cow_allocs_per_io, l.s.ops ? double(ioe::bench::heap_allocations() - allocs0) / double(l.s.ops) : 0);
}

// Phase 6: the worst write latency while a nexus snapshot runs.
future<> nexus_pause(ioe::pool* pl, ioe::device_registry* reg, const params* p, results* res) {
    std::fprintf(stderr, "snapshot_bench: nexus snapshot under load\n");
    // One child: a second local child would need a pool of its own, and
    // the two snapshots of the same name would collide in this node's
    // device registry (docs/nexus.md, Snapshots: known limit).
    ioe::memory_health_store store;
    ioe::nexus_options o;
    o.health_key = "/snapshot_bench/nexus";
    o.health = &store;
    o.registry = reg;
    auto nx = co_await ioe::nexus::create("snapshot_bench_nexus", ioe::uuid::random(),
                                          {"bdev:///snapshot_bench_r"}, o);
    std::exception_ptr error;
    try {
        load l(nx.get(), true);
        l.start();
        // A flush of everything earlier phases wrote, then a plain flush
        // and the snapshot, each after the same run of this load: the
        // flush's worst latency is what the device's flush alone costs the
        // writes (the snapshot flushes its children first, I/O running).
        const ioe::io_status st0 = co_await l.s.ch->flush();
        co_await ioe::sleep(secs(p->warmup));
        l.s.max_latency_ns = 0;
        const clk::time_point f0 = clk::now();
        const ioe::io_status fst = co_await l.s.ch->flush();
        res->flush_ms = ms_since(f0);
        co_await ioe::sleep(secs(0.1));
        res->flush_load_max_ms = double(l.s.max_latency_ns) / 1e6;
        co_await ioe::sleep(secs(p->warmup - 0.1 > 0 ? p->warmup - 0.1 : 0));
        l.s.max_latency_ns = 0;
        const clk::time_point t0 = clk::now();
        ioe::nexus_snapshot_result sr;
        std::exception_ptr snap_error;
        try {
            sr = co_await nx->snapshot("nexus_snap", "bench-tx-1");
        } catch (...) {
            snap_error = std::current_exception();
        }
        res->nexus_snapshot_ms = ms_since(t0);
        res->nexus_held_ms = sr.pause_ms;
        co_await ioe::sleep(secs(0.1));
        res->nexus_pause_ms = double(l.s.max_latency_ns) / 1e6;
        co_await l.finish(&res->errors);
        if (snap_error) std::rethrow_exception(snap_error);
        for (const ioe::io_status st : {st0, fst}) {
            if (!ioe::ok(st)) throw std::runtime_error(fmt::format("flushing the nexus: {}", ioe::to_string(st)));
        }
        for (const auto& c : sr.children) {
            if (!c.ok) throw std::runtime_error(fmt::format("nexus snapshot of {}: {}", c.uri, c.error));
        }
    } catch (...) {
        error = std::current_exception();
    }
    co_await nx->shutdown();
    co_await nx->close();
    if (error) std::rethrow_exception(error);
}

future<> measure_all(const params* p, results* res, ioe::device_registry* reg) {
    // The replica, the baseline, and a fresh thick set for each snapshot of
    // the replica (snap_load, the COW rounds', the nexus's).
    const std::uint64_t device_mb = p->size_mb * (2 + 1 + cow_rounds + 1 + 1) + 64;
    ioe::block_device* mem = nullptr;
    if (!p->file.empty()) {
        // Every block written once, like a disk: a sparse file would make
        // each first write into a fresh cluster allocate file extents, and
        // each flush commit them to the file system's journal.
        const int fd = ::open(p->file.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
        bool sized = fd >= 0;
        const std::string zeros(1 << 20, '\0');
        for (std::uint64_t mb = 0; sized && mb < device_mb; ++mb) {
            sized = ::write(fd, zeros.data(), zeros.size()) == ssize_t(zeros.size());
        }
        sized = sized && ::fsync(fd) == 0;
        if (fd >= 0) ::close(fd);
        if (!sized) {
            throw std::runtime_error(fmt::format("cannot size {}: {}", p->file, std::strerror(errno)));
        }
        mem = co_await reg->create(fmt::format("uring://{}?blk_size=4096", p->file));
    } else {
        mem = co_await reg->create(fmt::format("malloc:///snapshot_bench?size_mb={}&blk_size=4096", device_mb));
        // Touch every page of the RAM disk before measuring: its anonymous
        // memory is mapped lazily, and a first write into a fresh cluster
        // would otherwise pay the kernel's page faults (a disk has none).
        const std::uint64_t chunk = (64u << 20) / mem->block_size();
        for (std::uint64_t lba = 0; lba < mem->block_count(); lba += chunk) {
            const std::uint64_t n = std::min<std::uint64_t>(chunk, mem->block_count() - lba);
            if (co_await mem->channel()->write_zeroes(lba, n) != ioe::io_status::success) {
                throw std::runtime_error("prefaulting the RAM disk failed");
            }
        }
    }
    ioe::pool_create_options o;
    o.name = "snapshot_bench";
    auto pl = co_await ioe::pool::create(mem, o, reg);
    ioe::replica* r = co_await pl->create_replica("snapshot_bench_r", ioe::uuid::random(), p->size_mb << 20, false);
    // The baseline: a plain thick replica of the same size in the same pool
    // that is never snapshotted. Its windows alternate with the measured
    // ones, so that a ratio compares two windows next to each other in time
    // (on a shared 2-core machine the IOPS of one window drift by 10 % or
    // more over a minute).
    ioe::replica* base =
        co_await pl->create_replica("snapshot_bench_base", ioe::uuid::random(), p->size_mb << 20, false);
    co_await fill(r, 0x11);
    co_await fill(base, 0x11);
    const window pw = co_await timed(r, true, p, res, "plain randwrite");
    const window pr = co_await timed(r, false, p, res, "plain randread");
    res->plain_write_iops = pw.iops;
    res->plain_read_iops = pr.iops;
    const params half = [p] {
        params h = *p;
        h.seconds = std::max(0.1, p->seconds / 5);
        h.warmup = std::min(p->warmup, 0.25);
        return h;
    }();
    double allocs = std::max({pw.allocs_per_io, pr.allocs_per_io});
    double plain_iops[pairs], plain_base_iops[pairs];
    co_await paired(r, base, true, &half, res, plain_iops, plain_base_iops, &allocs);
    for (unsigned i = 0; i < pairs; ++i) {
        res->plain_pair_ratios[i] = plain_base_iops[i] > 0 ? plain_iops[i] / plain_base_iops[i] : 0;
    }
    co_await snapshot_under_load(pl.get(), r, p, res);
    co_await fill(r, 0x22);  // the replica owns every granule again
    // Each round's first writes between two baseline write windows.
    window before = co_await timed(base, true, &half, res, "baseline randwrite");
    for (unsigned i = 0; i < cow_rounds; ++i) {
        if (p->file.empty()) co_await warm(mem);
        co_await first_writes(pl.get(), r, fmt::format("snap_cow{}", i), i, res);
        const window after = co_await timed(base, true, &half, res, "baseline randwrite");
        res->cow_first_base_iops[i] = (before.iops + after.iops) / 2;
        before = after;
    }
    co_await paired(r, base, true, &half, res, res->post_cow_iops, res->post_cow_base_iops, &allocs);
    ioe::replica* clone =
        co_await pl->clone_snapshot(fmt::format("snap_cow{}", cow_rounds - 1), "snapshot_bench_clone");
    if (p->file.empty()) co_await warm(mem);
    co_await paired(clone, base, false, &half, res, res->clone_read_iops, res->clone_read_base_iops, &allocs);
    res->allocs_per_io = allocs;
    co_await pl->destroy_replica("snapshot_bench_clone");
    co_await nexus_pause(pl.get(), reg, p, res);
    co_await pl->destroy();
}

future<int> engine_main(const params* p, results* res) {
    ioe::device_registry reg;
    try {
        co_await measure_all(p, res, &reg);
    } catch (const std::exception& e) {
        res->error = e.what();
    }
    co_await reg.close_all();
    co_return res->error.empty() ? 0 : 1;
}

bool parse_args(int argc, char** argv, params& p) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        double v = 0;
        char* end = nullptr;
        if (a == "--json") {
            p.json = true;
            continue;
        }
        if (i + 1 >= argc) return false;
        if (a == "--file") {
            p.file = argv[++i];
            if (p.file.empty() || p.file[0] != '/') return false;
            continue;
        }
        v = std::strtod(argv[++i], &end);
        if (!end || *end != '\0') return false;
        if (a == "--seconds" && v >= 0.1) {
            p.seconds = v;
        } else if (a == "--warmup" && v >= 0) {
            p.warmup = v;
        } else if (a == "--size-mb" && v >= 64) {
            p.size_mb = static_cast<std::uint64_t>(v);
        } else {
            return false;
        }
    }
    return true;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

template <std::size_t N>
double median(const double (&v)[N]) {
    double s[N];
    std::copy(v, v + N, s);
    std::sort(s, s + N);
    return s[N / 2];
}

// "[a, b, c]": one figure per pair or round.
template <std::size_t N>
std::string list(const double (&v)[N], int digits) {
    std::string out = "[";
    for (std::size_t i = 0; i < N; ++i) out += fmt::format("{}{:.{}f}", i ? ", " : "", v[i], digits);
    return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
    params p;
    if (!parse_args(argc, argv, p)) {
        std::fputs("usage: snapshot_bench [--json] [--seconds N (5)] [--warmup N (0.5)] [--size-mb N (512)] [--file /ABSOLUTE/PATH (the RAM disk)]\n", stderr);
        return 2;
    }
    ioe::log::set_level(spdlog::level::warn);
    ioe::bench::start_watchdog("snapshot_bench", std::chrono::seconds(static_cast<long>(8 * (p.seconds + p.warmup)) + 300));
    const double load_start = ioe::bench::load_average();
    results res;
    ioe::engine_config cfg;
    cfg.cores = {ioe::allowed_cores().at(0)};
    cfg.reactor.mode = ioe::poll_mode::busy;
    cfg.memory.size_mb = 256;
    int rc = 1;
    try {
        ioe::engine e(cfg);
        rc = e.run([&p, &res] { return engine_main(&p, &res); });
    } catch (const std::exception& ex) {
        res.error = ex.what();
    }
    if (rc != 0 && res.error.empty()) res.error = fmt::format("engine exited with {}", rc);
    if (!res.error.empty()) std::fprintf(stderr, "snapshot_bench: %s\n", res.error.c_str());

    double cow_first_rounds[cow_rounds];
    for (unsigned i = 0; i < cow_rounds; ++i) cow_first_rounds[i] = ratio(res.cow_first_iops[i], res.cow_first_base_iops[i]);
    const double cow_first = median(cow_first_rounds);
    double post_cow_pairs[pairs], clone_read_pairs[pairs];
    for (unsigned i = 0; i < pairs; ++i) {
        post_cow_pairs[i] = ratio(res.post_cow_iops[i], res.post_cow_base_iops[i]);
        clone_read_pairs[i] = ratio(res.clone_read_iops[i], res.clone_read_base_iops[i]);
    }
    const double post_cow = median(post_cow_pairs);
    const double clone_read = median(clone_read_pairs);
    const bool pause_met = res.nexus_pause_ms >= 0 && res.nexus_pause_ms < 50;
    std::vector<std::pair<std::string, std::string>> kv;
    auto num = [&kv](const char* k, double v, int digits) { kv.emplace_back(k, fmt::format("{:.{}f}", v, digits)); };
    num("cow_first_write_ratio", cow_first, 3);
    num("post_cow_write_ratio", post_cow, 3);
    num("clone_read_ratio", clone_read, 3);
    num("snapshot_ms", res.snapshot_ms, 3);
    num("nexus_snapshot_pause_ms", res.nexus_pause_ms, 3);
    num("allocs_per_io", res.allocs_per_io, 4);
    num("cow_allocs_per_io", res.cow_allocs_per_io, 4);
    num("plain_randwrite4k_qd32_iops", res.plain_write_iops, 0);
    kv.emplace_back("cow_first_write_ratios", list(cow_first_rounds, 3));
    kv.emplace_back("cow_first_randwrite4k_qd32_iops", list(res.cow_first_iops, 0));
    kv.emplace_back("cow_first_baseline_randwrite4k_qd32_iops", list(res.cow_first_base_iops, 0));
    kv.emplace_back("placement_write_ratio", fmt::format("{:.3f}", median(res.plain_pair_ratios)));
    kv.emplace_back("placement_write_ratios", list(res.plain_pair_ratios, 3));
    kv.emplace_back("post_cow_write_ratios", list(post_cow_pairs, 3));
    kv.emplace_back("post_cow_randwrite4k_qd32_iops", list(res.post_cow_iops, 0));
    kv.emplace_back("post_cow_baseline_randwrite4k_qd32_iops", list(res.post_cow_base_iops, 0));
    num("plain_randread4k_qd32_iops", res.plain_read_iops, 0);
    kv.emplace_back("clone_read_ratios", list(clone_read_pairs, 3));
    kv.emplace_back("clone_randread4k_qd32_iops", list(res.clone_read_iops, 0));
    kv.emplace_back("clone_baseline_randread4k_qd32_iops", list(res.clone_read_base_iops, 0));
    num("snapshot_load_max_latency_ms", res.snapshot_load_max_ms, 3);
    num("nexus_snapshot_ms", res.nexus_snapshot_ms, 3);
    num("nexus_snapshot_held_ms", res.nexus_held_ms, 3);
    num("flush_ms", res.flush_ms, 3);
    num("flush_load_max_latency_ms", res.flush_load_max_ms, 3);
    num("cow_first_write_ios", double(res.granules), 0);
    num("io_errors", double(res.errors), 0);
    if (p.json) {
        std::string out = "{";
        for (const auto& [k, v] : kv) out += fmt::format("\"{}\": {}, ", k, v);
        out += fmt::format(
            "\"targets\": {{\"post_cow_write_ratio_min\": 0.95, \"post_cow_write_met\": {}, \"clone_read_ratio_min\": "
            "0.95, \"clone_read_met\": {}, \"cow_first_write_ratio_min\": 0.5, \"cow_first_write_met\": {}, "
            "\"nexus_snapshot_pause_ms_max\": 50, \"nexus_snapshot_pause_met\": {}}}, ",
            post_cow >= 0.95, clone_read >= 0.95, cow_first >= 0.5, pause_met);
        out += fmt::format(
            "\"config\": {{\"device\": \"{}\", \"replica_mb\": {}, \"thick\": true, \"qd\": {}, \"io_bytes\": {}, "
            "\"seconds\": {:.1f}, \"warmup_seconds\": {:.1f}, \"poll\": \"busy\", \"loadavg_start\": {:.2f}, "
            "\"loadavg_end\": {:.2f}}}",
            p.file.empty() ? "malloc" : "uring (--file)", p.size_mb, qd, io_bytes, p.seconds, p.warmup, load_start, ioe::bench::load_average());
        if (!res.error.empty()) out += fmt::format(", \"error\": \"{}\"", ioe::bench::json_escape(res.error));
        std::fputs((out + "}\n").c_str(), stdout);
    } else {
        for (const auto& [k, v] : kv) std::printf("%-40s %14s\n", k.c_str(), v.c_str());
    }
    return res.error.empty() && res.errors == 0 ? 0 : 1;
}
