// allocs_per_io of our vhost-user-blk export: the export runs embedded in
// the bench process (ioe::embedded on the target core, a null:/// device of
// the bench's size), vhost-perf drives it from the perf core, and the
// process's heap allocations (heap_count.hh) are read around a window in
// the middle of the run, divided by the requests the export counted in it.
// Connection set-up and tear-down fall outside the window.
#pragma once

#include <optional>
#include <string>

#include "bench/vhost_bench.hh"

namespace ioe::bench::vhost_bench {

struct alloc_figures {
    double allocs_per_io = 0;
    double allocations = 0, ios = 0;
};

// One pass of workload w; nullopt (with *error set) when it could not run.
std::optional<alloc_figures> measure_allocs(const params& p, const workload& w, std::string* error);

}  // namespace ioe::bench::vhost_bench
