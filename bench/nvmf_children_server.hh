// nexus_bench's nvmf:// children: a second engine process (this binary run
// as `nexus_bench --serve-nvmf CORE SIZE_MB`) that serves three null:///
// devices, one NVMe/TCP subsystem each, so the nexus over nvmf:// children
// and its one-child baseline talk to another process over loopback TCP as
// they would to another node. Here: that process's main, and starting and
// stopping it from the bench.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace ioe::bench::nexus_bench {

// The subsystem of nvmf:// child i in the serving process.
std::string nvmf_child_nqn(unsigned i);

// main of `nexus_bench --serve-nvmf CORE SIZE_MB`: one adaptive shard on
// CORE serving three null:/// devices of SIZE_MB (4 KiB blocks), one
// subsystem each (nvmf_child_nqn), on 127.0.0.1 at a free port. Prints the
// port on stdout, then serves until its stdin closes (the bench closes it,
// or dies). Its exit status.
int serve_main(int argc, char** argv);

struct nvmf_server {
    pid_t pid = -1;
    int stdin_fd = -1;  // closing it stops the server
};

// Starts this binary with --serve-nvmf on `core` (it dies with us:
// PR_SET_PDEATHSIG, and its stdin closes). Returns its port, or 0 with
// *error set; waits at most 20 s for the port.
std::uint16_t start_nvmf_server(unsigned core, std::uint64_t size_mb, nvmf_server& s, std::string* error);

// Closes its stdin and waits 10 s for it to exit, then kills it. Its exit status, or -1.
int stop_nvmf_server(nvmf_server& s);

}  // namespace ioe::bench::nexus_bench
