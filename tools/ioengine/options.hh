// Command-line options of the ioengine daemon, parsed into an engine_config.
#pragma once

#include <string>

#include "runtime/engine.hh"

namespace ioe::daemon {

struct options {
    engine_config engine;
    std::string log_level = "info";
};

// Parses argv. Returns -1 to go on, or an exit code (0 after --help,
// 2 after a bad option, with the message already printed).
int parse_options(int argc, char** argv, options& out);

}  // namespace ioe::daemon
