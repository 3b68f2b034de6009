// The RPC server's relay from the kj loop to node_service on shard 0, shared
// by the files that implement the interfaces of ioengine.capnp (server.cc,
// server_nexus.cc, server_vhost.cc). Internal to the server.
#pragma once

#include <kj/async.h>

#include <memory>
#include <string>

#include "rpc/convert.hh"
#include "rpc/node_service.hh"
#include "runtime/engine.hh"

namespace ioe::rpc {

template <typename T>
using fulfiller_ptr = std::shared_ptr<kj::Own<kj::CrossThreadPromiseFulfiller<T>>>;

// On shard 0: runs the operation and hands its outcome to the kj loop.
template <typename T, typename Fn>
future<> relay(fulfiller_ptr<T> f, Fn fn, node_service* svc) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await futurize_invoke([&fn, svc] { return fn(*svc); });
            (*f)->fulfill();
        } else {
            T v = co_await futurize_invoke([&fn, svc] { return fn(*svc); });
            (*f)->fulfill(kj::mv(v));
        }
    } catch (const storage_error& e) {
        (*f)->reject(to_kj_exception(e.code, e.what()));
    } catch (const std::exception& e) {
        (*f)->reject(to_kj_exception(storage_errc::internal, e.what()));
    }
}

struct context {
    engine& e;
    node_service& svc;

    // From the kj loop: `fn(node_service&)` on shard 0; the promise resolves
    // on the kj loop with its value or its storage_error.
    template <typename T, typename Fn>
    kj::Promise<T> call(Fn fn) {
        auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
        auto f = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<T>>>(kj::mv(paf.fulfiller));
        e.post(0, [f, fn = std::move(fn), svc = &svc]() mutable { relay<T>(f, std::move(fn), svc).ignore(); });
        return kj::mv(paf.promise);
    }
};

inline std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// The nexus and rebuild interfaces (server_nexus.cc).
kj::Own<s::Nexus::Server> make_nexus_server(context c);
kj::Own<s::Rebuild::Server> make_rebuild_server(context c);
// The vhost-user-blk exports (server_vhost.cc).
kj::Own<s::Vhost::Server> make_vhost_server(context c);

}  // namespace ioe::rpc
