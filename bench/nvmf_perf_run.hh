// Our initiator, tools/nvmf-perf, as nvmf_bench runs it: its command line
// for a workload, one measured run against a target or the limit server
// (its --json figures, the CPU per I/O of server and initiator, the others'
// CPU), and the idle measurement (nvmf-perf --idle holds a connection while
// the target's CPU is read from /proc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/nvmf_bench.hh"

namespace ioe::bench::nvmf_bench {

// nvmf-perf's arguments for workload w against 127.0.0.1:port, subsystem nqn.
// poll: nvmf-perf's --poll; empty: p.perf_poll.
std::vector<std::string> perf_args(const params& p, std::uint16_t port, const std::string& nqn, const workload& w,
                                   const std::string& poll = {});

// One nvmf-perf run against port (a target, or the limit server with
// server_pid -1); false (with *error set) if it failed.
bool run_perf(const params& p, std::uint16_t port, const std::string& nqn, pid_t server_pid, const workload& w,
              const std::string& label, figures& f, std::string* error, const std::string& poll = {});

// The target's CPU while nvmf-perf --idle holds a connection (admin and one
// I/O queue, nothing but keep-alives) for k_idle_seconds, as % of one core;
// also from schedstat. False (with *error set) if nvmf-perf failed.
bool measure_idle(const params& p, const target& t, double& pct, double& pct_schedstat, std::string& error);

}  // namespace ioe::bench::nvmf_bench
