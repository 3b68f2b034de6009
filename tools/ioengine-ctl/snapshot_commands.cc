// ioengine-ctl replica snapshot | clone | inflate | restore: point-in-time
// snapshots of replicas, writable clones of snapshots, clones made
// independent of their snapshot, and in-place restore (docs/
// pool-format.md, version 2). `replica list` shows them with their parent
// and space accounting; `replica destroy` deletes a snapshot (a snapshot
// with clones is marked deleted and goes with its last clone).
#include "tools/ioengine-ctl/commands.hh"

namespace ioe::ctl {

namespace {

struct snapshot_args {
    std::string name, snapshot, txid, id;
};

}  // namespace

void add_snapshot_commands(CLI::App* replica, globals& g, action_fn& action) {
    static snapshot_args a;
    auto bind = [&](CLI::App* s, action_fn fn) { bind_action(s, action, std::move(fn)); };

    auto* snap = sub(replica, "snapshot", "take a read-only snapshot of a replica or clone, e.g. r1 r1-monday", g);
    snap->add_option("name", a.name, "the replica or clone")->required();
    snap->add_option("snapshot", a.snapshot, "the snapshot's name")->required();
    snap->add_option("--txid", a.txid, "transaction id (a retry with the same name and id answers the first snapshot)");
    snap->add_option("--uuid", a.id, "the snapshot's uuid (default: a random one)");
    bind(snap, [&g](rpc::rpc_client& c) {
        show(g, std::vector{c.snapshot_replica(a.name, a.snapshot, a.txid, a.id)}, replica_table);
    });

    auto* clone = sub(replica, "clone", "create a writable thin clone of a snapshot, e.g. r1-monday r1-test", g);
    clone->add_option("snapshot", a.snapshot, "the snapshot")->required();
    clone->add_option("name", a.name, "the clone's name")->required();
    clone->add_option("--uuid", a.id, "the clone's uuid (default: a random one)");
    bind(clone, [&g](rpc::rpc_client& c) {
        show(g, std::vector{c.clone_snapshot(a.snapshot, a.name, a.id)}, replica_table);
    });

    auto* inflate = sub(replica, "inflate", "make a clone independent of its snapshot (copies what it shares)", g);
    inflate->add_option("name", a.name, "the clone")->required();
    bind(inflate, [&g](rpc::rpc_client& c) { show(g, std::vector{c.inflate_replica(a.name)}, replica_table); });

    auto* restore = sub(replica, "restore",
                        "return a replica or clone to one of its snapshots, in place (unshare it first)", g);
    restore->add_option("name", a.name, "the replica or clone")->required();
    restore->add_option("snapshot", a.snapshot, "a snapshot in its parent chain")->required();
    bind(restore, [&g](rpc::rpc_client& c) {
        show(g, std::vector{c.restore_replica(a.name, a.snapshot)}, replica_table);
    });
}

}  // namespace ioe::ctl
