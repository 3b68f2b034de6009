// Parsing and checking of vhost-perf's options (see perf_options.hh). Every
// refusal names the option and the value that was wrong.
#include "tools/vhost-perf/perf_options.hh"

#include <CLI/CLI.hpp>

#include <bit>
#include <iostream>
#include <map>

#include "runtime/cores.hh"

namespace ioe::vperf {

namespace {

constexpr std::uint32_t max_io_size = 1u << 20;
constexpr unsigned max_depth = 256;   // 3 descriptors each: a ring of 1024, libvhost-user's largest
constexpr unsigned max_queues = 64;

int bad(const std::string& what) {
    std::cerr << "vhost-perf: " << what << "\n";
    return 2;
}

bool parse_size(const std::string& s, std::uint64_t& out) {
    if (s.empty()) return false;
    std::size_t used = 0;
    unsigned long long v = 0;
    try {
        v = std::stoull(s, &used, 10);
    } catch (...) {
        return false;
    }
    std::uint64_t mul = 1;
    if (used < s.size()) {
        if (used + 1 != s.size()) return false;
        switch (s[used]) {
            case 'k': case 'K': mul = 1024; break;
            case 'm': case 'M': mul = 1024 * 1024; break;
            default: return false;
        }
    }
    out = v * mul;
    return true;
}

}  // namespace

bool is_random(pattern p) noexcept {
    return p == pattern::randread || p == pattern::randwrite || p == pattern::randrw;
}

const char* pattern_name(pattern p) noexcept {
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

int parse_options(int argc, char** argv, options& out) {
    CLI::App app{"vhost-perf: vhost-user-blk load generator (a user-space virtio-blk driver, one thread per queue)"};
    std::string io_size = "4096";
    int read_pct = -1;
    bool no_huge = false;
    app.add_option("-s,--socket", out.socket, "the back-end's vhost-user unix socket")->required();
    app.add_option("-q,--depth", out.depth, "I/Os kept in flight per queue (1-256)")->capture_default_str();
    app.add_option("-o,--io-size", io_size, "bytes per I/O, e.g. 4096, 4k, 128k (a multiple of the block size)")
        ->capture_default_str();
    app.add_option("-w,--workload", out.workload_name, "randread, randwrite, read, write, rw or randrw")->required();
    app.add_option("-M,--read-pct", read_pct, "reads in % for rw/randrw (0-100, default 50)");
    app.add_option("-t,--time", out.seconds, "measured seconds")->capture_default_str();
    app.add_option("--warmup", out.warmup, "seconds of I/O before the measured window")->capture_default_str();
    app.add_option("-n,--queues", out.queues, "virtqueues, one thread each (1-64)")->capture_default_str();
    app.add_option("-c,--cores", out.cores_text,
                   "cores for the queue threads (queue i on the i-th, wrapping): a list (1,2), ranges (0-3) or a "
                   "mask (0x2); default: the first cores the process may use");
    app.add_option("--ring-size", out.ring_size,
                   "descriptors per virtqueue, a power of two >= 3 x depth (default: the smallest such, at least 128)");
    app.add_flag("--no-hugepages", no_huge, "shared memory from ordinary pages even when huge pages are reserved");
    app.add_option("--backend-pid", out.backend_pid, "the back-end's process id: report its CPU time per I/O");
    app.add_flag("--json", out.json, "print one JSON object on stdout");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    out.hugepages = !no_huge;
    if (out.depth < 1 || out.depth > max_depth) {
        return bad("-q " + std::to_string(out.depth) + ": the queue depth must be 1 to " + std::to_string(max_depth));
    }
    std::uint64_t size = 0;
    if (!parse_size(io_size, size) || size < 512 || size > max_io_size || size % 512 != 0) {
        return bad("-o '" + io_size + "': the I/O size must be a multiple of 512 bytes from 512 to 1m");
    }
    out.io_size = static_cast<std::uint32_t>(size);
    static const std::map<std::string, pattern> patterns = {
        {"randread", pattern::randread}, {"randwrite", pattern::randwrite}, {"read", pattern::read},
        {"write", pattern::write},       {"rw", pattern::rw},               {"randrw", pattern::randrw}};
    const auto w = patterns.find(out.workload_name);
    if (w == patterns.end()) {
        return bad("-w '" + out.workload_name + "': expected randread, randwrite, read, write, rw or randrw");
    }
    out.workload = w->second;
    const bool mixed = out.workload == pattern::rw || out.workload == pattern::randrw;
    if (read_pct != -1 && !mixed) {
        return bad("-M " + std::to_string(read_pct) + ": a read percentage goes with -w rw or randrw, not -w " +
                   out.workload_name);
    }
    if (mixed && (read_pct < -1 || read_pct > 100)) {
        return bad("-M " + std::to_string(read_pct) + ": the read percentage must be 0 to 100");
    }
    out.read_pct = mixed ? (read_pct == -1 ? 50u : static_cast<unsigned>(read_pct))
                         : (out.workload == pattern::randread || out.workload == pattern::read ? 100u : 0u);
    if (!(out.seconds > 0) || out.seconds > 86400) {
        return bad("-t " + std::to_string(out.seconds) + ": the run time must be more than 0 and at most 86400 s");
    }
    if (!(out.warmup >= 0) || out.warmup > 3600) {
        return bad("--warmup " + std::to_string(out.warmup) + ": expected 0 to 3600 s");
    }
    if (out.queues < 1 || out.queues > max_queues) {
        return bad("-n " + std::to_string(out.queues) + ": the number of queues must be 1 to " +
                   std::to_string(max_queues));
    }
    if (out.ring_size == 0) {
        out.ring_size = std::max<std::uint32_t>(128, std::bit_ceil(3 * out.depth));
    } else if (!std::has_single_bit(out.ring_size) || out.ring_size > 32768 || out.ring_size < 3 * out.depth) {
        return bad("--ring-size " + std::to_string(out.ring_size) + ": a power of two up to 32768 and at least 3 x -q (" +
                   std::to_string(3 * out.depth) + ") is needed");
    }
    if (out.cores_text.empty()) {
        const auto allowed = allowed_cores();
        if (allowed.empty()) return bad("no core is allowed for this process");
        for (unsigned q = 0; q < out.queues && q < allowed.size(); ++q) out.cores.push_back(allowed[q]);
        out.cores_text = format_cores(out.cores);
    } else {
        core_set_error err;
        out.cores = parse_cores(out.cores_text, err);
        if (!err.message.empty()) return bad("-c: " + err.message);
    }
    return -1;
}

}  // namespace ioe::vperf
