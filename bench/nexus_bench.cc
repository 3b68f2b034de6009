// nexus_bench: what mirroring costs, against baselines measured in the same
// run and process (see bench/README.md, "nexus_bench").
//   nexus_bench [--json] [--quick] [--reps N] [--seconds S] [--warmup S] [--size-mb N]
//               [--rebuild-reps N] [--shards 1|2] [--poll busy|adaptive] [--only WORD] [--no-nvmf]
// One engine. On shard 0: four malloc:/// devices, each with a pool holding
// one thick replica (r0..r3, `--size-mb` each, written whole first); a
// nexus over bdev:///r0..r2 (device registry, memory health store); and a
// second nexus over three bare malloc:/// devices (b0..b2, no pool), the
// issue's "nexus3 with malloc children" read literally. A third nexus has
// three nvmf:// children: null:/// devices served, one subsystem each, by a
// second engine process (this binary with --serve-nvmf) on the other core.
// * 4 KiB random writes and reads at QD 32 on r0 directly (the baseline) and
//   on the nexus; writes also on a hand-written three-way mirror (the
//   generator itself writes r0, r1 and r2: what any mirror must spend),
//   reads also round robin over r0..r2 (the nexus's memory footprint).
//   IOPS per wall second and per CPU second of the reactor thread. Writes
//   also through the nvmf:// nexus and to one nvmf:// child directly (its
//   own connection to child 0's subsystem).
//   Each repetition runs every path once, in alternating order (ABBA), so
//   baseline and nexus windows are seconds apart; medians are reported.
// * A full rebuild of r3 (add_child with rebuild, until rebuilds_idle, then
//   remove_child) against a plain copy r0 -> r3 through the same channels
//   with the rebuild's segment size and parallelism, alternately.
// The I/O generator runs on the reactor: QD coroutines with one DMA buffer
// each, latency sampled (1 I/O in 16) into a preallocated array; the heap is
// not touched inside a window, and global operator new is counted to show it.
// Files: this one (options, the run plan, the report); nexus_load.cc (the
// windows, the copy baseline, the setup writes); nvmf_children_server.cc
// (the --serve-nvmf process and starting and stopping it).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fmt/format.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/bench_util.hh"
#include "bench/nexus_load.hh"
#include "bench/nvmf_children_server.hh"
#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/target/target.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "storage/device_registry.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "storage/pool.hh"

using namespace ioe::bench;
using namespace ioe::bench::nexus_bench;

namespace {

using ioe::future;
using clk = std::chrono::steady_clock;

struct params {
    bool json = false, quick = false;
    unsigned reps = 5, rebuild_reps = 3, shards = 2;
    double seconds = 2, warmup = 0.3;
    std::uint64_t size_mb = 1024;
    ioe::poll_mode poll = ioe::poll_mode::adaptive;
    std::string only;  // run only the windows (or copy/rebuild) whose key contains this (profiling)
    bool nvmf = true;  // --no-nvmf: no nvmf:// children (no second process)
    // As the daemon: a target is the registry's reservation authority, so
    // the bdev:/// children are reserved_devices (docs/nexus.md, "Fencing
    // local children"). --no-reservations: bare children, to price that.
    bool reservations = true;
    unsigned nvmf_core = 0;       // the serving process's core (the one shard 0 is not on, when there is one)
    std::uint16_t nvmf_port = 0;  // where it serves; 0: not running
};

// ---- results ----------------------------------------------------------------

// Paths measured in windows.
// mirror3: the generator writes r0, r1 and r2 itself. roundrobin3: it reads
// them in turn (the nexus's memory footprint without the nexus).
// nexus3malloc: the nexus over bare malloc devices (no pool, no replica).
// nvmf1: one nvmf:// child directly; nexus3nvmf: the nexus over three.
enum path {
    replica_write,
    nexus_write,
    mirror_write,
    replica_read,
    nexus_read,
    rr_read,
    nexus_m_write,
    nexus_m_read,
    nvmf1_write,
    nexus_nvmf_write,
    path_count
};
constexpr const char* path_key[path_count] = {"replica_randwrite4k_qd32",     "nexus3_randwrite4k_qd32",
                                              "mirror3_randwrite4k_qd32",     "replica_randread4k_qd32",
                                              "nexus3_randread4k_qd32",       "roundrobin3_randread4k_qd32",
                                              "nexus3malloc_randwrite4k_qd32", "nexus3malloc_randread4k_qd32",
                                              "nvmf1_randwrite4k_qd32",        "nexus3nvmf_randwrite4k_qd32"};

struct results {
    std::vector<window> runs[path_count];
    std::vector<double> copy_mib_s, rebuild_mib_s, rebuild_job_mib_s;
    std::uint64_t io_errors = 0;
    std::string error;
};

bool wanted(const params* p, std::string_view key) { return key.find(p->only) != std::string_view::npos; }

// ---- the run --------------------------------------------------------------------

future<> measure(const params* p, results* res, ioe::device_registry* reg) {
    std::vector<std::unique_ptr<ioe::pool>> pools;
    std::vector<ioe::replica*> r;
    {
        std::vector<ioe::dma_buffer> fill_bufs = dma_buffers(4, 1 << 20);
        for (unsigned i = 0; i <= children; ++i) {
            r.push_back(co_await make_replica(reg, i, p->size_mb, &pools, &fill_bufs));
        }
    }
    ioe::memory_health_store store;
    ioe::nexus_options o;
    o.health_key = "/ioengine/nexus/nexus_bench";
    o.health = &store;
    o.registry = reg;
    std::unique_ptr<ioe::nexus> nx = co_await ioe::nexus::create(
        "nexus_bench", ioe::uuid::random(), {"bdev:///nb_r0", "bdev:///nb_r1", "bdev:///nb_r2"}, o);
    {
        std::vector<ioe::dma_buffer> fill_bufs = dma_buffers(4, 1 << 20);
        for (unsigned i = 0; i < children; ++i) {
            ioe::block_device* b = co_await reg->create(
                fmt::format("malloc:///nb_b{}?size_mb={}&blk_size={}", i, p->size_mb, block_bytes));
            co_await fill(b, &fill_bufs);
        }
    }
    ioe::nexus_options om = o;
    om.health_key = "/ioengine/nexus/nexus_bench_malloc";
    std::unique_ptr<ioe::nexus> nm = co_await ioe::nexus::create(
        "nexus_bench_malloc", ioe::uuid::random(), {"bdev:///nb_b0", "bdev:///nb_b1", "bdev:///nb_b2"}, om);
    // nvmf:// children: the nexus opens its own connections; the baseline
    // has one of its own to child 0's subsystem.
    std::unique_ptr<ioe::nexus> nn;
    ioe::block_device* nvmf_one = nullptr;
    std::exception_ptr failed;
    try {
        if (p->nvmf_port) {
            auto uri = [p](unsigned i) {
                return fmt::format("nvmf://127.0.0.1:{}/{}", p->nvmf_port, nvmf_child_nqn(i));
            };
            nvmf_one = co_await reg->create(uri(0) + "?name=nb_nvmf1");
            ioe::nexus_options on = o;
            on.health_key = "/ioengine/nexus/nexus_bench_nvmf";
            nn = co_await ioe::nexus::create("nexus_bench_nvmf", ioe::uuid::random(), {uri(0), uri(1), uri(2)}, on);
        }
        generator g;
        g.bufs = dma_buffers(queue_depth, io_bytes);
        g.running.reserve(queue_depth);
        g.samples.assign(static_cast<std::size_t>(std::min(p->seconds * 4e6 / sample_every, 64e6)), 0);  // touched now
        ioe::block_device* const base = r[0];
        for (unsigned rep = 0; rep < p->reps; ++rep) {
            // ABBA: even repetitions baseline first, odd ones nexus first.
            const bool base_first = rep % 2 == 0;
            auto label = [rep](int k) { return fmt::format("rep {} {}", rep, path_key[k]); };
            // The baseline: r0 (also the nexus's child 0); the hand-written paths: r0..r2.
            auto devs_of = [&](int k) {
                if (k == replica_write || k == replica_read) return std::vector<ioe::block_device*>{base};
                if (k == nexus_write || k == nexus_read) return std::vector<ioe::block_device*>{nx.get()};
                if (k == nexus_m_write || k == nexus_m_read) return std::vector<ioe::block_device*>{nm.get()};
                if (k == nvmf1_write) return std::vector<ioe::block_device*>{nvmf_one};
                if (k == nexus_nvmf_write) return std::vector<ioe::block_device*>{nn.get()};
                return std::vector<ioe::block_device*>{r[0], r[1], r[2]};
            };
            for (int k : base_first ? std::array{replica_write, nexus_write, mirror_write, nexus_m_write, nvmf1_write,
                                                 nexus_nvmf_write}
                                    : std::array{nexus_nvmf_write, nvmf1_write, nexus_m_write, mirror_write,
                                                 nexus_write, replica_write}) {
                if (!wanted(p, path_key[k])) continue;
                if ((k == nvmf1_write || k == nexus_nvmf_write) && !nn) continue;
                res->runs[k].push_back(co_await run_window(&g, p->warmup, p->seconds, devs_of(k), true,
                                                           label(k).c_str(), &res->io_errors));
            }
            for (int k : base_first ? std::array{replica_read, nexus_read, rr_read, nexus_m_read}
                                    : std::array{nexus_m_read, rr_read, nexus_read, replica_read}) {
                if (!wanted(p, path_key[k])) continue;
                res->runs[k].push_back(co_await run_window(&g, p->warmup, p->seconds, devs_of(k), false,
                                                           label(k).c_str(), &res->io_errors));
            }
        }
        // Rebuild vs copy, alternately. r3 has been written whole, so neither
        // pays for first-touch page faults.
        std::vector<ioe::dma_buffer> copy_bufs = dma_buffers(o.rebuild_parallel, o.segment_bytes);
        const std::uint64_t blocks = nx->block_count();
        for (unsigned rep = 0; rep < p->rebuild_reps; ++rep) {
            for (int k = 0; k < 2; ++k) {
                if (!wanted(p, k == 0 ? "copy" : "rebuild")) continue;
                if ((k == 0) == (rep % 2 == 0)) {
                    std::fprintf(stderr, "nexus_bench: rep %u copy\n", rep);
                    res->copy_mib_s.push_back(co_await copy_once(r[0], r[3], blocks, &o, &copy_bufs));
                    continue;
                }
                std::fprintf(stderr, "nexus_bench: rep %u rebuild\n", rep);
                const clk::time_point t0 = clk::now();
                co_await nx->add_child("bdev:///nb_r3", true);
                co_await nx->rebuilds_idle();
                const double secs = std::chrono::duration<double>(clk::now() - t0).count();
                const ioe::rebuild_progress& h = nx->rebuild_history().back();
                if (h.state != ioe::rebuild_state::completed || h.blocks_done != blocks) {
                    throw std::runtime_error(fmt::format("rebuild of nb_r3: {} after {} of {} blocks ({})",
                                                         ioe::to_string(h.state), h.blocks_done, blocks, h.error));
                }
                const double mib = double(blocks * block_bytes) / double(1 << 20);
                res->rebuild_mib_s.push_back(mib / secs);
                const double job_secs = std::chrono::duration<double>(h.ended - h.started).count();
                res->rebuild_job_mib_s.push_back(job_secs > 0 ? mib / job_secs : 0);
                co_await nx->remove_child("bdev:///nb_r3");
            }
        }
    } catch (...) {
        failed = std::current_exception();
    }
    co_await nx->close();
    nx.reset();
    co_await nm->close();
    nm.reset();
    if (nn) {
        co_await nn->close();
        nn.reset();
    }
    for (auto& pl : pools) co_await pl->destroy();
    if (failed) std::rethrow_exception(failed);
}

future<int> engine_main(const params* p, results* res) {
    ioe::nvme::register_nvmf_backend();
    ioe::device_registry reg;
    // Not listening: only the authority of the children's reservations.
    ioe::nvme::nvmf_target target("127.0.0.1", 0);
    if (p->reservations) reg.set_reservation_authority(&target);
    try {
        co_await measure(p, res, &reg);
    } catch (const std::exception& e) {
        res->error = e.what();
    }
    co_await reg.close_all();
    co_return res->error.empty() ? 0 : 1;
}

// ---- arguments, report -----------------------------------------------------------

void usage() {
    std::fputs(
        "usage: nexus_bench [--json] [--quick] [--reps N] [--seconds S] [--warmup S] [--size-mb N]\n"
        "                   [--rebuild-reps N] [--shards 1|2] [--poll busy|adaptive] [--only WORD] [--no-nvmf]\n"
        "  --reps: repetitions of every IOPS window (5); --seconds/--warmup: measured and unmeasured\n"
        "  seconds per window (2, 0.3); --size-mb: each replica (1024; the rebuilt child's size);\n"
        "  --rebuild-reps: rebuild/copy pairs (3); --quick: 1 rep of 0.5 s windows, 256 MiB replicas;\n"
        "  --only WORD: only the windows whose key contains WORD, or copy/rebuild (for perf record);\n"
        "  --no-nvmf: no nexus over nvmf:// children (no second engine process)\n"
        "  --no-reservations: local children without the reservation check (the daemon has it)\n",
        stderr);
}

bool parse_args(int argc, char** argv, params& p) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        auto number = [&](double min, double max, double& out) {
            if (!v) return false;
            char* end = nullptr;
            out = std::strtod(v, &end);
            ++i;
            return *end == '\0' && out >= min && out <= max;
        };
        double d = 0;
        if (a == "--json") {
            p.json = true;
        } else if (a == "--quick") {
            p.quick = true, p.reps = 1, p.rebuild_reps = 1, p.seconds = 0.5, p.warmup = 0.1, p.size_mb = 256;
        } else if (a == "--reps" && number(1, 100, d)) {
            p.reps = static_cast<unsigned>(d);
        } else if (a == "--rebuild-reps" && number(1, 100, d)) {
            p.rebuild_reps = static_cast<unsigned>(d);
        } else if (a == "--seconds" && number(0.1, 60, p.seconds)) {
        } else if (a == "--warmup" && number(0, 10, p.warmup)) {
        } else if (a == "--size-mb" && number(64, 8192, d)) {
            p.size_mb = static_cast<std::uint64_t>(d);
        } else if (a == "--shards" && number(1, 2, d)) {
            p.shards = static_cast<unsigned>(d);
        } else if (a == "--no-nvmf") {
            p.nvmf = false;
        } else if (a == "--no-reservations") {
            p.reservations = false;
        } else if (a == "--only" && v) {
            p.only = argv[++i];
        } else if (a == "--poll" && v && (std::string_view(v) == "busy" || std::string_view(v) == "adaptive")) {
            p.poll = std::string_view(argv[++i]) == "busy" ? ioe::poll_mode::busy : ioe::poll_mode::adaptive;
        } else {
            return false;
        }
    }
    return true;
}

template <class F>
std::vector<double> each(const std::vector<window>& w, F f) {
    std::vector<double> v;
    for (const auto& x : w) v.push_back(f(x));
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::string_view(argv[1]) == "--serve-nvmf") return serve_main(argc, argv);
    params p;
    if (!parse_args(argc, argv, p)) return usage(), 2;
    ioe::log::set_level(spdlog::level::warn);
    const auto allowed = ioe::allowed_cores();
    if (allowed.size() < p.shards) {
        std::fprintf(stderr, "nexus_bench: %u shards need %u allowed cores, the process has %zu\n", p.shards,
                     p.shards, allowed.size());
        return 1;
    }
    const double load_start = load_average();
    ioe::bench::start_watchdog("nexus_bench", std::chrono::seconds(
        static_cast<long>(p.reps * path_count * (p.seconds + p.warmup) + p.rebuild_reps * 30 + 300)));

    results res;
    // The nvmf:// children's server, started before our engine: on the core
    // the windows' shard 0 is not on (the machine's other core).
    nvmf_server server;
    std::string nvmf_error;
    p.nvmf_core = allowed.size() > 1 ? allowed[1] : allowed[0];
    if (p.nvmf && (wanted(&p, path_key[nvmf1_write]) || wanted(&p, path_key[nexus_nvmf_write]))) {
        std::fprintf(stderr, "nexus_bench: starting the nvmf:// children's server on core %u\n", p.nvmf_core);
        p.nvmf_port = start_nvmf_server(p.nvmf_core, p.size_mb, server, &nvmf_error);
    }
    ioe::engine_config cfg;
    cfg.cores.assign(allowed.begin(), allowed.begin() + p.shards);
    cfg.reactor.mode = p.poll;
    cfg.memory.size_mb = 64;  // 32 x 4 KiB, 16 x 256 KiB copy/rebuild buffers (twice), 4 x 1 MiB fill
    int rc = 1;
    try {
        ioe::engine e(cfg);
        rc = e.run([&p, &res] { return engine_main(&p, &res); });
    } catch (const std::exception& ex) {
        res.error = ex.what();
    }
    if (rc != 0 && res.error.empty()) res.error = fmt::format("engine exited with {}", rc);
    if (const int src = stop_nvmf_server(server); src != 0 && nvmf_error.empty()) {
        nvmf_error = fmt::format("the nvmf:// children's server exited with {}", src);
    }
    if (res.error.empty()) res.error = nvmf_error;
    if (!res.error.empty()) std::fprintf(stderr, "nexus_bench: %s\n", res.error.c_str());
    const double load_end = load_average();

    // ---- report: medians over the repetitions ----
    std::vector<std::pair<std::string, std::string>> kv;
    auto num = [&kv](const std::string& k, double v, int digits) {
        kv.emplace_back(k, fmt::format("{:.{}f}", v, digits));
    };
    double iops[path_count] = {}, iops_cpu[path_count] = {};
    double max_allocs = 0, max_wait = 0;
    for (int k = 0; k < path_count; ++k) {
        iops[k] = median(each(res.runs[k], [](const window& w) { return w.iops; }));
        iops_cpu[k] = median(each(res.runs[k], [](const window& w) { return w.iops_cpu; }));
        num(fmt::format("{}_iops", path_key[k]), iops[k], 0);
        num(fmt::format("{}_iops_per_cpu_s", path_key[k]), iops_cpu[k], 0);
        num(fmt::format("{}_p50_us", path_key[k]), median(each(res.runs[k], [](const window& w) { return w.p50_us; })),
            3);
        for (const auto& w : res.runs[k]) {
            max_allocs = std::max(max_allocs, w.allocs_per_io);
            max_wait = std::max(max_wait, w.cpu_wait_pct);
        }
    }
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0; };
    // Per repetition, the ratio of two windows seconds apart.
    auto paired = [&res, &ratio](int a, int b) {
        std::vector<double> v;
        for (std::size_t i = 0; i < res.runs[a].size() && i < res.runs[b].size(); ++i)
            v.push_back(ratio(res.runs[a][i].iops, res.runs[b][i].iops));
        return median(v);
    };
    const double write_ratio = ratio(iops[nexus_write], iops[replica_write]);
    const double read_ratio = ratio(iops[nexus_read], iops[replica_read]);
    const double copy = median(res.copy_mib_s), rebuild = median(res.rebuild_mib_s);
    const double rebuild_ratio = ratio(rebuild, copy);
    num("nexus_write_ratio", write_ratio, 3);
    num("nexus_read_ratio", read_ratio, 3);
    num("nexus_write_ratio_paired_median", paired(nexus_write, replica_write), 3);
    num("nexus_read_ratio_paired_median", paired(nexus_read, replica_read), 3);
    num("nexus_write_ratio_cpu", ratio(iops_cpu[nexus_write], iops_cpu[replica_write]), 3);
    num("nexus_read_ratio_cpu", ratio(iops_cpu[nexus_read], iops_cpu[replica_read]), 3);
    num("nexus_malloc_children_write_ratio", ratio(iops[nexus_m_write], iops[replica_write]), 3);
    num("nexus_malloc_children_read_ratio", ratio(iops[nexus_m_read], iops[replica_read]), 3);
    num("nexus_malloc_children_write_ratio_cpu", ratio(iops_cpu[nexus_m_write], iops_cpu[replica_write]), 3);
    num("nexus_malloc_children_read_ratio_cpu", ratio(iops_cpu[nexus_m_read], iops_cpu[replica_read]), 3);
    // Over nvmf:// children (null when they were not measured).
    const bool nvmf_ran = !res.runs[nexus_nvmf_write].empty() && !res.runs[nvmf1_write].empty();
    const double nvmf_ratio = ratio(iops[nexus_nvmf_write], iops[nvmf1_write]);
    auto opt = [&kv, nvmf_ran](const std::string& k, double v) {
        kv.emplace_back(k, nvmf_ran ? fmt::format("{:.3f}", v) : std::string("null"));
    };
    opt("nexus_nvmf_children_write_ratio", nvmf_ratio);
    opt("nexus_nvmf_children_write_ratio_paired_median", paired(nexus_nvmf_write, nvmf1_write));
    opt("nexus_nvmf_children_write_ratio_cpu", ratio(iops_cpu[nexus_nvmf_write], iops_cpu[nvmf1_write]));
    num("mirror3_write_ratio", ratio(iops[mirror_write], iops[replica_write]), 3);
    num("nexus_vs_mirror3_write_ratio", ratio(iops[nexus_write], iops[mirror_write]), 3);
    num("roundrobin3_read_ratio", ratio(iops[rr_read], iops[replica_read]), 3);
    num("nexus_vs_roundrobin3_read_ratio", ratio(iops[nexus_read], iops[rr_read]), 3);
    num("nexus_vs_mirror3_write_ratio_cpu", ratio(iops_cpu[nexus_write], iops_cpu[mirror_write]), 3);
    num("nexus_vs_roundrobin3_read_ratio_cpu", ratio(iops_cpu[nexus_read], iops_cpu[rr_read]), 3);
    num("rebuild_mib_per_s", rebuild, 1);
    num("rebuild_job_mib_per_s", median(res.rebuild_job_mib_s), 1);
    num("copy_mib_per_s", copy, 1);
    num("rebuild_ratio", rebuild_ratio, 3);
    num("allocs_per_io_max", max_allocs, 4);
    num("engine_cpu_wait_pct_max", max_wait, 1);
    num("io_errors", double(res.io_errors), 0);
    const bool ran = res.error.empty();
    const bool w_met = ran && write_ratio >= 0.8, r_met = ran && read_ratio >= 0.95;
    const bool b_met = ran && rebuild_ratio >= 0.8;
    const char* n_met = !nvmf_ran ? "null" : (ran && nvmf_ratio >= 0.6 ? "true" : "false");

    if (p.json) {
        std::string out = "{";
        for (const auto& [k, v] : kv) out += fmt::format("\"{}\": {}, ", k, v);
        auto list = [](const std::vector<double>& v) {
            std::string s;
            for (double x : v) s += fmt::format("{}{:.0f}", s.empty() ? "" : ", ", x);
            return "[" + s + "]";
        };
        out += "\"runs_detail\": {";
        for (int k = 0; k < path_count; ++k) {
            out += fmt::format("\"{}_iops\": {}, ", path_key[k],
                               list(each(res.runs[k], [](const window& w) { return w.iops; })));
            out += fmt::format("\"{}_iops_per_cpu_s\": {}, ", path_key[k],
                               list(each(res.runs[k], [](const window& w) { return w.iops_cpu; })));
            out += fmt::format("\"{}_cpu_wait_pct\": {}, ", path_key[k],
                               list(each(res.runs[k], [](const window& w) { return w.cpu_wait_pct; })));
        }
        out += fmt::format("\"copy_mib_per_s\": {}, \"rebuild_mib_per_s\": {}}}, ", list(res.copy_mib_s),
                           list(res.rebuild_mib_s));
        out += fmt::format(
            "\"targets\": {{\"nexus_write_ratio_min\": 0.8, \"nexus_write_ratio_met\": {}, \"nexus_read_ratio_min\": "
            "0.95, \"nexus_read_ratio_met\": {}, \"rebuild_ratio_min\": 0.8, \"rebuild_ratio_met\": {}, "
            "\"nexus_nvmf_children_write_ratio_min\": 0.6, \"nexus_nvmf_children_write_ratio_met\": {}}}, ",
            w_met, r_met, b_met, n_met);
        out += fmt::format(
            "\"config\": {{\"reps\": {}, \"seconds\": {}, \"warmup\": {}, \"replica_mb\": {}, \"rebuild_reps\": {}, "
            "\"shards\": {}, \"poll\": \"{}\", \"qd\": {}, \"segment_bytes\": {}, \"rebuild_parallel\": {}, "
            "\"nvmf_children\": \"null:///, one subsystem each, served by nexus_bench --serve-nvmf on core {} "
            "(adaptive){}\", \"local_children_reserved\": {}, \"loadavg_start\": {:.2f}, \"loadavg_end\": {:.2f}}}",
            p.reps, p.seconds, p.warmup, p.size_mb, p.rebuild_reps, p.shards,
            p.poll == ioe::poll_mode::busy ? "busy" : "adaptive", queue_depth, ioe::nexus_options{}.segment_bytes,
            ioe::nexus_options{}.rebuild_parallel, p.nvmf_core, p.nvmf ? "" : "; off (--no-nvmf)",
            p.reservations ? "true" : "false", load_start,
            load_end);
        if (!res.error.empty()) out += fmt::format(", \"error\": \"{}\"", ioe::bench::json_escape(res.error));
        std::fputs((out + "}\n").c_str(), stdout);
    } else {
        for (const auto& [k, v] : kv) std::printf("%-40s %14s\n", k.c_str(), v.c_str());
        std::printf("%-40s %14s\n", "target nexus_write_ratio >= 0.8", w_met ? "met" : "MISSED");
        std::printf("%-40s %14s\n", "target nexus_read_ratio >= 0.95", r_met ? "met" : "MISSED");
        std::printf("%-40s %14s\n", "target rebuild_ratio >= 0.8", b_met ? "met" : "MISSED");
        std::printf("%-40s %14s\n", "target nexus_nvmf_children_write_ratio >= 0.6",
                    !nvmf_ran ? "not run" : (std::string_view(n_met) == "true" ? "met" : "MISSED"));
    }
    return res.error.empty() && res.io_errors == 0 ? 0 : 1;
}
