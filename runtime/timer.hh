// Timers on the reactor's clock (steady_clock): one-shot and periodic
// entries in a per-reactor heap, sleep(), and with_timeout() for futures.
// A timer belongs to the shard that armed it and fires there.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>

#include "runtime/future.hh"

namespace ioe {

using steady_clock = std::chrono::steady_clock;

// An entry in a reactor's timer heap; fire() runs on the reactor.
class timer_entry {
public:
    steady_clock::time_point _expiry{};
    std::size_t _heap_index = npos;
    static constexpr std::size_t npos = ~std::size_t(0);

    bool armed() const noexcept { return _heap_index != npos; }
    virtual void fire() noexcept = 0;

protected:
    ~timer_entry() = default;
};

// A callback timer, one-shot or periodic. Cancelled when destroyed.
class timer final : public timer_entry {
public:
    explicit timer(std::function<void()> callback) : _callback(std::move(callback)) {}
    ~timer() { cancel(); }
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;

    void arm(steady_clock::time_point at);
    void arm(steady_clock::duration after) { arm(steady_clock::now() + after); }
    void arm_periodic(steady_clock::duration period);
    void cancel() noexcept;
    void fire() noexcept override;

private:
    std::function<void()> _callback;
    steady_clock::duration _period{0};
};

struct timed_out_error : std::runtime_error {
    timed_out_error() : std::runtime_error("timed out") {}
};

// A future that becomes ready after `d` (allocates one slab block).
future<> sleep(steady_clock::duration d);

namespace internal {
void arm_timer(timer_entry* t);
void cancel_timer(timer_entry* t) noexcept;
}  // namespace internal

// The value of `f`, or timed_out_error if it is not ready within `d`.
// The underlying operation is not cancelled: only the wait is bounded.
template <typename T>
future<T> with_timeout(steady_clock::duration d, future<T> f) {
    if (f.available()) {
        co_return co_await std::move(f);
    }
    struct race final : future_state<nothing>, slab::slab_allocated {
        void destroy() noexcept override { delete this; }
    };
    // Both the timer and the source completion resolve `gate`, first wins.
    auto* gate = new race();
    gate->add_ref();  // held by the watcher coroutine below
    struct guard final : timer_entry, slab::slab_allocated {
        race* g;
        void fire() noexcept override {
            if (!g->_result.available()) g->set_value();
        }
    };
    auto* g = new guard();
    g->g = gate;
    g->_expiry = steady_clock::now() + d;
    internal::arm_timer(g);
    // Watch the source: when it completes, resolve the gate too.
    auto watched = [](future<T> src, race* gate) -> future<T> {
        struct release_on_exit {
            race* g;
            ~release_on_exit() {
                if (!g->_result.available()) g->set_value();
                g->release();
            }
        } r{gate};
        co_return co_await std::move(src);
    }(std::move(f), gate);
    co_await future<nothing>(static_cast<future_state<nothing>*>(gate));
    internal::cancel_timer(g);
    delete g;
    if (!watched.available()) {
        watched.ignore();
        throw timed_out_error();
    }
    co_return co_await std::move(watched);
}

}  // namespace ioe
