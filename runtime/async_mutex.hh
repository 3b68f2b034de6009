// A mutex for coroutines on one shard: lock() returns a future that becomes
// ready when the caller holds it; waiters are served in order. For control
// paths (serializing pool metadata operations), not for the data path.
#pragma once

#include <deque>

#include "runtime/future.hh"

namespace ioe {

class async_mutex {
public:
    future<> lock() {
        if (!_locked) {
            _locked = true;
            return make_ready_future<>();
        }
        _waiters.emplace_back();
        return _waiters.back().get_future();
    }
    void unlock() noexcept {
        if (_waiters.empty()) {
            _locked = false;
            return;
        }
        promise<> next = std::move(_waiters.front());
        _waiters.pop_front();
        next.set_value();  // ownership passes to the next waiter
    }
    bool locked() const noexcept { return _locked; }

    // RAII holder: `auto guard = co_await m.hold();`
    class guard {
    public:
        explicit guard(async_mutex* m) noexcept : _m(m) {}
        guard(guard&& o) noexcept : _m(std::exchange(o._m, nullptr)) {}
        guard& operator=(guard&&) = delete;
        ~guard() {
            if (_m) _m->unlock();
        }

    private:
        async_mutex* _m;
    };
    future<guard> hold() {
        co_await lock();
        co_return guard(this);
    }

private:
    bool _locked = false;
    std::deque<promise<>> _waiters;
};

}  // namespace ioe
