// tools/vhost-perf as vhost_bench runs it: its command line for a workload
// against a socket (one queue on the perf core, --backend-pid for the
// back-end's CPU), one measured run, and its --json figures.
#pragma once

#include <string>
#include <vector>

#include "bench/vhost_bench.hh"

namespace ioe::bench::vhost_bench {

std::vector<std::string> vhost_perf_args(const params& p, const vhost_backend& b, const workload& w);

// False (with *error set) when vhost-perf failed or printed no figures.
bool run_vhost_perf(const params& p, const vhost_backend& b, const workload& w, const std::string& label,
                    figures& f, std::string* error);

}  // namespace ioe::bench::vhost_bench
