// The RPC server's Nexus and Rebuild interfaces (ioengine.capnp): each
// method relayed to node_service on shard 0 (server_context.hh).
#include "rpc/server_context.hh"

namespace ioe::rpc {

namespace {

class nexus_impl final : public s::Nexus::Server {
public:
    explicit nexus_impl(context c) : _c(c) {}
    kj::Promise<void> create(CreateContext ctx) override {
        auto spec = read(ctx.getParams().getSpec());
        return _c.call<nexus_entry>([spec](node_service& s) { return s.create_nexus(spec); })
            .then([ctx](nexus_entry v) mutable { fill(ctx.getResults().initNexus(), v); });
    }
    kj::Promise<void> destroy(DestroyContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.destroy_nexus(name); });
    }
    kj::Promise<void> publish(PublishContext ctx) override {
        auto name = str(ctx.getParams().getName());
        auto hosts = read_texts(ctx.getParams().getAllowedHosts());
        auto nqn = str(ctx.getParams().getNqn());
        return _c.call<share_info>([name, hosts, nqn](node_service& s) { return s.publish_nexus(name, hosts, nqn); })
            .then([ctx](share_info v) mutable { fill(ctx.getResults().initShare(), v); });
    }
    kj::Promise<void> standby(StandbyContext ctx) override {
        auto p = ctx.getParams();
        auto nqn = str(p.getNqn()), id = str(p.getUuid());
        auto size = p.getSizeBytes();
        auto bs = p.getBlockSize() == 0 ? 512u : p.getBlockSize();
        auto hosts = read_texts(p.getAllowedHosts());
        auto forward = str(p.getForward());
        return _c
            .call<share_info>([nqn, id, size, bs, hosts, forward](node_service& s) {
                return s.add_standby(nqn, id, size, bs, hosts, forward);
            })
            .then([ctx](share_info v) mutable { fill(ctx.getResults().initShare(), v); });
    }
    kj::Promise<void> standbyRemove(StandbyRemoveContext ctx) override {
        auto nqn = str(ctx.getParams().getNqn());
        return _c.call<void>([nqn](node_service& s) { return s.remove_standby(nqn); });
    }
    kj::Promise<void> setAna(SetAnaContext ctx) override {
        auto name = str(ctx.getParams().getName()), state = str(ctx.getParams().getState());
        return _c.call<void>([name, state](node_service& s) { return s.set_nexus_ana(name, state); });
    }
    kj::Promise<void> unpublish(UnpublishContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.unpublish_nexus(name); });
    }
    kj::Promise<void> shutdown(ShutdownContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.shutdown_nexus(name); });
    }
    kj::Promise<void> list(ListContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<std::vector<nexus_entry>>([name](node_service& s) { return s.list_nexuses(name); })
            .then([ctx](std::vector<nexus_entry> v) mutable {
                auto l = ctx.getResults().initNexuses(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }
    kj::Promise<void> child(ChildContext ctx) override {
        auto p = ctx.getParams();
        auto name = str(p.getName()), uri = str(p.getUri());
        auto action = from_schema(p.getAction());
        return _c
            .call<nexus_entry>([name, uri, action](node_service& s) { return s.nexus_child(name, uri, action); })
            .then([ctx](nexus_entry v) mutable { fill(ctx.getResults().initNexus(), v); });
    }
    kj::Promise<void> snapshot(SnapshotContext ctx) override {
        auto p = ctx.getParams();
        auto name = str(p.getName()), snap = str(p.getSnapshotName()), txid = str(p.getTxid());
        return _c
            .call<nexus_snapshot_result>(
                [name, snap, txid](node_service& s) { return s.snapshot_nexus(name, snap, txid); })
            .then([ctx](nexus_snapshot_result v) mutable { fill(ctx.getResults().initResult(), v); });
    }

private:
    context _c;
};

class rebuild_impl final : public s::Rebuild::Server {
public:
    explicit rebuild_impl(context c) : _c(c) {}
    kj::Promise<void> control(ControlContext ctx) override {
        auto p = ctx.getParams();
        auto name = str(p.getName()), child = str(p.getChild());
        auto action = from_schema(p.getAction());
        return _c.call<void>(
            [name, child, action](node_service& s) { return s.rebuild_control(name, child, action); });
    }
    kj::Promise<void> state(StateContext ctx) override {
        auto name = str(ctx.getParams().getName()), child = str(ctx.getParams().getChild());
        return _c.call<std::string>([name, child](node_service& s) { return s.rebuild_state(name, child); })
            .then([ctx](std::string v) mutable { ctx.getResults().setState(kj::StringPtr(v.c_str(), v.size())); });
    }
    kj::Promise<void> stats(StatsContext ctx) override {
        auto name = str(ctx.getParams().getName()), child = str(ctx.getParams().getChild());
        return _c
            .call<std::vector<rebuild_progress>>([name, child](node_service& s) { return s.rebuild_stats(name, child); })
            .then([ctx](std::vector<rebuild_progress> v) mutable { fill_list(ctx.getResults().initRebuilds(size(v)), v); });
    }
    kj::Promise<void> history(HistoryContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<std::vector<rebuild_progress>>([name](node_service& s) { return s.rebuild_history(name); })
            .then([ctx](std::vector<rebuild_progress> v) mutable { fill_list(ctx.getResults().initRebuilds(size(v)), v); });
    }

private:
    static unsigned size(const std::vector<rebuild_progress>& v) { return static_cast<unsigned>(v.size()); }
    static void fill_list(capnp::List<s::RebuildInfo>::Builder l, const std::vector<rebuild_progress>& v) {
        for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
    }
    context _c;
};

}  // namespace

kj::Own<s::Nexus::Server> make_nexus_server(context c) { return kj::heap<nexus_impl>(c); }
kj::Own<s::Rebuild::Server> make_rebuild_server(context c) { return kj::heap<rebuild_impl>(c); }

}  // namespace ioe::rpc
