// nvmf_bench's targets under test, the plumbing both share: a free port,
// waiting until a target listens, stopping it (SIGTERM, then SIGKILL) and
// removing its temporary directory; and starting ours, the ioengine daemon
// serving null:///nvmf_bench. SPDK's nvmf_tgt is started in spdk_peer.cc.
#pragma once

#include <cstdint>
#include <string>

#include "bench/nvmf_bench.hh"

namespace ioe::bench::nvmf_bench {

// How the daemon is started (it reads --help once): a daemon with a control
// plane would otherwise create a 1 GiB default pool under ./var, and listen
// for RPC and metrics on fixed ports that another engine on the machine may
// hold: a private data dir, no default pool, no TCP listeners but the
// target's.
struct daemon_flags {
    bool data_dir = false, default_pool = false, rpc = false, metrics = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago, or 0.
std::uint16_t free_port();

// Removes dir and everything in it (if set), and clears it.
void remove_dir(std::string& dir);

// Waits until t's port accepts (true) or t exits or timeout_s pass (false).
bool wait_listening(target& t, double timeout_s);

// SIGTERM, then SIGKILL after 15 s. Returns its exit status (-1: signalled or killed).
int stop_target(target& t);

// Starts the ioengine daemon (p.ioengine) on p.target_core serving
// null:///nvmf_bench as k_nqn, and waits until it listens. False (with
// error set, and nothing left running) if it did not.
bool start_ours(const params& p, const daemon_flags& flags, target& t, std::string& error);

}  // namespace ioe::bench::nvmf_bench
