// Engine start-up, shard threads and graceful stop (see engine.hh).
#include "runtime/engine.hh"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <cstring>
#include <latch>
#include <stdexcept>
#include <thread>

#include "runtime/cores.hh"
#include "runtime/log.hh"

namespace ioe {
namespace {
std::atomic<engine*> g_engine{nullptr};
}

engine* engine::current() noexcept { return g_engine.load(std::memory_order_acquire); }

std::string pin_thread_to_core(unsigned core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) {
        return "cannot pin to core " + std::to_string(core) + ": " + std::strerror(rc);
    }
    return {};
}

engine::engine(engine_config cfg) : _cfg(std::move(cfg)) {
    if (_cfg.cores.empty()) {
        _cfg.cores = allowed_cores();
    } else {
        core_set_error err;
        auto checked = parse_cores(format_cores(_cfg.cores), err);
        if (!err.message.empty()) throw std::invalid_argument(err.message);
        _cfg.cores = checked;
    }
    if (_cfg.cores.size() > dma_pool::max_shards) {
        throw std::invalid_argument("at most " + std::to_string(dma_pool::max_shards) + " shards");
    }
    _dma = std::make_unique<dma_pool>(_cfg.memory);
    _smp = std::make_unique<smp>(shards(), _cfg.smp_ring_capacity);
    _reactors.resize(shards());
    _start_errors.resize(shards());
}

engine::~engine() = default;

void engine::start_reactor(unsigned shard) {
    std::string pin = pin_thread_to_core(_cfg.cores[shard]);
    if (!pin.empty()) throw std::runtime_error(pin);
    log::set_thread_role("shard " + std::to_string(shard));
    _reactors[shard] = std::make_unique<reactor>(shard, _cfg.reactor, _smp.get());
    _smp->attach(shard, _reactors[shard].get());
    internal::set_local_reactor(_reactors[shard].get());
    status st = _reactors[shard]->io().register_buffers(_dma->regions().data(),
                                                        static_cast<unsigned>(_dma->regions().size()));
    if (!st) {
        log::warn("io_uring cannot register the DMA pool as fixed buffers ({}); using plain reads/writes",
                  st.error().message());
    }
}

void engine::shard_thread(unsigned shard) {
    // Signals go to the control thread, never to a reactor.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    try {
        start_reactor(shard);
    } catch (const std::exception& e) {
        _start_errors[shard] = e.what();
    }
}

int engine::run(std::function<future<int>()> main) {
    engine* expected = nullptr;
    if (!g_engine.compare_exchange_strong(expected, this)) {
        throw std::logic_error("an engine is already running in this process");
    }
    internal::set_local_smp(_smp.get());
    cpu_set_t saved;
    pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
    std::string saved_role(log::thread_role());

    const unsigned n = shards();
    std::latch created(n), go(1), finished(n);
    // Counted down once shard 0 no longer runs: stop_sequence (on shard 0)
    // has called stop() on every reactor. A shard leaves run() as soon as
    // it sees its stop flag, which stop() sets before it wakes the shard:
    // freeing the reactor before that wake() returned was a use after free
    // (seen by ASan in the sanitize CI).
    std::latch shard0_done(1);
    bool ok = true;
    for (unsigned s = 1; s < n; ++s) {
        _threads.emplace_back([this, s, &created, &go, &ok, &shard0_done] {
            shard_thread(s);
            created.count_down();
            go.wait();
            if (ok && _reactors[s]) _reactors[s]->run();
            internal::set_local_reactor(nullptr);
            close_posting();
            shard0_done.wait();
            _reactors[s].reset();  // the ring is destroyed on the thread that made it
        });
    }
    try {
        start_reactor(0);
    } catch (const std::exception& e) {
        _start_errors[0] = e.what();
    }
    created.count_down();
    created.wait();
    std::string errors;
    for (unsigned s = 0; s < n; ++s) {
        if (!_start_errors[s].empty()) {
            errors += (errors.empty() ? "" : "; ") + std::string("shard ") + std::to_string(s) + ": " + _start_errors[s];
        }
    }
    ok = errors.empty();
    _running.store(ok, std::memory_order_release);
    _accepting_posts.store(ok);
    go.count_down();
    if (ok) {
        log::info("engine started: {} shard(s) on cores {}, {} polling", n, format_cores(_cfg.cores),
                  to_string(_cfg.reactor.mode));
        // Run main; when it finishes, stop with its value.
        [](engine* e, std::function<future<int>()> main) -> future<> {
            int code = 0;
            try {
                code = co_await futurize_invoke(main);
            } catch (const std::exception& ex) {
                log::error("main failed: {}", ex.what());
                code = 1;
            }
            e->stop(code);
        }(this, std::move(main)).ignore();
        if (_stop_requested.load()) post(0, [this] { stop_sequence().ignore(); });
        _reactors[0]->run();
    }
    shard0_done.count_down();
    for (auto& t : _threads) t.join();
    _threads.clear();
    internal::set_local_reactor(nullptr);
    close_posting();
    _reactors[0].reset();
    run_ready_tasks();  // frames left by stopped shard 0 work (none expected)
    internal::set_local_smp(nullptr);
    _running.store(false, std::memory_order_release);
    pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
    log::set_thread_role(saved_role);
    g_engine.store(nullptr, std::memory_order_release);
    if (!ok) throw std::runtime_error("engine start failed: " + errors);
    return _exit_code;
}

void engine::stop(int exit_code) {
    if (_stop_requested.exchange(true)) return;
    _exit_code = exit_code;
    if (running()) {
        post(0, [this] { stop_sequence().ignore(); });
    }  // else run() sees the request once the shards are up
}

future<> engine::stop_sequence() {
    if (_stop_running) co_return;
    _stop_running = true;
    log::info("stopping: running {} stop hook(s)", _stop_hooks.size());
    while (!_stop_hooks.empty()) {
        auto hook = std::move(_stop_hooks.back());
        _stop_hooks.pop_back();
        try {
            co_await futurize_invoke(hook);
        } catch (const std::exception& e) {
            log::error("stop hook failed: {}", e.what());
        }
    }
    // Let every shard finish what it was handed before it goes.
    for (unsigned s = 1; s < shards(); ++s) {
        co_await submit_to(s, [] {});
    }
    for (unsigned s = shards(); s-- > 0;) {
        _reactors[s]->stop();
    }
}

void engine::at_stop(std::function<future<>()> hook) { _stop_hooks.push_back(std::move(hook)); }

void engine::post(unsigned shard, std::function<void()> fn) {
    // Dekker with close_posting(): count ourselves in, then look; a reactor
    // being torn down has closed posting first and then waits for the count.
    _posting.fetch_add(1);
    if (!_accepting_posts.load()) {
        _posting.fetch_sub(1);
        return;  // the engine has stopped: nobody would run it
    }
    _reactors.at(shard)->post_foreign(std::move(fn));
    _posting.fetch_sub(1);
}

void engine::close_posting() noexcept {
    _accepting_posts.store(false);
    while (_posting.load() != 0) std::this_thread::yield();
}

}  // namespace ioe
