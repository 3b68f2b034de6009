// ioengine-ctl nexus ... and rebuild ...: create, destroy, publish,
// unpublish, shutdown, snapshot and list nexuses, standby paths and ANA
// states (docs/ana.md); add, remove, online, offline and
// fault their children; start, stop, pause, resume and watch rebuilds.
#include <memory>

#include "tools/ioengine-ctl/commands.hh"

namespace ioe::ctl {

namespace {

// The values the options fill in, alive until the action has run.
struct nexus_args {
    std::string name, uri, uuid, health_key;
    std::vector<std::string> children, hosts;
    std::string nqn;  // publish --nqn
    std::string snapshot_name, txid;  // snapshot
    std::uint32_t segment_bytes = 0, rebuild_parallel = 0;
    bool verify = false, no_rebuild = false;
    bool takeover = false;  // create --takeover
    std::string size_text;  // standby --size
    std::uint32_t block_size = 512;  // standby --block-size
    std::string forward;             // standby --forward
    std::string ana_state;  // ana
};

table single_share(const rpc::share_info& s) { return share_table(s); }

}  // namespace

void add_nexus_commands(CLI::App& app, globals& g, action_fn& action) {
    static nexus_args a;
    auto bind = [&action](CLI::App* s, action_fn fn) { bind_action(s, action, std::move(fn)); };
    auto one = [](const rpc::nexus_entry& e) { return std::vector{e}; };

    auto* nexus = sub(&app, "nexus", "nexuses: volumes mirrored over local and remote replicas", g);
    nexus->require_subcommand(1);

    auto* nc = sub(nexus, "create",
                   "create a nexus, e.g. v1 --child bdev:///r1 --child nvmf://10.0.0.2:4420/nqn.2019-05.io.ioengine:r2",
                   g);
    nc->add_option("name", a.name, "nexus name")->required();
    nc->add_option("--child", a.children, "child URI (repeatable, 1 to 8): bdev:///NAME or nvmf://HOST:PORT/NQN")
        ->required();
    nc->add_option("--uuid", a.uuid, "the nexus's uuid (default: a new one; give the old one to create it again)");
    nc->add_option("--health-key", a.health_key, "etcd key of its child-health record (default /ioengine/nexus/UUID)");
    nc->add_option("--segment-size", a.segment_bytes, "rebuild and dirty-log unit in bytes (default 262144)");
    nc->add_option("--rebuild-parallel", a.rebuild_parallel, "segments a rebuild copies at once (default 16)");
    nc->add_flag("--verify", a.verify, "rebuilds re-read and compare every segment they copy");
    nc->add_flag("--takeover", a.takeover,
                 "take the nexus over from the node that ran it (its health record must exist: give --uuid or "
                 "--health-key): next epoch, the old incarnation fenced on every child, published in the same call");
    nc->add_option("--nqn", a.nqn, "with --takeover: the NQN to publish under (the old node's; default "
                                   "nqn.2019-05.io.ioengine:<name>)");
    nc->add_option("--allow-host", a.hosts, "with --takeover: host NQN allowed to connect (repeatable; none: any)");
    bind(nc, [&g, one](rpc::rpc_client& c) {
        if (!a.takeover && (!a.nqn.empty() || !a.hosts.empty())) {
            throw storage_error(storage_errc::invalid_argument,
                                "--nqn and --allow-host go with --takeover (otherwise: nexus publish)");
        }
        if (a.takeover && a.uuid.empty() && a.health_key.empty()) {
            throw storage_error(storage_errc::invalid_argument,
                                "--takeover needs --uuid or --health-key: they name the record to take over");
        }
        rpc::nexus_spec spec{a.name, a.uuid, a.children, a.health_key, a.segment_bytes, a.rebuild_parallel, a.verify};
        spec.takeover = a.takeover;
        spec.takeover_nqn = a.nqn;
        spec.takeover_hosts = a.hosts;
        show(g, one(c.create_nexus(spec)), nexus_table);
    });

    auto* nd = sub(nexus, "destroy", "unpublish, shut down and close a nexus (its health record stays in etcd)", g);
    nd->add_option("name", a.name, "nexus name")->required();
    bind(nd, [&g](rpc::rpc_client& c) {
        c.destroy_nexus(a.name);
        ok(g, "nexus " + a.name + " destroyed");
    });

    auto* np = sub(nexus, "publish", "serve a nexus over NVMe/TCP; prints the NQN and the address to connect to", g);
    np->add_option("name", a.name, "nexus name")->required();
    np->add_option("--allow-host", a.hosts, "host NQN allowed to connect (repeatable; none: any host)");
    np->add_option("--nqn", a.nqn, "subsystem NQN (default nqn.2019-05.io.ioengine:<name>)");
    bind(np, [&g](rpc::rpc_client& c) {
        auto s = c.publish_nexus(a.name, a.hosts, a.nqn);
        show(g, s, single_share);
        if (!g.json) {
            std::cout << "connect: nvme connect -t tcp -a " << s.address << " -s " << s.port << " -n " << s.nqn << "\n";
        }
    });

    auto* sb = sub(nexus, "standby",
                   "publish a standby path of a volume whose nexus runs elsewhere (ANA inaccessible); a nexus "
                   "published here under the NQN (a takeover) takes it over, optimized",
                   g);
    sb->add_option("nqn", a.nqn, "the volume's subsystem NQN (as published on the node that runs its nexus)")
        ->required();
    sb->add_option("--uuid", a.uuid, "the volume's uuid (the nexus's)")->required();
    sb->add_option("--size", a.size_text, "the volume's size, e.g. 64MiB (the nexus's)")->required();
    sb->add_option("--block-size", a.block_size, "512 or 4096 (default 512)");
    sb->add_option("--allow-host", a.hosts, "host NQN allowed to connect (repeatable; none: any host)");
    sb->add_option("--forward", a.forward,
                   "a forwarding path instead (ANA non-optimized): I/O is sent on to this device, e.g. "
                   "nvmf://NODE:4420/NQN of the node that runs the nexus");
    bind(sb, [&g](rpc::rpc_client& c) {
        std::uint64_t bytes = 0;
        if (!parse_size(a.size_text, bytes)) {
            throw storage_error(storage_errc::invalid_argument,
                                "--size '" + a.size_text + "': expected a size such as 64MiB, 1G or 4096");
        }
        auto s = c.add_standby(a.nqn, a.uuid, bytes, a.block_size, a.hosts, a.forward);
        show(g, s, single_share);
    });

    auto* sr = sub(nexus, "standby-remove", "stop serving a standby path", g);
    sr->add_option("nqn", a.nqn, "its NQN")->required();
    bind(sr, [&g](rpc::rpc_client& c) {
        c.remove_standby(a.nqn);
        ok(g, "standby " + a.nqn + " removed");
    });

    auto* na = sub(nexus, "ana", "set the ANA state a published nexus is served in here", g);
    na->add_option("name", a.name, "nexus name")->required();
    na->add_option("state", a.ana_state, "optimized, non-optimized or inaccessible")->required();
    bind(na, [&g](rpc::rpc_client& c) {
        c.set_nexus_ana(a.name, a.ana_state);
        ok(g, "nexus " + a.name + " is ANA " + a.ana_state);
    });

    auto* nu = sub(nexus, "unpublish", "stop serving a nexus", g);
    nu->add_option("name", a.name, "nexus name")->required();
    bind(nu, [&g](rpc::rpc_client& c) {
        c.unpublish_nexus(a.name);
        ok(g, "nexus " + a.name + " unpublished");
    });

    auto* ns = sub(nexus, "shutdown", "drain a nexus and record a clean shutdown; it refuses I/O afterwards", g);
    ns->add_option("name", a.name, "nexus name")->required();
    bind(ns, [&g](rpc::rpc_client& c) {
        c.shutdown_nexus(a.name);
        ok(g, "nexus " + a.name + " shut down");
    });

    auto* nsnap = sub(nexus, "snapshot",
                      "snapshot every online child under one transaction id (I/O pauses meanwhile); a retry "
                      "with the same --txid is success",
                      g);
    nsnap->add_option("name", a.name, "nexus name")->required();
    nsnap->add_option("snapname", a.snapshot_name, "the snapshot's name on every child")->required();
    nsnap->add_option("--txid", a.txid, "transaction id (default: a new one; give it again to retry)");
    bind(nsnap, [&g](rpc::rpc_client& c) { show(g, c.snapshot_nexus(a.name, a.snapshot_name, a.txid), nexus_snapshot_table); });

    auto* nl = sub(nexus, "list", "every nexus, or one, with its children and rebuilds", g);
    nl->add_option("name", a.name, "only this nexus");
    bind(nl, [&g](rpc::rpc_client& c) { show(g, c.list_nexuses(a.name), nexus_table); });

    // nexus child ...
    auto* child = sub(nexus, "child", "a nexus's children", g);
    child->require_subcommand(1);
    struct child_verb {
        const char* name;
        const char* help;
        rpc::child_action action;
    };
    static const child_verb verbs[] = {
        {"add", "add a child; it is rebuilt (full) unless --no-rebuild says it is in sync", rpc::child_action::add},
        {"remove", "remove a child (not the last one in sync)", rpc::child_action::remove},
        {"online", "bring a faulted child back (a partial rebuild when its writes were logged)",
         rpc::child_action::online},
        {"offline", "take a child out, logging its writes so that online copies only those",
         rpc::child_action::offline},
        {"fault", "fault a child; online then rebuilds it in full", rpc::child_action::fault},
    };
    for (const auto& v : verbs) {
        auto* s = sub(child, v.name, v.help, g);
        s->add_option("name", a.name, "nexus name")->required();
        s->add_option("uri", a.uri, "child URI")->required();
        if (v.action == rpc::child_action::add) s->add_flag("--no-rebuild", a.no_rebuild, "the child is in sync");
        rpc::child_action action_of = v.action;
        bind(s, [&g, one, action_of](rpc::rpc_client& c) {
            auto act = action_of == rpc::child_action::add && a.no_rebuild ? rpc::child_action::add_in_sync : action_of;
            show(g, one(c.nexus_child(a.name, a.uri, act)), nexus_table);
        });
    }

    // rebuild ...
    auto* rebuild = sub(&app, "rebuild", "rebuilds of nexus children", g);
    rebuild->require_subcommand(1);
    struct rebuild_verb {
        const char* name;
        const char* help;
        rpc::rebuild_action action;
    };
    static const rebuild_verb rverbs[] = {
        {"start", "start rebuilding a faulted child", rpc::rebuild_action::start},
        {"stop", "stop a rebuild (the child stays faulted)", rpc::rebuild_action::stop},
        {"pause", "pause a rebuild", rpc::rebuild_action::pause},
        {"resume", "resume a paused rebuild", rpc::rebuild_action::resume},
    };
    for (const auto& v : rverbs) {
        auto* s = sub(rebuild, v.name, v.help, g);
        s->add_option("name", a.name, "nexus name")->required();
        s->add_option("child", a.uri, "child URI")->required();
        rpc::rebuild_action act = v.action;
        std::string verb = v.name;
        bind(s, [&g, act, verb](rpc::rpc_client& c) {
            c.rebuild_control(a.name, a.uri, act);
            ok(g, "rebuild of " + a.uri + ": " + verb);
        });
    }
    auto* rs = sub(rebuild, "state", "running, paused, or how the last rebuild of a child ended", g);
    rs->add_option("name", a.name, "nexus name")->required();
    rs->add_option("child", a.uri, "child URI")->required();
    bind(rs, [&g](rpc::rpc_client& c) {
        auto st = c.rebuild_state(a.name, a.uri);
        if (g.json) {
            std::cout << json::object().set("state", json::str(st)).dump() << "\n";
        } else {
            std::cout << st << "\n";
        }
    });
    auto* rt = sub(rebuild, "stats", "progress of the running rebuilds (blocks total, done, remaining, rate)", g);
    rt->add_option("name", a.name, "nexus name")->required();
    rt->add_option("child", a.uri, "only this child's");
    bind(rt, [&g](rpc::rpc_client& c) { show(g, c.rebuild_stats(a.name, a.uri), rebuild_table); });
    auto* rh = sub(rebuild, "history", "the nexus's past rebuilds, oldest first", g);
    rh->add_option("name", a.name, "nexus name")->required();
    bind(rh, [&g](rpc::rpc_client& c) { show(g, c.rebuild_history(a.name), rebuild_table); });
}

}  // namespace ioe::ctl
