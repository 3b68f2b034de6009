// Parsing and checking of nvmf-perf's options (see perf_options.hh). Every
// refusal names the option and the value that was wrong.
#include "tools/nvmf-perf/perf_options.hh"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <map>

#include "nvme/spec/nvme_spec.hh"
#include "runtime/cores.hh"

namespace ioe::perf {

namespace {

constexpr std::uint32_t max_io_size = 1u << 20;  // the largest DMA buffer
constexpr unsigned max_depth = 128;              // the initiator's CID table

int bad(const std::string& what) {
    std::cerr << "nvmf-perf: " << what << "\n";
    return 2;
}

// "4096", "4k", "128K", "1m" -> bytes; false when not a size.
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

int parse_options(int argc, char** argv, options& out) {
    CLI::App app{"nvmf-perf: NVMe/TCP load generator (ioengine's initiator, one I/O queue per core)"};
    std::string address, io_size = "4096", poll = "busy";
    int read_pct = -1;
    app.add_option("-a,--address", address, "target HOST:PORT, e.g. 127.0.0.1:4420")->required();
    app.add_option("-n,--nqn", out.subnqn, "subsystem NQN")->required();
    app.add_option("--hostnqn", out.hostnqn, "host NQN (default: a random nqn.2014-08.org.nvmexpress:uuid:...)");
    app.add_option("-q,--depth", out.depth, "I/Os kept in flight per core (1-128)")->capture_default_str();
    app.add_option("-o,--io-size", io_size, "bytes per I/O, e.g. 4096, 4k, 128k (a multiple of the block size)")
        ->capture_default_str();
    app.add_option("-w,--workload", out.workload_name, "randread, randwrite, read, write, rw or randrw")
        ->required();
    app.add_option("-M,--read-pct", read_pct, "reads in % for rw/randrw (0-100, default 50)");
    app.add_option("-t,--time", out.seconds, "measured seconds")->capture_default_str();
    app.add_option("--warmup", out.warmup, "seconds of I/O before the measured window")->capture_default_str();
    app.add_option("--cores,-c", out.cores_text,
                   "cores to run on, one I/O queue each: a list (1,2), ranges (0-3) or a mask (0x2); "
                   "default: the first core the process may use");
    app.add_option("--poll", poll, "reactor polling: busy, adaptive or event")->capture_default_str();
    app.add_flag("--json", out.json, "print one JSON object on stdout");
    app.add_flag("--idle", out.idle,
                 "connect and open the I/O queues (one read each), then send nothing but keep-alives for -t seconds");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    const auto colon = address.rfind(':');
    unsigned port = 0;
    char tail = 0;
    if (colon == std::string::npos || colon == 0 ||
        std::sscanf(address.c_str() + colon + 1, "%u%c", &port, &tail) != 1 || port == 0 || port > 65535) {
        return bad("-a '" + address + "': expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:4420");
    }
    out.host = address.substr(0, colon);
    if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
        out.host = out.host.substr(1, out.host.size() - 2);  // [::1]:4420
    }
    out.port = static_cast<std::uint16_t>(port);
    if (out.subnqn.empty() || out.subnqn.size() > nvme::nqn_max_length) {
        return bad("-n '" + out.subnqn + "': an NQN is 1 to " + std::to_string(nvme::nqn_max_length) + " bytes");
    }
    if (out.hostnqn.size() > nvme::nqn_max_length) {
        return bad("--hostnqn '" + out.hostnqn + "': an NQN is at most " + std::to_string(nvme::nqn_max_length) +
                   " bytes");
    }
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
    if (!parse_poll_mode(poll, out.poll)) return bad("--poll '" + poll + "': expected busy, adaptive or event");
    if (out.cores_text.empty()) {
        const auto allowed = allowed_cores();
        if (allowed.empty()) return bad("no core is allowed for this process");
        out.cores = {allowed.front()};
        out.cores_text = std::to_string(allowed.front());
    } else {
        core_set_error err;
        out.cores = parse_cores(out.cores_text, err);
        if (!err.message.empty()) return bad(err.message);
    }
    return -1;
}

}  // namespace ioe::perf
