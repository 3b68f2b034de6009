// blockstamp: a writer and checker for the cluster tests, over ioengine's own
// NVMe/TCP initiator (an nvmf:// device URI, see nvme/initiator/nvmf_backend.hh).
//
//   blockstamp write    --uri URI --log FILE [--seconds S] [--depth D] [--resume]
//       Writes stamped blocks (stamp.hh): a first sequential pass over every
//       block, then random blocks, one block per write, D writes in flight,
//       never two on the same block at once. Each write carries the block's
//       next generation; the log keeps, per block, the last generation issued
//       and the last acknowledged. Stops on SIGTERM/SIGINT or after S
//       seconds, waits for the writes in flight and saves the log. Prints
//       "blockstamp: progress acked=N failed=M ..." every --progress-ms.
//       --resume continues the generations of an existing log (no first
//       pass); --fill-only stops after the first pass; --region-first F
//       --region-blocks N keep random writes in blocks [F, F+N) (a partial
//       rebuild stays partial; two writers can share a volume).
//   blockstamp verify   --uri URI --log FILE [--region-first F --region-blocks N]
//       Reads every block (of the region): a block written before must hold
//       a generation g with acked <= g <= issued (or still be zero when nothing was acked);
//       a block never written must not hold a stamp. Exit 1 on any violation.
//   blockstamp checksum --uri URI
//       Prints "checksum HEX blocks N" over the whole namespace, to compare
//       replicas byte for byte.
//
// Exit status: 0 done, 1 a check failed or the device could not be used
// (write: also when --fail-on-error and a write failed), 2 bad arguments.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "runtime/crc32c.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "tests/cluster/stamp.hh"

namespace {

using namespace ioe;
using namespace ioe::blockstamp;
using namespace std::chrono_literals;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

struct options {
    std::string mode;
    std::string uri;
    std::string log_path;
    double seconds = 0;  // 0: until a signal
    unsigned depth = 16;
    unsigned progress_ms = 250;
    bool resume = false;
    bool fail_on_error = false;
    bool fill_only = false;
    std::uint64_t region_first = 0;   // the region random writes go to / verify checks
    std::uint64_t region_blocks = 0;  // 0: to the end
    std::string cores = "0";
};

void say(const std::string& s) {
    std::fputs(s.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

// ---- write ----

struct writer {
    io_channel* ch = nullptr;
    std::uint32_t block_size = 0;
    ack_log log;
    std::vector<std::uint8_t> busy;
    std::uint64_t fill_next = 0;
    std::mt19937_64 rng{std::random_device{}()};
    steady_clock::time_point end;
    bool timed = false;
    bool fill_only = false;
    std::uint64_t region_first = 0, region = 0;  // random picks in [region_first, region_first + region)
    std::uint64_t acked = 0, failed = 0, in_flight = 0;
    io_status first_error = io_status::success;
    unsigned running = 0;

    bool stopping() const {
        return g_stop.load() || (timed && steady_clock::now() >= end) || (fill_only && fill_next >= log.block_count);
    }

    // The next block to write, not busy; false when every candidate is.
    bool pick(std::uint64_t& lba) {
        const std::uint64_t n = log.block_count;
        if (fill_next < n) {
            while (fill_next < n && busy[fill_next]) ++fill_next;
            if (fill_next < n) {
                lba = fill_next++;
                return true;
            }
        }
        for (int tries = 0; tries < 64; ++tries) {
            lba = region_first + rng() % region;
            if (!busy[lba]) return true;
        }
        return false;
    }
};

future<> write_worker(writer* w, dma_buffer buf) {
    ++w->running;
    const io_vec v = to_io_vec(buf, 0, w->block_size);
    while (!w->stopping()) {
        std::uint64_t lba = 0;
        if (!w->pick(lba)) {
            co_await sleep(1ms);
            continue;
        }
        w->busy[lba] = 1;
        auto& rec = w->log.blocks[lba];
        const std::uint64_t gen = ++rec.issued;
        fill_block(buf.data(), w->block_size, lba, gen, static_cast<std::uint32_t>(w->rng()));
        ++w->in_flight;
        const io_status st = co_await w->ch->write(lba, 1, io_vecs(&v, 1));
        --w->in_flight;
        w->busy[lba] = 0;
        if (ok(st)) {
            rec.acked = std::max(rec.acked, gen);
            ++w->acked;
        } else {
            if (w->failed++ == 0) w->first_error = st;
            co_await sleep(20ms);  // a failed device answers at once: do not spin
        }
    }
    --w->running;
}

future<> progress(writer* w, unsigned period_ms) {
    while (w->running > 0) {
        say(fmt::format("blockstamp: progress acked={} failed={} in_flight={} filled={}", w->acked, w->failed,
                        w->in_flight, std::min(w->fill_next, w->log.block_count)));
        for (unsigned t = 0; t < period_ms && w->running > 0; t += 10) co_await sleep(10ms);
    }
}

future<int> run_write(const options* o, block_device* dev) {
    writer w;
    w.ch = dev->channel();
    w.block_size = dev->block_size();
    if (o->resume) {
        std::string err;
        auto l = load_log(o->log_path, err);
        if (!l) {
            say("blockstamp: " + err);
            co_return 1;
        }
        if (l->block_size != dev->block_size() || l->block_count != dev->block_count()) {
            say("blockstamp: the log is for another geometry");
            co_return 1;
        }
        w.log = std::move(*l);
        w.fill_next = w.log.block_count;  // filled already
    } else {
        w.log.block_size = dev->block_size();
        w.log.block_count = dev->block_count();
        w.log.blocks.assign(w.log.block_count, block_record{});
    }
    w.busy.assign(w.log.block_count, 0);
    w.fill_only = o->fill_only;
    w.region_first = o->region_first;
    w.region = o->region_blocks ? o->region_blocks : w.log.block_count - std::min(o->region_first, w.log.block_count);
    if (w.region_first >= w.log.block_count || w.region == 0 || w.region > w.log.block_count - w.region_first) {
        say("blockstamp: the region is outside the device");
        co_return 1;
    }
    w.timed = o->seconds > 0;
    w.end = steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(std::chrono::duration<double>(o->seconds));
    std::vector<future<>> workers;
    for (unsigned i = 0; i < o->depth; ++i) {
        auto b = engine::current()->dma().allocate(w.block_size);
        if (!b) {
            say("blockstamp: the DMA pool is exhausted");
            co_return 1;
        }
        workers.push_back(write_worker(&w, std::move(*b)));
    }
    say(fmt::format("blockstamp: writing {} blocks of {} bytes, depth {}", w.log.block_count, w.block_size, o->depth));
    auto ticker = progress(&w, o->progress_ms);
    for (auto& f : workers) co_await std::move(f);
    co_await std::move(ticker);
    std::string err;
    if (!save_log(o->log_path, w.log, err)) {
        say("blockstamp: cannot save the log: " + err);
        co_return 1;
    }
    std::uint64_t written = 0;
    for (const auto& b : w.log.blocks) written += b.acked > 0;
    say(fmt::format("blockstamp: done acked={} failed={} first_error={} blocks_acked={} of {}", w.acked, w.failed,
                    w.failed ? std::string(to_string(w.first_error)) : std::string("none"), written,
                    w.log.block_count));
    co_return (o->fail_on_error && w.failed) ? 1 : 0;
}

// ---- verify and checksum: sequential chunks, several in flight ----

constexpr std::uint32_t chunk_bytes = 128 * 1024;

struct reader {
    block_device* dev = nullptr;
    io_channel* ch = nullptr;
    std::uint64_t first_lba = 0, end_lba = 0;  // the blocks read
    std::uint64_t next_chunk = 0, chunks = 0;
    std::uint32_t blocks_per_chunk = 0;
    std::string error;
    // verify
    const ack_log* log = nullptr;
    std::uint64_t ok_blocks = 0, zero_blocks = 0, newer_blocks = 0, problems = 0;
    std::vector<std::string> first_problems;
    // checksum: one crc per chunk, combined in order at the end
    std::vector<std::uint32_t> chunk_crc;

    void problem(std::string s) {
        ++problems;
        if (first_problems.size() < 20) first_problems.push_back(std::move(s));
    }
};

void check_chunk(reader* r, const std::byte* data, std::uint64_t first_lba, std::uint32_t blocks) {
    const std::uint32_t bs = r->dev->block_size();
    for (std::uint32_t i = 0; i < blocks; ++i) {
        const std::uint64_t lba = first_lba + i;
        const block_check c = check_block(data + std::size_t{i} * bs, bs, lba);
        const block_record rec = r->log->blocks[lba];
        if (rec.issued == 0) {
            if (c.kind == block_kind::stamped) {
                r->problem(fmt::format("lba {}: generation {} but never written", lba, c.generation));
            } else {
                ++r->zero_blocks;  // never written: zeros (or whatever was there)
            }
        } else if (c.kind == block_kind::zero) {
            if (rec.acked > 0) r->problem(fmt::format("lba {}: zeros, but generation {} was acknowledged", lba, rec.acked));
            else ++r->zero_blocks;
        } else if (c.kind == block_kind::corrupt) {
            r->problem(fmt::format("lba {}: {}", lba, c.why));
        } else if (c.generation < rec.acked) {
            r->problem(fmt::format("lba {}: stale generation {}, {} was acknowledged", lba, c.generation, rec.acked));
        } else if (c.generation > rec.issued) {
            r->problem(fmt::format("lba {}: generation {} never issued (last {})", lba, c.generation, rec.issued));
        } else {
            ++r->ok_blocks;
            if (c.generation > rec.acked) ++r->newer_blocks;  // a write not acknowledged landed: allowed
        }
    }
}

future<> read_worker(reader* r, dma_buffer buf) {
    const std::uint32_t bs = r->dev->block_size();
    while (r->error.empty() && r->next_chunk < r->chunks) {
        const std::uint64_t chunk = r->next_chunk++;
        const std::uint64_t lba = r->first_lba + chunk * r->blocks_per_chunk;
        const auto blocks = static_cast<std::uint32_t>(std::min<std::uint64_t>(r->blocks_per_chunk, r->end_lba - lba));
        const io_vec v = to_io_vec(buf, 0, std::size_t{blocks} * bs);
        const io_status st = co_await r->ch->read(lba, blocks, io_vecs(&v, 1));
        if (!ok(st)) {
            if (r->error.empty()) r->error = fmt::format("read of lba {} (+{}) failed: {}", lba, blocks, to_string(st));
            break;
        }
        if (r->log) check_chunk(r, buf.data(), lba, blocks);
        else r->chunk_crc[chunk] = crc32c(buf.data(), std::size_t{blocks} * bs);
    }
}

future<int> run_read(const options* o, block_device* dev, bool verify) {
    reader r;
    r.dev = dev;
    r.ch = dev->channel();
    r.blocks_per_chunk = std::max<std::uint32_t>(1, chunk_bytes / dev->block_size());
    r.first_lba = verify ? o->region_first : 0;
    r.end_lba = verify && o->region_blocks ? o->region_first + o->region_blocks : dev->block_count();
    if (r.first_lba >= r.end_lba || r.end_lba > dev->block_count()) {
        say("blockstamp: the region is outside the device");
        co_return 1;
    }
    r.chunks = (r.end_lba - r.first_lba + r.blocks_per_chunk - 1) / r.blocks_per_chunk;
    ack_log log;
    if (verify) {
        std::string err;
        auto l = load_log(o->log_path, err);
        if (!l) {
            say("blockstamp: " + err);
            co_return 1;
        }
        if (l->block_size != dev->block_size() || l->block_count != dev->block_count()) {
            say(fmt::format("blockstamp: the log is for {} blocks of {} bytes, the device has {} of {}", l->block_count,
                            l->block_size, dev->block_count(), dev->block_size()));
            co_return 1;
        }
        log = std::move(*l);
        r.log = &log;
    } else {
        r.chunk_crc.assign(r.chunks, 0);
    }
    std::vector<future<>> workers;
    for (unsigned i = 0; i < std::min(o->depth, 8u); ++i) {
        auto b = engine::current()->dma().allocate(std::size_t{r.blocks_per_chunk} * dev->block_size());
        if (!b) {
            say("blockstamp: the DMA pool is exhausted");
            co_return 1;
        }
        workers.push_back(read_worker(&r, std::move(*b)));
    }
    for (auto& f : workers) co_await std::move(f);
    if (!r.error.empty()) {
        say("blockstamp: " + r.error);
        co_return 1;
    }
    if (verify) {
        for (const auto& p : r.first_problems) say("blockstamp: PROBLEM " + p);
        std::uint64_t acked_blocks = 0;
        for (std::uint64_t lba = r.first_lba; lba < r.end_lba; ++lba) acked_blocks += log.blocks[lba].acked > 0;
        say(fmt::format("blockstamp: verify blocks={} ok={} unacked_newer={} unwritten={} acked_blocks={} problems={}",
                        r.end_lba - r.first_lba, r.ok_blocks, r.newer_blocks, r.zero_blocks, acked_blocks, r.problems));
        co_return r.problems ? 1 : 0;
    }
    const std::uint32_t sum = crc32c(r.chunk_crc.data(), r.chunk_crc.size() * sizeof(std::uint32_t));
    say(fmt::format("blockstamp: checksum {:08x} blocks {} block_size {}", sum, dev->block_count(), dev->block_size()));
    co_return 0;
}

future<int> blockstamp_main(const options* o) {
    nvme::register_nvmf_backend();
    device_registry devices;
    block_device* dev = nullptr;
    try {
        dev = co_await devices.create(o->uri);
    } catch (const std::exception& e) {
        say(std::string("blockstamp: cannot open ") + o->uri + ": " + e.what());
        co_return 1;
    }
    int rc = 1;
    if (dev->block_size() < 64) {
        say("blockstamp: block size below 64 bytes");
    } else if (o->mode == "write") {
        rc = co_await run_write(o, dev);
    } else {
        rc = co_await run_read(o, dev, o->mode == "verify");
    }
    co_await devices.close_all();
    co_return rc;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"blockstamp: stamped writes with an acknowledgement log, verification and checksums over NVMe/TCP"};
    app.require_subcommand(1);
    auto common = [&o](CLI::App* c, bool with_log) {
        c->add_option("--uri", o.uri, "the device, e.g. nvmf://127.0.0.1:4420/NQN?io_timeout_ms=5000")->required();
        if (with_log) c->add_option("--log", o.log_path, "the acknowledgement log file")->required();
        c->add_option("--depth", o.depth, "I/Os in flight")->capture_default_str();
        c->add_option("--cores", o.cores, "cores to run on (one reactor)")->capture_default_str();
        if (with_log) {
            c->add_option("--region-first", o.region_first, "first block of the region written / verified");
            c->add_option("--region-blocks", o.region_blocks, "blocks in the region (0: to the end)");
        }
    };
    auto* w = app.add_subcommand("write", "write stamped blocks until SIGTERM or --seconds");
    common(w, true);
    w->add_option("--seconds", o.seconds, "stop after this long (0: at SIGTERM/SIGINT)");
    w->add_option("--progress-ms", o.progress_ms, "progress line period")->capture_default_str();
    w->add_flag("--resume", o.resume, "continue the generations of an existing log (no fill pass)");
    w->add_flag("--fill-only", o.fill_only, "stop after the sequential pass over every block");

    w->add_flag("--fail-on-error", o.fail_on_error, "exit 1 if any write failed");
    auto* v = app.add_subcommand("verify", "check every block against the log");
    common(v, true);
    auto* c = app.add_subcommand("checksum", "checksum of the whole namespace");
    common(c, false);
    CLI11_PARSE(app, argc, argv);
    o.mode = app.get_subcommands().front()->get_name();
    if (o.depth == 0 || o.depth > 128) {
        std::fprintf(stderr, "blockstamp: --depth must be 1-128\n");
        return 2;
    }
    log::set_level(spdlog::level::warn);

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);

    engine_config cfg;
    core_set_error cerr;
    cfg.cores = parse_cores(o.cores, cerr);
    if (cfg.cores.size() != 1) {
        std::fprintf(stderr, "blockstamp: --cores must name one core\n");
        return 2;
    }
    cfg.memory.size_mb = 32;
    try {
        engine e(cfg);
        return e.run([&o] { return blockstamp_main(&o); });
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "blockstamp: %s\n", ex.what());
        return 1;
    }
}
