// Timers, sleep() and the timer hooks of with_timeout() (see timer.hh).
#include "runtime/timer.hh"

#include <cassert>

#include "runtime/reactor.hh"

namespace ioe {

namespace internal {
void arm_timer(timer_entry* t) {
    reactor* r = local_reactor();
    assert(r && "timers need a reactor");
    r->add_timer(t);
}
void cancel_timer(timer_entry* t) noexcept {
    if (reactor* r = local_reactor()) r->del_timer(t);
}
}  // namespace internal

void timer::arm(steady_clock::time_point at) {
    _period = steady_clock::duration(0);
    _expiry = at;
    internal::arm_timer(this);
}

void timer::arm_periodic(steady_clock::duration period) {
    _period = period;
    _expiry = steady_clock::now() + period;
    internal::arm_timer(this);
}

void timer::cancel() noexcept { internal::cancel_timer(this); }

void timer::fire() noexcept {
    if (_period.count() > 0) {
        _expiry += _period;
        internal::arm_timer(this);
    }
    _callback();
}

namespace {
class sleep_state final : public future_state<void>, public timer_entry, public slab::slab_allocated {
public:
    void fire() noexcept override {
        set_value();
        release();  // the timer's reference
    }
    void destroy() noexcept override { delete this; }
};
}  // namespace

future<> sleep(steady_clock::duration d) {
    auto* s = new sleep_state();  // refs: the timer
    s->add_ref();                 // + the future
    s->_expiry = steady_clock::now() + d;
    internal::arm_timer(s);
    return future<>(static_cast<future_state<void>*>(s));
}

}  // namespace ioe
