// ioengine: the daemon. Starts the reactors on the configured cores with the
// DMA pool and the control thread, logs what it started, and runs until
// SIGINT/SIGTERM, then drains and exits 0.
#include <unistd.h>

#ifdef IOE_HAVE_NUMA
#include <numa.h>
#endif

#include <iostream>

#include "runtime/control.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "nvme/target/target.hh"
#include "runtime/log.hh"
#include "storage/device_registry.hh"
#include "tools/ioengine/options.hh"

namespace {

int numa_node_of(unsigned core) {
#ifdef IOE_HAVE_NUMA
    if (numa_available() >= 0) return numa_node_of_cpu(static_cast<int>(core));
#endif
    (void)core;
    return -1;
}

// Shard 0's main: log every shard, serve NVMe/TCP if asked, then wait for
// the stop request.
ioe::future<int> serve(ioe::engine* e, const ioe::daemon::options* opts) {
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
    ioe::device_registry devices;
    std::unique_ptr<ioe::nvme::nvmf_target> target;
    if (opts->nvmf) {
        ioe::nvme::subsystem_config sub;
        sub.nqn = opts->nqn;
        sub.allowed_hosts = opts->allowed_hosts;
        for (const auto& uri : opts->namespaces) {
            sub.namespaces.push_back(co_await devices.create(uri));
            ioe::log::info("namespace {}: {} ({} blocks of {} bytes)", sub.namespaces.size(), uri,
                           sub.namespaces.back()->block_count(), sub.namespaces.back()->block_size());
        }
        target = std::make_unique<ioe::nvme::nvmf_target>(opts->nvmf_address, opts->nvmf_port);
        co_await target->add_subsystem(std::move(sub));
        co_await target->start();
        ioe::log::info("try: nvme connect -t tcp -a {} -s {} -n {}", opts->nvmf_address, target->port(), opts->nqn);
    }
    ioe::log::info("ioengine {} running (pid {}): {} shard(s), {} polling; Ctrl+C or SIGTERM stops it",
                   "0.1.0", ::getpid(), e->shards(), ioe::to_string(e->config().reactor.mode));
    // Stopping: the engine awaits this hook before it stops the reactors,
    // so the target and the devices close while everything still runs.
    ioe::promise<> stopped;
    auto done = stopped.get_future();
    e->at_stop([&stopped, &target, &devices]() -> ioe::future<> {
        if (target) co_await target->stop();
        co_await devices.close_all();
        stopped.set_value();
    });
    co_await std::move(done);
    ioe::log::info("ioengine drained, exiting");
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    ioe::control_thread::block_termination_signals();
    ioe::daemon::options opts;
    int rc = ioe::daemon::parse_options(argc, argv, opts);
    if (rc >= 0) return rc;
    ioe::log::set_level(spdlog::level::from_str(opts.log_level));
    try {
        ioe::engine e(opts.engine);
        ioe::control_thread control(e);
        control.start();
        rc = e.run([&e, &opts] { return serve(&e, &opts); });
        control.stop();
        return rc;
    } catch (const std::exception& ex) {
        std::cerr << "ioengine: " << ex.what() << "\n";
        return 1;
    }
}
