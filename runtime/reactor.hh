// The reactor: one per shard, pinned to one core, running the engine's loop
//
//   run ready tasks (bounded batch) -> drain cross-core queues -> reap
//   io_uring completions -> fire timers -> run pollers -> flush outgoing
//   messages and SQEs -> maybe sleep
//
// Poll modes: `busy` never sleeps; `adaptive` (default) sleeps in the
// io_uring wait after `idle_before_sleep` without work; `event` sleeps as soon
// as there is no work. A sleeping reactor has a read of its eventfd armed in
// its ring and waits with a timeout equal to its next timer. Whoever queues
// work for it wakes it with one eventfd write, and only if it advertised that
// it sleeps (Dekker handshake: the producer publishes then checks `sleeping`;
// the reactor sets `sleeping` then re-checks its inputs; both with a seq_cst
// fence in between, so a wake-up is never lost and never costs an awake
// reactor a syscall).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "runtime/spsc_ring.hh"
#include "runtime/task.hh"
#include "runtime/timer.hh"
#include "runtime/uring.hh"

namespace ioe {

enum class poll_mode { busy, adaptive, event };

std::string_view to_string(poll_mode m) noexcept;
// Parses "busy", "adaptive" or "event"; false on anything else.
bool parse_poll_mode(std::string_view s, poll_mode& out) noexcept;

struct reactor_config {
    poll_mode mode = poll_mode::adaptive;
    std::chrono::microseconds idle_before_sleep{200};  // adaptive mode only
    unsigned task_batch = 256;        // tasks run per loop before polling again
    unsigned uring_entries = 256;     // SQ size of each reactor's ring
};

// Something the reactor calls every loop (a device queue, a socket poller).
class poller {
public:
    virtual ~poller() = default;
    // Does some work; returns true if it found any.
    virtual bool poll() noexcept = 0;
};

// Work that runs once at the end of the current loop iteration: after the
// ready tasks, completions, timers and pollers of that iteration, just before
// its SQEs are submitted. A connection queues its answers during the
// iteration and flushes them all with one send from here.
class end_of_loop_work {
public:
    virtual ~end_of_loop_work() = default;
    virtual void run_end_of_loop() noexcept = 0;

private:
    friend class reactor;
    bool _end_of_loop_queued = false;
};

class smp;

struct reactor_stats {
    std::uint64_t loops = 0;
    std::uint64_t tasks_run = 0;
    std::uint64_t sleeps = 0;        // times the reactor went to sleep
    // Time in loop iterations that found work, and time polling without
    // finding any or asleep. The clock is read only when the loop changes
    // between the two (under steady load: never).
    std::uint64_t busy_ns = 0;
    std::uint64_t idle_ns = 0;
    // Queue depths when the snapshot was taken (stats() fills them).
    std::uint64_t tasks_queued = 0;   // ready tasks waiting to run
    std::uint64_t io_in_flight = 0;   // io_uring operations submitted, not completed
    std::uint64_t pollers = 0;        // registered pollers (device queues)
};

class alignas(cache_line) reactor {
public:
    reactor(unsigned id, const reactor_config& cfg, smp* s);
    ~reactor();
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    unsigned id() const noexcept { return _id; }
    const reactor_config& config() const noexcept { return _cfg; }
    uring& io() noexcept { return _uring; }
    // A snapshot of the counters with the current busy/idle interval
    // included and the queue depths filled in; this reactor's thread only.
    reactor_stats stats() const noexcept;

    // Runs the loop on the calling thread until stop() and drain.
    void run();
    // Asks the loop to end (any thread). In-flight I/O is cancelled and
    // reaped, ready tasks run, then run() returns.
    void stop() noexcept;
    bool stopping() const noexcept { return _stop_requested.load(std::memory_order_relaxed); }

    // From any thread: wake this reactor if it is asleep (no syscall otherwise).
    void wake() noexcept;
    bool sleeping() const noexcept { return _sleeping.load(std::memory_order_relaxed); }
    // Eventfd writes other threads issued to wake this reactor (any thread).
    std::uint64_t wakeups_sent() const noexcept { return _wakeups_sent.load(std::memory_order_relaxed); }

    // From any thread, for control-plane work: run `fn` on this shard.
    // Takes a lock; never use it on the data path (use smp::submit_to).
    void post_foreign(std::function<void()> fn);

    void register_poller(poller* p);
    void unregister_poller(poller* p) noexcept;

    // Runs w->run_end_of_loop() once at the end of this loop iteration
    // (queued once however often it is asked). Owner thread only; an object
    // that dies before then calls cancel_end_of_loop() first.
    void at_end_of_loop(end_of_loop_work* w);
    void cancel_end_of_loop(end_of_loop_work* w) noexcept;

    // Timer heap (owner thread only).
    void add_timer(timer_entry* t);
    void del_timer(timer_entry* t) noexcept;

private:
    bool run_once();
    bool fire_timers(steady_clock::time_point now);
    bool drain_foreign();
    bool has_pending_input() const noexcept;
    void sleep(steady_clock::time_point now);
    void heap_up(std::size_t i) noexcept;
    void heap_down(std::size_t i) noexcept;
    void heap_swap(std::size_t a, std::size_t b) noexcept;

    const unsigned _id;
    const reactor_config _cfg;
    smp* _smp;
    uring _uring;
    int _wake_fd = -1;
    reactor_stats _stats;
    std::vector<timer_entry*> _timers;  // min-heap on _expiry
    std::vector<poller*> _pollers;
    std::vector<end_of_loop_work*> _end_of_loop;  // null: cancelled
    std::vector<end_of_loop_work*> _end_of_loop_running;
    bool run_end_of_loop_work();
    steady_clock::time_point _last_work;
    static constexpr unsigned timer_check_loops = 4;
    static constexpr unsigned idle_clock_loops = 16;
    unsigned _timer_check_countdown = 0;
    // Busy/idle accounting: the state of the loop and since when.
    bool _busy_state = true;
    steady_clock::time_point _state_since = steady_clock::now();
    void account(bool busy) noexcept;

    // Touched by other threads: each on its own cache line.
    alignas(cache_line) std::atomic<bool> _sleeping{false};
    alignas(cache_line) std::atomic<bool> _stop_requested{false};
    alignas(cache_line) std::atomic<bool> _foreign_pending{false};
    std::mutex _foreign_mutex;
    std::vector<std::function<void()>> _foreign;
    std::atomic<std::uint64_t> _wakeups_sent{0};
};

// The reactor of the calling thread, or nullptr outside the engine.
reactor* local_reactor() noexcept;
// The calling thread's shard id; no_shard outside the engine's reactors.
inline constexpr unsigned no_shard = ~0u;
unsigned this_shard_id() noexcept;

namespace internal {
void set_local_reactor(reactor* r) noexcept;
}

}  // namespace ioe
