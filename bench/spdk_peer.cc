// SPDK's nvmf_tgt and spdk_nvme_perf for nvmf_bench (spdk_peer.hh).
#include "bench/spdk_peer.hh"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <iterator>

#include "bench/child_process.hh"
#include "bench/nvmf_targets.hh"

namespace ioe::bench::nvmf_bench {

namespace {

using clk = std::chrono::steady_clock;

// A DPDK core mask for one core (-c / -m of the SPDK tools).
std::string core_mask(unsigned core) {
    return core < 64 ? fmt::format("{:#x}", std::uint64_t{1} << core) : fmt::format("[{}]", core);
}

std::vector<std::string> spdk_perf_args(const params& p, std::uint16_t port, const std::string& nqn,
                                        const workload& w) {
    std::vector<std::string> a = {p.spdk_dir + "/bin/spdk_nvme_perf", "-c", core_mask(p.perf_core), "-q",
                                  std::to_string(w.qd), "-o", std::to_string(w.bytes), "-w", w.rw, "-t",
                                  std::to_string(p.spdk_seconds())};
    if (p.spdk_warmup() > 0) {
        a.push_back("-a");
        a.push_back(std::to_string(p.spdk_warmup()));
    }
    a.push_back("-L");
    a.push_back("-r");
    a.push_back(fmt::format("trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{} subnqn:{}", port, nqn));
    return a;
}

// spdk_nvme_perf's results: the Total line (IOPS, MiB/s, average, min, max
// in us) and, with -L, the first "Summary latency data" block's 50 % and
// 99 % lines ("  50.00000% :    57.783us"). False without a Total line.
bool parse_spdk_perf(const std::string& out, figures& f, bool* have_percentiles) {
    std::size_t at = out.rfind("\nTotal");
    if (at == std::string::npos) return false;
    const std::size_t colon = out.find(':', at);
    double min_us = 0, max_us = 0;
    if (colon == std::string::npos || std::sscanf(out.c_str() + colon + 1, "%lf %lf %lf %lf %lf", &f.iops, &f.mibs,
                                                  &f.avg_us, &min_us, &max_us) != 5) {
        return false;
    }
    auto percentile = [&](const char* label, double& v) {
        const std::size_t summary = out.find("Summary latency data", at);
        const std::size_t k = summary == std::string::npos ? summary : out.find(label, summary);
        if (k == std::string::npos) return false;
        const std::size_t c = out.find(':', k);
        return c != std::string::npos && std::sscanf(out.c_str() + c + 1, "%lf", &v) == 1;
    };
    *have_percentiles = percentile(" 50.00000%", f.p50_us) && percentile(" 99.00000%", f.p99_us);
    return true;
}

}  // namespace

bool start_spdk(const params& p, target& t, std::string& error) {
    t = target(target_kind::spdk);
    t.nqn = k_spdk_nqn;
    t.port = free_port();
    char dir_template[] = "/tmp/nvmf_bench_spdk.XXXXXX";
    if (const char* d = ::mkdtemp(dir_template)) t.dir = d;
    if (t.dir.empty()) return error = "mkdtemp for nvmf_tgt's config failed", false;
    const std::string config = t.dir + "/nvmf_tgt.json";
    {
        std::ofstream f(config);
        f << fmt::format(
            R"({{"subsystems": [
 {{"subsystem": "bdev", "config": [
  {{"method": "bdev_null_create", "params": {{"name": "null0", "num_blocks": {}, "block_size": {}}}}}]}},
 {{"subsystem": "nvmf", "config": [
  {{"method": "nvmf_create_transport", "params": {{"trtype": "TCP", "max_queue_depth": 256}}}},
  {{"method": "nvmf_create_subsystem", "params": {{"nqn": "{}", "allow_any_host": true, "serial_number": "SPDK00000001"}}}},
  {{"method": "nvmf_subsystem_add_ns", "params": {{"nqn": "{}", "namespace": {{"bdev_name": "null0"}}}}}},
  {{"method": "nvmf_subsystem_add_listener", "params": {{"nqn": "{}", "listen_address": {{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "{}"}}}}}}]}}]}}
)",
            (k_size_mb << 20) / k_block, k_block, k_spdk_nqn, k_spdk_nqn, k_spdk_nqn, t.port);
        if (!f) return error = "writing " + config + " failed", remove_dir(t.dir), false;
    }
    t.log = t.dir + "/nvmf_tgt.log";
    t.args = {p.spdk_dir + "/bin/nvmf_tgt", "-m", core_mask(p.target_core), "--no-pci", "-r", t.dir + "/spdk.sock",
              "--json", config};
    t.pid = spawn(t.args, nullptr, {"LD_LIBRARY_PATH=" + p.spdk_dir + "/lib"}, t.log);
    g_target_pid = t.pid;
    if (wait_listening(t, 30)) return true;
    error = fmt::format("SPDK's nvmf_tgt did not start listening: {}; its log ends: {}", joined(t.args),
                        file_tail(t.log));
    if (t.pid > 0) ::kill(t.pid, SIGKILL), wait_child(t.pid, clk::now() + std::chrono::seconds(5));
    t.pid = -1;
    g_target_pid = -1;
    remove_dir(t.dir);
    return false;
}


std::string spdk_unusable(const params& p) {
    if (p.spdk_dir.empty()) return "--no-spdk";
    for (const char* bin : {"/bin/nvmf_tgt", "/bin/spdk_nvme_perf"}) {
        if (::access((p.spdk_dir + bin).c_str(), X_OK) != 0) {
            return fmt::format("no SPDK at {} ({}{} is not an executable; --spdk DIR)", p.spdk_dir, p.spdk_dir, bin);
        }
    }
    long huge = 0;
    if (FILE* f = std::fopen("/proc/meminfo", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f)) {
            if (std::sscanf(line, "HugePages_Total: %ld", &huge) == 1) break;
        }
        std::fclose(f);
    }
    std::ifstream mounts("/proc/mounts");
    const std::string m((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
    if (huge <= 0 || m.find(" hugetlbfs ") == std::string::npos) {
        return fmt::format("SPDK at {} needs huge pages and a hugetlbfs mount: run `{}/spdk setup` once as root",
                           p.spdk_dir, p.spdk_dir);
    }
    return "";
}

bool run_spdk_perf(const params& p, const target& t, const workload& w, const std::string& label, figures& f,
                   std::string* unclean, std::string* error, std::vector<std::string>* command) {
    const auto args = spdk_perf_args(p, t.port, t.nqn, w);
    if (command) *command = args;
    std::fprintf(stderr, "nvmf_bench: %s: spdk_nvme_perf %s\n", label.c_str(), w.name);
    const double measured = p.spdk_seconds();
    const machine_window mw;
    const double target0 = process_cpu_seconds(t.pid);
    const child_run r = run_child(args, k_spdk_perf_startup + p.spdk_warmup() + measured + k_detach_grace,
                                  {"LD_LIBRARY_PATH=" + p.spdk_dir + "/lib"}, "\nTotal", k_detach_grace, t.pid);
    const double target_cpu = process_cpu_seconds(t.pid) - target0;
    f.others_cpu_pct = mw.others_pct(r.cpu + target_cpu);
    bool percentiles = false;
    const bool parsed = parse_spdk_perf(r.out, f, &percentiles);
    if (r.killed) {
        *unclean = parsed ? fmt::format("killed {:.0f} s after its results (detach hang)", k_detach_grace)
                          : "killed at its deadline before any results";
    } else if (r.rc != 0) {
        *unclean = fmt::format("exited with {}", r.rc);
    }
    if (!unclean->empty()) {
        std::fprintf(stderr, "nvmf_bench: %s %s: spdk_nvme_perf %s\n", label.c_str(), w.name, unclean->c_str());
    }
    // The target's CPU over the measured window: it ends when the results
    // are printed (the Total line; spdk_nvme_perf flushes them before it
    // detaches) and lasted -t seconds. Not over the whole run: DPDK's start,
    // the connect and the warm-up are not in the I/O count, and a polling
    // target spins through them.
    if (parsed && r.marker_seen && f.iops > 0 && !r.samples.empty()) {
        const auto from = r.marker_at - std::chrono::milliseconds(static_cast<long>(measured * 1000));
        const auto s0 = std::min_element(r.samples.begin(), r.samples.end(), [&](const auto& a, const auto& b) {
            return std::abs((a.t - from).count()) < std::abs((b.t - from).count());
        });
        const auto s1 = std::find_if(r.samples.begin(), r.samples.end(),
                                     [&](const auto& s) { return s.t >= r.marker_at; });
        if (s1 != r.samples.end()) {
            const double window = std::chrono::duration<double>(s1->t - s0->t).count();
            if (window > measured * 0.5) {
                f.server_cpu_us_per_io = (s1->cpu - s0->cpu) / (f.iops * window) * 1e6;
                f.server_cpu_pct = (s1->cpu - s0->cpu) / window * 100;
            }
        }
    }
    if (!parsed || !percentiles) {
        if (error->empty()) {
            *error = fmt::format("{} {}: spdk_nvme_perf printed no {} (exit status {}{}; {}): {}", label, w.name,
                                 !parsed ? "Total line" : "latency percentiles", r.rc,
                                 r.killed ? ", killed at its deadline" : "", joined(args), r.out.substr(0, 800));
        }
        return false;
    }
    return true;
}

}  // namespace ioe::bench::nvmf_bench
