// The RPC server: the kj thread, the listeners and one class per interface
// of ioengine.capnp, each method relayed to node_service on shard 0.
#include "rpc/server.hh"

#include <sys/stat.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <future>
#include <mutex>
#include <thread>

#include "rpc/convert.hh"
#include "rpc/server_context.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"

namespace ioe::rpc {

namespace {

class node_impl final : public s::Node::Server {
public:
    explicit node_impl(context c) : _c(c) {}
    kj::Promise<void> info(InfoContext ctx) override {
        return _c.call<node_info>([](node_service& s) { return s.info(); }).then([ctx](node_info v) mutable {
            fill(ctx.getResults().initInfo(), v);
        });
    }

private:
    context _c;
};

class devices_impl final : public s::Devices::Server {
public:
    explicit devices_impl(context c) : _c(c) {}
    kj::Promise<void> create(CreateContext ctx) override {
        auto uri = str(ctx.getParams().getUri());
        return _c.call<device_entry>([uri](node_service& s) { return s.create_device(uri); })
            .then([ctx](device_entry v) mutable { fill(ctx.getResults().initDevice(), v); });
    }
    kj::Promise<void> destroy(DestroyContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.destroy_device(name); });
    }
    kj::Promise<void> list(ListContext ctx) override {
        return _c.call<std::vector<device_entry>>([](node_service& s) { return s.list_devices(); })
            .then([ctx](std::vector<device_entry> v) mutable {
                auto l = ctx.getResults().initDevices(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }
    kj::Promise<void> share(ShareContext ctx) override {
        auto name = str(ctx.getParams().getName());
        auto hosts = read_texts(ctx.getParams().getAllowedHosts());
        auto nqn = str(ctx.getParams().getNqn());
        return _c.call<share_info>([name, hosts, nqn](node_service& s) { return s.share_device(name, hosts, nqn); })
            .then([ctx](share_info v) mutable { fill(ctx.getResults().initShare(), v); });
    }
    kj::Promise<void> unshare(UnshareContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.unshare_device(name); });
    }

private:
    context _c;
};

class pools_impl final : public s::Pools::Server {
public:
    explicit pools_impl(context c) : _c(c) {}
    kj::Promise<void> create(CreateContext ctx) override {
        auto p = ctx.getParams();
        auto name = str(p.getName()), uri = str(p.getUri());
        auto cs = p.getClusterSize();
        return _c.call<pool_entry>([name, uri, cs](node_service& s) { return s.create_pool(name, uri, cs); })
            .then([ctx](pool_entry v) mutable { fill(ctx.getResults().initPool(), v); });
    }
    kj::Promise<void> import(ImportContext ctx) override {
        auto uri = str(ctx.getParams().getUri());
        return _c.call<pool_entry>([uri](node_service& s) { return s.import_pool(uri); })
            .then([ctx](pool_entry v) mutable { fill(ctx.getResults().initPool(), v); });
    }
    kj::Promise<void> export_(ExportContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.export_pool(name); });
    }
    kj::Promise<void> destroy(DestroyContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.destroy_pool(name); });
    }
    kj::Promise<void> grow(GrowContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<pool_entry>([name](node_service& s) { return s.grow_pool(name); })
            .then([ctx](pool_entry v) mutable { fill(ctx.getResults().initPool(), v); });
    }
    kj::Promise<void> list(ListContext ctx) override {
        return _c.call<std::vector<pool_entry>>([](node_service& s) { return s.list_pools(); })
            .then([ctx](std::vector<pool_entry> v) mutable {
                auto l = ctx.getResults().initPools(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }

private:
    context _c;
};

class replicas_impl final : public s::Replicas::Server {
public:
    explicit replicas_impl(context c) : _c(c) {}
    kj::Promise<void> create(CreateContext ctx) override {
        auto p = ctx.getParams();
        auto pool = str(p.getPool()), name = str(p.getName());
        auto size = p.getSizeBytes();
        bool thin = p.getThin();
        return _c
            .call<replica_entry>(
                [pool, name, size, thin](node_service& s) { return s.create_replica(pool, name, size, thin); })
            .then([ctx](replica_entry v) mutable { fill(ctx.getResults().initReplica(), v); });
    }
    kj::Promise<void> destroy(DestroyContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.destroy_replica(name); });
    }
    kj::Promise<void> resize(ResizeContext ctx) override {
        auto name = str(ctx.getParams().getName());
        auto size = ctx.getParams().getSizeBytes();
        return _c.call<replica_entry>([name, size](node_service& s) { return s.resize_replica(name, size); })
            .then([ctx](replica_entry v) mutable { fill(ctx.getResults().initReplica(), v); });
    }
    kj::Promise<void> list(ListContext ctx) override {
        auto pool = str(ctx.getParams().getPool());
        return _c.call<std::vector<replica_entry>>([pool](node_service& s) { return s.list_replicas(pool); })
            .then([ctx](std::vector<replica_entry> v) mutable {
                auto l = ctx.getResults().initReplicas(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }
    kj::Promise<void> share(ShareContext ctx) override {
        auto name = str(ctx.getParams().getName());
        auto hosts = read_texts(ctx.getParams().getAllowedHosts());
        return _c.call<share_info>([name, hosts](node_service& s) { return s.share_replica(name, hosts); })
            .then([ctx](share_info v) mutable { fill(ctx.getResults().initShare(), v); });
    }
    kj::Promise<void> unshare(UnshareContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([name](node_service& s) { return s.unshare_replica(name); });
    }
    kj::Promise<void> snapshot(SnapshotContext ctx) override {
        auto p = ctx.getParams();
        auto name = str(p.getName()), snap = str(p.getSnapshotName()), txid = str(p.getTxid()), id = str(p.getUuid());
        return _c
            .call<replica_entry>(
                [name, snap, txid, id](node_service& s) { return s.snapshot_replica(name, snap, txid, id); })
            .then([ctx](replica_entry v) mutable { fill(ctx.getResults().initReplica(), v); });
    }
    kj::Promise<void> clone(CloneContext ctx) override {
        auto p = ctx.getParams();
        auto snap = str(p.getSnapshot()), name = str(p.getName()), id = str(p.getUuid());
        return _c.call<replica_entry>([snap, name, id](node_service& s) { return s.clone_snapshot(snap, name, id); })
            .then([ctx](replica_entry v) mutable { fill(ctx.getResults().initReplica(), v); });
    }
    kj::Promise<void> inflate(InflateContext ctx) override {
        auto name = str(ctx.getParams().getName());
        return _c.call<replica_entry>([name](node_service& s) { return s.inflate_replica(name); })
            .then([ctx](replica_entry v) mutable { fill(ctx.getResults().initReplica(), v); });
    }
    kj::Promise<void> restore(RestoreContext ctx) override {
        auto p = ctx.getParams();
        auto name = str(p.getName()), snap = str(p.getSnapshot());
        return _c.call<replica_entry>([name, snap](node_service& s) { return s.restore_replica(name, snap); })
            .then([ctx](replica_entry v) mutable { fill(ctx.getResults().initReplica(), v); });
    }

private:
    context _c;
};

class nvmf_impl final : public s::Nvmf::Server {
public:
    explicit nvmf_impl(context c) : _c(c) {}
    kj::Promise<void> listeners(ListenersContext ctx) override {
        return _c.call<std::vector<nvmf_listener_info>>([](node_service& s) { return s.nvmf_listeners(); })
            .then([ctx](std::vector<nvmf_listener_info> v) mutable {
                auto l = ctx.getResults().initListeners(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }
    kj::Promise<void> subsystems(SubsystemsContext ctx) override {
        return _c.call<std::vector<nvmf_subsystem_info>>([](node_service& s) { return s.nvmf_subsystems(); })
            .then([ctx](std::vector<nvmf_subsystem_info> v) mutable {
                auto l = ctx.getResults().initSubsystems(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }
    kj::Promise<void> hosts(HostsContext ctx) override {
        return _c.call<std::vector<nvmf_host_info>>([](node_service& s) { return s.nvmf_hosts(); })
            .then([ctx](std::vector<nvmf_host_info> v) mutable {
                auto l = ctx.getResults().initHosts(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }

private:
    context _c;
};

class stats_impl final : public s::Stats::Server {
public:
    explicit stats_impl(context c) : _c(c) {}
    kj::Promise<void> get(GetContext ctx) override {
        auto kind = from_schema(ctx.getParams().getKind());
        auto name = str(ctx.getParams().getName());
        return _c.call<std::vector<io_stats>>([kind, name](node_service& s) { return s.stats(kind, name); })
            .then([ctx](std::vector<io_stats> v) mutable {
                auto l = ctx.getResults().initStats(static_cast<unsigned>(v.size()));
                for (unsigned i = 0; i < v.size(); ++i) fill(l[i], v[i]);
            });
    }
    kj::Promise<void> reset(ResetContext ctx) override {
        auto kind = from_schema(ctx.getParams().getKind());
        auto name = str(ctx.getParams().getName());
        return _c.call<void>([kind, name](node_service& s) { return s.reset_stats(kind, name); });
    }

private:
    context _c;
};

class engine_impl final : public s::Engine::Server {
public:
    explicit engine_impl(context c) : _c(c) {}
    kj::Promise<void> node(NodeContext ctx) override {
        ctx.getResults().setNode(kj::heap<node_impl>(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> devices(DevicesContext ctx) override {
        ctx.getResults().setDevices(kj::heap<devices_impl>(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> pools(PoolsContext ctx) override {
        ctx.getResults().setPools(kj::heap<pools_impl>(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> replicas(ReplicasContext ctx) override {
        ctx.getResults().setReplicas(kj::heap<replicas_impl>(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> nvmf(NvmfContext ctx) override {
        ctx.getResults().setNvmf(kj::heap<nvmf_impl>(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> stats(StatsContext ctx) override {
        ctx.getResults().setStats(kj::heap<stats_impl>(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> nexus(NexusContext ctx) override {
        ctx.getResults().setNexus(make_nexus_server(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> rebuild(RebuildContext ctx) override {
        ctx.getResults().setRebuild(make_rebuild_server(_c));
        return kj::READY_NOW;
    }
    kj::Promise<void> vhost(VhostContext ctx) override {
        ctx.getResults().setVhost(make_vhost_server(_c));
        return kj::READY_NOW;
    }

private:
    context _c;
};

// A stale socket file left by an engine that did not stop cleanly would
// make listen() fail: remove it (only a socket, never another file).
void remove_stale_socket(const std::string& address) {
    if (address.rfind("unix:", 0) != 0) return;
    std::string path = address.substr(5);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

}  // namespace

struct rpc_server::impl {
    impl(engine& en, node_service& s, std::vector<std::string> a) : e(en), svc(s), addresses(std::move(a)) {}
    engine& e;
    node_service& svc;
    std::vector<std::string> addresses;
    std::thread thread;
    mutable std::mutex mutex;
    std::vector<std::string> bound;
    kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop;
    bool started = false;

    void run(std::promise<void>* ready) {
        try {
            auto io = kj::setupAsyncIo();
            auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
            capnp::TwoPartyServer server(kj::heap<engine_impl>(context{e, svc}));
            kj::Vector<kj::Promise<void>> listening;
            std::vector<std::string> names;
            for (const auto& a : addresses) {
                try {
                    remove_stale_socket(a);
                    auto addr = io.provider->getNetwork().parseAddress(a.c_str(), default_rpc_port).wait(io.waitScope);
                    auto listener = addr->listen();
                    std::string name = a;
                    if (a.rfind("unix:", 0) != 0) {
                        name = a.substr(0, a.rfind(':')) + ":" + std::to_string(listener->getPort());
                    }
                    names.push_back(name);
                    listening.add(server.listen(*listener).attach(kj::mv(listener)));
                } catch (const kj::Exception& ex) {
                    throw std::runtime_error("RPC address " + a + ": cannot listen: " +
                                             std::string(ex.getDescription().cStr()) +
                                             " (another engine running? --rpc picks other addresses)");
                }
            }
            {
                std::lock_guard lock(mutex);
                bound = names;
                stop = kj::mv(paf.fulfiller);
            }
            ready->set_value();
            ready = nullptr;
            paf.promise.exclusiveJoin(kj::joinPromises(listening.releaseAsArray())).wait(io.waitScope);
        } catch (...) {
            if (ready) {
                ready->set_exception(std::current_exception());
            } else {
                try {
                    throw;
                } catch (const std::exception& ex) {
                    log::error("RPC server stopped: {}", ex.what());
                } catch (const kj::Exception& ex) {
                    log::error("RPC server stopped: {}", ex.getDescription().cStr());
                }
            }
        }
    }
};

rpc_server::rpc_server(engine& e, node_service& service, std::vector<std::string> addresses)
    : _impl(std::make_unique<impl>(e, service, std::move(addresses))) {}

rpc_server::~rpc_server() { stop(); }

void rpc_server::start() {
    std::promise<void> ready;
    auto f = ready.get_future();
    _impl->thread = std::thread([this, &ready] { _impl->run(&ready); });
    try {
        f.get();
    } catch (...) {
        _impl->thread.join();
        throw;
    }
    _impl->started = true;
}

void rpc_server::stop() {
    if (!_impl->thread.joinable()) return;
    {
        std::lock_guard lock(_impl->mutex);
        if (_impl->stop) _impl->stop->fulfill();
    }
    _impl->thread.join();
    std::lock_guard lock(_impl->mutex);
    _impl->stop = nullptr;
    for (const auto& a : _impl->bound) remove_stale_socket(a);  // ours: no engine listens on it any more
}

std::vector<std::string> rpc_server::bound() const {
    std::lock_guard lock(_impl->mutex);
    return _impl->bound;
}

}  // namespace ioe::rpc
