// The control thread: not a reactor, but a Boost.Asio io_context for
// signals, timers and control-plane I/O (later the RPC server and the etcd
// client). It never touches shard state: it posts work to a shard and gets
// the outcome back as a callback on its own thread.
//
// SIGINT and SIGTERM (blocked on every reactor) arrive here and stop the
// engine gracefully.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "runtime/engine.hh"
#include "runtime/future.hh"

namespace boost::asio {
class io_context;
}

namespace ioe {

class control_thread {
public:
    explicit control_thread(engine& e);
    ~control_thread();  // stops and joins
    control_thread(const control_thread&) = delete;
    control_thread& operator=(const control_thread&) = delete;

    // Starts the thread; SIGINT/SIGTERM then call engine::stop(0).
    void start();
    void stop();

    boost::asio::io_context& io() noexcept { return *_io; }
    // Runs fn on the control thread.
    void post(std::function<void()> fn);

    // Runs fn on `shard`; on_done(outcome) runs later on the control thread.
    template <typename T>
    void call_on_shard(unsigned shard, std::function<future<T>()> fn,
                       std::function<void(outcome<T>)> on_done) {
        _engine.post(shard, [this, fn = std::move(fn), on_done = std::move(on_done)]() mutable {
            relay<T>(std::move(fn), std::move(on_done), this).ignore();
        });
    }

    // Blocks SIGINT/SIGTERM in the calling thread (call first in main(),
    // before any thread starts, so that every thread inherits the mask).
    static void block_termination_signals();

private:
    template <typename T>
    static future<> relay(std::function<future<T>()> fn, std::function<void(outcome<T>)> on_done,
                          control_thread* self) {
        auto f = futurize_invoke(fn);
        co_await f.wait_ready();
        auto o = std::make_shared<outcome<T>>();
        if (f.failed()) {
            o->set_exception(f.get_exception());
        } else if constexpr (std::is_void_v<T>) {
            f.get();
            o->set_value();
        } else {
            o->set_value(f.get());
        }
        self->post([o, on_done = std::move(on_done)] { on_done(std::move(*o)); });
    }

    engine& _engine;
    std::unique_ptr<boost::asio::io_context> _io;
    std::thread _thread;
    struct signals;
    std::unique_ptr<signals> _signals;
};

}  // namespace ioe
