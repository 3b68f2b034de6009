// nvmf-perf runs for nvmf_bench: under load and idle (nvmf_perf_run.hh).
#include "bench/nvmf_perf_run.hh"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <thread>

#include "bench/child_process.hh"

namespace ioe::bench::nvmf_bench {

namespace {

using clk = std::chrono::steady_clock;

double json_number(const std::string& s, const char* key, bool* found) {
    const std::string k = fmt::format("\"{}\": ", key);
    const auto at = s.find(k);
    if (at == std::string::npos) return *found = false, 0;
    return std::strtod(s.c_str() + at + k.size(), nullptr);
}

}  // namespace

std::vector<std::string> perf_args(const params& p, std::uint16_t port, const std::string& nqn, const workload& w,
                                   const std::string& poll) {
    return {p.perf, "-a", fmt::format("127.0.0.1:{}", port), "-n", nqn, "-q", std::to_string(w.qd), "-o",
            std::to_string(w.bytes), "-w", w.rw, "-t", fmt::format("{}", p.seconds), "--warmup",
            fmt::format("{}", p.warmup), "--cores", std::to_string(p.perf_core), "--poll", poll.empty() ? p.perf_poll : poll,
            "--json"};
}

bool run_perf(const params& p, std::uint16_t port, const std::string& nqn, pid_t server_pid, const workload& w,
              const std::string& label, figures& f, std::string* error, const std::string& poll) {
    const auto args = perf_args(p, port, nqn, w, poll);
    std::fprintf(stderr, "nvmf_bench: %s: nvmf-perf %s\n", label.c_str(), w.name);
    const machine_window mw;
    const double target0 = process_cpu_seconds(server_pid);
    const child_run r = run_child(args, p.seconds + p.warmup + 30);
    const double target_cpu = server_pid > 0 ? process_cpu_seconds(server_pid) - target0 : 0;
    f.others_cpu_pct = mw.others_pct(r.cpu + target_cpu);
    bool found = true;
    f.iops = json_number(r.out, "iops", &found);
    f.mibs = json_number(r.out, "mibs", &found);
    f.avg_us = json_number(r.out, "avg_us", &found);
    f.p50_us = json_number(r.out, "p50_us", &found);
    f.p99_us = json_number(r.out, "p99_us", &found);
    f.p999_us = json_number(r.out, "p999_us", &found);
    f.errors = json_number(r.out, "errors", &found);
    const double ios = f.iops * (p.seconds + p.warmup);  // the warm-up does I/O too
    if (ios > 0) {
        f.server_cpu_us_per_io = target_cpu / ios * 1e6;
        f.perf_cpu_us_per_io = r.cpu / ios * 1e6;
    }
    if (r.rc != 0 || !found) {
        if (error->empty()) {
            *error = fmt::format("{} {}: nvmf-perf exited with {} ({}): {}", label, w.name, r.rc, joined(args),
                                 r.out.substr(0, 500));
        }
        return false;
    }
    return true;
}

bool measure_idle(const params& p, const target& t, double& pct, double& pct_schedstat, std::string& error) {
    const double settle = 1.5;
    const std::vector<std::string> idle_args = {
        p.perf, "-a", fmt::format("127.0.0.1:{}", t.port), "-n", t.nqn, "-w", "randread", "-t",
        fmt::format("{}", k_idle_seconds + settle + 1), "--cores", std::to_string(p.perf_core), "--poll",
        "adaptive", "--idle"};
    std::fprintf(stderr, "nvmf_bench: %s: idle host for %.0f s\n", t.name, k_idle_seconds);
    const pid_t idle = spawn(idle_args, nullptr);
    if (idle < 0) return error = fmt::format("{}: idle host: fork failed", t.name), false;
    g_child_pid = idle;
    std::this_thread::sleep_for(std::chrono::duration<double>(settle));
    const double c0 = process_cpu_seconds(t.pid), r0 = process_run_seconds(t.pid);
    const auto t0 = clk::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(k_idle_seconds));
    const double c1 = process_cpu_seconds(t.pid), r1 = process_run_seconds(t.pid);
    const double wall = std::chrono::duration<double>(clk::now() - t0).count();
    const int rc = wait_child(idle, clk::now() + std::chrono::seconds(30));
    g_child_pid = -1;
    if (rc != 0) {
        error = fmt::format("{}: idle host: nvmf-perf exited with {} ({})", t.name, rc, joined(idle_args));
        return false;
    }
    if (c0 >= 0 && c1 >= 0) {
        pct = (c1 - c0) / wall * 100;
        if (r0 >= 0 && r1 >= 0) pct_schedstat = (r1 - r0) / wall * 100;
    }
    return true;
}

}  // namespace ioe::bench::nvmf_bench
