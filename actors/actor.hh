// Actors: objects owned by one shard (devices, pools, replicas, nexuses).
// An actor's state is touched only on its owner shard, fixed at creation.
// Other shards reach it through actor_ref<T>::call(&T::method, args...),
// which runs the method on the owner (directly when already there, as a
// cross-core message otherwise) and returns a future of its result.
// close() refuses new calls and waits for those in flight, so an actor is
// destroyed only when nothing runs inside it.
//
// Methods that are coroutines must take their parameters by value: the
// arguments of a call live in the message only until the method returns its
// future (the coroutine-lambda pitfall of Seastar's docs).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "runtime/future.hh"
#include "runtime/smp.hh"

namespace ioe {

struct actor_closed_error : std::runtime_error {
    explicit actor_closed_error(const std::string& name)
        : std::runtime_error("actor \"" + name + "\" is closing: call refused") {}
};

class actor {
public:
    // The owner shard is the shard that constructs the actor.
    explicit actor(std::string name);
    virtual ~actor();
    actor(const actor&) = delete;
    actor& operator=(const actor&) = delete;

    unsigned owner_shard() const noexcept { return _owner; }
    const std::string& name() const noexcept { return _name; }
    bool closing() const noexcept { return _closing; }
    unsigned calls_in_flight() const noexcept { return _in_flight; }

    // Owner shard: refuse new calls, then wait for the ones in flight.
    future<> close();

    // Bookkeeping for actor_ref (owner shard only).
    void call_started() noexcept { ++_in_flight; }
    void call_finished() noexcept;

private:
    unsigned _owner;
    std::string _name;
    unsigned _in_flight = 0;
    bool _closing = false;
    std::optional<promise<>> _drained;
};

namespace internal {

template <typename R>
future<R> finish_call(future<R> f, actor* a) {
    co_await f.wait_ready();
    a->call_finished();
    co_return co_await std::move(f);
}

// Runs (obj->*method)(args...) on the owner shard with in-flight accounting.
template <typename T, typename M, typename... A>
auto invoke_on_owner(T* obj, M method, A&... args) -> futurize_t<std::invoke_result_t<M, T*, A...>> {
    using F = futurize_t<std::invoke_result_t<M, T*, A...>>;
    using R = typename F::value_type;
    if (obj->closing()) {
        return make_exception_future<R>(actor_closed_error(obj->name()));
    }
    obj->call_started();
    F f = futurize_invoke([&] { return (obj->*method)(std::move(args)...); });
    if (f.available()) {
        obj->call_finished();
        return f;
    }
    return finish_call<R>(std::move(f), obj);
}

}  // namespace internal

template <typename T>
class actor_ref {
public:
    actor_ref() = default;
    explicit actor_ref(T* obj) noexcept : _obj(obj), _shard(obj->owner_shard()) {}

    unsigned shard() const noexcept { return _shard; }
    explicit operator bool() const noexcept { return _obj != nullptr; }

    // Runs obj->method(args...) on the owner shard.
    template <typename M, typename... A>
    auto call(M method, A... args) const {
        T* obj = _obj;
        return submit_to(_shard, [obj, method, args...]() mutable {
            return internal::invoke_on_owner(obj, method, args...);
        });
    }

    // The raw pointer, for code already running on the owner shard.
    T* local() const noexcept { return _obj; }

private:
    T* _obj = nullptr;
    unsigned _shard = 0;
};

}  // namespace ioe
