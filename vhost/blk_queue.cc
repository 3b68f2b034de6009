// The data path of one vhost-user-blk virtqueue (see blk_queue.hh).
#include "vhost/blk_queue.hh"

#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "runtime/engine.hh"
#include "runtime/log.hh"

namespace ioe::vhost {

void blk_queue_counters::add(const blk_queue_counters& o) noexcept {
    reads += o.reads;
    writes += o.writes;
    flushes += o.flushes;
    get_ids += o.get_ids;
    discards += o.discards;
    write_zeroes += o.write_zeroes;
    read_bytes += o.read_bytes;
    write_bytes += o.write_bytes;
    ioerr += o.ioerr;
    unsupported += o.unsupported;
    interrupts += o.interrupts;
    resubmitted += o.resubmitted;
    ring_faults += o.ring_faults;
    bounced += o.bounced;
}

namespace {

std::uint8_t to_blk_status(io_status s) noexcept {
    if (ok(s)) return blk::status::ok;
    if (s == io_status::invalid_opcode) return blk::status::unsupp;
    return blk::status::ioerr;
}

// A piece an O_DIRECT backend may refuse: address or length not a
// multiple of 512 bytes.
bool misaligned(std::span<const io_vec> data) noexcept {
    for (const auto& v : data)
        if (((reinterpret_cast<std::uintptr_t>(v.data) | v.len) & (blk::sector_bytes - 1)) != 0) return true;
    return false;
}

}  // namespace

// A read or write whose guest buffers are misaligned goes through one
// buffer of the engine's DMA pool (allocated from the shard's cache: no
// malloc), copied in before a write and out after a read.
future<io_status> blk_queue::bounce(blk_queue* q, blk_request& req) {
    ++q->_counters.bounced;
    if (req.data_bytes > dma_pool::max_buffer) {
        log::warn("{}: misaligned {} of {} bytes is larger than a bounce buffer ({} bytes)", q->_s.log_name,
                  to_string(req.op), req.data_bytes, dma_pool::max_buffer);
        co_return io_status::invalid_field;
    }
    auto b = engine::current()->dma().allocate(req.data_bytes);
    if (!b) co_return io_status::internal_error;
    dma_buffer buf = std::move(b.value());
    const io_vec one = to_io_vec(buf, 0, req.data_bytes);
    const auto blocks = static_cast<std::uint32_t>(req.blocks);
    if (req.op == blk_op::write) {
        std::size_t at = 0;
        for (const auto& v : req.data) {
            std::memcpy(buf.data() + at, v.data, v.len);
            at += v.len;
        }
        co_return co_await q->_channel->write(req.lba, blocks, io_vecs{&one, 1});
    }
    io_status st = co_await q->_channel->read(req.lba, blocks, io_vecs{&one, 1});
    if (ok(st)) {
        std::size_t at = 0;
        for (const auto& v : req.data) {
            std::memcpy(v.data, buf.data() + at, v.len);
            at += v.len;
        }
    }
    co_return st;
}

blk_queue::blk_queue(blk_queue_setup s) : _s(std::move(s)), _slots(_s.ring.size) {}

blk_queue::~blk_queue() {
    if (_polling) local_reactor()->unregister_poller(this);
    local_reactor()->cancel_end_of_loop(this);
}

std::string blk_queue::start() {
    if (auto e = _ring.setup(*_s.memory, _s.ring, _s.addr, _s.base); e != ring_error::ok)
        return fmt::format("ring setup: {}", to_string(e));
    _channel = _s.device->channel();
    if (!_channel) return "the device is closing";
    std::vector<std::uint16_t> resubmit;
    if (_s.inflight) {
        _inflight.attach(_s.inflight, _s.ring.size);
        _inflight.recover(_ring.used_idx(), resubmit);
        // Every chain taken is either used or still in flight: the next
        // available index follows from the used index (the front-end's base
        // is the used index after a back-end crash).
        const auto next = static_cast<std::uint16_t>(_ring.used_idx() + resubmit.size());
        if (next != _s.base) {
            if (auto e = _ring.setup(*_s.memory, _s.ring, _s.addr, next); e != ring_error::ok)
                return fmt::format("ring setup: {}", to_string(e));
        }
        if (!resubmit.empty())
            log::info("{}: resubmitting {} request(s) in flight before the reconnect", _s.log_name, resubmit.size());
    }
    _started = true;
    _last_work = steady_clock::now();
    for (std::uint16_t head : resubmit) {
        if (_slots[head].busy) continue;
        ++_counters.resubmitted;
        take(head);
    }
    _ring.suppress_kicks();
    resume_polling();
    return {};
}

void blk_queue::resume_polling() noexcept {
    if (_polling || _stopping || _broken) return;
    _ring.suppress_kicks();
    local_reactor()->register_poller(this);
    _polling = true;
    _empty_polls = 0;
    _last_work = steady_clock::now();
}

bool blk_queue::poll() noexcept {
    if (_stopping || _broken) return false;
    unsigned taken = 0;
    // At most one ring's worth per poll (fairness with the other pollers).
    for (std::uint32_t i = 0; i < _s.ring.size; ++i) {
        std::uint16_t head = 0;
        ring_error e = _ring.pop(head);
        if (e == ring_error::empty) break;
        if (e != ring_error::ok) {
            // A refused index (not consumed): name the slot, not a head.
            fault(to_string(e), _ring.next_avail(), "available index");
            break;
        }
        if (head >= _slots.size() || _slots[head].busy) {
            fault("head made available again while in flight", head);
            break;
        }
        take(head);
        ++taken;
    }
    if (taken) {
        _empty_polls = 0;
        return true;
    }
    if (_s.kick_fd < 0) return false;
    const auto& cfg = local_reactor()->config();
    if (cfg.mode == poll_mode::busy) return false;
    // The clock is read one empty poll in 64.
    if (++_empty_polls % 64 != 0 && cfg.mode != poll_mode::event) return false;
    const auto now = steady_clock::now();
    if (_empty_polls == 64) _last_work = now;  // the first check starts the idle interval
    if (cfg.mode == poll_mode::event || now - _last_work >= cfg.idle_before_sleep) {
        _want_idle = true;
        local_reactor()->at_end_of_loop(this);
    }
    return false;
}

void blk_queue::take(std::uint16_t head) noexcept {
    slot& s = _slots[head];
    desc_chain chain;
    ring_error e = _ring.walk(head, s.iov, chain);
    if (e != ring_error::ok) {
        fault(to_string(e), head);
        return;
    }
    s.busy = true;
    ++_in_flight;
    _inflight.begin(head);
    s.req = blk_request{};
    blk_request& req = s.req;
    parse_blk_request(chain, _s.params, req);
    if (req.status != blk::status::ok) {
        if (req.status_byte) {
            log::warn("{}: request at head {} answered {}: {}", _s.log_name, head,
                      req.status == blk::status::unsupp ? "UNSUPP" : "IOERR", req.reason);
        } else {
            log::warn("{}: request at head {} has no status byte: returned unanswered", _s.log_name, head);
        }
        complete(head, req.status, 0);
        return;
    }
    switch (req.op) {
    case blk_op::get_id: {
        std::uint32_t left = std::min<std::uint32_t>(req.data_bytes, blk::id_bytes);
        std::uint32_t done = 0;
        for (const auto& v : req.data) {
            if (done == left) break;
            const std::uint32_t n = std::min(v.len, left - done);
            std::memcpy(v.data, _s.id.data() + done, n);
            done += n;
        }
        complete(head, blk::status::ok, done);
        return;
    }
    case blk_op::read:
    case blk_op::write:
        if (req.blocks == 0) {
            complete(head, blk::status::ok, 0);
            return;
        }
        break;
    default: break;
    }
    serve(this, head).ignore();
}

future<> blk_queue::serve(blk_queue* q, std::uint16_t head) {
    blk_request& req = q->_slots[head].req;
    io_channel* ch = q->_channel;
    io_status st = io_status::success;
    std::uint32_t written = 0;
    switch (req.op) {
    case blk_op::read:
    case blk_op::write:
        if (misaligned(req.data)) {
            st = co_await bounce(q, req);
        } else if (req.op == blk_op::read) {
            st = co_await ch->read(req.lba, static_cast<std::uint32_t>(req.blocks), req.data);
        } else {
            st = co_await ch->write(req.lba, static_cast<std::uint32_t>(req.blocks), req.data);
        }
        if (ok(st) && req.op == blk_op::read) written = req.data_bytes;
        break;
    case blk_op::flush: st = co_await ch->flush(); break;
    case blk_op::discard:
    case blk_op::write_zeroes:
        for (std::uint32_t i = 0; i < req.range_count && ok(st); ++i) {
            const blk_range& r = req.ranges[i];
            st = req.op == blk_op::discard ? co_await ch->unmap(r.lba, r.blocks)
                                           : co_await ch->write_zeroes(r.lba, r.blocks);
        }
        break;
    default: st = io_status::invalid_opcode; break;
    }
    if (!ok(st))
        log::warn("{}: {} of {} block(s) at {} failed: {}", q->_s.log_name, to_string(req.op), req.blocks, req.lba,
                  to_string(st));
    q->complete(head, to_blk_status(st), written);
}

void blk_queue::count(const blk_request& req, std::uint8_t status) noexcept {
    if (status == blk::status::ioerr) ++_counters.ioerr;
    if (status == blk::status::unsupp) ++_counters.unsupported;
    if (status != blk::status::ok) return;
    switch (req.op) {
    case blk_op::read:
        ++_counters.reads;
        _counters.read_bytes += req.data_bytes;
        break;
    case blk_op::write:
        ++_counters.writes;
        _counters.write_bytes += req.data_bytes;
        break;
    case blk_op::flush: ++_counters.flushes; break;
    case blk_op::get_id: ++_counters.get_ids; break;
    case blk_op::discard: ++_counters.discards; break;
    case blk_op::write_zeroes: ++_counters.write_zeroes; break;
    case blk_op::none: break;
    }
}

void blk_queue::complete(std::uint16_t head, std::uint8_t status, std::uint32_t written) noexcept {
    slot& s = _slots[head];
    count(s.req, status);
    std::uint32_t len = 0;
    if (s.req.status_byte) {
        *s.req.status_byte = static_cast<std::byte>(status);
        len = written + 1;
    }
    _inflight.batch_add(head);
    _ring.put_used(head, len);
    s.busy = false;
    --_in_flight;
    _used_pending = true;
    if (_stopping && _in_flight == 0) {
        publish();
        if (_drained) _drained->set_value();
        return;
    }
    local_reactor()->at_end_of_loop(this);
}

void blk_queue::publish() noexcept {
    if (!_used_pending) return;
    _used_pending = false;
    const bool interrupt = _ring.publish_used();
    _inflight.batch_published(_ring.used_idx());
    if (interrupt && _s.call_fd >= 0) {
        ::eventfd_write(_s.call_fd, 1);
        ++_counters.interrupts;
    }
}

void blk_queue::run_end_of_loop() noexcept {
    publish();
    if (_want_idle) {
        _want_idle = false;
        go_idle();
    }
}

void blk_queue::go_idle() noexcept {
    if (!_polling) return;
    local_reactor()->unregister_poller(this);
    _polling = false;
    if (_stopping || _broken || _s.kick_fd < 0) return;
    // Heads that arrived while kicks were suppressed are seen here.
    if (_ring.arm_kicks()) {
        resume_polling();
        return;
    }
    _kick_wait.emplace(wait_kick(this));
}

future<> blk_queue::wait_kick(blk_queue* q) {
    uring& io = local_reactor()->io();
    auto f = io.read(q->_s.kick_fd, &q->_kick_value, sizeof q->_kick_value, 0);
    q->_kick_op = io.last_op_id();
    io_result r = co_await std::move(f);
    q->_kick_op = 0;
    if (q->_stopping) co_return;
    if (!r) {
        // EAGAIN: a spurious wake-up; anything else: poll instead.
        if (r.error().value() != EAGAIN)
            log::warn("{}: reading the kick eventfd failed ({}): polling", q->_s.log_name, r.error().message());
    }
    q->resume_polling();
    q->_kick_wait.reset();  // destroys this coroutine's own future: the frame lives on until it returns
}

void blk_queue::fault(std::string_view what, std::uint16_t where, std::string_view kind) noexcept {
    log::warn("{}: ring fault at {} {}: {}; the queue is stopped until the front-end sets it up again", _s.log_name,
              kind, where, what);
    _broken = true;
    ++_counters.ring_faults;
    // Leave the poller list at the end of this loop (not while the reactor
    // iterates it).
    _want_idle = true;
    local_reactor()->at_end_of_loop(this);
}

future<std::uint16_t> blk_queue::stop() {
    _stopping = true;
    if (_polling) {
        local_reactor()->unregister_poller(this);
        _polling = false;
    }
    if (_kick_op) local_reactor()->io().cancel(_kick_op).ignore();
    if (_kick_wait) {
        auto w = std::move(*_kick_wait);
        _kick_wait.reset();
        co_await w.wait_ready();
    }
    if (_in_flight > 0) {
        _drained.emplace();
        co_await _drained->get_future();
        _drained.reset();
    }
    publish();
    local_reactor()->cancel_end_of_loop(this);
    co_return _ring.next_avail();
}

}  // namespace ioe::vhost
