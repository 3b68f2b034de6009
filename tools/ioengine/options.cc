// Command-line parsing of the ioengine daemon (see options.hh).
#include "tools/ioengine/options.hh"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "runtime/cores.hh"

namespace ioe::daemon {

int parse_options(int argc, char** argv, options& out) {
    CLI::App app{"ioengine: user-space block-storage I/O engine (shard per core, io_uring, NVMe/TCP)"};
    std::string cores;
    std::string poll = "adaptive";
    unsigned idle_us = static_cast<unsigned>(out.engine.reactor.idle_before_sleep.count());
    app.add_option("--cores,-c", cores,
                   "cores to run reactors on: a list (0,1), ranges (0-3) or a mask (0x3); "
                   "default: every core the process may use");
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
    std::string listen;
    app.add_option("--nvmf-listen", listen, "serve NVMe/TCP on ADDRESS:PORT (IPv4), e.g. 127.0.0.1:4420");
    app.add_option("--namespace", out.namespaces,
                   "a device URI to serve as a namespace (repeatable), e.g. malloc:///m0?size_mb=64 or "
                   "uring:///var/lib/disk.img");
    app.add_option("--nqn", out.nqn, "NQN of the subsystem that holds the namespaces")->capture_default_str();
    app.add_option("--allow-host", out.allowed_hosts, "host NQN allowed to connect (repeatable; none: any host)");
    app.add_option("--log-level", out.log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (!cores.empty()) {
        core_set_error err;
        out.engine.cores = parse_cores(cores, err);
        if (!err.message.empty()) {
            std::cerr << "ioengine: " << err.message << "\n";
            return 2;
        }
    }
    if (!listen.empty()) {
        auto colon = listen.rfind(':');
        unsigned port = 0;
        if (colon == std::string::npos || colon == 0 ||
            std::sscanf(listen.c_str() + colon + 1, "%u", &port) != 1 || port > 65535) {
            std::cerr << "ioengine: --nvmf-listen '" << listen << "': expected ADDRESS:PORT, e.g. 127.0.0.1:4420\n";
            return 2;
        }
        out.nvmf_address = listen.substr(0, colon);
        out.nvmf_port = static_cast<std::uint16_t>(port);
        out.nvmf = true;
    }
    if (!out.namespaces.empty() && !out.nvmf) {
        std::cerr << "ioengine: --namespace needs --nvmf-listen ADDRESS:PORT\n";
        return 2;
    }
    parse_poll_mode(poll, out.engine.reactor.mode);
    out.engine.reactor.idle_before_sleep = std::chrono::microseconds(idle_us);
    return -1;
}

}  // namespace ioe::daemon
