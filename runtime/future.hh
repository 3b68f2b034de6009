// future<T> / promise<T> and C++20 coroutines that return future<T>.
//
// * A future made ready at construction (make_ready_future) keeps its value
//   inline: no allocation, and co_await on it does not suspend.
// * A pending future shares a `future_state` with its producer: a slab block
//   for a promise, or the coroutine frame itself for a coroutine (the frame
//   *is* the state, so a coroutine costs one slab block and nothing else).
// * The state is also the task that resumes its waiter, so completing a
//   future allocates nothing either.
// * Errors: a future fails with an exception (control paths). On the I/O
//   path, failures travel as values: future<result<T>> (see result.hh).
// * Coroutines start eagerly (initial_suspend never); a future dropped while
//   its coroutine still runs is fine: the frame keeps itself alive. An
//   exception nobody observed is logged when the last holder lets go.
// * Everything here is single-threaded: a future, its promise and its waiter
//   live on one shard. Crossing shards is smp.hh's job.
#pragma once

#include <cassert>
#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "runtime/slab.hh"
#include "runtime/task.hh"

namespace ioe {

template <typename T = void>
class future;
template <typename T = void>
class promise;

// The value type of future<void>.
struct nothing {};

template <typename T>
struct value_of {
    using type = T;
};
template <>
struct value_of<void> {
    using type = nothing;
};
template <typename T>
using value_of_t = typename value_of<T>::type;

template <typename T>
struct is_future : std::false_type {};
template <typename T>
struct is_future<future<T>> : std::true_type {};
template <typename T>
inline constexpr bool is_future_v = is_future<T>::value;

// future<R> for a plain R, R itself for a future.
template <typename R>
struct futurize {
    using type = future<R>;
};
template <typename T>
struct futurize<future<T>> {
    using type = future<T>;
};
template <typename R>
using futurize_t = typename futurize<R>::type;

struct broken_promise : std::exception {
    const char* what() const noexcept override {
        return "broken promise: destroyed without a value";
    }
};

namespace internal {
// Logs an exception that no one will ever see (defined in future.cc).
void report_ignored_exception(const std::exception_ptr& e) noexcept;
}  // namespace internal

// The outcome of an asynchronous operation: pending, a value, or an exception.
template <typename T>
class outcome {
public:
    using V = value_of_t<T>;

    bool available() const noexcept { return _v.index() != 0; }
    bool failed() const noexcept { return _v.index() == 2; }

    template <typename... A>
    void set_value(A&&... a) {
        _v.template emplace<1>(std::forward<A>(a)...);
    }
    void set_exception(std::exception_ptr e) noexcept { _v.template emplace<2>(std::move(e)); }

    // Moves the value out, or rethrows the exception.
    V take() {
        if (_v.index() == 2) {
            std::rethrow_exception(std::get<2>(_v));
        }
        assert(_v.index() == 1);
        return std::move(std::get<1>(_v));
    }
    std::exception_ptr exception() const noexcept {
        return _v.index() == 2 ? std::get<2>(_v) : std::exception_ptr();
    }

private:
    std::variant<std::monostate, V, std::exception_ptr> _v;
};

// State shared by a pending future and whoever will complete it.
template <typename T>
class future_state : public task {
public:
    outcome<T> _result;
    std::coroutine_handle<> _waiter;
    unsigned _refs = 1;
    bool _observed = false;

    void add_ref() noexcept { ++_refs; }
    void release() noexcept {
        if (--_refs == 0) {
            if (_result.failed() && !_observed) {
                internal::report_ignored_exception(_result.exception());
            }
            destroy();
        }
    }
    // Makes the waiter (if any) runnable; holds a reference while queued.
    void notify() noexcept {
        if (_waiter) {
            add_ref();
            schedule(this);
        }
    }
    template <typename... A>
    void set_value(A&&... a) {
        _result.set_value(std::forward<A>(a)...);
        notify();
    }
    void set_exception(std::exception_ptr e) noexcept {
        _result.set_exception(std::move(e));
        notify();
    }
    void run() noexcept override {
        std::exchange(_waiter, {}).resume();
        release();
    }
    virtual void destroy() noexcept = 0;

protected:
    ~future_state() = default;
};

namespace internal {

// A future_state in a slab block, for promise<T> and custom producers.
template <typename T>
class pooled_state final : public future_state<T>, public slab::slab_allocated {
public:
    void destroy() noexcept override { delete this; }
};

template <typename T>
class coroutine_promise;

}  // namespace internal

template <typename T>
class [[nodiscard]] future {
public:
    using value_type = T;
    using V = value_of_t<T>;
    using promise_type = internal::coroutine_promise<T>;

    // Adopts one reference to `state`.
    explicit future(future_state<T>* state) noexcept : _state(state) {}
    explicit future(outcome<T>&& ready) noexcept : _local(std::move(ready)) {}
    future(future&& o) noexcept : _state(std::exchange(o._state, nullptr)), _local(std::move(o._local)) {}
    future& operator=(future&& o) noexcept {
        if (this != &o) {
            reset();
            _state = std::exchange(o._state, nullptr);
            _local = std::move(o._local);
        }
        return *this;
    }
    future(const future&) = delete;
    future& operator=(const future&) = delete;
    ~future() { reset(); }

    bool available() const noexcept { return _state ? _state->_result.available() : _local.available(); }
    bool failed() const noexcept { return _state ? _state->_result.failed() : _local.failed(); }

    // The value of an available future; rethrows its exception.
    V get() {
        assert(available());
        if (_state) {
            _state->_observed = true;
            return _state->_result.take();
        }
        return _local.take();
    }
    // The exception of a failed future (marks it observed).
    std::exception_ptr get_exception() noexcept {
        if (_state) {
            _state->_observed = true;
            return _state->_result.exception();
        }
        return _local.exception();
    }
    // Drops the result; an exception inside it is logged, not lost silently.
    void ignore() noexcept {
        if (_state) _state->_observed = true;
        reset();
    }

    struct awaiter {
        future& f;
        bool await_ready() const noexcept { return f.available(); }
        void await_suspend(std::coroutine_handle<> h) noexcept { f._state->_waiter = h; }
        T await_resume() {
            if constexpr (std::is_void_v<T>) {
                f.get();
            } else {
                return f.get();
            }
        }
    };
    awaiter operator co_await() && noexcept { return awaiter{*this}; }

    // Awaits readiness without taking the result (call get() afterwards).
    struct ready_awaiter {
        future& f;
        bool await_ready() const noexcept { return f.available(); }
        void await_suspend(std::coroutine_handle<> h) noexcept { f._state->_waiter = h; }
        void await_resume() const noexcept {}
    };
    ready_awaiter wait_ready() noexcept { return ready_awaiter{*this}; }

    // Calls func(T) when the value arrives; func may return a plain value or
    // a future. An exception skips func and propagates.
    template <typename F>
    auto then(F func) && {
        if constexpr (std::is_void_v<T>) {
            using R = futurize_t<std::invoke_result_t<F>>;
            return then_void_coro<F, R>(std::move(*this), std::move(func));
        } else {
            using R = futurize_t<std::invoke_result_t<F, T>>;
            return then_coro<F, R>(std::move(*this), std::move(func));
        }
    }

private:
    template <typename F, typename R>
    static R then_coro(future f, F func) {
        T v = co_await std::move(f);
        if constexpr (std::is_void_v<typename R::value_type>) {
            if constexpr (is_future_v<std::invoke_result_t<F, T>>) {
                co_await func(std::move(v));
            } else {
                func(std::move(v));
            }
        } else {
            if constexpr (is_future_v<std::invoke_result_t<F, T>>) {
                co_return co_await func(std::move(v));
            } else {
                co_return func(std::move(v));
            }
        }
    }
    template <typename F, typename R>
    static R then_void_coro(future f, F func) {
        co_await std::move(f);
        if constexpr (std::is_void_v<typename R::value_type>) {
            if constexpr (is_future_v<std::invoke_result_t<F>>) {
                co_await func();
            } else {
                func();
            }
        } else {
            if constexpr (is_future_v<std::invoke_result_t<F>>) {
                co_return co_await func();
            } else {
                co_return func();
            }
        }
    }

    void reset() noexcept {
        if (_state) {
            std::exchange(_state, nullptr)->release();
        }
    }

    future_state<T>* _state = nullptr;
    outcome<T> _local;
};

template <typename T>
class promise {
public:
    promise() : _state(new internal::pooled_state<T>()) {}
    promise(promise&& o) noexcept : _state(std::exchange(o._state, nullptr)) {}
    promise& operator=(promise&& o) noexcept {
        if (this != &o) {
            abandon();
            _state = std::exchange(o._state, nullptr);
        }
        return *this;
    }
    promise(const promise&) = delete;
    promise& operator=(const promise&) = delete;
    ~promise() { abandon(); }

    future<T> get_future() noexcept {
        _state->add_ref();
        return future<T>(_state);
    }
    template <typename... A>
    void set_value(A&&... a) {
        _state->set_value(std::forward<A>(a)...);
    }
    void set_exception(std::exception_ptr e) noexcept { _state->set_exception(std::move(e)); }
    template <typename E>
    void set_exception(E&& e) noexcept {
        set_exception(std::make_exception_ptr(std::forward<E>(e)));
    }
    bool fulfilled() const noexcept { return _state->_result.available(); }

private:
    void abandon() noexcept {
        if (_state) {
            if (!_state->_result.available()) {
                _state->_observed = _state->_refs == 1;  // no future: nobody to tell
                _state->set_exception(std::make_exception_ptr(broken_promise()));
            }
            std::exchange(_state, nullptr)->release();
        }
    }
    future_state<T>* _state;
};

template <typename T = void, typename... A>
future<T> make_ready_future(A&&... a) {
    outcome<T> o;
    o.set_value(std::forward<A>(a)...);
    return future<T>(std::move(o));
}

template <typename T = void>
future<T> make_exception_future(std::exception_ptr e) {
    outcome<T> o;
    o.set_exception(std::move(e));
    return future<T>(std::move(o));
}

template <typename T = void, typename E>
future<T> make_exception_future(E&& e) {
    return make_exception_future<T>(std::make_exception_ptr(std::forward<E>(e)));
}

namespace internal {

// The promise of a coroutine that returns future<T>: the frame is the state.
template <typename T>
class coroutine_promise_base : public future_state<T> {
public:
    future<T> get_return_object() noexcept {
        this->add_ref();  // one for the frame, one for the future
        return future<T>(static_cast<future_state<T>*>(this));
    }
    std::suspend_never initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <typename P>
        void await_suspend(std::coroutine_handle<P> h) noexcept {
            auto& p = h.promise();
            p.notify();
            p.release();  // may destroy the frame: nothing after this
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { this->_result.set_exception(std::current_exception()); }

    static void* operator new(std::size_t n) { return slab::allocate(n); }
    static void operator delete(void* p, std::size_t n) noexcept { slab::deallocate(p, n); }
};

template <typename T>
class coroutine_promise final : public coroutine_promise_base<T> {
public:
    template <typename U>
    void return_value(U&& v) {
        this->_result.set_value(std::forward<U>(v));
    }
    void destroy() noexcept override {
        std::coroutine_handle<coroutine_promise>::from_promise(*this).destroy();
    }
};

template <>
class coroutine_promise<void> final : public coroutine_promise_base<void> {
public:
    void return_void() { this->_result.set_value(); }
    void destroy() noexcept override {
        std::coroutine_handle<coroutine_promise>::from_promise(*this).destroy();
    }
};

}  // namespace internal

namespace internal {
// The state of yield(): queued as a task once to become ready, and once more
// to resume its waiter.
class yield_state final : public future_state<void>, public slab::slab_allocated {
public:
    void run() noexcept override {
        if (!_result.available()) {
            _result.set_value();
            if (_waiter) {
                schedule(this);  // the queue's reference carries over
            } else {
                release();
            }
            return;
        }
        future_state<void>::run();
    }
    void destroy() noexcept override { delete this; }
};
}  // namespace internal

// A future that becomes ready after the tasks already queued on this thread
// have run. A loop of yields still lets a reactor poll: it runs at most
// task_batch tasks between two polls.
inline future<> yield() {
    auto* s = new internal::yield_state();  // refs: the queue
    s->add_ref();                           // + the future
    schedule(s);
    return future<>(static_cast<future_state<void>*>(s));
}

// Runs func() and returns its result as a future, turning a throw into a
// failed future.
template <typename F>
auto futurize_invoke(F&& func) noexcept -> futurize_t<std::invoke_result_t<F>> {
    using R = std::invoke_result_t<F>;
    try {
        if constexpr (is_future_v<R>) {
            return func();
        } else if constexpr (std::is_void_v<R>) {
            func();
            return make_ready_future<>();
        } else {
            return make_ready_future<R>(func());
        }
    } catch (...) {
        return make_exception_future<typename futurize_t<R>::value_type>(std::current_exception());
    }
}

}  // namespace ioe
