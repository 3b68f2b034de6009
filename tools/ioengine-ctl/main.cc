// ioengine-ctl: the command line over the engine's RPC (rpc/ioengine.capnp).
// Subcommands mirror the RPC interfaces (node, device, pool, replica, nvmf,
// stats; nexus and rebuild are in nexus_commands.cc); tables by default,
// --json for programs; on an error it prints the server's code and message
// and exits 1 (2 for a usage error).
#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>

#include "rpc/client.hh"
#include "rpc/server.hh"
#include "tools/ioengine-ctl/commands.hh"
#include "tools/ioengine-ctl/render.hh"

namespace {

using namespace ioe;
using namespace ioe::ctl;

table single_share(const rpc::share_info& s) { return share_table(s); }

}  // namespace

int main(int argc, char** argv) {
    globals g;
    CLI::App app{"ioengine-ctl: drive an ioengine over its RPC (default 127.0.0.1:10124)"};
    add_globals(&app, g);
    app.require_subcommand(1);
    action_fn action;
    auto bind = [&](CLI::App* s, action_fn fn) { bind_action(s, action, std::move(fn)); };

    // node
    auto* node = sub(&app, "node", "the engine itself", g);
    node->require_subcommand(1);
    bind(sub(node, "info", "name, version, shards, polling, memory, features", g),
         [&](rpc::rpc_client& c) { show(g, c.info(), node_table); });

    // device
    std::string uri, name;
    std::vector<std::string> hosts;
    auto* device = sub(&app, "device", "block devices (malloc, null, uring, nvmf, ...)", g);
    device->require_subcommand(1);
    auto* dc = sub(device, "create", "create a device from a URI, e.g. null:///n0?size_mb=1024", g);
    dc->add_option("uri", uri, "device URI")->required();
    bind(dc, [&](rpc::rpc_client& c) {
        auto d = c.create_device(uri);
        show(g, std::vector{d}, device_table);
    });
    auto* dd = sub(device, "destroy", "close and forget a device", g);
    dd->add_option("name", name, "device name")->required();
    bind(dd, [&](rpc::rpc_client& c) {
        c.destroy_device(name);
        ok(g, "device " + name + " destroyed");
    });
    bind(sub(device, "list", "every device (replicas included)", g),
         [&](rpc::rpc_client& c) { show(g, c.list_devices(), device_table); });
    auto* ds = sub(device, "share", "serve a device over NVMe/TCP", g);
    ds->add_option("name", name, "device name")->required();
    ds->add_option("--allow-host", hosts, "host NQN allowed to connect (repeatable; none: any host)");
    std::string share_nqn;
    ds->add_option("--nqn", share_nqn, "subsystem NQN (default nqn.2019-05.io.ioengine:<name>)");
    bind(ds, [&](rpc::rpc_client& c) { show(g, c.share_device(name, hosts, share_nqn), single_share); });
    auto* du = sub(device, "unshare", "stop serving a device", g);
    du->add_option("name", name, "device name")->required();
    bind(du, [&](rpc::rpc_client& c) {
        c.unshare_device(name);
        ok(g, "device " + name + " unshared");
    });

    // pool
    std::uint32_t cluster_size = 0;
    auto* pool = sub(&app, "pool", "pools (a volume store on one device)", g);
    pool->require_subcommand(1);
    auto* pc = sub(pool, "create", "create a pool on a device URI, e.g. p1 uring:///var/lib/disk.img", g);
    pc->add_option("name", name, "pool name")->required();
    pc->add_option("uri", uri, "device URI")->required();
    pc->add_option("--cluster-size", cluster_size, "cluster size in bytes (default: the pool format's)");
    bind(pc, [&](rpc::rpc_client& c) { show(g, std::vector{c.create_pool(name, uri, cluster_size)}, pool_table); });
    auto* pi = sub(pool, "import", "import the pool a device holds", g);
    pi->add_option("uri", uri, "device URI")->required();
    bind(pi, [&](rpc::rpc_client& c) { show(g, std::vector{c.import_pool(uri)}, pool_table); });
    auto* pe = sub(pool, "export", "close a pool cleanly (import it again later, here or elsewhere)", g);
    pe->add_option("name", name, "pool name")->required();
    bind(pe, [&](rpc::rpc_client& c) {
        c.export_pool(name);
        ok(g, "pool " + name + " exported");
    });
    auto* pd = sub(pool, "destroy", "destroy a pool and every replica in it", g);
    pd->add_option("name", name, "pool name")->required();
    bind(pd, [&](rpc::rpc_client& c) {
        c.destroy_pool(name);
        ok(g, "pool " + name + " destroyed");
    });
    auto* pg = sub(pool, "grow", "take in the space its device gained", g);
    pg->add_option("name", name, "pool name")->required();
    bind(pg, [&](rpc::rpc_client& c) { show(g, std::vector{c.grow_pool(name)}, pool_table); });
    bind(sub(pool, "list", "every pool", g), [&](rpc::rpc_client& c) { show(g, c.list_pools(), pool_table); });

    // replica
    std::string pool_name, size_text;
    bool thin = false;
    auto* replica = sub(&app, "replica", "replicas (logical volumes in a pool)", g);
    replica->require_subcommand(1);
    auto parse_size_or_throw = [&] {
        std::uint64_t bytes = 0;
        if (!parse_size(size_text, bytes)) {
            throw ioe::storage_error(storage_errc::invalid_argument,
                                     "--size '" + size_text + "': expected a size such as 64MiB, 1G or 4096");
        }
        return bytes;
    };
    auto* rc = sub(replica, "create", "create a replica, e.g. --pool default --size 64MiB r1", g);
    rc->add_option("name", name, "replica name")->required();
    rc->add_option("--pool", pool_name, "the pool to create it in")->required();
    rc->add_option("--size", size_text, "size: 64MiB, 1GiB, 4096, ...")->required();
    rc->add_flag("--thin", thin, "allocate on first write instead of now");
    bind(rc, [&](rpc::rpc_client& c) {
        show(g, std::vector{c.create_replica(pool_name, name, parse_size_or_throw(), thin)}, replica_table);
    });
    auto* rd = sub(replica, "destroy", "destroy a replica (unshares it first)", g);
    rd->add_option("name", name, "replica name")->required();
    bind(rd, [&](rpc::rpc_client& c) {
        c.destroy_replica(name);
        ok(g, "replica " + name + " destroyed");
    });
    auto* rr = sub(replica, "resize", "grow a replica", g);
    rr->add_option("name", name, "replica name")->required();
    rr->add_option("--size", size_text, "new size: 128MiB, 2GiB, ...")->required();
    bind(rr, [&](rpc::rpc_client& c) { show(g, std::vector{c.resize_replica(name, parse_size_or_throw())}, replica_table); });
    auto* rl = sub(replica, "list", "every replica, or a pool's", g);
    rl->add_option("--pool", pool_name, "only this pool's");
    bind(rl, [&](rpc::rpc_client& c) { show(g, c.list_replicas(pool_name), replica_table); });
    auto* rs = sub(replica, "share", "serve a replica over NVMe/TCP; prints the NQN and the address to connect to", g);
    rs->add_option("name", name, "replica name")->required();
    rs->add_option("--allow-host", hosts, "host NQN allowed to connect (repeatable; none: any host)");
    bind(rs, [&](rpc::rpc_client& c) {
        auto s = c.share_replica(name, hosts);
        show(g, s, single_share);
        if (!g.json) std::cout << "connect: nvme connect -t tcp -a " << s.address << " -s " << s.port << " -n " << s.nqn << "\n";
    });
    auto* ru = sub(replica, "unshare", "stop serving a replica", g);
    ru->add_option("name", name, "replica name")->required();
    bind(ru, [&](rpc::rpc_client& c) {
        c.unshare_replica(name);
        ok(g, "replica " + name + " unshared");
    });

    add_snapshot_commands(replica, g, action);

    // nvmf
    auto* nvmf = sub(&app, "nvmf", "the NVMe/TCP target", g);
    nvmf->require_subcommand(1);
    bind(sub(nvmf, "listeners", "addresses the target listens on", g),
         [&](rpc::rpc_client& c) { show(g, c.nvmf_listeners(), listener_table); });
    bind(sub(nvmf, "subsystems", "subsystems, their namespaces and allowed hosts", g),
         [&](rpc::rpc_client& c) { show(g, c.nvmf_subsystems(), subsystem_table); });
    bind(sub(nvmf, "hosts", "hosts connected now", g), [&](rpc::rpc_client& c) { show(g, c.nvmf_hosts(), host_table); });

    // stats
    auto* stats = sub(&app, "stats", "I/O counters since the last reset", g);
    stats->require_subcommand(1);
    auto* sd = sub(stats, "device", "per device (every device when no name)", g);
    sd->add_option("name", name, "device name");
    bind(sd, [&](rpc::rpc_client& c) { show(g, c.stats(rpc::stats_kind::device, name), stats_table); });
    auto* sr = sub(stats, "replica", "per replica (every replica when no name)", g);
    sr->add_option("name", name, "replica name");
    bind(sr, [&](rpc::rpc_client& c) { show(g, c.stats(rpc::stats_kind::replica, name), stats_table); });
    auto* sn = sub(stats, "nexus", "per nexus (every nexus when no name)", g);
    sn->add_option("name", name, "nexus name");
    bind(sn, [&](rpc::rpc_client& c) { show(g, c.stats(rpc::stats_kind::nexus, name), stats_table); });
    std::string reset_kind;
    auto* sx = sub(stats, "reset", "start the counters again from zero: reset device|replica|nexus [NAME]", g);
    sx->add_option("kind", reset_kind, "device, replica or nexus")
        ->required()
        ->check(CLI::IsMember({"device", "replica", "nexus"}));
    sx->add_option("name", name, "one device, replica or nexus (default: all of that kind)");
    bind(sx, [&](rpc::rpc_client& c) {
        c.reset_stats(reset_kind == "replica" ? rpc::stats_kind::replica
                      : reset_kind == "nexus" ? rpc::stats_kind::nexus
                                              : rpc::stats_kind::device,
                      name);
        ok(g, "counters reset");
    });

    add_nexus_commands(app, g, action);
    add_vhost_commands(app, g, action);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (!action) {
        std::cerr << app.help();
        return 2;
    }
    try {
        rpc::rpc_client client(g.rpc);
        action(client);
    } catch (const ioe::storage_error& e) {
        if (g.json) {
            std::cout << json::object()
                             .set("ok", json::boolean(false))
                             .set("code", json::str(std::string(to_string(e.code))))
                             .set("message", json::str(e.what()))
                             .dump()
                      << "\n";
        }
        std::cerr << "ioengine-ctl: " << to_string(e.code) << ": " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "ioengine-ctl: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
