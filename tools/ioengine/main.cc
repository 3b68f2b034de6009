// ioengine: the daemon. Starts the reactors on the configured cores with the
// DMA pool and the control thread, the NVMe/TCP target, the engine's control
// operations (node_service) with its state file, the RPC server and the
// metrics endpoint; re-applies the saved state (pools, shares) and ensures
// the configured pools; logs what it started and the next command to try;
// runs until SIGINT/SIGTERM, then drains and exits 0.
#include <unistd.h>

#ifdef IOE_HAVE_NUMA
#include <numa.h>
#endif

#include <filesystem>
#include <iostream>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/pcie/pcie_backend.hh"
#include "nvme/target/reservation_file.hh"
#include "nvme/target/target.hh"
#include "rpc/control_calls.hh"
#include "rpc/health_backend.hh"
#include "rpc/metrics.hh"
#include "rpc/node_service.hh"
#include "rpc/node_state.hh"
#include "rpc/server.hh"
#include "runtime/control.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "tools/ioengine/data_dir.hh"
#include "tools/ioengine/options.hh"
#include "vhost/blk_export.hh"

namespace {

int numa_node_of(unsigned core) {
#ifdef IOE_HAVE_NUMA
    if (numa_available() >= 0) return numa_node_of_cpu(static_cast<int>(core));
#endif
    (void)core;
    return -1;
}

struct daemon_context {
    ioe::engine* e;
    ioe::control_thread* control;
    const ioe::daemon::options* opts;
    ioe::daemon::data_dir* dir;
    std::string ctl;  // how to run ioengine-ctl, for the hints we print
};

ioe::future<> log_shards(ioe::engine* e) {
    for (unsigned s = 0; s < e->shards(); ++s) {
        co_await ioe::submit_to(s, [e, s] {
            auto& r = e->reactor_of(s);
            const auto& f = r.io().features();
            unsigned core = e->cores()[s];
            ioe::log::info("shard {} on core {} (NUMA node {}): io_uring {} entries, fixed buffers {}, poll {}",
                           s, core, numa_node_of(core), r.config().uring_entries,
                           f.fixed_buffers ? "registered" : "off", ioe::to_string(r.config().mode));
        });
    }
    ioe::log::info("{}", e->dma().description());
}

// The static subsystem of --namespace (kept from before the RPC existed).
ioe::future<> serve_namespaces(const ioe::daemon::options* opts, ioe::rpc::node_service* svc,
                               ioe::nvme::nvmf_target* target) {
    ioe::nvme::subsystem_config sub;
    sub.nqn = opts->nqn;
    sub.allowed_hosts = opts->allowed_hosts;
    for (const auto& uri : opts->namespaces) {
        auto d = co_await svc->create_device(uri);
        sub.namespaces.push_back(co_await svc->devices().find(d.device.name));
        ioe::log::info("namespace {}: {} ({} blocks of {} bytes)", sub.namespaces.size(), uri, d.device.block_count,
                       d.device.block_size);
    }
    co_await target->add_subsystem(std::move(sub));
}

// The exports of --vhost-blk (the device by name, or created from a URI),
// through node_service so that `vhost list` shows them and their devices are
// refused for destroy; not kept in the state file (the command line gives
// them again at the next start).
ioe::future<> start_vhost_exports(const ioe::daemon::options* opts, ioe::rpc::node_service* svc) {
    for (const auto& v : opts->vhost_blk) {
        std::string name = v.device;
        if (name.find("://") != std::string::npos) name = (co_await svc->create_device(v.device)).device.name;
        co_await svc->create_vhost({v.name, v.socket_path, name, v.queues, v.read_only, false});
    }
}

// Shard 0's main.
ioe::future<int> serve(daemon_context ctx) {
    auto* e = ctx.e;
    const auto* opts = ctx.opts;
    co_await log_shards(e);

    ioe::nvme::register_nvmf_backend();
    ioe::nvme::register_pcie_backend();  // pcie:///BDF (VFIO)
    ioe::nvme::target_limits limits;
    limits.c2h_success_always = opts->nvmf_c2h_success == "always";
    limits.cntlid_first = opts->nvmf_cntlid_first;
    limits.cntlid_last = opts->nvmf_cntlid_last;
    // Experiment knob (docs/nvmf.md): zero-copy sends for batches of at
    // least this many bytes.
    if (const char* zc = std::getenv("IOENGINE_NVMF_ZEROCOPY_MIN")) limits.zero_copy_send_min = std::strtoull(zc, nullptr, 10);
    auto target = std::make_unique<ioe::nvme::nvmf_target>(opts->nvmf_address, opts->nvmf_port, limits);
    // Reservations that persist through power loss: <data dir>/reservations,
    // one file per namespace device, written on the control thread.
    const std::string resv_dir = ctx.dir->path() + "/reservations";
    target->set_reservation_store(ioe::nvme::reservation_store{
        [e, control = ctx.control, resv_dir](std::string name, std::vector<std::byte> bytes) -> ioe::future<> {
            return ioe::rpc::run_on_control<void>(*e, *control, [resv_dir, name, bytes] {
                ioe::nvme::save_reservation_file(resv_dir, name, bytes);
            });
        },
        [e, control = ctx.control, resv_dir](std::string name) -> ioe::future<std::optional<std::vector<std::byte>>> {
            return ioe::rpc::run_on_control<std::optional<std::vector<std::byte>>>(
                *e, *control, [resv_dir, name] { return ioe::nvme::load_reservation_file(resv_dir, name); });
        }});
    std::string state_path = ctx.dir->state_path();
    auto writer = [e, control = ctx.control, state_path](ioe::rpc::node_state s) -> ioe::future<> {
        return ioe::rpc::run_on_control<void>(*e, *control,
                                              [state_path, s] { ioe::rpc::save_state_file(state_path, s); });
    };
    // The health store outlives svc: its nexuses write their records at stop.
    ioe::rpc::health_backend health;
    try {
        health = ioe::rpc::health_backend::make(*e, *ctx.control, opts->etcd);
    } catch (const std::exception& ex) {
        ioe::log::error("ioengine cannot start: --etcd {}: {}", opts->etcd, ex.what());
        e->stop(2);
        co_return 2;
    }
    ioe::rpc::node_service svc(*e, {opts->node_name, ctx.dir->path()}, target.get(), writer);
    svc.set_health_store(health.store.get(), health.description);
    ioe::rpc::rpc_server rpc(*e, svc, opts->rpc);
    std::unique_ptr<ioe::rpc::metrics_server> metrics;

    ioe::promise<> stopped;
    auto done = stopped.get_future();
    bool serving = false;
    // Stopping: the engine awaits this hook before it stops the reactors,
    // so the RPC server, the target and the devices close while every shard
    // still runs.
    e->at_stop([&]() -> ioe::future<> {
        co_await ioe::rpc::run_on_control<void>(*e, *ctx.control, [&] {
            rpc.stop();
            if (metrics) metrics->stop();
        });
        if (serving) co_await target->stop();
        co_await svc.shutdown();
        stopped.set_value();
    });

    std::exception_ptr failed;
    try {
        co_await target->start();
        serving = true;
        if (ctx.dir->saved_state()) {
            auto problems = co_await svc.apply(*ctx.dir->saved_state());
            for (const auto& p : problems) ioe::log::warn("state not re-applied: {}", p);
        }
        if (opts->default_pool_mb) {
            auto p = co_await svc.ensure_pool("default", ctx.dir->default_pool_uri());
            ioe::log::info("pool \"default\" on {}: {} MiB, {} MiB used, {} replica(s)", p.uri,
                           p.pool.capacity_bytes >> 20, p.pool.used_bytes >> 20, p.pool.replica_count);
        }
        for (const auto& p : opts->pools) {
            auto entry = co_await svc.ensure_pool(p.name, p.uri);
            ioe::log::info("pool \"{}\" on {}: {} MiB", entry.pool.name, entry.uri, entry.pool.capacity_bytes >> 20);
        }
        if (!opts->namespaces.empty()) {
            co_await serve_namespaces(opts, &svc, target.get());
            ioe::log::info("try: nvme connect -t tcp -a {} -s {} -n {}", opts->nvmf_address, target->port(),
                           opts->nqn);
        }
        co_await start_vhost_exports(opts, &svc);
        co_await ioe::rpc::run_on_control<void>(*e, *ctx.control, [&] {
            rpc.start();
            if (opts->metrics != "off") {
                metrics = std::make_unique<ioe::rpc::metrics_server>(*e, *ctx.control, svc, opts->metrics);
                metrics->start();
            }
        });
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        try {
            std::rethrow_exception(failed);
        } catch (const std::exception& ex) {
            ioe::log::error("ioengine cannot start: {}", ex.what());
        }
        e->stop(1);
        co_await std::move(done);
        co_return 1;
    }
    std::string rpcs;
    for (const auto& a : rpc.bound()) rpcs += (rpcs.empty() ? "" : ", ") + a;
    ioe::log::info("NVMe/TCP on {}:{}", opts->nvmf_address, target->port());
    ioe::log::info("RPC on {}", rpcs);
    if (metrics) ioe::log::info("metrics on http://{}/metrics", metrics->bound());
    ioe::log::info("ioengine {} running (pid {}): node \"{}\", {} shard(s), {} polling, data in {}; Ctrl+C or "
                   "SIGTERM stops it",
                   ioe::rpc::engine_version, ::getpid(), opts->node_name, e->shards(),
                   ioe::to_string(e->config().reactor.mode), ctx.dir->path());
    std::string rpc_flag = opts->rpc_is_default ? "" : " --rpc " + rpc.bound().front();
    std::string pool = opts->default_pool_mb ? "default" : (opts->pools.empty() ? "POOL" : opts->pools.front().name);
    ioe::log::info("next: {}{} replica create --pool {} --size 64MiB r1 && {}{} replica share r1", ctx.ctl, rpc_flag,
                   pool, ctx.ctl, rpc_flag);
    co_await std::move(done);
    ioe::log::info("ioengine drained, exiting");
    co_return 0;
}

std::string ctl_path(const char* argv0) {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    auto dir = ec ? std::filesystem::path(argv0).parent_path() : self.parent_path();
    auto ctl = dir / "ioengine-ctl";
    auto rel = std::filesystem::relative(ctl, std::filesystem::current_path(), ec);
    if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0) return rel.native();
    return ctl.native();
}

}  // namespace

int main(int argc, char** argv) {
    ioe::control_thread::block_termination_signals();
    ioe::daemon::options opts;
    int rc = ioe::daemon::parse_options(argc, argv, opts);
    if (rc >= 0) return rc;
    ioe::log::set_level(spdlog::level::from_str(opts.log_level));
    try {
        // Start-up work that blocks (directories, files) happens here,
        // before any reactor runs.
        ioe::daemon::data_dir dir(opts.data_dir, opts.default_pool_mb);
        if (opts.rpc.empty()) {
            opts.rpc = {ioe::rpc::default_rpc_tcp, "unix:" + dir.path() + "/rpc.sock"};
            opts.rpc_is_default = true;
        }
        if (!opts.config_file.empty()) ioe::log::info("options from {}", opts.config_file);
        ioe::engine e(opts.engine);
        ioe::control_thread control(e);
        control.start();
        daemon_context ctx{&e, &control, &opts, &dir, ctl_path(argv[0])};
        rc = e.run([ctx] { return serve(ctx); });
        control.stop();
        return rc;
    } catch (const std::exception& ex) {
        std::cerr << "ioengine: " << ex.what() << "\n";
        return 1;
    }
}
