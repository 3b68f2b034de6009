// nvmf-perf: an NVMe/TCP load generator in the shape of spdk_nvme_perf, over
// ioengine's own initiator (nvme/initiator/nvmf_device.hh). One reactor per
// --cores entry; each opens its own I/O queue and keeps -q I/Os in flight.
// Prints IOPS, MiB/s and latency (mean, p50, p99, p99.9, from fixed-bucket
// histograms merged over the shards), as text or with --json as one object.
//   nvmf-perf -a 127.0.0.1:4420 -n nqn.2026-11.io.ioengine:default -q 32 -o 4096 -w randread -t 10 --cores 1
// Exit code: 0; 1 when the connection failed or any I/O failed; 2 for a bad
// argument.
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

#include "nvme/initiator/nvmf_device.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/uuid.hh"
#include "tools/nvmf-perf/perf_options.hh"
#include "tools/nvmf-perf/perf_run.hh"

namespace {

using namespace ioe;
using namespace ioe::perf;

struct run_results {
    std::vector<shard_result> shards;
    std::string error;          // connect or set-up failure
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    std::uint16_t io_queues = 0;
    double seconds = 0;         // the measured window as it ran
};

std::string json_escape(const std::string& s) {
    std::string e;
    for (char c : s) {
        if (c == '"' || c == '\\') e += '\\';
        e += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
    return e;
}

future<int> perf_main(const options* o, run_results* res) {
    const std::string hostnqn =
        o->hostnqn.empty() ? "nqn.2014-08.org.nvmexpress:uuid:" + uuid::random().to_string() : o->hostnqn;
    std::unique_ptr<nvme::nvmf_device> dev;
    try {
        dev = co_await nvme::nvmf_device::connect("nvmf-perf", o->host, o->port, o->subnqn, hostnqn);
    } catch (const std::exception& e) {
        res->error = e.what();
        co_return 1;
    }
    res->block_size = dev->block_size();
    res->block_count = dev->block_count();
    res->io_queues = dev->io_queues();
    const unsigned shards = shard_count();
    if (o->io_size % dev->block_size() != 0) {
        res->error = fmt::format("-o {}: not a multiple of the namespace's block size ({} bytes)", o->io_size,
                                 dev->block_size());
    } else if (std::uint64_t{o->io_size} > dev->size_bytes()) {
        res->error = fmt::format("-o {}: larger than the namespace ({} bytes)", o->io_size, dev->size_bytes());
    } else if (dev->io_queues() < shards) {
        res->error = fmt::format("the target granted {} I/O queue(s) for {} core(s): use fewer --cores",
                                 dev->io_queues(), shards);
    }
    // Open every shard's I/O queue before the clock starts.
    for (unsigned s = 0; s < shards && res->error.empty(); ++s) {
        io_status st = co_await submit_to(s, [d = dev.get(), size = o->io_size] { return open_queue(d, size); });
        if (!ok(st)) {
            res->error = fmt::format("opening the I/O queue of core {}: the first read failed: {}", s,
                                     std::string(to_string(st)));
        }
    }
    if (res->error.empty() && o->idle) {
        co_await sleep(std::chrono::duration_cast<steady_clock::duration>(std::chrono::duration<double>(o->seconds)));
        res->seconds = o->seconds;
    } else if (res->error.empty()) {
        const auto begin = perf_clock::now() + std::chrono::duration_cast<perf_clock::duration>(
                                                   std::chrono::duration<double>(o->warmup));
        const auto end =
            begin + std::chrono::duration_cast<perf_clock::duration>(std::chrono::duration<double>(o->seconds));
        std::vector<future<>> running;
        for (unsigned s = 0; s < shards; ++s) {
            running.push_back(submit_to(s, [d = dev.get(), o, begin, end, r = &res->shards[s]] {
                return run_shard(d, o, begin, end, r);
            }));
        }
        std::exception_ptr failed;
        for (auto& r : running) {
            try {
                co_await std::move(r);
            } catch (...) {
                failed = std::current_exception();
            }
        }
        res->seconds = std::chrono::duration<double>(std::min(perf_clock::now(), end) - begin).count();
        if (failed) {
            try {
                std::rethrow_exception(failed);
            } catch (const std::exception& e) {
                res->error = e.what();
            }
        }
    }
    co_await dev->close();
    dev.reset();
    co_return res->error.empty() ? 0 : 1;
}

const char* pattern_name(pattern p) {
    switch (p) {
        case pattern::randread: return "randread";
        case pattern::randwrite: return "randwrite";
        case pattern::read: return "read";
        case pattern::write: return "write";
        case pattern::rw: return "rw";
        case pattern::randrw: return "randrw";
    }
    return "?";
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (int rc = parse_options(argc, argv, o); rc >= 0) return rc;
    log::set_level(spdlog::level::warn);

    engine_config cfg;
    cfg.cores = o.cores;
    cfg.reactor.mode = o.poll;
    const double needed_mb = double(o.depth) * o.io_size * o.cores.size() / (1 << 20);
    cfg.memory.size_mb = static_cast<std::size_t>(std::max(64.0, std::ceil(needed_mb * 2) + 32));

    run_results res;
    res.shards.resize(o.cores.size());
    int rc = 0;
    try {
        engine e(cfg);
        rc = e.run([&o, &res] { return perf_main(&o, &res); });
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "nvmf-perf: %s\n", ex.what());
        return 1;
    }
    if (!res.error.empty()) {
        std::fprintf(stderr, "nvmf-perf: %s:%u %s: %s\n", o.host.c_str(), o.port, o.subnqn.c_str(),
                     res.error.c_str());
        return rc ? rc : 1;
    }

    latency_histogram all;
    std::uint64_t reads = 0, writes = 0, errors = 0;
    io_status first_error = io_status::success;
    for (const auto& s : res.shards) {
        all.merge(s.latency);
        reads += s.reads;
        writes += s.writes;
        if (s.errors && !errors) first_error = s.first_error;
        errors += s.errors;
    }
    const double secs = res.seconds > 0 ? res.seconds : o.seconds;
    const double iops = o.idle ? 0 : double(reads + writes) / secs;
    const double mibs = iops * o.io_size / (1 << 20);
    const double us = 1e-3;
    if (o.json) {
        std::printf("{\"iops\": %.1f, \"mibs\": %.2f, \"avg_us\": %.2f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
                    "\"p999_us\": %.2f, \"min_us\": %.2f, \"max_us\": %.2f, \"reads\": %llu, \"writes\": %llu, "
                    "\"errors\": %llu, \"first_error\": \"%s\", \"seconds\": %.3f, \"idle\": %s, "
                    "\"config\": {\"address\": \"%s:%u\", \"nqn\": \"%s\", \"workload\": \"%s\", \"read_pct\": %u, "
                    "\"io_size\": %u, \"depth\": %u, \"cores\": \"%s\", \"io_queues\": %zu, \"block_size\": %u, "
                    "\"block_count\": %llu, \"warmup_seconds\": %.3f, \"poll\": \"%s\"}}\n",
                    iops, mibs, all.mean_ns() * us, all.percentile_ns(50) * us, all.percentile_ns(99) * us,
                    all.percentile_ns(99.9) * us, double(all.min_ns()) * us, double(all.max_ns()) * us,
                    static_cast<unsigned long long>(reads), static_cast<unsigned long long>(writes),
                    static_cast<unsigned long long>(errors),
                    errors ? std::string(to_string(first_error)).c_str() : "", secs, o.idle ? "true" : "false",
                    json_escape(o.host).c_str(), o.port, json_escape(o.subnqn).c_str(), pattern_name(o.workload),
                    o.read_pct, o.io_size, o.depth, o.cores_text.c_str(), o.cores.size(), res.block_size,
                    static_cast<unsigned long long>(res.block_count), o.warmup,
                    std::string(to_string(o.poll)).c_str());
    } else if (o.idle) {
        std::printf("nvmf-perf: %s:%u %s: connected with %zu I/O queue(s), idle for %.1f s\n", o.host.c_str(),
                    o.port, o.subnqn.c_str(), o.cores.size(), secs);
    } else {
        std::printf("nvmf-perf: %s:%u %s: %s, %u bytes, QD %u per core, %u%% reads, cores %s (%zu I/O queues), "
                    "%.1f s\n",
                    o.host.c_str(), o.port, o.subnqn.c_str(), pattern_name(o.workload), o.io_size, o.depth,
                    o.read_pct, o.cores_text.c_str(), o.cores.size(), secs);
        std::printf("  IOPS %12.1f   MiB/s %10.2f\n", iops, mibs);
        std::printf("  latency us: avg %.2f  p50 %.2f  p99 %.2f  p99.9 %.2f  min %.2f  max %.2f\n",
                    all.mean_ns() * us, all.percentile_ns(50) * us, all.percentile_ns(99) * us,
                    all.percentile_ns(99.9) * us, double(all.min_ns()) * us, double(all.max_ns()) * us);
        std::printf("  I/Os: %llu reads, %llu writes, %llu errors\n", static_cast<unsigned long long>(reads),
                    static_cast<unsigned long long>(writes), static_cast<unsigned long long>(errors));
    }
    if (errors) {
        std::fprintf(stderr, "nvmf-perf: %llu I/O(s) failed, the first with %s\n",
                     static_cast<unsigned long long>(errors), std::string(to_string(first_error)).c_str());
        return 1;
    }
    return rc;
}
