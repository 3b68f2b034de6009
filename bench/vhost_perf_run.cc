// vhost-perf runs for vhost_bench (vhost_perf_run.hh).
#include "bench/vhost_perf_run.hh"

#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

#include "bench/child_process.hh"

namespace ioe::bench::vhost_bench {

namespace {

double json_number(const std::string& s, const char* key, bool* found) {
    const std::string k = fmt::format("\"{}\": ", key);
    const auto at = s.find(k);
    if (at == std::string::npos) return *found = false, 0;
    return std::strtod(s.c_str() + at + k.size(), nullptr);
}

}  // namespace

std::vector<std::string> vhost_perf_args(const params& p, const vhost_backend& b, const workload& w) {
    return {p.vhost_perf, "-s", b.socket, "-q", std::to_string(w.qd), "-o", std::to_string(w.bytes), "-w", w.rw,
            "-t", fmt::format("{}", p.seconds), "--warmup", fmt::format("{}", p.warmup), "-n", "1", "-c",
            std::to_string(p.perf_core), "--backend-pid", std::to_string(b.pid), "--json"};
}

bool run_vhost_perf(const params& p, const vhost_backend& b, const workload& w, const std::string& label,
                    figures& f, std::string* error) {
    const auto args = vhost_perf_args(p, b, w);
    std::fprintf(stderr, "vhost_bench: %s: vhost-perf %s\n", label.c_str(), w.name);
    const machine_window mw;
    const double backend0 = process_cpu_seconds(b.pid);
    const child_run r = run_child(args, p.seconds + p.warmup + 30);
    const double backend_cpu = process_cpu_seconds(b.pid) - backend0;
    f.others_cpu_pct = mw.others_pct(r.cpu + backend_cpu);
    bool found = true;
    f.iops = json_number(r.out, "iops", &found);
    f.mibs = json_number(r.out, "mibs", &found);
    f.avg_us = json_number(r.out, "avg_us", &found);
    f.p50_us = json_number(r.out, "p50_us", &found);
    f.p99_us = json_number(r.out, "p99_us", &found);
    f.max_us = json_number(r.out, "max_us", &found);
    // Both over the measured window, from the tool (the back-end's from its
    // threads' schedstat, in ns).
    f.backend_cpu_us_per_io = json_number(r.out, "backend_cpu_us_per_io", &found);
    f.perf_cpu_us_per_io = json_number(r.out, "cpu_us_per_io", &found);
    if (r.rc != 0 || !found) {
        if (error->empty()) {
            *error = fmt::format("{} {}: vhost-perf exited with {} ({}): {}", label, w.name, r.rc, joined(args),
                                 r.out.substr(0, 500));
        }
        return false;
    }
    return true;
}

}  // namespace ioe::bench::vhost_bench
