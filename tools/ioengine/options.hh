// Command-line options of the ioengine daemon, parsed into an engine_config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.hh"

namespace ioe::daemon {

struct options {
    engine_config engine;
    std::string log_level = "info";
    // NVMe/TCP: serve `namespaces` (device URIs) in subsystem `nqn` on
    // `nvmf_address`:`nvmf_port` (0: any free port) when `nvmf` is set.
    bool nvmf = false;
    std::string nvmf_address = "127.0.0.1";
    std::uint16_t nvmf_port = 0;
    std::string nqn = "nqn.2026-11.io.ioengine:default";
    std::vector<std::string> namespaces;
    std::vector<std::string> allowed_hosts;
};

// Parses argv. Returns -1 to go on, or an exit code (0 after --help,
// 2 after a bad option, with the message already printed).
int parse_options(int argc, char** argv, options& out);

}  // namespace ioe::daemon
