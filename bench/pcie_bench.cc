// pcie_bench: the user-space NVMe PCIe driver's own costs, against the
// in-process controller model (see bench/README.md), or IOPS per core on a
// real device bound to vfio-pci.
//
//   pcie_bench [--json] [--ios N] [--qd N]                 (model)
//   pcie_bench --device 0000:00:04.0 [--seconds N] [--qd N] [--json] [--huge-mb N]
//
// Model keys: pcie_submit_ns (driver-side cost per command with PRPs: wall
// time per 4 KiB write at queue depth 1 through the channel, minus the time
// the model spends processing its doorbells, i.e. what a real device would
// do in hardware), pcie_sgl_submit_ns (the same with an SGL: one Data Block
// descriptor), pcie_allocs_per_io (global operator new calls per I/O after
// warm-up, the worse of the two: must be 0), pcie_model_iops_qd (the
// loop's IOPS at --qd with PRPs, an upper bound set by the model). Device keys: iops_per_core and read_4k_us_avg for
// 4 KiB random reads at --qd on one shard.
//
// Heap allocations are counted by the global operator new of heap_count.cc.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "bench/heap_count.hh"
#include "nvme/pcie/controller_model.hh"
#include "nvme/pcie/pcie_backend.hh"
#include "nvme/pcie/pcie_device.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "storage/backend_schemes.hh"

namespace {

using namespace ioe;
using clk = std::chrono::steady_clock;

struct params {
    bool json = false;
    std::uint64_t ios = 200'000;
    unsigned qd = 32;
    std::string device;
    double seconds = 10;
    std::size_t huge_mb = 0;
};

struct results {
    double submit_ns = 0, sgl_submit_ns = 0, allocs_per_io = 0, model_iops = 0, qd1_ns = 0, model_ns = 0;
    double device_iops = 0, device_lat_us = 0;
    std::string error;
};

std::int64_t ns_since(clk::time_point t0) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0).count();
}

// `n` 4 KiB commands at depth qd over lba [0, span), each worker on its own buffer.
future<> worker(io_channel* ch, std::byte* buf, std::uint64_t n, std::uint64_t span_blocks, std::uint32_t blocks,
                bool is_read, unsigned seed, std::uint64_t* errors) {
    std::uint64_t x = seed * 2654435761u + 1;
    io_vec v{buf, blocks * ch->device().block_size(), -1};
    for (std::uint64_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const std::uint64_t lba = (x >> 20) % (span_blocks / blocks) * blocks;
        io_status s = is_read ? co_await ch->read(lba, blocks, io_vecs(&v, 1))
                              : co_await ch->write(lba, blocks, io_vecs(&v, 1));
        if (!ok(s)) ++*errors;
    }
}

future<std::uint64_t> run_depth(engine* e, io_channel* ch, unsigned qd, std::uint64_t per_worker, bool is_read,
                                std::vector<dma_buffer>& bufs) {
    std::uint64_t errors = 0;
    std::vector<future<>> fs;
    fs.reserve(qd);
    const std::uint32_t blocks = 4096 / ch->device().block_size();
    for (unsigned i = 0; i < qd; ++i) {
        fs.push_back(worker(ch, bufs[i].data(), per_worker, ch->device().block_count(), blocks, is_read, i + 1,
                            &errors));
    }
    for (auto& f : fs) co_await std::move(f);
    (void)e;
    co_return errors;
}

struct model_figures {
    double submit_ns = 0, allocs_per_io = 0, model_iops = 0, qd1_ns = 0, model_ns = 0;
};

// One device over a fresh model, with PRPs (sgl=off) or SGLs (sgl=on).
future<std::uint64_t> model_pass(engine* e, const params& p, nvme::sgl_mode sgl, bool with_qd, model_figures& out) {
    nvme::model_config cfg;
    cfg.block_size = 512;
    cfg.block_count = (64ull << 20) / 512;
    void* base = e->dma().regions().front().iov_base;
    nvme::controller_model model(cfg, base, e->dma().size_bytes());
    nvme::pcie_options opts;
    opts.sgl = sgl;
    auto dev = co_await nvme::pcie_device::open(
        "bench", "pcie:///model", std::make_unique<nvme::model_bus>(model, base, e->dma().size_bytes()), opts);
    io_channel* ch = dev->channel();
    std::vector<dma_buffer> bufs;
    for (unsigned i = 0; i < std::max(p.qd, 1u); ++i) bufs.push_back(std::move(e->dma().allocate(4096).value()));

    // Warm-up: slab caches, pollers, timers.
    std::uint64_t errors = co_await run_depth(e, ch, 1, 20'000, false, bufs);
    errors += co_await run_depth(e, ch, p.qd, 2'000, false, bufs);

    // Allocations per I/O and the driver-side cost at depth 1.
    const std::uint64_t model_before = model.stats().busy_ns;
    const std::uint64_t a0 = ioe::bench::heap_allocations();
    auto t0 = clk::now();
    errors += co_await run_depth(e, ch, 1, p.ios, false, bufs);
    const double wall = static_cast<double>(ns_since(t0));
    const std::uint64_t allocs = ioe::bench::heap_allocations() - a0;
    const double model_ns = static_cast<double>(model.stats().busy_ns - model_before);
    out.qd1_ns = wall / p.ios;
    out.model_ns = model_ns / p.ios;
    out.submit_ns = (wall - model_ns) / p.ios;
    out.allocs_per_io = static_cast<double>(allocs) / p.ios;
    // Every measured command really used the data pointer asked for.
    const auto st = model.stats();
    if ((sgl == nvme::sgl_mode::on ? st.prp_commands : st.sgl_commands) != 0) ++errors;

    if (with_qd) {
        // Throughput at depth.
        const std::uint64_t per = std::max<std::uint64_t>(p.ios / p.qd, 1);
        t0 = clk::now();
        errors += co_await run_depth(e, ch, p.qd, per, true, bufs);
        out.model_iops = static_cast<double>(per * p.qd) * 1e9 / static_cast<double>(ns_since(t0));
    }
    bufs.clear();
    co_await dev->close();
    co_return errors;
}

future<int> model_run(engine* e, const params& p, results& out) {
    model_figures prp, sgl;
    std::uint64_t errors = co_await model_pass(e, p, nvme::sgl_mode::off, true, prp);
    errors += co_await model_pass(e, p, nvme::sgl_mode::on, false, sgl);
    out.submit_ns = prp.submit_ns;
    out.qd1_ns = prp.qd1_ns;
    out.model_ns = prp.model_ns;
    out.model_iops = prp.model_iops;
    out.sgl_submit_ns = sgl.submit_ns;
    out.allocs_per_io = std::max(prp.allocs_per_io, sgl.allocs_per_io);
    if (errors) out.error = fmt::format("{} I/O errors", errors);
    co_return errors ? 1 : 0;
}

future<int> device_run(engine* e, const params& p, results& out) {
    nvme::register_pcie_backend();
    std::string err;
    auto uri = parse_device_uri("pcie:///" + p.device, err);
    if (!uri) {
        out.error = err;
        co_return 2;
    }
    std::unique_ptr<block_device> dev;
    try {
        dev = co_await find_backend_scheme("pcie")(*uri);
    } catch (const std::exception& ex) {
        out.error = ex.what();
        co_return 2;
    }
    io_channel* ch = dev->channel();
    std::vector<dma_buffer> bufs;
    for (unsigned i = 0; i < p.qd; ++i) bufs.push_back(std::move(e->dma().allocate(4096).value()));
    std::uint64_t errors = co_await run_depth(e, ch, p.qd, 1000, true, bufs);
    // Calibrate the count to roughly --seconds.
    auto t0 = clk::now();
    errors += co_await run_depth(e, ch, p.qd, 2000, true, bufs);
    const double rate = 2000.0 * p.qd * 1e9 / static_cast<double>(ns_since(t0));
    const auto per = static_cast<std::uint64_t>(rate * p.seconds / p.qd) + 1;
    t0 = clk::now();
    errors += co_await run_depth(e, ch, p.qd, per, true, bufs);
    const double ns = static_cast<double>(ns_since(t0));
    out.device_iops = static_cast<double>(per * p.qd) * 1e9 / ns;
    out.device_lat_us = ns / 1e3 / static_cast<double>(per);
    if (errors) out.error = fmt::format("{} I/O errors", errors);
    bufs.clear();
    co_await dev->close();
    co_return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    params p;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "pcie_bench: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--json") p.json = true;
        else if (a == "--ios") p.ios = std::stoull(next());
        else if (a == "--qd") p.qd = static_cast<unsigned>(std::stoul(next()));
        else if (a == "--device") p.device = next();
        else if (a == "--seconds") p.seconds = std::stod(next());
        else if (a == "--huge-mb") p.huge_mb = std::stoull(next());
        else {
            std::fprintf(stderr, "usage: pcie_bench [--json] [--ios N] [--qd N] [--device BDF [--seconds N] [--huge-mb N]]\n");
            return 2;
        }
    }
    p.qd = std::clamp(p.qd, 1u, 255u);
    log::set_level(spdlog::level::warn);
    engine_config cfg;
    cfg.cores = {allowed_cores().front()};
    cfg.reactor.mode = poll_mode::busy;
    cfg.memory.size_mb = 64;
    cfg.memory.huge_mb = p.huge_mb;
    results r;
    int rc = 0;
    {
        engine e(cfg);
        rc = e.run([&]() -> future<int> {
            return p.device.empty() ? model_run(&e, p, r) : device_run(&e, p, r);
        });
    }
    if (p.json) {
        if (p.device.empty()) {
            std::printf("{\"pcie_submit_ns\": %.1f, \"pcie_sgl_submit_ns\": %.1f, \"pcie_allocs_per_io\": %.4f, "
                        "\"pcie_qd1_ns\": %.1f, \"pcie_model_ns\": %.1f, \"pcie_model_iops_qd\": %.0f, \"qd\": %u, "
                        "\"ios\": %llu, \"error\": \"%s\"}\n",
                        r.submit_ns, r.sgl_submit_ns, r.allocs_per_io, r.qd1_ns, r.model_ns, r.model_iops, p.qd,
                        static_cast<unsigned long long>(p.ios), r.error.c_str());
        } else {
            std::printf("{\"device\": \"%s\", \"iops_per_core\": %.0f, \"read_4k_us_avg\": %.1f, \"qd\": %u, "
                        "\"error\": \"%s\"}\n",
                        p.device.c_str(), r.device_iops, r.device_lat_us, p.qd, r.error.c_str());
        }
    } else if (p.device.empty()) {
        std::printf("driver submit cost per command   %8.1f ns (PRP), %.1f ns (SGL)\n", r.submit_ns, r.sgl_submit_ns);
        std::printf("allocations per I/O              %8.4f\n", r.allocs_per_io);
        std::printf("QD1 4 KiB write, wall            %8.1f ns (model %.1f ns)\n", r.qd1_ns, r.model_ns);
        std::printf("model-bound IOPS at QD %-3u       %8.0f\n", p.qd, r.model_iops);
    } else {
        std::printf("%s: 4 KiB random reads at QD %u on one core: %.0f IOPS, %.1f us average\n", p.device.c_str(),
                    p.qd, r.device_iops, r.device_lat_us);
    }
    if (!r.error.empty()) std::fprintf(stderr, "pcie_bench: %s\n", r.error.c_str());
    return rc;
}
