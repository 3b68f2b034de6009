// ioengine-ctl vhost ...: create, destroy and list vhost-user-blk exports
// (a device, replica or nexus served to a local VM over a unix socket), and
// their rendering as a table or JSON.
#include "tools/ioengine-ctl/commands.hh"

namespace ioe::ctl {

namespace {

struct vhost_args {
    std::string name, socket, device;
    std::uint32_t queues = 1;
    bool read_only = false, force = false;
};

}  // namespace

json to_json(const rpc::vhost_entry& v) {
    return json::object()
        .set("name", json::str(v.spec.name))
        .set("socket", json::str(v.spec.socket_path))
        .set("device", json::str(v.spec.device))
        .set("queues", json::num(v.spec.queues))
        .set("read_only", json::boolean(v.spec.read_only))
        .set("connected", json::boolean(v.connected))
        .set("connections", json::num(v.connections))
        .set("refused", json::num(v.refused))
        .set("protocol_errors", json::num(v.protocol_errors))
        .set("queues_active", json::num(v.queues_active))
        .set("mapped_bytes", json::num(v.mapped_bytes))
        .set("read_ops", json::num(v.reads))
        .set("write_ops", json::num(v.writes))
        .set("flush_ops", json::num(v.flushes))
        .set("discard_ops", json::num(v.discards))
        .set("write_zeroes_ops", json::num(v.write_zeroes))
        .set("read_bytes", json::num(v.read_bytes))
        .set("write_bytes", json::num(v.write_bytes))
        .set("io_errors", json::num(v.ioerr))
        .set("unsupported", json::num(v.unsupported))
        .set("ring_faults", json::num(v.ring_faults))
        .set("bounced", json::num(v.bounced));
}

table vhost_table(const std::vector<rpc::vhost_entry>& v) {
    table t{{"EXPORT", "DEVICE", "SOCKET", "QUEUES", "MODE", "FRONT-END", "READS", "WRITES", "ERRORS"}, {}};
    for (const auto& e : v) {
        t.rows.push_back({e.spec.name, e.spec.device, e.spec.socket_path,
                          std::to_string(e.queues_active) + "/" + std::to_string(e.spec.queues),
                          e.spec.read_only ? "ro" : "rw", e.connected ? "connected" : "-", std::to_string(e.reads),
                          std::to_string(e.writes), std::to_string(e.ioerr + e.protocol_errors + e.ring_faults)});
    }
    return t;
}

void add_vhost_commands(CLI::App& app, globals& g, action_fn& action) {
    static vhost_args a;
    auto bind = [&action](CLI::App* s, action_fn fn) { bind_action(s, action, std::move(fn)); };

    auto* vhost = sub(&app, "vhost", "vhost-user-blk exports: a device served to a local VM over a unix socket", g);
    vhost->require_subcommand(1);

    auto* vc = sub(vhost, "create", "export a device, e.g. vm1-disk --socket /run/vm1.sock r1 --queues 2", g);
    vc->add_option("name", a.name, "export name")->required();
    vc->add_option("device", a.device, "the device, replica or nexus to export (by name)")->required();
    vc->add_option("--socket", a.socket, "the unix socket to create (must not exist)")->required();
    vc->add_option("--queues", a.queues, "virtqueues (1 to 16), spread over the shards")->capture_default_str();
    vc->add_flag("--read-only", a.read_only, "offer a read-only disk (writes are refused)");
    bind(vc, [&g](rpc::rpc_client& c) {
        show(g, std::vector{c.create_vhost({a.name, a.socket, a.device, a.queues, a.read_only, true})},
             vhost_table);
    });

    auto* vd = sub(vhost, "destroy", "stop an export and remove its socket", g);
    vd->add_option("name", a.name, "export name")->required();
    vd->add_flag("--force", a.force, "even while a front-end (VM) is connected: its I/O then fails");
    bind(vd, [&g](rpc::rpc_client& c) {
        c.destroy_vhost(a.name, a.force);
        ok(g, "vhost export " + a.name + " destroyed");
    });

    auto* vl = sub(vhost, "list", "exports, their front-end and counters", g);
    vl->add_option("name", a.name, "only this export");
    bind(vl, [&g](rpc::rpc_client& c) { show(g, c.list_vhost(a.name), vhost_table); });
}

}  // namespace ioe::ctl
