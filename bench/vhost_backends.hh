// vhost_bench's vhost-user-blk back-ends: qemu-storage-daemon exporting its
// null-co driver (or a file, O_DIRECT through io_uring) and our daemon
// exporting null:/// (or uring:/// on the same file), each pinned to the
// target core, listening on a socket in a private directory; waiting until
// the socket exists, and stopping (SIGTERM, then SIGKILL). Our export needs
// the vhost-user-blk server (issue 15, branch vhost-server): until the
// daemon offers an export option, ours_unavailable() says why.
#pragma once

#include <string>

#include "bench/vhost_bench.hh"

namespace ioe::bench::vhost_bench {

// "" when p.ioengine can export a device over vhost-user-blk, else why not.
std::string ours_unavailable(const params& p);

// file: "" for the null device, else the path of the file to export.
bool start_qsd(const params& p, const std::string& file, vhost_backend& b, std::string& error);
bool start_ours(const params& p, const std::string& file, vhost_backend& b, std::string& error);

// SIGTERM, then SIGKILL after 10 s; removes its directory. Returns its exit
// status (-1: signalled or killed).
int stop_backend(vhost_backend& b);

}  // namespace ioe::bench::vhost_bench
