// The control thread (see control.hh).
#include "runtime/control.hh"

#include <pthread.h>
#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "runtime/log.hh"

namespace ioe {

struct control_thread::signals {
    explicit signals(boost::asio::io_context& io)
        : set(io, SIGINT, SIGTERM), guard(boost::asio::make_work_guard(io)) {}
    boost::asio::signal_set set;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard;
};

control_thread::control_thread(engine& e) : _engine(e), _io(std::make_unique<boost::asio::io_context>(1)) {}

control_thread::~control_thread() { stop(); }

void control_thread::block_termination_signals() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

void control_thread::start() {
    _signals = std::make_unique<signals>(*_io);
    _signals->set.async_wait([this](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        log::info("{} received: stopping gracefully",
                  signo == SIGINT ? "SIGINT" : "SIGTERM");
        _engine.stop(0);
    });
    _thread = std::thread([this] {
        log::set_thread_role("control");
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGINT);
        sigaddset(&s, SIGTERM);
        pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
        _io->run();
    });
}

void control_thread::stop() {
    if (!_thread.joinable()) return;
    post([this] {
        if (_signals) {
            boost::system::error_code ec;
            _signals->set.cancel(ec);
            _signals->guard.reset();
        }
    });
    _thread.join();
    _signals.reset();
}

void control_thread::post(std::function<void()> fn) { boost::asio::post(*_io, std::move(fn)); }

}  // namespace ioe
