// SPDK as nvmf_bench's reference peer (from --spdk DIR): whether it can be
// used here (binaries, huge pages), starting its nvmf_tgt on the target
// core from a JSON config that serves a null bdev of our namespace's shape,
// and running spdk_nvme_perf -L against a target: its Total line and 50/99 %
// latency percentiles, the target's CPU over the measured window, and a run
// that hangs at detach after printing its results (killed after
// k_detach_grace s; its figures still count). Stopping nvmf_tgt is
// stop_target (nvmf_targets.hh).
#pragma once

#include <string>
#include <vector>

#include "bench/nvmf_bench.hh"

namespace ioe::bench::nvmf_bench {

// Why SPDK cannot be used from p.spdk_dir, or "" when it can.
std::string spdk_unusable(const params& p);

// nvmf_tgt on the target core with what `spdk null-target PORT` sets up by
// RPC (nvmf_create_transport -t TCP -q 256; bdev_null_create null0 4096
// 4096; the subsystem with any host; the namespace; the listener), given as
// a JSON config instead: it is listening once the port accepts, and no
// Python is started. False (with error set, and nothing left running) if it
// did not start listening within 30 s.
bool start_spdk(const params& p, target& t, std::string& error);

// One spdk_nvme_perf run against t. *unclean: why it did not exit on its
// own with status 0 within its deadline ("" if it did); a run killed
// k_detach_grace s after it printed its results hung at detach, and its
// figures still count. False (with *error set) when it printed no results.
// *command (if given): its command line.
bool run_spdk_perf(const params& p, const target& t, const workload& w, const std::string& label, figures& f,
                   std::string* unclean, std::string* error, std::vector<std::string>* command);

}  // namespace ioe::bench::nvmf_bench
