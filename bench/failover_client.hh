// nexus_failover_bench's client: our own NVMe/TCP initiator writing to a
// published nexus, as an application would, and moving to the node that
// took the nexus over. It is this binary run as
//
//   nexus_failover_bench --client CORE OLD_URI NEW_URI
//
// It opens OLD_URI (nvmf://, the serving node), writes 4 KiB blocks at QD 1
// and prints "client: ready" once one has completed. On SIGUSR1 (the bench
// sends it right after the takeover call returned) it stops writing to the
// old path, opens NEW_URI (same NQN, the new node's address) and writes
// until the first write completes there, then prints
// "client: first_io_ns=N" (CLOCK_MONOTONIC, comparable with the bench's
// clock) and exits 0. Any failure: a line saying why, exit 1.
#pragma once

namespace ioe::bench::failover {

int client_main(int argc, char** argv);

}  // namespace ioe::bench::failover
