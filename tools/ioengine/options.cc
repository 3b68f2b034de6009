// Command-line and config-file parsing of the ioengine daemon (options.hh).
// The config file is CLI11's TOML: `key = value` per long flag, lists as
// ["a", "b"]; a flag on the command line overrides the file.
#include "tools/ioengine/options.hh"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "runtime/cores.hh"

namespace ioe::daemon {

namespace {

bool split_address(const std::string& text, std::string& host, unsigned& port) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    char extra = 0;
    if (std::sscanf(text.c_str() + colon + 1, "%u%c", &port, &extra) != 1 || port > 65535) return false;
    host = text.substr(0, colon);
    return true;
}

}  // namespace

std::string parse_vhost_blk(const std::string& text, vhost_blk_option& out) {
    auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) return "expected NAME=SOCKET,device=DEV[,queues=N][,ro]";
    out.name = text.substr(0, eq);
    std::string rest = text.substr(eq + 1);
    std::size_t pos = 0;
    bool first = true;
    while (pos <= rest.size()) {
        auto comma = rest.find(',', pos);
        std::string part = rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? rest.size() + 1 : comma + 1;
        if (first) {
            if (part.empty()) return "the socket path is empty";
            out.socket_path = part;
            first = false;
        } else if (part.rfind("device=", 0) == 0) {
            out.device = part.substr(7);
        } else if (part.rfind("queues=", 0) == 0) {
            char extra = 0;
            if (std::sscanf(part.c_str() + 7, "%u%c", &out.queues, &extra) != 1) return "queues=N takes a number";
        } else if (part == "ro") {
            out.read_only = true;
        } else {
            return "unknown part '" + part + "' (device=DEV, queues=N or ro)";
        }
    }
    if (out.device.empty()) return "device=DEV is missing (a device name, or a URI such as malloc:///d?size_mb=64)";
    return {};
}

int parse_options(int argc, char** argv, options& out) {
    CLI::App app{"ioengine: user-space block-storage I/O engine (shard per core, io_uring, NVMe/TCP).\n"
                 "With no options at all it starts on its embedded default: 2 reactors, adaptive polling,\n"
                 "no huge pages, data in ./var/ioengine with a 1 GiB pool `default`, RPC on 127.0.0.1:10124,\n"
                 "NVMe/TCP on 127.0.0.1:4420, metrics on http://127.0.0.1:9102/metrics."};
    app.set_config("--config", "", "read options from this TOML file (key = value per long option; "
                                   "options given here override it)");
    std::string cores;
    std::string poll = "adaptive";
    unsigned idle_us = static_cast<unsigned>(out.engine.reactor.idle_before_sleep.count());
    app.add_option("--cores,-c", cores,
                   "cores to run reactors on: a list (0,1), ranges (0-3) or a mask (0x3); "
                   "default: the first 2 cores the process may use");
    app.add_option("--poll", poll,
                   "polling: busy (never sleep), adaptive (sleep after --idle-us without work), "
                   "event (sleep as soon as idle)")
        ->check(CLI::IsMember({"busy", "adaptive", "event"}))
        ->capture_default_str();
    app.add_option("--idle-us", idle_us, "adaptive polling: idle time before a reactor sleeps, in microseconds")
        ->capture_default_str();
    app.add_option("--huge-mb", out.engine.memory.huge_mb,
                   "DMA pool from 2 MiB huge pages, this many MiB (falls back to ordinary memory, "
                   "with a log line, when the machine has too few)")
        ->capture_default_str();
    app.add_option("--dma-mb", out.engine.memory.size_mb, "DMA pool size in MiB when huge pages are not used")
        ->capture_default_str();
    app.add_option("--ring-entries", out.engine.reactor.uring_entries, "io_uring SQ entries per reactor")
        ->capture_default_str();
    app.add_option("--name", out.node_name, "node name reported by node info (default: the host name)");
    app.add_option("--data-dir", out.data_dir,
                   "data directory: the state file, the RPC unix socket, the default pool's file")
        ->capture_default_str();
    app.add_option("--rpc", out.rpc,
                   "RPC addresses, HOST:PORT or unix:PATH (repeatable; replaces the default "
                   "127.0.0.1:10124 and unix:<data dir>/rpc.sock)")
        ->delimiter(',');
    app.add_option("--metrics", out.metrics, "Prometheus /metrics on HOST:PORT (HTTP), or off")
        ->capture_default_str();
    app.add_option("--default-pool-mb", out.default_pool_mb,
                   "size of the pool `default` on <data dir>/default.img when it is created (0: no default pool)")
        ->capture_default_str();
    std::vector<std::string> pools;
    app.add_option("--pool", pools,
                   "a pool to import (or create) at start, NAME=URI, e.g. p1=uring:///var/lib/disk.img "
                   "(repeatable)");
    std::string listen;
    app.add_option("--nvmf-listen", listen,
                   "serve NVMe/TCP on ADDRESS:PORT (IPv4; port 0: any free one); default 127.0.0.1:4420");
    app.add_option("--nvmf-c2h-success", out.nvmf_c2h_success,
                   "when a read completes in its C2HData PDU without a CapsuleResp: spec (only for hosts that "
                   "disabled SQ flow control at Connect, as NVMe/TCP says) or always (as SPDK's target does; "
                   "Linux's and SPDK's hosts accept it)")
        ->check(CLI::IsMember({"spec", "always"}))
        ->capture_default_str();
    std::string cntlid_range;
    app.add_option("--nvmf-cntlid-range", cntlid_range,
                   "controller IDs this engine hands out, FIRST-LAST within 1-65519 (default all); engines that "
                   "serve one volume's NQN as multipath paths need disjoint ranges, e.g. 1-999 and 1000-1999");
    app.add_option("--namespace", out.namespaces,
                   "a device URI to serve as a namespace of subsystem --nqn (repeatable), e.g. "
                   "malloc:///m0?size_mb=64 or uring:///var/lib/disk.img");
    app.add_option("--nqn", out.nqn, "NQN of the subsystem that holds the --namespace devices")->capture_default_str();
    app.add_option("--allow-host", out.allowed_hosts,
                   "host NQN allowed to connect to --nqn (repeatable; none: any host)");
    std::vector<std::string> vhost_blk;
    app.add_option("--vhost-blk", vhost_blk,
                   "serve a device to a local VM over vhost-user-blk: NAME=SOCKET,device=DEV[,queues=N][,ro] "
                   "(DEV: a device name or URI; repeatable), e.g. vm1=/run/vm1.sock,device=malloc:///d1?size_mb=64");
    app.add_option("--etcd", out.etcd,
                   "etcd endpoints for the nexus child-health records, HOST:PORT[,HOST:PORT...] (without it: kept "
                   "in memory, not crash-safe)");
    app.add_option("--log-level", out.log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (auto* c = app.get_config_ptr(); c && c->count() > 0) out.config_file = c->as<std::string>();
    if (!cores.empty()) {
        core_set_error err;
        out.engine.cores = parse_cores(cores, err);
        if (!err.message.empty()) {
            std::cerr << "ioengine: " << err.message << "\n";
            return 2;
        }
    } else {
        auto allowed = allowed_cores();
        if (allowed.size() > 2) allowed.resize(2);
        out.engine.cores = allowed;
    }
    if (!listen.empty()) {
        unsigned port = 0;
        if (!split_address(listen, out.nvmf_address, port)) {
            std::cerr << "ioengine: --nvmf-listen '" << listen << "': expected ADDRESS:PORT, e.g. 127.0.0.1:4420\n";
            return 2;
        }
        out.nvmf_port = static_cast<std::uint16_t>(port);
    }
    if (!cntlid_range.empty()) {
        const auto dash = cntlid_range.find('-');
        unsigned long first = 0, last = 0;
        char* end = nullptr;
        bool good = dash != std::string::npos && dash > 0;
        if (good) {
            first = std::strtoul(cntlid_range.c_str(), &end, 10);
            good = end == cntlid_range.c_str() + dash;
        }
        if (good) {
            last = std::strtoul(cntlid_range.c_str() + dash + 1, &end, 10);
            good = *end == '\0' && dash + 1 < cntlid_range.size();
        }
        if (!good || first < 1 || last > 0xffef || first > last) {
            std::cerr << "ioengine: --nvmf-cntlid-range '" << cntlid_range
                      << "': expected FIRST-LAST with 1 <= FIRST <= LAST <= 65519, e.g. 1000-1999\n";
            return 2;
        }
        out.nvmf_cntlid_first = static_cast<std::uint16_t>(first);
        out.nvmf_cntlid_last = static_cast<std::uint16_t>(last);
    }
    if (out.metrics != "off") {
        std::string host;
        unsigned port = 0;
        if (!split_address(out.metrics, host, port)) {
            std::cerr << "ioengine: --metrics '" << out.metrics << "': expected HOST:PORT or off\n";
            return 2;
        }
    }
    for (const auto& p : pools) {
        auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
            std::cerr << "ioengine: --pool '" << p << "': expected NAME=URI, e.g. p1=uring:///var/lib/disk.img\n";
            return 2;
        }
        out.pools.push_back({p.substr(0, eq), p.substr(eq + 1)});
    }
    for (const auto& v : vhost_blk) {
        vhost_blk_option o;
        if (auto err = parse_vhost_blk(v, o); !err.empty()) {
            std::cerr << "ioengine: --vhost-blk '" << v << "': " << err << "\n";
            return 2;
        }
        out.vhost_blk.push_back(o);
    }
    if (out.data_dir.empty()) {
        std::cerr << "ioengine: --data-dir must not be empty\n";
        return 2;
    }
    if (out.node_name.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        out.node_name = host[0] ? host : "ioengine";
    }
    parse_poll_mode(poll, out.engine.reactor.mode);
    out.engine.reactor.idle_before_sleep = std::chrono::microseconds(idle_us);
    return -1;
}

}  // namespace ioe::daemon
