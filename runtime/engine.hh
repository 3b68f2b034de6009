// The engine: N reactors on N pinned cores, their cross-core lanes, and the
// DMA pool. The thread that calls run() becomes shard 0; shards 1..N-1 get
// threads of their own. run() returns when the engine has stopped, with the
// exit code of main() or of stop().
//
// Stopping is graceful: stop() (from any thread, e.g. the control thread on
// SIGTERM) runs the registered at_stop hooks on shard 0 (stop accepting,
// drain in-flight work), then every reactor cancels and reaps its in-flight
// I/O, runs what is ready and returns.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/dma.hh"
#include "runtime/future.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"

namespace ioe {

struct engine_config {
    std::vector<unsigned> cores;  // empty: every core the process may use
    reactor_config reactor;
    dma_config memory;
    std::size_t smp_ring_capacity = smp::default_ring_capacity;
};

class engine {
public:
    // Validates the configuration (cores must exist and be allowed).
    explicit engine(engine_config cfg);
    ~engine();
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    // Starts every shard, runs main() on shard 0 and returns the exit code
    // once the engine has stopped. Throws if a shard cannot start.
    // main's future should complete when the engine stops (fulfil it from an
    // at_stop hook, as the daemon does): a coroutine still suspended when the
    // reactors are gone is never resumed, and its frame is leaked.
    int run(std::function<future<int>()> main);

    // From any thread: stop gracefully with `exit_code` (first call wins).
    void stop(int exit_code = 0);

    // On shard 0: a hook run when the engine stops, newest first.
    void at_stop(std::function<future<>()> hook);

    // From any thread (control plane): run fn on `shard`.
    void post(unsigned shard, std::function<void()> fn);

    unsigned shards() const noexcept { return static_cast<unsigned>(_cfg.cores.size()); }
    const std::vector<unsigned>& cores() const noexcept { return _cfg.cores; }
    const engine_config& config() const noexcept { return _cfg; }
    dma_pool& dma() noexcept { return *_dma; }
    reactor& reactor_of(unsigned shard) noexcept { return *_reactors[shard]; }
    bool running() const noexcept { return _running.load(std::memory_order_acquire); }

    // The running engine (nullptr when none).
    static engine* current() noexcept;

private:
    void shard_thread(unsigned shard);
    void start_reactor(unsigned shard);
    future<> stop_sequence();

    engine_config _cfg;
    std::unique_ptr<dma_pool> _dma;
    std::unique_ptr<smp> _smp;
    std::vector<std::unique_ptr<reactor>> _reactors;
    std::vector<std::thread> _threads;
    std::vector<std::string> _start_errors;
    std::vector<std::function<future<>()>> _stop_hooks;
    std::atomic<bool> _running{false};
    // Foreign posts (engine::post from any thread) in progress, and whether
    // they are still accepted: a reactor is destroyed only once posting is
    // closed and no poster is inside post_foreign (which touches it).
    std::atomic<unsigned> _posting{0};
    std::atomic<bool> _accepting_posts{false};
    void close_posting() noexcept;
    std::atomic<bool> _stop_requested{false};
    int _exit_code = 0;
    bool _stop_running = false;  // shard 0 only
};

// Pins the calling thread to `core`; returns an error message or "".
std::string pin_thread_to_core(unsigned core);

}  // namespace ioe
