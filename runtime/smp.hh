// Cross-core messaging: submit_to(shard, func) runs func on another shard and
// returns a future of its result on the calling shard.
//
// Between every ordered pair of shards (a, b) there is a *lane*: a request
// ring that a fills and b drains, and a response ring that b fills and a
// drains; both are SPSC rings of pointers (spsc_ring.hh). A message is one
// slab block that is at once the work item travelling to b and the future
// state the caller on a waits on, so a round trip allocates nothing once the
// slab is warm. Outgoing items are queued on a local FIFO and published to
// the ring in batches when the reactor polls; items that do not fit stay on
// that FIFO (the overflow list) and go out first next time, so nothing blocks,
// nothing is dropped, and messages from one shard to another arrive in order.
// func is destroyed on the target shard once its result is ready; exceptions
// come back as failed futures.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/future.hh"
#include "runtime/spsc_ring.hh"

namespace ioe {

class reactor;

// A message between shards: process() runs on the target, complete() back
// on the origin after the target called smp::respond().
class work_item {
public:
    virtual void process() noexcept = 0;
    virtual void complete() noexcept = 0;
    work_item* _next_item = nullptr;
    unsigned _from = 0;
    unsigned _to = 0;

protected:
    ~work_item() = default;
};

struct smp_stats {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint64_t overflowed = 0;  // items that found the ring full at least once
};

class smp {
public:
    static constexpr std::size_t default_ring_capacity = 256;
    static constexpr std::size_t max_batch = 32;

    smp(unsigned shards, std::size_t ring_capacity = default_ring_capacity);
    ~smp();

    unsigned count() const noexcept { return _count; }
    void attach(unsigned shard, reactor* r) noexcept { _reactors[shard] = r; }
    reactor& reactor_of(unsigned shard) const noexcept { return *_reactors[shard]; }

    // Called on the origin shard: queue `item` for item->_to.
    void send(work_item* item) noexcept;
    // Called on the target shard: queue the finished `item` back to its origin.
    void respond(work_item* item) noexcept;

    // Reactor side, on `shard`: process incoming requests and responses;
    // returns true if there were any.
    bool poll(unsigned shard) noexcept;
    // Publish queued outgoing items of `shard` and wake sleeping targets.
    // Returns true if items remain queued (a ring was full).
    bool flush(unsigned shard) noexcept;
    // Any incoming item waiting for `shard`? (used before sleeping)
    bool has_input(unsigned shard) const noexcept;
    // Any outgoing item of `shard` not yet published?
    bool has_output(unsigned shard) const noexcept { return _out[shard].pending != 0; }

    const smp_stats& stats(unsigned shard) const noexcept { return _out[shard].stats; }

private:
    struct fifo {
        work_item* head = nullptr;
        work_item* tail = nullptr;
        void push(work_item* w) noexcept {
            w->_next_item = nullptr;
            if (tail) tail->_next_item = w; else head = w;
            tail = w;
        }
    };
    struct lane {  // from a to b
        explicit lane(std::size_t cap) : requests(cap), responses(cap) {}
        spsc_ring<work_item> requests;   // a -> b
        spsc_ring<work_item> responses;  // b -> a
        alignas(cache_line) fifo out_requests;   // owned by a
        alignas(cache_line) fifo out_responses;  // owned by b
    };
    struct alignas(cache_line) shard_out {
        std::size_t pending = 0;  // items on this shard's outgoing FIFOs
        smp_stats stats;
    };

    lane& lane_of(unsigned from, unsigned to) const noexcept { return *_lanes[from * _count + to]; }
    // Pushes as much of `q` as fits into `ring`; returns how many went.
    static std::size_t publish(fifo& q, spsc_ring<work_item>& ring) noexcept;

    unsigned _count;
    std::vector<std::unique_ptr<lane>> _lanes;
    std::vector<reactor*> _reactors;
    std::unique_ptr<shard_out[]> _out;
};

// The engine's smp instance (nullptr before start).
smp* local_smp() noexcept;
unsigned this_shard_id() noexcept;
unsigned shard_count() noexcept;

namespace internal {
void set_local_smp(smp* s) noexcept;

template <typename F, typename T>
future<T> run_keeping_alive(F func) {
    auto f = futurize_invoke(func);
    co_await f.wait_ready();
    if constexpr (std::is_void_v<T>) {
        f.get();
    } else {
        co_return f.get();
    }
}

template <typename F, typename T>
class submit_message final : public work_item, public future_state<T>, public slab::slab_allocated {
public:
    explicit submit_message(F&& func) : _func(std::move(func)) {}

    void process() noexcept override {
        auto f = futurize_invoke(*_func);
        if (f.available()) {
            take(f);
            _func.reset();
            local_smp()->respond(this);
        } else {
            wait_and_respond(std::move(f), this).ignore();
        }
    }
    void complete() noexcept override {
        this->_result = std::move(_reply);
        this->notify();
        this->release();  // the in-flight reference
    }
    void destroy() noexcept override { delete this; }

private:
    void take(future<T>& f) noexcept {
        if (f.failed()) {
            _reply.set_exception(f.get_exception());
        } else if constexpr (std::is_void_v<T>) {
            f.get();
            _reply.set_value();
        } else {
            _reply.set_value(f.get());
        }
    }
    static future<> wait_and_respond(future<T> f, submit_message* m) {
        co_await f.wait_ready();
        m->take(f);
        m->_func.reset();
        local_smp()->respond(m);
    }
    std::optional<F> _func;
    outcome<T> _reply;
};

}  // namespace internal

// Runs func() on `shard` and returns its result (or exception) here.
// func may return a plain value, void, or a future.
template <typename F>
auto submit_to(unsigned shard, F func) -> futurize_t<std::invoke_result_t<F&>> {
    using T = typename futurize_t<std::invoke_result_t<F&>>::value_type;
    if (shard == this_shard_id()) {
        if constexpr (is_future_v<std::invoke_result_t<F&>>) {
            // func may be a coroutine lambda that reads its captures after
            // suspending: keep it alive in a frame until its future is done.
            return internal::run_keeping_alive<F, T>(std::move(func));
        } else {
            return futurize_invoke(func);
        }
    }
    auto* m = new internal::submit_message<F, T>(std::move(func));
    m->add_ref();  // one for the message in flight, one for the future
    m->_from = this_shard_id();
    m->_to = shard;
    local_smp()->send(m);
    return future<T>(static_cast<future_state<T>*>(m));
}

}  // namespace ioe
