// The RPC server's Vhost interface (ioengine.capnp): each method relayed to
// node_service on shard 0 (server_context.hh).
#include "rpc/server_context.hh"

namespace ioe::rpc {

namespace {

class vhost_impl final : public s::Vhost::Server {
public:
    explicit vhost_impl(context c) : _c(c) {}
    kj::Promise<void> create(CreateContext ctx) override {
        auto spec = read(ctx.getParams().getSpec());
        return _c.call<vhost_entry>([spec](node_service& s) { return s.create_vhost(spec); })
            .then([ctx](vhost_entry v) mutable { fill(ctx.getResults().initInfo(), v); });
    }
    kj::Promise<void> destroy(DestroyContext ctx) override {
        auto name = str(ctx.getParams().getName());
        const bool force = ctx.getParams().getForce();
        return _c.call<void>([name, force](node_service& s) { return s.destroy_vhost(name, force); });
    }
    kj::Promise<void> list(ListContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<std::vector<vhost_entry>>([name](node_service& s) { return s.list_vhost(name); })
            .then([ctx](std::vector<vhost_entry> v) mutable {
                auto l = ctx.getResults().initExports(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }

private:
    context _c;
};

}  // namespace

kj::Own<s::Vhost::Server> make_vhost_server(context c) { return kj::heap<vhost_impl>(c); }

}  // namespace ioe::rpc
