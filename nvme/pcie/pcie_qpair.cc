// pcie_qpair: submission, doorbell batching, completion polling, timeouts and
// the reset hooks of one queue pair (see pcie_qpair.hh).
#include "nvme/pcie/pcie_qpair.hh"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ioe::nvme {
namespace {

dma_buffer take(dma_pool& pool, std::size_t bytes, const char* what, std::uint16_t qid) {
    auto b = pool.allocate(bytes);
    if (!b) {
        throw std::runtime_error("queue " + std::to_string(qid) + ": no DMA memory for the " + what + " (" +
                                 std::to_string(bytes) + " bytes; give the engine a larger DMA pool)");
    }
    if (reinterpret_cast<std::uintptr_t>(b->data()) % prp_page_bytes != 0) {
        throw std::runtime_error("queue " + std::to_string(qid) + ": DMA memory for the " + what +
                                 " is not page aligned");
    }
    return std::move(b.value());
}

std::size_t round_pow2(std::size_t n) {
    std::size_t p = dma_pool::min_buffer;
    while (p < n) p <<= 1;
    return p;
}

}  // namespace

struct pcie_qpair::slot_awaiter {
    pcie_qpair& q;
    slot_waiter w;
    bool await_ready() const noexcept { return !q._free.empty() && !q._waiters_head; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        w.h = h;
        if (q._waiters_tail) {
            q._waiters_tail->next = &w;
        } else {
            q._waiters_head = &w;
        }
        q._waiters_tail = &w;
    }
    void await_resume() const noexcept {}
};

struct pcie_qpair::live_awaiter {
    pcie_qpair& q;
    slot_waiter w;
    bool await_ready() const noexcept { return q._state != state::suspended; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        w.h = h;
        w.next = q._resume_head;
        q._resume_head = &w;
    }
    void await_resume() const noexcept {}
};

struct pcie_qpair::completion_awaiter {
    slot* s;
    bool await_ready() const noexcept { return s->done; }
    void await_suspend(std::coroutine_handle<> h) noexcept { s->waiter = h; }
    void await_resume() const noexcept {}
};

pcie_qpair::pcie_qpair(controller_bus& bus, dma_pool& pool, std::uint16_t qid, unsigned depth, unsigned dstrd,
                       std::chrono::milliseconds timeout, timeout_handler on_timeout)
    : _bus(bus),
      _qid(qid),
      _depth(std::clamp(depth, 2u, max_depth)),
      _sq_doorbell(reg::sq_tail_doorbell(qid, dstrd)),
      _cq_doorbell(reg::cq_head_doorbell(qid, dstrd)),
      _tick_period(std::max<std::chrono::milliseconds>(timeout / ticks_per_timeout, std::chrono::milliseconds(1))),
      _on_timeout(std::move(on_timeout)),
      _slots(_depth - 1),
      _tick([this] { tick(); }) {
    _sq_mem = take(pool, round_pow2(_depth * sqe_bytes), "submission queue", qid);
    _cq_mem = take(pool, round_pow2(_depth * cqe_bytes), "completion queue", qid);
    _list_mem = take(pool, round_pow2((_depth - 1) * std::size_t{prp_page_bytes}), "PRP lists", qid);
    _sq = reinterpret_cast<sqe*>(_sq_mem.data());
    _cq = reinterpret_cast<cqe*>(_cq_mem.data());
    _sq_bus = bus.bus_address(_sq);
    _cq_bus = bus.bus_address(_cq);
    if (!_sq_bus || !_cq_bus || !bus.reachable(_list_mem.data(), _list_mem.size())) {
        throw std::runtime_error("queue " + std::to_string(qid) + ": the DMA pool is not mapped for the device");
    }
    _free.reserve(_slots.size());
    for (std::size_t i = 0; i < _slots.size(); ++i) {
        _slots[i].list = reinterpret_cast<std::uint64_t*>(_list_mem.data() + i * prp_page_bytes);
        _slots[i].segment = reinterpret_cast<sgl_descriptor*>(_list_mem.data() + i * prp_page_bytes);
        _slots[i].list_bus = bus.bus_address(_slots[i].list);
    }
    _idle_check.q = this;
    reinit();
}

pcie_qpair::~pcie_qpair() { detach(); }

void pcie_qpair::detach() noexcept {
    _tick.cancel();
    if (_polled && _reactor) _reactor->unregister_poller(this);
    _polled = false;
}

void pcie_qpair::reinit() noexcept {
    std::memset(_cq_mem.data(), 0, _cq_mem.size());
    _sq_tail = 0;
    _cq_head = 0;
    _phase = true;
    _sq_dirty = false;
    _free.clear();
    for (std::size_t i = _slots.size(); i-- > 0;) {
        slot& s = _slots[i];
        if (s.busy && !s.quarantined) continue;  // still held by its coroutine: released later
        s.quarantined = false;
        s.busy = false;
        _free.push_back(static_cast<std::uint16_t>(i));
    }
    while (_waiters_head && !_free.empty()) {  // slots freed from quarantine
        slot_waiter* w = _waiters_head;
        _waiters_head = w->next;
        if (!_waiters_head) _waiters_tail = nullptr;
        w->granted = _free.back();
        _slots[_free.back()].busy = true;
        _free.pop_back();
        schedule(w);
    }
}

std::uint16_t pcie_qpair::refused_status() const noexcept {
    return _state == state::dead ? make_status(sct::generic, sc::namespace_not_ready)
                                 : make_status(sct::generic, sc::abort_requested);
}

future<pcie_qpair::slot*> pcie_qpair::acquire() {
    slot* s = nullptr;
    if (_free.empty() || _waiters_head) {
        slot_awaiter a{*this, {}};
        co_await a;
        // release() handed us its slot; kill() hands none.
        if (a.w.granted < 0) co_return nullptr;
        s = &_slots[a.w.granted];
    } else {
        s = &_slots[_free.back()];
        _free.pop_back();
    }
    s->busy = true;
    s->done = false;
    s->reported = s->escalated = false;
    co_return s;
}

future<pcie_qpair::slot*> pcie_qpair::admit() {
    if (_state == state::suspended) co_await live_awaiter{*this, {}};
    if (_state != state::live) co_return nullptr;
    slot* s = co_await acquire();
    if (s && _state == state::suspended) co_await live_awaiter{*this, {}};  // holding the (unsent) slot
    if (s && _state != state::live) {
        release(s);
        s = nullptr;
    }
    co_return s;
}

void pcie_qpair::resume() noexcept {
    if (_state != state::suspended) return;
    _state = state::live;
    while (slot_waiter* w = _resume_head) {
        _resume_head = w->next;
        schedule(w);
    }
}

void pcie_qpair::release(slot* s) noexcept {
    s->submitted = false;
    if (s->quarantined) return;  // its CID waits for the next reinit()
    if (slot_waiter* w = _waiters_head) {  // hand the slot over, busy as it is
        _waiters_head = w->next;
        if (!_waiters_head) _waiters_tail = nullptr;
        w->granted = static_cast<int>(s - _slots.data());
        schedule(w);
        return;
    }
    s->busy = false;
    _free.push_back(static_cast<std::uint16_t>(s - _slots.data()));
}

void pcie_qpair::ensure_polled() noexcept {
    if (_polled) return;
    if (!_reactor) _reactor = local_reactor();
    if (!_reactor) return;
    _reactor->register_poller(this);
    _polled = true;
    _tick.arm_periodic(_tick_period);
}

void pcie_qpair::leave_if_idle() noexcept {
    _idle_check_queued = false;
    if (_in_flight == 0 && !_sq_dirty && _polled) detach();
}

future<qp_result> pcie_qpair::submit_and_wait(slot* s, sqe cmd) {
    cmd.cid = static_cast<std::uint16_t>(s - _slots.data());
    std::memcpy(&_sq[_sq_tail], &cmd, sizeof cmd);
    _sq_tail = (_sq_tail + 1) % _depth;
    _sq_dirty = true;
    s->submitted = true;
    ++_in_flight;
    s->submitted_tick = _ticks;
    ensure_polled();
    co_await completion_awaiter{s};
    qp_result r;
    r.cq = s->result;
    release(s);
    co_return r;
}

future<qp_result> pcie_qpair::execute(sqe cmd) {
    qp_result r;
    slot* s = co_await admit();
    if (!s) {
        r.cq.status = refused_status();
        co_return r;
    }
    co_return co_await submit_and_wait(s, cmd);
}

future<qp_result> pcie_qpair::execute_page(sqe cmd, std::byte* page) {
    cmd.set_psdt(psdt::prp);
    cmd.dptr.prp.prp1 = _bus.bus_address(page);
    cmd.dptr.prp.prp2 = 0;
    if (!cmd.dptr.prp.prp1 || !_bus.reachable(page, prp_page_bytes)) {
        qp_result r;
        r.cq.status = make_status(sct::generic, sc::data_transfer_error);
        co_return r;
    }
    co_return co_await execute(cmd);
}

future<qp_result> pcie_qpair::execute_rw(sqe cmd, io_vecs iov, std::uint64_t offset, std::uint32_t max_bytes,
                                         std::uint32_t block_bytes) {
    qp_result r;
    slot* s = co_await admit();
    if (!s) {
        r.cq.status = refused_status();
        co_return r;
    }
    std::uint32_t bytes = 0;
    prp_error error = prp_error::none;
    if (_sgl != sgl_support::none) {
        const sgl_result g = build_sgl(_bus, iov, offset, max_bytes, block_bytes, _sgl, s->segment, s->list_bus);
        error = g.error;
        bytes = g.bytes;
        cmd.set_psdt(psdt::sgl_mptr_contiguous);  // no metadata: MPTR stays 0
        cmd.mptr = 0;
        cmd.dptr.sgl = g.dptr;
    } else {
        const prp_result p = build_prps(_bus, iov, offset, max_bytes, block_bytes, s->list, s->list_bus);
        error = p.error;
        bytes = p.bytes;
        cmd.set_psdt(psdt::prp);
        cmd.dptr.prp.prp1 = p.prp1;
        cmd.dptr.prp.prp2 = p.prp2;
    }
    if (error != prp_error::none) {
        release(s);
        r.cq.status = error == prp_error::unreachable ? make_status(sct::generic, sc::data_transfer_error)
                                                      : make_status(sct::generic, sc::invalid_field);
        co_return r;
    }
    ++(_sgl != sgl_support::none ? _sgl_commands : _prp_commands);
    cmd.cdw12 = (cmd.cdw12 & 0xffff0000u) | ((bytes / block_bytes - 1) & 0xffffu);
    r = co_await submit_and_wait(s, cmd);
    r.bytes = bytes;
    co_return r;
}

future<qp_result> pcie_qpair::execute_dsm(sqe cmd, dsm_range range) {
    qp_result r;
    slot* s = co_await admit();
    if (!s) {
        r.cq.status = refused_status();
        co_return r;
    }
    std::memcpy(s->list, &range, sizeof range);
    cmd.set_psdt(psdt::prp);
    cmd.dptr.prp.prp1 = s->list_bus;
    cmd.dptr.prp.prp2 = 0;
    co_return co_await submit_and_wait(s, cmd);
}

void pcie_qpair::finish(slot* s, const cqe& c) noexcept {
    s->result = c;
    s->done = true;
    --_in_flight;
    if (s->waiter) schedule(s);
}

bool pcie_qpair::poll() noexcept {
    bool work = false;
    // No doorbell while a reset is under way: the controller may already be
    // disabled (CC.EN = 0). What was submitted is failed by fail_all().
    const bool ring = _state == state::live;
    if (_sq_dirty && ring) {
        // The SQEs must be in memory before the controller hears of them.
        std::atomic_thread_fence(std::memory_order_release);
        _bus.write32(_sq_doorbell, _sq_tail);
        _sq_dirty = false;
        ++_doorbells;
        work = true;
    }
    unsigned reaped = 0;
    // At most one ring's worth per poll: a device that keeps posting cannot
    // hold the reactor here.
    while (reaped < _depth) {
        cqe* e = &_cq[_cq_head];
        const std::uint16_t status = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
        if (status_phase(status) != _phase) break;
        cqe c;
        std::memcpy(&c, e, offsetof(cqe, status));
        c.status = status;
        if (++_cq_head == _depth) {
            _cq_head = 0;
            _phase = !_phase;
        }
        ++reaped;
        if (c.cid < _slots.size()) {
            slot& s = _slots[c.cid];
            if (s.submitted && !s.done && !s.quarantined) finish(&s, c);
        }
    }
    if (reaped) work = true;
    if (reaped && ring) {
        _bus.write32(_cq_doorbell, _cq_head);
        ++_doorbells;
    }
    if (_in_flight == 0 && !_sq_dirty && _polled && !_idle_check_queued) {
        _idle_check_queued = true;
        schedule(&_idle_check);  // unregistering inside poll() would upset the reactor's loop
    }
    return work;
}

void pcie_qpair::tick() noexcept {
    ++_ticks;
    if (_in_flight == 0 || !_on_timeout) return;
    for (std::size_t i = 0; i < _slots.size(); ++i) {
        slot& s = _slots[i];
        if (!s.submitted || s.done) continue;
        const std::uint32_t age = _ticks - s.submitted_tick;
        if (age > _timeout_ticks && !s.reported) {
            s.reported = true;
            _on_timeout(_qid, static_cast<std::uint16_t>(i), false);
        } else if (age > 2 * _timeout_ticks && !s.escalated) {
            s.escalated = true;
            _on_timeout(_qid, static_cast<std::uint16_t>(i), true);
        }
    }
}

void pcie_qpair::fail_all(std::uint16_t status) noexcept {
    cqe c{};
    c.sqid = _qid;
    c.status = status;
    for (auto& s : _slots) {
        if (s.submitted && !s.done) {
            c.cid = static_cast<std::uint16_t>(&s - _slots.data());
            finish(&s, c);
        }
    }
}

void pcie_qpair::fail_one(std::uint16_t cid, std::uint16_t status) noexcept {
    if (cid >= _slots.size()) return;
    slot& s = _slots[cid];
    if (!s.submitted || s.done) return;
    cqe c{};
    c.sqid = _qid;
    c.cid = cid;
    c.status = status;
    s.quarantined = true;
    finish(&s, c);
}

void pcie_qpair::kill() noexcept {
    _state = state::dead;
    fail_all(make_status(sct::generic, sc::namespace_not_ready));
    // Waiters for a slot or for the end of a reset find the queue dead.
    while (slot_waiter* w = _waiters_head) {
        _waiters_head = w->next;
        schedule(w);
    }
    _waiters_tail = nullptr;
    while (slot_waiter* w = _resume_head) {
        _resume_head = w->next;
        schedule(w);
    }
}

}  // namespace ioe::nvme
