// The reactor loop, its sleep/wake handshake and its timer heap (see reactor.hh).
#include "runtime/reactor.hh"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "runtime/log.hh"
#include "runtime/smp.hh"

namespace ioe {
namespace {
thread_local reactor* tl_reactor = nullptr;
thread_local unsigned tl_shard = no_shard;
}  // namespace

reactor* local_reactor() noexcept { return tl_reactor; }
unsigned this_shard_id() noexcept { return tl_shard; }

namespace internal {
void set_local_reactor(reactor* r) noexcept {
    tl_reactor = r;
    tl_shard = r ? r->id() : no_shard;
}
}  // namespace internal

std::string_view to_string(poll_mode m) noexcept {
    switch (m) {
        case poll_mode::busy: return "busy";
        case poll_mode::adaptive: return "adaptive";
        case poll_mode::event: return "event";
    }
    return "?";
}

bool parse_poll_mode(std::string_view s, poll_mode& out) noexcept {
    if (s == "busy") out = poll_mode::busy;
    else if (s == "adaptive") out = poll_mode::adaptive;
    else if (s == "event") out = poll_mode::event;
    else return false;
    return true;
}

reactor::reactor(unsigned id, const reactor_config& cfg, smp* s)
    : _id(id), _cfg(cfg), _smp(s), _uring(cfg.uring_entries) {
    _wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (_wake_fd < 0) {
        throw std::runtime_error(std::string("shard ") + std::to_string(id) +
                                 ": eventfd failed: " + std::strerror(errno));
    }
    _timers.reserve(1024);
    _end_of_loop.reserve(256);
    _end_of_loop_running.reserve(256);
    _last_work = steady_clock::now();
}

reactor::~reactor() {
    if (_wake_fd >= 0) ::close(_wake_fd);
}

void reactor::wake() noexcept {
    // Cheap when awake: one relaxed load of a line the sleeper rarely writes.
    if (_sleeping.load(std::memory_order_relaxed) && _sleeping.exchange(false, std::memory_order_acq_rel)) {
        std::uint64_t one = 1;
        ssize_t rc = ::write(_wake_fd, &one, sizeof(one));
        (void)rc;  // EAGAIN only when the counter is saturated: it is awake anyway
        _wakeups_sent.fetch_add(1, std::memory_order_relaxed);
    }
}

void reactor::post_foreign(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lk(_foreign_mutex);
        _foreign.push_back(std::move(fn));
    }
    _foreign_pending.store(true, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake();
}

bool reactor::drain_foreign() {
    if (!_foreign_pending.load(std::memory_order_acquire)) return false;
    std::vector<std::function<void()>> work;
    {
        std::lock_guard<std::mutex> lk(_foreign_mutex);
        work.swap(_foreign);
        _foreign_pending.store(false, std::memory_order_relaxed);
    }
    for (auto& fn : work) fn();
    return !work.empty();
}

void reactor::stop() noexcept {
    _stop_requested.store(true, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake();
}

void reactor::register_poller(poller* p) { _pollers.push_back(p); }

void reactor::unregister_poller(poller* p) noexcept {
    for (auto it = _pollers.begin(); it != _pollers.end(); ++it) {
        if (*it == p) {
            _pollers.erase(it);
            return;
        }
    }
}

void reactor::at_end_of_loop(end_of_loop_work* w) {
    if (w->_end_of_loop_queued) return;
    w->_end_of_loop_queued = true;
    _end_of_loop.push_back(w);
}

void reactor::cancel_end_of_loop(end_of_loop_work* w) noexcept {
    if (!w->_end_of_loop_queued) return;
    w->_end_of_loop_queued = false;
    for (auto& e : _end_of_loop) {
        if (e == w) e = nullptr;
    }
    for (auto& e : _end_of_loop_running) {
        if (e == w) e = nullptr;
    }
}

bool reactor::run_end_of_loop_work() {
    if (_end_of_loop.empty()) return false;
    // Work queued while these run (a flush that queues another) runs in the
    // next iteration.
    _end_of_loop_running.swap(_end_of_loop);
    for (std::size_t i = 0; i < _end_of_loop_running.size(); ++i) {
        end_of_loop_work* w = _end_of_loop_running[i];
        if (!w) continue;
        _end_of_loop_running[i] = nullptr;
        w->_end_of_loop_queued = false;
        w->run_end_of_loop();
    }
    _end_of_loop_running.clear();
    return true;
}

// ---- timer heap -----------------------------------------------------------

void reactor::heap_swap(std::size_t a, std::size_t b) noexcept {
    std::swap(_timers[a], _timers[b]);
    _timers[a]->_heap_index = a;
    _timers[b]->_heap_index = b;
}

void reactor::heap_up(std::size_t i) noexcept {
    while (i > 0) {
        std::size_t parent = (i - 1) / 2;
        if (_timers[parent]->_expiry <= _timers[i]->_expiry) break;
        heap_swap(i, parent);
        i = parent;
    }
}

void reactor::heap_down(std::size_t i) noexcept {
    for (;;) {
        std::size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < _timers.size() && _timers[l]->_expiry < _timers[m]->_expiry) m = l;
        if (r < _timers.size() && _timers[r]->_expiry < _timers[m]->_expiry) m = r;
        if (m == i) break;
        heap_swap(i, m);
        i = m;
    }
}

void reactor::add_timer(timer_entry* t) {
    if (t->armed()) del_timer(t);
    t->_heap_index = _timers.size();
    _timers.push_back(t);
    heap_up(t->_heap_index);
}

void reactor::del_timer(timer_entry* t) noexcept {
    if (!t->armed()) return;
    std::size_t i = t->_heap_index;
    std::size_t last = _timers.size() - 1;
    if (i != last) {
        heap_swap(i, last);
    }
    _timers.pop_back();
    t->_heap_index = timer_entry::npos;
    if (i < _timers.size()) {
        heap_up(i);
        heap_down(i);
    }
}

bool reactor::fire_timers(steady_clock::time_point now) {
    bool any = false;
    while (!_timers.empty() && _timers[0]->_expiry <= now) {
        timer_entry* t = _timers[0];
        del_timer(t);
        t->fire();  // may re-arm itself (periodic) or free itself
        any = true;
    }
    return any;
}

// ---- loop -----------------------------------------------------------------

bool reactor::has_pending_input() const noexcept {
    return !local_tasks().empty() || !_end_of_loop.empty() || _smp->has_input(_id) ||
           _foreign_pending.load(std::memory_order_acquire) ||
           _stop_requested.load(std::memory_order_acquire);
}

bool reactor::run_once() {
    ++_stats.loops;
    bool work = false;
    std::size_t ran = run_ready_tasks(_cfg.task_batch);
    _stats.tasks_run += ran;
    work |= ran != 0;
    work |= _smp->poll(_id);
    work |= drain_foreign();
    work |= _uring.reap() != 0;
    // The clock costs tens of ns (more in a VM's pvclock): timers are
    // checked every `timer_check_loops` iterations, so a timer fires at
    // most that many loop iterations late (microseconds under load).
    if (!_timers.empty() && ++_timer_check_countdown >= timer_check_loops) {
        _timer_check_countdown = 0;
        work |= fire_timers(steady_clock::now());
    }
    for (poller* p : _pollers) {
        work |= p->poll();
    }
    work |= run_end_of_loop_work();
    work |= _smp->flush(_id);
    _uring.submit();
    return work;
}

void reactor::sleep(steady_clock::time_point now) {
    if (!_pollers.empty()) return;  // pollers need the CPU (e.g. device queues)
    if (_smp->has_output(_id)) return;  // a full ring: retry soon, do not sleep
    _uring.arm_wakeup(_wake_fd);
    _sleeping.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (has_pending_input()) {
        _sleeping.store(false, std::memory_order_relaxed);
        return;
    }
    ++_stats.sleeps;
    if (_timers.empty()) {
        _uring.wait(nullptr);
    } else {
        auto d = _timers[0]->_expiry - now;
        std::chrono::nanoseconds ns = d.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(d)
                                                    : std::chrono::nanoseconds(0);
        _uring.wait(&ns);
    }
    _sleeping.store(false, std::memory_order_relaxed);
}

reactor_stats reactor::stats() const noexcept {
    reactor_stats s = _stats;
    const auto open = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now() - _state_since).count());
    (_busy_state ? s.busy_ns : s.idle_ns) += open;
    s.tasks_queued = local_tasks().size;
    s.io_in_flight = _uring.in_flight();
    s.pollers = _pollers.size();
    return s;
}

void reactor::account(bool busy) noexcept {
    if (busy == _busy_state) return;
    const auto now = steady_clock::now();
    const auto ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - _state_since).count());
    (_busy_state ? _stats.busy_ns : _stats.idle_ns) += ns;
    _busy_state = busy;
    _state_since = now;
}

void reactor::run() {
    log::debug("reactor loop starting in {} mode", to_string(_cfg.mode));
    _state_since = steady_clock::now();
    bool idle_since_known = false;
    unsigned idle_loops = 0;
    while (!_stop_requested.load(std::memory_order_acquire)) {
        bool work = run_once();
        account(work);
        if (work) {
            // A loop with work reads no clock: the idle time is counted
            // from the first loop without work after it.
            idle_since_known = false;
            idle_loops = 0;
            continue;
        }
        if (_cfg.mode == poll_mode::busy) continue;
        // Idle loops read the clock one in `idle_clock_loops` (the event
        // mode sleeps at once).
        if (_cfg.mode == poll_mode::adaptive && idle_since_known && ++idle_loops < idle_clock_loops) continue;
        idle_loops = 0;
        auto now = steady_clock::now();
        if (!idle_since_known) {
            _last_work = now;
            idle_since_known = true;
        }
        if (_cfg.mode == poll_mode::event || now - _last_work >= _cfg.idle_before_sleep) {
            sleep(now);
            idle_since_known = false;
            _timer_check_countdown = timer_check_loops;  // the wake-up may be a timer's
        }
    }
    // Drain: cancel what is in flight and reap it, finish ready tasks and
    // deliver queued messages, bounded in time.
    _uring.cancel_all();
    auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (steady_clock::now() < deadline) {
        bool work = run_once();
        if (!work && _uring.in_flight() == 0 && local_tasks().empty() && !_smp->has_output(_id)) break;
        if (_uring.in_flight() != 0 && !work) {
            std::chrono::nanoseconds ns(std::chrono::milliseconds(10));
            _uring.wait(&ns);
        }
    }
    if (_uring.in_flight() != 0) {
        log::warn("{} io_uring operations still in flight at shutdown", _uring.in_flight());
    }
}

}  // namespace ioe
