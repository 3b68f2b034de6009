// vhost-perf: a vhost-user-blk load generator in the shape of nvmf-perf and
// spdk_nvme_perf. It is a small virtio-blk driver in user space
// (vhost/frontend_device.hh): it connects to a back-end's unix socket (ours
// or qemu-storage-daemon's), shares a memfd as guest memory, sets up -n split
// virtqueues and drives each from its own thread pinned to a core of -c,
// keeping -q requests in flight and busy-polling the used ring (no
// interrupts; kicks only when the back-end asks for them under EVENT_IDX).
// Prints IOPS, MiB/s, latency (mean, p50, p99, p99.9, max from fixed-bucket
// histograms merged over the queues) and CPU per I/O (ours, and the
// back-end's with --backend-pid), as text or with --json as one object.
//   vhost-perf -s /tmp/x.sock -q 32 -o 4k -w randread -t 10 -n 2 -c 0-1
// Exit code: 0; 1 when the set-up failed or any I/O failed; 2 for a bad
// argument.
#include <dirent.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine.hh"
#include "tools/vhost-perf/perf_options.hh"
#include "tools/vhost-perf/perf_run.hh"
#include "vhost/frontend_device.hh"

namespace {

using namespace ioe;
using namespace ioe::vperf;

// Seconds on a CPU of every thread of pid (/proc/PID/task/*/schedstat, in
// nanoseconds), or -1 when the process is not readable.
double process_run_seconds(int pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = opendir(dir.c_str());
    if (!d) return -1;
    double total = 0;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream f(dir + "/" + e->d_name + "/schedstat");
        unsigned long long ns = 0;
        if (f >> ns) total += double(ns) * 1e-9;
    }
    closedir(d);
    return total;
}

std::string json_escape(const std::string& s) {
    std::string e;
    for (char c : s) {
        if (c == '"' || c == '\\') e += '\\';
        e += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
    return e;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (int rc = parse_options(argc, argv, o); rc >= 0) return rc;

    std::unique_ptr<vhost::frontend_device> dev;
    try {
        vhost::frontend_config cfg;
        cfg.socket_path = o.socket;
        cfg.queues = o.queues;
        cfg.queue_size = o.ring_size;
        cfg.depth = o.depth;
        cfg.max_io_bytes = o.io_size;
        cfg.hugepages = o.hugepages;
        dev = std::make_unique<vhost::frontend_device>(cfg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vhost-perf: %s\n", e.what());
        return 1;
    }
    if (o.io_size % dev->block_size() != 0) {
        std::fprintf(stderr, "vhost-perf: -o %u: not a multiple of the device's block size (%u bytes)\n", o.io_size,
                     dev->block_size());
        return 2;
    }
    if (o.io_size > dev->capacity_bytes()) {
        std::fprintf(stderr, "vhost-perf: -o %u: larger than the device (%llu bytes)\n", o.io_size,
                     static_cast<unsigned long long>(dev->capacity_bytes()));
        return 2;
    }
    if (dev->read_only() && o.read_pct != 100) {
        std::fprintf(stderr, "vhost-perf: -w %s: the device is read-only\n", o.workload_name.c_str());
        return 2;
    }

    std::vector<queue_result> results(o.queues);
    std::vector<std::string> pin_errors(o.queues);
    const auto begin = perf_clock::now() + std::chrono::milliseconds(50) +
                       std::chrono::duration_cast<perf_clock::duration>(std::chrono::duration<double>(o.warmup));
    const auto end = begin + std::chrono::duration_cast<perf_clock::duration>(std::chrono::duration<double>(o.seconds));
    std::vector<std::thread> threads;
    for (unsigned q = 0; q < o.queues; ++q) {
        threads.emplace_back([&, q] {
            pin_errors[q] = pin_thread_to_core(o.cores[q % o.cores.size()]);
            run_queue(dev->queue(q), o, dev->capacity_bytes(), begin, end, results[q]);
        });
    }
    std::this_thread::sleep_until(begin);
    const double backend0 = o.backend_pid > 0 ? process_run_seconds(o.backend_pid) : -1;
    std::this_thread::sleep_until(end);
    const double backend1 = o.backend_pid > 0 ? process_run_seconds(o.backend_pid) : -1;
    for (auto& t : threads) t.join();

    bool drained = true;
    for (const auto& r : results) drained = drained && r.drained;
    std::string stop_error;
    if (drained) {
        try {
            dev->stop();
        } catch (const std::exception& e) {
            stop_error = e.what();
        }
    } else {
        stop_error = "requests still in flight 10 s after the window: the back-end stopped answering";
    }

    perf::latency_histogram all;
    std::uint64_t reads = 0, writes = 0, errors = 0, kicks = 0;
    double cpu = 0;
    std::string first_error;
    for (const auto& r : results) {
        all.merge(r.latency);
        reads += r.reads;
        writes += r.writes;
        if (r.errors && !errors) first_error = r.first_error;
        errors += r.errors;
        cpu += r.cpu_seconds;
        kicks += r.kicks;
    }
    for (unsigned q = 0; q < o.queues; ++q) {
        if (!pin_errors[q].empty()) std::fprintf(stderr, "vhost-perf: queue %u: %s\n", q, pin_errors[q].c_str());
    }
    const double ios = double(reads + writes);
    const double iops = ios / o.seconds;
    const double mibs = iops * o.io_size / (1 << 20);
    const double us = 1e-3;
    const double cpu_us_per_io = ios > 0 ? cpu * 1e6 / ios : 0;
    const double backend_cpu = backend0 >= 0 && backend1 >= 0 ? backend1 - backend0 : -1;
    const double backend_us_per_io = backend_cpu >= 0 && ios > 0 ? backend_cpu * 1e6 / ios : -1;
    if (o.json) {
        std::printf("{\"iops\": %.1f, \"mibs\": %.2f, \"avg_us\": %.2f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
                    "\"p999_us\": %.2f, \"min_us\": %.2f, \"max_us\": %.2f, \"reads\": %llu, \"writes\": %llu, "
                    "\"errors\": %llu, \"first_error\": \"%s\", \"seconds\": %.3f, \"cpu_us_per_io\": %.3f, "
                    "\"backend_cpu_us_per_io\": %.3f, \"backend_cpu_seconds\": %.3f, \"kicks_per_io\": %.4f, "
                    "\"config\": {\"socket\": \"%s\", \"workload\": \"%s\", \"read_pct\": %u, \"io_size\": %u, "
                    "\"depth\": %u, \"queues\": %u, \"cores\": \"%s\", \"ring_size\": %u, \"block_size\": %u, "
                    "\"capacity_bytes\": %llu, \"features\": \"0x%llx\", \"protocol_features\": \"0x%llx\", "
                    "\"huge_pages\": %s, \"warmup_seconds\": %.3f, \"backend_pid\": %d}}\n",
                    iops, mibs, all.mean_ns() * us, all.percentile_ns(50) * us, all.percentile_ns(99) * us,
                    all.percentile_ns(99.9) * us, double(all.min_ns()) * us, double(all.max_ns()) * us,
                    static_cast<unsigned long long>(reads), static_cast<unsigned long long>(writes),
                    static_cast<unsigned long long>(errors), json_escape(first_error).c_str(), o.seconds,
                    cpu_us_per_io, backend_us_per_io, backend_cpu, ios > 0 ? double(kicks) / ios : 0.0,
                    json_escape(o.socket).c_str(), pattern_name(o.workload), o.read_pct, o.io_size, o.depth,
                    o.queues, o.cores_text.c_str(), o.ring_size, dev->block_size(),
                    static_cast<unsigned long long>(dev->capacity_bytes()),
                    static_cast<unsigned long long>(dev->features()),
                    static_cast<unsigned long long>(dev->protocol_features()),
                    dev->memory().huge_pages() ? "true" : "false", o.warmup, o.backend_pid);
    } else {
        std::printf("vhost-perf: %s: %s, %u bytes, QD %u per queue, %u%% reads, %u queue(s) on cores %s, %.1f s\n",
                    o.socket.c_str(), pattern_name(o.workload), o.io_size, o.depth, o.read_pct, o.queues,
                    o.cores_text.c_str(), o.seconds);
        std::printf("  IOPS %12.1f   MiB/s %10.2f\n", iops, mibs);
        std::printf("  latency us: avg %.2f  p50 %.2f  p99 %.2f  p99.9 %.2f  min %.2f  max %.2f\n",
                    all.mean_ns() * us, all.percentile_ns(50) * us, all.percentile_ns(99) * us,
                    all.percentile_ns(99.9) * us, double(all.min_ns()) * us, double(all.max_ns()) * us);
        std::printf("  CPU us per I/O: vhost-perf %.3f", cpu_us_per_io);
        if (backend_us_per_io >= 0) std::printf(", back-end (pid %d) %.3f", o.backend_pid, backend_us_per_io);
        std::printf("   kicks per I/O %.4f\n", ios > 0 ? double(kicks) / ios : 0.0);
        std::printf("  I/Os: %llu reads, %llu writes, %llu errors\n", static_cast<unsigned long long>(reads),
                    static_cast<unsigned long long>(writes), static_cast<unsigned long long>(errors));
    }
    if (errors) {
        std::fprintf(stderr, "vhost-perf: %llu I/O(s) failed, the first with %s\n",
                     static_cast<unsigned long long>(errors), first_error.c_str());
        return 1;
    }
    if (!stop_error.empty()) {
        std::fprintf(stderr, "vhost-perf: %s\n", stop_error.c_str());
        return 1;
    }
    return 0;
}
