// vhost_bench: our vhost-user-blk export against qemu-storage-daemon's and
// against our own NVMe/TCP target over loopback, for a RAM-speed device so
// that the front-end is what is measured (see bench/README.md, section
// vhost_bench).
//   vhost_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S]
//               [--ioengine PATH] [--vhost-perf PATH] [--nvmf-perf PATH] [--qsd PATH]
//               [--dir PATH] [--file-mb N] [--no-file] [--target-core N] [--perf-core N]
// 1. Back-ends, one at a time on --target-core (0), the order rotated every
//    run: our daemon exporting null:///vhost_bench (4 GiB, 4 KiB blocks) over
//    vhost-user-blk; qemu-storage-daemon exporting null-co of the same size
//    (read-zeroes=on, logical-block-size=4096); our daemon serving the same
//    null device over NVMe/TCP on 127.0.0.1.
// 2. Per back-end and workload (4K randread / randwrite QD1 and QD32, 128K
//    read QD32) one run of the load generator on --perf-core (1), busy
//    polling: tools/vhost-perf (one virtqueue) for the vhost back-ends,
//    tools/nvmf-perf for the NVMe/TCP target. Figures are medians over runs.
// 3. The file row: both vhost back-ends export the same file under --dir
//    (O_DIRECT: qsd with aio=io_uring,cache.direct=on; ours uring:///), 4K
//    randread QD32: the disk-bound case.
// 4. allocs_per_io: our export embedded in this process (vhost_allocs.hh),
//    heap allocations over a window in the middle of a vhost-perf run /
//    the requests the export counted (4K randread and randwrite QD32; the
//    larger of the two).
// 5. CPU per I/O of each back-end from its threads' schedstat over the
//    measured window (vhost-perf --backend-pid), of the NVMe/TCP target from
//    /proc/PID/stat.
// Until the daemon can export over vhost-user-blk (the server of issue 15),
// the JSON says "ours": "unavailable: <why>" and our rows and the ratios
// are null; qsd and NVMe/TCP are still measured.
// Every child has a deadline and dies with the bench; a watchdog ends the
// run if anything hangs.
// Files: this one (options, the run plan, the report); vhost_bench.hh (the
// shared types); vhost_backends.cc (qsd and our export); vhost_perf_run.cc
// (vhost-perf); nvmf_targets.cc and nvmf_perf_run.cc (nvmf_bench's, reused
// for the NVMe/TCP row); child_process.cc (children, deadlines, CPU).
#include <fcntl.h>
#include <signal.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.hh"
#include "bench/child_process.hh"
#include "bench/nvmf_bench.hh"
#include "bench/nvmf_perf_run.hh"
#include "bench/nvmf_targets.hh"
#include "bench/vhost_allocs.hh"
#include "bench/vhost_backends.hh"
#include "bench/vhost_bench.hh"
#include "bench/vhost_perf_run.hh"

using namespace ioe::bench;
using namespace ioe::bench::vhost_bench;

namespace {

constexpr workload workloads[] = {
    {"randread4k_qd1", "randread", 4096, 1},     {"randread4k_qd32", "randread", 4096, 32},
    {"randwrite4k_qd1", "randwrite", 4096, 1},   {"randwrite4k_qd32", "randwrite", 4096, 32},
    {"read128k_qd32", "read", 128 << 10, 32},
};
constexpr workload file_workload = {"file_randread4k_qd32", "randread", 4096, 32};

void usage() {
    std::fputs(
        "usage: vhost_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S] [--ioengine PATH]\n"
        "                   [--vhost-perf PATH] [--nvmf-perf PATH] [--qsd PATH] [--dir PATH] [--file-mb N]\n"
        "                   [--no-file] [--target-core N] [--perf-core N]\n"
        "  --json: one JSON object on stdout (progress on stderr); --quick: 1 run of 2 s per workload;\n"
        "  --runs: repetitions, medians reported (default 3); --seconds: measured per workload (5);\n"
        "  --warmup: unmeasured before each (0.5); --ioengine, --vhost-perf, --nvmf-perf: the binaries\n"
        "  (default: the build's tools/ next to bench/); --qsd: qemu-storage-daemon (default: from PATH);\n"
        "  --dir: directory of the file row's file (default: the current directory, then /var/tmp; not\n"
        "  tmpfs); --file-mb: its size (1024); --no-file: skip the file row; --target-core (0), --perf-core (1)\n",
        stderr);
}

std::string exe_dir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : p.parent_path().string();
}

std::string find_in_path(const char* name) {
    const char* path = std::getenv("PATH");
    std::string_view rest = path ? path : "/usr/bin:/bin";
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        const std::string dir(rest.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

bool parse_args(int argc, char** argv, params& p) {
    const std::string tools = exe_dir() + "/../tools/";
    p.ioengine = tools + "ioengine";
    p.vhost_perf = tools + "vhost-perf";
    p.nvmf_perf = tools + "nvmf-perf";
    p.qsd = find_in_path("qemu-storage-daemon");
    p.taskset = find_in_path("taskset");
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto number = [&](double& out, double min, double max) {
            char* end = nullptr;
            if (i + 1 < argc) out = std::strtod(argv[++i], &end);
            if (!end || *end != '\0' || !(out >= min && out <= max)) {
                std::fprintf(stderr, "vhost_bench: %s '%s': expected a number from %g to %g\n",
                             std::string(a).c_str(), argv[i], min, max);
                return false;
            }
            return true;
        };
        double v = 0;
        if (a == "--json") {
            p.json = true;
        } else if (a == "--quick") {
            p.runs = 1;
            p.seconds = 2;
            p.warmup = 0.3;
        } else if (a == "--runs") {
            if (!number(v, 1, 50)) return false;
            p.runs = static_cast<int>(v);
        } else if (a == "--seconds") {
            if (!number(p.seconds, 0.2, 600)) return false;
        } else if (a == "--warmup") {
            if (!number(p.warmup, 0, 60)) return false;
        } else if (a == "--file-mb") {
            if (!number(v, 16, 1 << 20)) return false;
            p.file_mb = static_cast<std::uint64_t>(v);
        } else if (a == "--target-core" || a == "--perf-core") {
            if (!number(v, 0, 4095)) return false;
            (a == "--target-core" ? p.target_core : p.perf_core) = static_cast<unsigned>(v);
        } else if (a == "--no-file") {
            p.file_row = false;
        } else if ((a == "--ioengine" || a == "--vhost-perf" || a == "--nvmf-perf" || a == "--qsd" || a == "--dir") &&
                   i + 1 < argc) {
            (a == "--ioengine" ? p.ioengine : a == "--vhost-perf" ? p.vhost_perf : a == "--nvmf-perf" ? p.nvmf_perf
                                             : a == "--qsd"       ? p.qsd
                                                                  : p.dir) = argv[++i];
        } else {
            std::fprintf(stderr, "vhost_bench: unknown argument '%s'\n", std::string(a).c_str());
            return false;
        }
    }
    return true;
}

// The file row's file: file_mb of non-zero data, written and synced once
// (a sparse or fallocated file would read as zeros without touching the
// disk). "" with *error set when no directory will do.
std::string make_file(const params& p, std::string& error) {
    std::vector<std::string> dirs;
    if (!p.dir.empty()) {
        dirs.push_back(p.dir);
    } else {
        dirs = {std::filesystem::current_path().string(), "/var/tmp"};
    }
    for (const auto& d : dirs) {
        struct statfs fs{};
        if (::statfs(d.c_str(), &fs) != 0) continue;
        if (fs.f_type == 0x01021994 /* TMPFS_MAGIC */) continue;
        if (std::uint64_t(fs.f_bavail) * fs.f_bsize < (p.file_mb + 256) << 20) continue;
        const std::string path = d + fmt::format("/vhost_bench.{}.img", ::getpid());
        const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) continue;
        std::vector<char> chunk(1 << 20);
        for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131 + 7);
        bool ok = true;
        for (std::uint64_t mb = 0; mb < p.file_mb && ok; ++mb) {
            ok = ::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(mb << 20)) ==
                 static_cast<ssize_t>(chunk.size());
        }
        ok = ok && ::fsync(fd) == 0;
        ::close(fd);
        if (ok) return path;
        ::unlink(path.c_str());
    }
    error = fmt::format("no directory for the {} MiB file of the file row (not tmpfs, with room): pass --dir or "
                        "--no-file", p.file_mb);
    return {};
}

extern "C" void on_signal(int sig) {
    kill_children();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
    set_program_name("vhost_bench");
    params p;
    if (!parse_args(argc, argv, p)) return usage(), 2;
    for (const auto& bin : {p.ioengine, p.vhost_perf, p.nvmf_perf}) {
        if (::access(bin.c_str(), X_OK) != 0) {
            std::fprintf(stderr, "vhost_bench: %s is not an executable (build the ioengine, vhost-perf and "
                                 "nvmf-perf targets, or pass --ioengine / --vhost-perf / --nvmf-perf)\n",
                         bin.c_str());
            return 1;
        }
    }
    if (p.qsd.empty() || ::access(p.qsd.c_str(), X_OK) != 0) {
        std::fprintf(stderr, "vhost_bench: qemu-storage-daemon not found (Debian: qemu-system-common; or --qsd "
                             "PATH)\n");
        return 1;
    }
    if (p.taskset.empty()) {
        std::fprintf(stderr, "vhost_bench: taskset not found (Debian: util-linux)\n");
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);

    const std::string ours_why = ours_unavailable(p);
    const bool use_ours = ours_why.empty();
    if (!use_ours) std::fprintf(stderr, "vhost_bench: our export skipped: %s\n", ours_why.c_str());

    std::string error;
    std::string file;
    if (p.file_row) {
        std::fprintf(stderr, "vhost_bench: writing the file row's %llu MiB file\n",
                     static_cast<unsigned long long>(p.file_mb));
        file = make_file(p, error);
    }

    const double perf_s = p.seconds + p.warmup + 3;
    const double per_run = (std::size(workloads) * perf_s + 20) * 3 + (p.file_row ? 2 * (perf_s + 20) : 0);
    const double allocs_s = 2 * (std::max(p.seconds, 1.5) + std::max(p.warmup, 0.5) + 35);
    start_watchdog("vhost_bench", std::chrono::seconds(static_cast<long>(p.runs * per_run + allocs_s + 120)),
                   kill_children);
    const double load_start = load_average();

    nvmf_bench::params np;  // nvmf_bench's plumbing for the NVMe/TCP row
    np.ioengine = p.ioengine;
    np.perf = p.nvmf_perf;
    np.seconds = p.seconds;
    np.warmup = p.warmup;
    np.target_core = p.target_core;
    np.perf_core = p.perf_core;
    np.perf_poll = "busy";  // as vhost-perf
    nvmf_bench::daemon_flags flags;
    {
        const child_run help = run_child({p.ioengine, "--help"}, 10);
        flags.data_dir = help.out.find("--data-dir") != std::string::npos;
        flags.default_pool = help.out.find("--default-pool-mb") != std::string::npos;
        flags.rpc = help.out.find("--rpc") != std::string::npos;
        flags.metrics = help.out.find("--metrics") != std::string::npos;
    }

    std::map<std::string, std::vector<double>> samples;
    std::vector<std::string> backend_cmd[3];  // ours, qsd, nvmf
    auto record = [&samples](const std::string& prefix, const char* w, const figures& f) {
        samples[fmt::format("{}_{}_iops", prefix, w)].push_back(f.iops);
        samples[fmt::format("{}_{}_mibs", prefix, w)].push_back(f.mibs);
        samples[fmt::format("{}_{}_avg_us", prefix, w)].push_back(f.avg_us);
        samples[fmt::format("{}_{}_p50_us", prefix, w)].push_back(f.p50_us);
        samples[fmt::format("{}_{}_p99_us", prefix, w)].push_back(f.p99_us);
        if (f.backend_cpu_us_per_io >= 0) {
            samples[fmt::format("{}_{}_backend_cpu_us_per_io", prefix, w)].push_back(f.backend_cpu_us_per_io);
        }
        if (f.perf_cpu_us_per_io >= 0) {
            samples[fmt::format("{}_{}_perf_cpu_us_per_io", prefix, w)].push_back(f.perf_cpu_us_per_io);
        }
        samples["others_cpu_pct"].push_back(f.others_cpu_pct);
    };

    for (int run = 0; run < p.runs && error.empty(); ++run) {
        // 0 ours, 1 qsd, 2 NVMe/TCP; rotated by one every run.
        std::vector<int> order;
        for (int k = 0; k < 3; ++k) {
            const int b = (k + run) % 3;
            if (b != 0 || use_ours) order.push_back(b);
        }
        for (const int b : order) {
            if (!error.empty()) break;
            const char* prefix = b == 0 ? "vhost" : b == 1 ? "qsd" : "nvmf";
            const std::string label = fmt::format("run {}/{}, {}", run + 1, p.runs, prefix);
            if (b == 2) {
                nvmf_bench::target t(nvmf_bench::target_kind::ours);
                if (!nvmf_bench::start_ours(np, flags, t, error)) break;
                backend_cmd[2] = t.args;
                for (const auto& w : workloads) {
                    nvmf_bench::figures nf;
                    const nvmf_bench::workload nw{w.name, w.rw, w.bytes, w.qd};
                    if (!nvmf_bench::run_perf(np, t.port, t.nqn, t.pid, nw, label, nf, &error)) break;
                    figures f;
                    f.iops = nf.iops;
                    f.mibs = nf.mibs;
                    f.avg_us = nf.avg_us;
                    f.p50_us = nf.p50_us;
                    f.p99_us = nf.p99_us;
                    f.backend_cpu_us_per_io = nf.server_cpu_us_per_io;
                    f.perf_cpu_us_per_io = nf.perf_cpu_us_per_io;
                    f.others_cpu_pct = nf.others_cpu_pct;
                    record(prefix, w.name, f);
                }
                const int rc = nvmf_bench::stop_target(t);
                if (rc != 0 && error.empty()) error = fmt::format("our NVMe/TCP target exited with {} after SIGTERM", rc);
                continue;
            }
            vhost_backend be;
            const bool up = b == 0 ? start_ours(p, {}, be, error) : start_qsd(p, {}, be, error);
            if (!up) break;
            backend_cmd[b] = be.args;
            for (const auto& w : workloads) {
                figures f;
                if (!run_vhost_perf(p, be, w, label, f, &error)) break;
                record(prefix, w.name, f);
            }
            const int rc = stop_backend(be);
            if (rc != 0 && error.empty() && b == 0) error = fmt::format("our export exited with {} after SIGTERM", rc);
        }
        // The file row: the same file through both vhost back-ends.
        for (int b = 0; b < 2 && error.empty() && !file.empty(); ++b) {
            if (b == 0 && !use_ours) continue;
            const char* prefix = b == 0 ? "vhost" : "qsd";
            vhost_backend be;
            const bool up = b == 0 ? start_ours(p, file, be, error) : start_qsd(p, file, be, error);
            if (!up) break;
            figures f;
            if (run_vhost_perf(p, be, file_workload, fmt::format("run {}/{}, {} on the file", run + 1, p.runs, prefix),
                               f, &error)) {
                record(prefix, file_workload.name, f);
            }
            stop_backend(be);
        }
    }
    if (!file.empty()) ::unlink(file.c_str());
    // Allocations per I/O of our export, embedded in this process.
    std::optional<double> allocs_per_io;
    std::string allocs_note = "not measured";
    if (error.empty()) {
        allocs_note.clear();
        for (const auto* w : {&workloads[1], &workloads[3]}) {  // randread4k_qd32, randwrite4k_qd32
            std::string why;
            const auto a = measure_allocs(p, *w, &why);
            if (!a) {
                allocs_note = why;
                allocs_per_io.reset();
                break;
            }
            samples[fmt::format("allocs_per_io_{}", w->name)].push_back(a->allocs_per_io);
            allocs_per_io = std::max(allocs_per_io.value_or(0.0), a->allocs_per_io);
            allocs_note += fmt::format("{}{}: {:.0f} allocations in {:.0f} I/Os", allocs_note.empty() ? "" : "; ",
                                       w->name, a->allocations, a->ios);
        }
    }

    auto med = [&samples](const std::string& k) -> std::optional<double> {
        const auto it = samples.find(k);
        if (it == samples.end() || it->second.empty()) return std::nullopt;
        return median(it->second);
    };
    auto ratio = [](std::optional<double> a, std::optional<double> b) -> std::optional<double> {
        if (!a || !b || *b <= 0) return std::nullopt;
        return *a / *b;
    };
    std::string j = "{\n";
    auto add_opt = [&j](const std::string& k, std::optional<double> v, int prec = 1) {
        j += v ? fmt::format("  \"{}\": {:.{}f},\n", k, *v, prec) : fmt::format("  \"{}\": null,\n", k);
    };
    auto boolean = [](std::optional<bool> b) { return b ? (*b ? "true" : "false") : "null"; };
    j += fmt::format("  \"ours\": \"{}\",\n", use_ours ? "measured" : json_escape("unavailable: " + ours_why));

    std::optional<bool> qsd_met, nvmf_met;
    std::vector<const workload*> all;
    for (const auto& w : workloads) all.push_back(&w);
    if (!file.empty()) all.push_back(&file_workload);
    for (const workload* w : all) {
        const auto vq = ratio(med(fmt::format("vhost_{}_iops", w->name)), med(fmt::format("qsd_{}_iops", w->name)));
        add_opt(fmt::format("vhost_vs_qsd_{}_ratio", w->name), vq, 3);
        if (w != &file_workload) {
            const auto vn =
                ratio(med(fmt::format("vhost_{}_iops", w->name)), med(fmt::format("nvmf_{}_iops", w->name)));
            add_opt(fmt::format("vhost_vs_nvmf_{}_ratio", w->name), vn, 3);
            add_opt(fmt::format("qsd_vs_nvmf_{}_ratio", w->name),
                    ratio(med(fmt::format("qsd_{}_iops", w->name)), med(fmt::format("nvmf_{}_iops", w->name))), 3);
            if (vn) nvmf_met = nvmf_met.value_or(true) && *vn > 1.0;
            if (vq && w->qd == 32) qsd_met = qsd_met.value_or(true) && *vq >= 2.0;
        }
    }
    for (const char* prefix : {"vhost", "qsd", "nvmf"}) {
        for (const workload* w : all) {
            if (w == &file_workload && prefix[0] == 'n') continue;
            const std::string k = fmt::format("{}_{}", prefix, w->name);
            add_opt(k + "_iops", med(k + "_iops"));
            add_opt(k + "_mibs", med(k + "_mibs"), 2);
            add_opt(k + "_avg_us", med(k + "_avg_us"), 2);
            add_opt(k + "_p50_us", med(k + "_p50_us"), 2);
            add_opt(k + "_p99_us", med(k + "_p99_us"), 2);
            add_opt(k + "_backend_cpu_us_per_io", med(k + "_backend_cpu_us_per_io"), 3);
            add_opt(k + "_perf_cpu_us_per_io", med(k + "_perf_cpu_us_per_io"), 3);
        }
    }
    add_opt("allocs_per_io", allocs_per_io, 4);
    j += fmt::format("  \"allocs_per_io_note\": \"{}\",\n", json_escape(allocs_note));
    j += fmt::format("  \"targets\": {{\"vhost_vs_qsd_qd32_2x_met\": {}, \"vhost_vs_nvmf_all_met\": {}}},\n",
                     boolean(qsd_met), boolean(nvmf_met));
    const auto& others = samples["others_cpu_pct"];
    j += fmt::format("  \"machine\": {{\"others_cpu_pct_median\": {:.1f}, \"others_cpu_pct_max\": {:.1f}}},\n",
                     median(others), others.empty() ? 0.0 : *std::max_element(others.begin(), others.end()));
    j += "  \"runs_detail\": {";
    bool first = true;
    for (const auto& [k, v] : samples) {
        std::string vals;
        for (double x : v) vals += (vals.empty() ? "" : ", ") + fmt::format("{:.2f}", x);
        j += fmt::format("{}\"{}\": [{}]", first ? "" : ", ", k, vals);
        first = false;
    }
    j += "},\n";
    j += fmt::format(
        "  \"config\": {{\"runs\": {}, \"seconds\": {}, \"warmup_seconds\": {}, \"target_core\": {}, "
        "\"perf_core\": {}, \"device\": \"null, {} MiB, {}-byte blocks\", \"file_mb\": {}, \"file_row\": {}, "
        "\"ours\": \"{}\", \"qsd\": \"{}\", \"nvmf\": \"{}\", \"load_average_start\": {:.2f}, "
        "\"load_average_end\": {:.2f}}},\n",
        p.runs, p.seconds, p.warmup, p.target_core, p.perf_core, k_size_mb, k_block, p.file_mb,
        file.empty() ? "false" : "true", json_escape(joined(backend_cmd[0])), json_escape(joined(backend_cmd[1])),
        json_escape(joined(backend_cmd[2])), load_start, load_average());
    j += fmt::format("  \"error\": \"{}\"\n}}\n", json_escape(error));
    if (p.json) {
        std::fputs(j.c_str(), stdout);
    } else {
        if (!use_ours) std::printf("ours: unavailable: %s\n", ours_why.c_str());
        for (const auto& [k, v] : samples) std::printf("%s %.3f\n", k.c_str(), median(v));
        if (!error.empty()) std::printf("error %s\n", error.c_str());
    }
    if (!error.empty()) std::fprintf(stderr, "vhost_bench: %s\n", error.c_str());
    return error.empty() ? 0 : 1;
}
