// nvmf_bench: NVMe/TCP throughput and latency of our target against SPDK's
// nvmf_tgt and against the transport limit, each driven by spdk_nvme_perf
// and by our nvmf-perf, and the idle CPU of both targets (see
// bench/README.md, section nvmf_bench).
//   nvmf_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S]
//              [--ioengine PATH] [--nvmf-perf PATH] [--spdk DIR | --no-spdk]
//              [--target-core N] [--perf-core N] [--perf-poll busy|adaptive]
// 1. Two targets, one at a time on --target-core (0): the ioengine daemon
//    serving null:///nvmf_bench (4 GiB, 4 KiB blocks, adaptive polling) and
//    SPDK's nvmf_tgt serving a null bdev of the same shape (--spdk DIR,
//    default ../shared/anchors/spdk-v24.09 beside the source tree; skipped
//    with a message, and its keys null, when it is not there). Each run
//    starts one, measures it, stops it, then the other; the order swaps
//    every run. nvmf_tgt busy-polls its core, so they never run together.
// 2. Against each target, per workload: spdk_nvme_perf -L on --perf-core
//    (1), then tools/nvmf-perf on the same core. Right after our target's
//    randread4k_qd32 the same nvmf-perf command against tcp_limit_server
//    (tcp_limit_server.hh) on the target core, while the daemon idles.
//    Figures are medians over the runs.
// 3. spdk_nvme_perf prints its results before it detaches; a run that has
//    not exited k_detach_grace s after printing them is killed and makes
//    detach_clean false (its figures still count).
// 4. In the last run, with each target: nvmf-perf --idle connects (admin +
//    I/O queue) and sends nothing but keep-alives; the target's utime +
//    stime from /proc/PID/stat over 5 s, as % of one core (_schedstat: the
//    same from its threads' schedstat, in ns).
// Every child has a deadline, every child dies with the bench
// (PR_SET_PDEATHSIG), and a watchdog ends the run if anything hangs.
// Files: this one (options, the run plan, the report); nvmf_bench.hh (the
// shared types); nvmf_targets.cc (our daemon, starting and stopping a
// target); spdk_peer.cc (nvmf_tgt and spdk_nvme_perf); nvmf_perf_run.cc
// (nvmf-perf); child_process.cc (children, deadlines, CPU from /proc);
// tcp_limit_server.cc (the transport limit).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
#include "bench/spdk_peer.hh"
#include "bench/tcp_limit_server.hh"

#ifndef IOE_SOURCE_DIR
#define IOE_SOURCE_DIR "."
#endif

using namespace ioe::bench;
using namespace ioe::bench::nvmf_bench;

namespace {

constexpr workload workloads[] = {
    {"randread4k_qd1", "randread", 4096, 1},       {"randread4k_qd32", "randread", 4096, 32},
    {"randread4k_qd128", "randread", 4096, 128},   {"randwrite4k_qd32", "randwrite", 4096, 32},
    {"read128k_qd32", "read", 128 << 10, 32},
};
constexpr std::size_t limit_workload = 1;  // randread4k_qd32
constexpr std::size_t qd1_workload = 0;

void usage() {
    std::fputs(
        "usage: nvmf_bench [--json] [--quick] [--runs N] [--seconds S] [--warmup S] [--ioengine PATH]\n"
        "                  [--nvmf-perf PATH] [--spdk DIR | --no-spdk] [--target-core N] [--perf-core N]\n"
        "                  [--perf-poll busy|adaptive]\n"
        "  --json: one JSON object on stdout (progress on stderr); --quick: 1 run of 2 s per workload;\n"
        "  --runs: repetitions, medians reported (default 3); --seconds: measured per workload (5);\n"
        "  --warmup: unmeasured before each (0.5); --ioengine, --nvmf-perf: the binaries (default: the\n"
        "  build's tools/ next to bench/); --spdk: SPDK's build with bin/nvmf_tgt and bin/spdk_nvme_perf\n"
        "  (default: ../shared/anchors/spdk-v24.09 beside the source tree); --no-spdk: our target only;\n"
        "  --target-core (0), --perf-core (1); --perf-poll: nvmf-perf's polling (default adaptive, as\n"
        "  the target and the limit server)\n",
        stderr);
}

std::string exe_dir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : p.parent_path().string();
}

bool parse_args(int argc, char** argv, params& p) {
    const std::string tools = exe_dir() + "/../tools/";
    p.ioengine = tools + "ioengine";
    p.perf = tools + "nvmf-perf";
    p.spdk_dir = std::filesystem::path(IOE_SOURCE_DIR "/../shared/anchors/spdk-v24.09").lexically_normal().string();
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto number = [&](double& out, double min, double max) {
            char* end = nullptr;
            if (i + 1 < argc) out = std::strtod(argv[++i], &end);
            if (!end || *end != '\0' || !(out >= min && out <= max)) {
                std::fprintf(stderr, "nvmf_bench: %s '%s': expected a number from %g to %g\n",
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
        } else if (a == "--target-core" || a == "--perf-core") {
            if (!number(v, 0, 4095)) return false;
            (a == "--target-core" ? p.target_core : p.perf_core) = static_cast<unsigned>(v);
        } else if (a == "--limit-per-command") {
            p.limit_per_command = true;
        } else if (a == "--perf-poll" && i + 1 < argc) {
            p.perf_poll = argv[++i];
            if (p.perf_poll != "busy" && p.perf_poll != "adaptive") {
                std::fprintf(stderr, "nvmf_bench: --perf-poll '%s': expected busy or adaptive\n", p.perf_poll.c_str());
                return false;
            }
        } else if ((a == "--ioengine" || a == "--nvmf-perf") && i + 1 < argc) {
            (a == "--ioengine" ? p.ioengine : p.perf) = argv[++i];
        } else if (a == "--spdk" && i + 1 < argc) {
            p.spdk_dir = argv[++i];
        } else if (a == "--no-spdk") {
            p.spdk_dir.clear();
        } else {
            std::fprintf(stderr, "nvmf_bench: unknown argument '%s'\n", std::string(a).c_str());
            return false;
        }
    }
    return true;
}

extern "C" void on_signal(int sig) {
    kill_children();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
    set_program_name("nvmf_bench");
    params p;
    if (!parse_args(argc, argv, p)) return usage(), 2;
    for (const auto& bin : {p.ioengine, p.perf}) {
        if (::access(bin.c_str(), X_OK) != 0) {
            std::fprintf(stderr, "nvmf_bench: %s is not an executable (build the ioengine and nvmf-perf targets, "
                                 "or pass --ioengine / --nvmf-perf)\n", bin.c_str());
            return 1;
        }
    }
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);
    const std::string spdk_skip = spdk_unusable(p);
    const bool use_spdk = spdk_skip.empty();
    if (!use_spdk) std::fprintf(stderr, "nvmf_bench: SPDK skipped: %s\n", spdk_skip.c_str());

    // The bound of the whole run: per target and workload, spdk_nvme_perf
    // (DPDK's start, warm-up, measured time, a detach that may hang) and
    // nvmf-perf; the limit server; target starts; the idle measurements.
    const double nvmf_perf_s = p.seconds + p.warmup + 1.5;
    const double spdk_perf_s = use_spdk ? p.spdk_warmup() + p.spdk_seconds() + 3 + k_detach_grace : 0;
    const double per_target = std::size(workloads) * (nvmf_perf_s + spdk_perf_s) + 10;
    const double per_run = per_target * (use_spdk ? 2 : 1) + nvmf_perf_s;
    const double idle = (k_idle_seconds + 2.5 + 1) * (use_spdk ? 2 : 1);
    start_watchdog("nvmf_bench", std::chrono::seconds(static_cast<long>(p.runs * per_run + idle + 120)),
                   kill_children);
    const double load_start = load_average();

    daemon_flags flags;
    {
        const child_run help = run_child({p.ioengine, "--help"}, 10);
        flags.data_dir = help.out.find("--data-dir") != std::string::npos;
        flags.default_pool = help.out.find("--default-pool-mb") != std::string::npos;
        flags.rpc = help.out.find("--rpc") != std::string::npos;
        flags.metrics = help.out.find("--metrics") != std::string::npos;
    }

    std::map<std::string, std::vector<double>> samples;  // key -> one value per run
    std::string error, limit_problem;
    std::vector<std::string> target_cmd[2], spdk_perf_cmd;
    std::uint16_t our_port = 0;
    int spdk_perf_runs = 0;
    std::vector<std::string> spdk_perf_unclean;  // "<target> target <workload> run N: why" per unclean exit
    double idle_pct[2] = {-1, -1}, idle_pct_schedstat[2] = {-1, -1};

    // Every figure of one target under one initiator: "<prefix>_<workload>_<metric>".
    auto record = [&samples](const std::string& prefix, const workload& w, const figures& f) {
        samples[fmt::format("{}_{}_iops", prefix, w.name)].push_back(f.iops);
        samples[fmt::format("{}_{}_mibs", prefix, w.name)].push_back(f.mibs);
        samples[fmt::format("{}_{}_avg_us", prefix, w.name)].push_back(f.avg_us);
        samples[fmt::format("{}_{}_p50_us", prefix, w.name)].push_back(f.p50_us);
        samples[fmt::format("{}_{}_p99_us", prefix, w.name)].push_back(f.p99_us);
        samples["others_cpu_pct"].push_back(f.others_cpu_pct);
    };

    for (int run = 0; run < p.runs && error.empty(); ++run) {
        // One target at a time, the order swapped every run.
        std::vector<target_kind> order = {target_kind::ours};
        if (use_spdk) order.insert(run % 2 ? order.begin() : order.end(), target_kind::spdk);
        for (const target_kind kind : order) {
            if (!error.empty()) break;
            target t(kind);
            const bool up = kind == target_kind::ours ? start_ours(p, flags, t, error) : start_spdk(p, t, error);
            if (!up) break;
            target_cmd[kind == target_kind::spdk] = t.args;
            if (kind == target_kind::ours) our_port = t.port;
            const std::string label = fmt::format("run {}/{}, {} target", run + 1, p.runs, t.name);
            std::map<std::string, double> spdk_iops;  // this run's, for the paired ratios
            for (std::size_t i = 0; i < std::size(workloads) && error.empty(); ++i) {
                const workload& w = workloads[i];
                if (use_spdk) {
                    figures s;
                    std::string unclean;
                    ++spdk_perf_runs;
                    const bool ok = run_spdk_perf(p, t, w, label, s, &unclean, &error, &spdk_perf_cmd);
                    if (!unclean.empty()) {
                        spdk_perf_unclean.push_back(fmt::format("{} target {} run {}: {}", t.name, w.name, run + 1,
                                                                unclean));
                    }
                    if (!ok) break;
                    const std::string prefix = fmt::format("spdk_perf_{}", t.name);
                    record(prefix, w, s);
                    if (s.server_cpu_us_per_io > 0) {
                        samples[fmt::format("{}_{}_target_cpu_us_per_io", prefix, w.name)].push_back(
                            s.server_cpu_us_per_io);
                        samples[fmt::format("{}_{}_target_cpu_pct", prefix, w.name)].push_back(s.server_cpu_pct);
                    }
                }
                figures f;
                // Against SPDK's target nvmf-perf busy-polls, as spdk_nvme_perf
                // always does: the initiator ratio compares like with like.
                if (!run_perf(p, t.port, t.nqn, t.pid, w, label, f, &error,
                              kind == target_kind::spdk ? std::string("busy") : std::string())) {
                    break;
                }
                // nvmf-perf against our target keeps its original keys: nvmf_<workload>_*.
                record(kind == target_kind::ours ? std::string("nvmf") : std::string("nvmf_perf_spdk"), w, f);
                if (kind == target_kind::spdk) continue;
                samples[fmt::format("target_cpu_us_per_io_{}", w.name)].push_back(f.server_cpu_us_per_io);
                samples[fmt::format("perf_cpu_us_per_io_{}", w.name)].push_back(f.perf_cpu_us_per_io);
                if (i != limit_workload) continue;
                ioe::bench::tcp_limit_server server(p.target_core,
                                                    ioe::bench::limit_namespace{k_block, (k_size_mb << 20) / k_block},
                                                    p.limit_per_command);
                figures l;
                bool ok = false;
                try {
                    const std::uint16_t lport = server.start();
                    ok = run_perf(p, lport, k_nqn, -1, w, label + ", tcp limit", l, &error);
                } catch (const std::exception& e) {
                    error = e.what();
                }
                server.stop();
                if (ok && l.iops > 0) {
                    samples["tcp_limit_cpu_us_per_io_randread4k_qd32"].push_back(
                        server.cpu_seconds() / (l.iops * (p.seconds + p.warmup)) * 1e6);
                    samples["tcp_limit_perf_cpu_us_per_io_randread4k_qd32"].push_back(l.perf_cpu_us_per_io);
                }
                if (!server.problem().empty() && limit_problem.empty()) limit_problem = server.problem();
                if (!ok) break;
                samples["tcp_limit_randread4k_qd32_iops"].push_back(l.iops);
                samples["tcp_limit_randread4k_qd32_p50_us"].push_back(l.p50_us);
                samples["tcp_limit_randread4k_qd32_p99_us"].push_back(l.p99_us);
                samples["nvmf_efficiency_paired"].push_back(l.iops > 0 ? f.iops / l.iops : 0);
                samples["others_cpu_pct"].push_back(l.others_cpu_pct);
            }
            const int k = kind == target_kind::spdk;
            if (error.empty() && run == p.runs - 1) measure_idle(p, t, idle_pct[k], idle_pct_schedstat[k], error);
            // Our target must stop cleanly on SIGTERM.
            const int rc = stop_target(t);
            if (rc != 0 && error.empty()) {
                error = fmt::format("the {} target exited with {} after SIGTERM{}", t.name, rc,
                                    t.log.empty() ? "" : "; its log ends: " + file_tail(t.log));
            }
        }
    }

    std::map<std::string, double> r;
    for (const auto& [k, v] : samples) r[k] = median(v);
    // Per-run ratios ours / SPDK's, both under spdk_nvme_perf (runs_detail).
    for (const auto& w : workloads) {
        const auto& a = samples[fmt::format("spdk_perf_ours_{}_iops", w.name)];
        const auto& b = samples[fmt::format("spdk_perf_spdk_{}_iops", w.name)];
        for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
            if (b[i] > 0) samples[fmt::format("nvmf_vs_spdk_{}_ratio", w.name)].push_back(a[i] / b[i]);
        }
    }
    const double eff = r["tcp_limit_randread4k_qd32_iops"] > 0
                           ? r["nvmf_randread4k_qd32_iops"] / r["tcp_limit_randread4k_qd32_iops"]
                           : 0;
    // A median when the key has samples, else nothing (null in the JSON).
    auto med = [&samples](const std::string& k) -> std::optional<double> {
        const auto it = samples.find(k);
        if (it == samples.end() || it->second.empty()) return std::nullopt;
        return median(it->second);
    };
    auto ratio = [](std::optional<double> a, std::optional<double> b) -> std::optional<double> {
        if (!a || !b || *b <= 0) return std::nullopt;
        return *a / *b;
    };
    std::map<std::string, std::optional<double>> vs_spdk;
    for (const auto& w : workloads) {
        vs_spdk[w.name] = ratio(med(fmt::format("spdk_perf_ours_{}_iops", w.name)),
                                med(fmt::format("spdk_perf_spdk_{}_iops", w.name)));
    }
    const auto initiator_ratio =
        ratio(med("nvmf_perf_spdk_randread4k_qd32_iops"), med("spdk_perf_spdk_randread4k_qd32_iops"));
    const std::string qd1 = workloads[qd1_workload].name;
    const auto qd1_latency_ratio =
        ratio(med("spdk_perf_ours_" + qd1 + "_avg_us"), med("spdk_perf_spdk_" + qd1 + "_avg_us"));
    const bool spdk_measured = use_spdk && spdk_perf_runs > 0;

    std::string j = "{\n";
    auto add = [&j](const std::string& k, double v, int prec = 1) {
        j += fmt::format("  \"{}\": {:.{}f},\n", k, v, prec);
    };
    auto add_opt = [&j](const std::string& k, std::optional<double> v, int prec = 1) {
        j += v ? fmt::format("  \"{}\": {:.{}f},\n", k, *v, prec) : fmt::format("  \"{}\": null,\n", k);
    };
    auto boolean = [](std::optional<bool> b) { return b ? (*b ? "true" : "false") : "null"; };
    for (const auto& w : workloads) {
        add(fmt::format("nvmf_{}_iops", w.name), r[fmt::format("nvmf_{}_iops", w.name)]);
        add(fmt::format("nvmf_{}_p50_us", w.name), r[fmt::format("nvmf_{}_p50_us", w.name)], 2);
        add(fmt::format("nvmf_{}_p99_us", w.name), r[fmt::format("nvmf_{}_p99_us", w.name)], 2);
        add(fmt::format("nvmf_{}_avg_us", w.name), r[fmt::format("nvmf_{}_avg_us", w.name)], 2);
    }
    add("nvmf_read128k_qd32_mibs", r["nvmf_read128k_qd32_mibs"], 2);
    add("tcp_limit_randread4k_qd32_iops", r["tcp_limit_randread4k_qd32_iops"]);
    add("tcp_limit_randread4k_qd32_p50_us", r["tcp_limit_randread4k_qd32_p50_us"], 2);
    add("tcp_limit_randread4k_qd32_p99_us", r["tcp_limit_randread4k_qd32_p99_us"], 2);
    add("nvmf_efficiency", eff, 3);
    add("nvmf_efficiency_paired_median", r["nvmf_efficiency_paired"], 3);
    add("idle_target_cpu_pct", idle_pct[0], 3);
    add("idle_target_cpu_pct_schedstat", idle_pct_schedstat[0], 4);
    add("target_cpu_us_per_io_randread4k_qd32", r["target_cpu_us_per_io_randread4k_qd32"], 2);
    add("tcp_limit_cpu_us_per_io_randread4k_qd32", r["tcp_limit_cpu_us_per_io_randread4k_qd32"], 2);
    add("perf_cpu_us_per_io_randread4k_qd32", r["perf_cpu_us_per_io_randread4k_qd32"], 2);
    add("tcp_limit_perf_cpu_us_per_io_randread4k_qd32", r["tcp_limit_perf_cpu_us_per_io_randread4k_qd32"], 2);
    // Against SPDK (null when SPDK was skipped or not reached).
    for (const auto& w : workloads) add_opt(fmt::format("nvmf_vs_spdk_{}_ratio", w.name), vs_spdk[w.name], 3);
    add_opt("initiator_vs_spdk_randread4k_qd32_ratio", initiator_ratio, 3);
    add_opt("nvmf_vs_spdk_" + qd1 + "_avg_latency_ratio", qd1_latency_ratio, 3);
    for (const char* prefix : {"spdk_perf_ours", "spdk_perf_spdk", "nvmf_perf_spdk"}) {
        for (const auto& w : workloads) {
            const std::string k = fmt::format("{}_{}", prefix, w.name);
            add_opt(k + "_iops", med(k + "_iops"));
            add_opt(k + "_avg_us", med(k + "_avg_us"), 2);
            add_opt(k + "_p50_us", med(k + "_p50_us"), 2);
            add_opt(k + "_p99_us", med(k + "_p99_us"), 2);
            if (prefix[0] == 's') add_opt(k + "_target_cpu_us_per_io", med(k + "_target_cpu_us_per_io"), 2);
        }
    }
    add_opt("idle_spdk_target_cpu_pct", idle_pct[1] >= 0 ? std::optional<double>(idle_pct[1]) : std::nullopt, 3);
    add_opt("idle_spdk_target_cpu_pct_schedstat",
            idle_pct_schedstat[1] >= 0 ? std::optional<double>(idle_pct_schedstat[1]) : std::nullopt, 4);
    const std::optional<bool> detach_clean =
        spdk_measured ? std::optional<bool>(spdk_perf_unclean.empty()) : std::nullopt;
    j += fmt::format("  \"detach_clean\": {},\n", boolean(detach_clean));
    {
        std::string unclean;
        for (const auto& s : spdk_perf_unclean) {
            unclean += (unclean.empty() ? "\"" : ", \"") + ioe::bench::json_escape(s) + "\"";
        }
        j += fmt::format("  \"spdk_perf_runs\": {},\n  \"spdk_perf_unclean\": [{}],\n", spdk_perf_runs, unclean);
    }

    std::optional<bool> ratios_met, qd1_met, initiator_met;
    if (spdk_measured) {
        ratios_met = std::all_of(vs_spdk.begin(), vs_spdk.end(), [](const auto& kv) { return kv.second >= 1.0; });
        if (qd1_latency_ratio) qd1_met = *qd1_latency_ratio <= 1.0;
        if (initiator_ratio) initiator_met = *initiator_ratio >= 0.9;
    }
    j += fmt::format(
        "  \"targets\": {{\"nvmf_efficiency_met\": {}, \"idle_target_cpu_pct_met\": {}, "
        "\"nvmf_vs_spdk_ratios_met\": {}, \"qd1_avg_latency_met\": {}, \"initiator_vs_spdk_met\": {}, "
        "\"detach_clean_met\": {}}},\n",
        eff >= 0.8 ? "true" : "false", idle_pct[0] >= 0 && idle_pct[0] < 1 ? "true" : "false", boolean(ratios_met),
        boolean(qd1_met), boolean(initiator_met), boolean(detach_clean));
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
        "  \"spdk\": {{\"status\": \"{}\", \"dir\": \"{}\", \"target\": \"{}\", \"perf\": \"{}\", "
        "\"perf_seconds\": {}, \"perf_warmup_seconds\": {}, \"detach_grace_seconds\": {}}},\n",
        use_spdk ? "used" : ioe::bench::json_escape("skipped: " + spdk_skip), ioe::bench::json_escape(p.spdk_dir),
        ioe::bench::json_escape(joined(target_cmd[1])), ioe::bench::json_escape(joined(spdk_perf_cmd)),
        p.spdk_seconds(), p.spdk_warmup(), k_detach_grace);
    j += fmt::format(
        "  \"config\": {{\"runs\": {}, \"seconds\": {}, \"warmup_seconds\": {}, \"target_core\": {}, "
        "\"perf_core\": {}, \"namespace\": \"null:///nvmf_bench?size_mb={}&blk_size={}\", \"target\": \"{}\", "
        "\"perf\": \"{}\", \"perf_poll\": \"{}\", \"idle_seconds\": {}, \"load_average_start\": {:.2f}, "
        "\"load_average_end\": {:.2f}}},\n",
        p.runs, p.seconds, p.warmup, p.target_core, p.perf_core, k_size_mb, k_block,
        ioe::bench::json_escape(joined(target_cmd[0])),
        ioe::bench::json_escape(joined(perf_args(p, our_port, k_nqn, workloads[limit_workload]))), p.perf_poll,
        k_idle_seconds, load_start, load_average());
    j += fmt::format("  \"limit_server_problem\": \"{}\",\n", ioe::bench::json_escape(limit_problem));
    j += fmt::format("  \"error\": \"{}\"\n}}\n", ioe::bench::json_escape(error));
    if (p.json) {
        std::fputs(j.c_str(), stdout);
    } else {
        for (const auto& [k, v] : r) std::printf("%s %.3f\n", k.c_str(), v);
        std::printf("nvmf_efficiency %.3f\nidle_target_cpu_pct %.3f\n", eff, idle_pct[0]);
        for (const auto& [k, v] : vs_spdk) {
            if (v) std::printf("nvmf_vs_spdk_%s_ratio %.3f\n", k.c_str(), *v);
        }
        if (initiator_ratio) std::printf("initiator_vs_spdk_randread4k_qd32_ratio %.3f\n", *initiator_ratio);
        if (idle_pct[1] >= 0) std::printf("idle_spdk_target_cpu_pct %.3f\n", idle_pct[1]);
        std::printf("detach_clean %s\n", boolean(detach_clean));
        if (!use_spdk) std::printf("spdk skipped: %s\n", spdk_skip.c_str());
        if (!error.empty()) std::printf("error %s\n", error.c_str());
    }
    if (!error.empty()) std::fprintf(stderr, "nvmf_bench: %s\n", error.c_str());
    return error.empty() ? 0 : 1;
}
