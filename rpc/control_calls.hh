// Blocking work off the reactors: run_on_control(fn) runs fn on the control
// thread (state-file writes, starting and stopping the RPC server) and
// returns, on the calling shard, a future of its outcome. The promise is
// created, fulfilled and freed on the calling shard only.
#pragma once

#include <exception>
#include <functional>
#include <optional>

#include "runtime/control.hh"
#include "runtime/engine.hh"
#include "runtime/future.hh"
#include "runtime/reactor.hh"

namespace ioe::rpc {

template <typename T>
future<T> run_on_control(engine& e, control_thread& control, std::function<T()> fn) {
    unsigned shard = this_shard_id();
    auto* p = new promise<T>();
    auto f = p->get_future();
    control.post([&e, shard, p, fn = std::move(fn)] {
        std::exception_ptr error;
        std::optional<std::conditional_t<std::is_void_v<T>, int, T>> value;
        try {
            if constexpr (std::is_void_v<T>) {
                fn();
                value = 0;
            } else {
                value = fn();
            }
        } catch (...) {
            error = std::current_exception();
        }
        e.post(shard, [p, error, value = std::move(value)]() mutable {
            if (error) {
                p->set_exception(error);
            } else if constexpr (std::is_void_v<T>) {
                p->set_value();
            } else {
                p->set_value(std::move(*value));
            }
            delete p;
        });
    });
    return f;
}

}  // namespace ioe::rpc
