// allocs_per_io of our export, embedded in the bench process
// (vhost_allocs.hh).
#include "bench/vhost_allocs.hh"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <thread>

#include "bench/child_process.hh"
#include "bench/heap_count.hh"
#include "bench/vhost_perf_run.hh"
#include "rpc/embedded.hh"
#include "runtime/log.hh"

namespace ioe::bench::vhost_bench {

namespace {
using clk = std::chrono::steady_clock;
}

std::optional<alloc_figures> measure_allocs(const params& p, const workload& w, std::string* error) {
    char dir_template[] = "/tmp/vhost_bench_allocs.XXXXXX";
    const char* d = ::mkdtemp(dir_template);
    if (!d) return *error = "mkdtemp failed", std::nullopt;
    vhost_backend b;
    b.kind = backend_kind::ours;
    b.name = "ours (embedded)";
    b.dir = d;
    b.socket = b.dir + "/vhost.sock";
    b.pid = ::getpid();
    std::optional<alloc_figures> out;
    log::set_level(spdlog::level::warn);  // the embedded engine's info lines are not the bench's
    try {
        embedded_options o;
        o.cores = {p.target_core};
        o.dma_mb = 64;
        embedded eng(o);
        const auto dev = eng.create_device(fmt::format("null:///vhost_allocs?size_mb={}&blk_size={}", k_size_mb, k_block));
        eng.create_vhost({"vhost_allocs", b.socket, dev.device.name, 1, false, false});
        // The window: from warm-up + 0.3 s to 0.3 s before the end.
        params q = p;
        q.warmup = std::max(p.warmup, 0.5);
        q.seconds = std::max(p.seconds, 1.5);
        const auto args = vhost_perf_args(q, b, w);
        std::fprintf(stderr, "vhost_bench: allocations of our export (embedded): vhost-perf %s\n", w.name);
        const pid_t child = spawn(args, nullptr, {}, b.dir + "/vhost-perf.log");
        g_child_pid = child;
        const auto t0 = clk::now();
        std::this_thread::sleep_for(std::chrono::duration<double>(q.warmup + 0.3));
        const auto before = eng.list_vhost("vhost_allocs").at(0);
        const std::uint64_t a0 = heap_allocations();
        std::this_thread::sleep_until(t0 + std::chrono::duration_cast<clk::duration>(
                                               std::chrono::duration<double>(q.warmup + q.seconds - 0.3)));
        const std::uint64_t a1 = heap_allocations();
        const auto after = eng.list_vhost("vhost_allocs").at(0);
        const int rc = wait_child(child, clk::now() + std::chrono::seconds(30));
        g_child_pid = -1;
        const double ios = double((after.reads + after.writes) - (before.reads + before.writes));
        if (rc != 0 || ios <= 0) {
            *error = fmt::format("allocations of our export: vhost-perf exited with {} after {} I/Os ({})", rc, ios,
                                 joined(args));
        } else {
            out = alloc_figures{double(a1 - a0) / ios, double(a1 - a0), ios};
        }
        eng.destroy_vhost("vhost_allocs", true);
    } catch (const std::exception& e) {
        *error = fmt::format("allocations of our export: {}", e.what());
    }
    std::error_code ec;
    std::filesystem::remove_all(b.dir, ec);
    return out;
}

}  // namespace ioe::bench::vhost_bench
