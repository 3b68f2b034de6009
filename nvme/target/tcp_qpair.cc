// The NVMe/TCP target queue pair's transport: the receive loop over the
// connection's PDU buffer, ICReq, capsules, H2CData, and the answers queued
// on the connection's send queue (see tcp_qpair.hh; commands are in
// target_commands.cc).
#include "nvme/target/tcp_qpair.hh"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/transport/pdu_socket.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/timer.hh"

namespace ioe::nvme {

namespace {

template <typename T>
T load(std::span<const std::byte> p) {
    T v;
    std::memcpy(&v, p.data(), sizeof v);
    return v;
}

// Answers of a closing connection still queued get this long to leave.
constexpr auto close_flush_bound = std::chrono::milliseconds(1000);

// The send queue's bounds: every command slot may have an R2T and an answer
// (C2HData header, data, digest, CapsuleResp) queued at once, with HPDA
// padding up to 124 bytes per data PDU.
constexpr unsigned send_iov_per_command = 6;
constexpr std::size_t send_arena_per_command = 3 * 160;

}  // namespace

void tcp_qpair::start(nvmf_target& target, int fd) {
    auto* q = new tcp_qpair(target, fd);
    [](tcp_qpair* q) -> future<> {
        co_await q->run();
        delete q;
    }(q).ignore();
}

tcp_qpair::tcp_qpair(nvmf_target& target, int fd)
    : _target(target),
      _fd(fd),
      _io(local_reactor()->io()),
      _commands(target.limits().max_queue_entries),
      _slot_cid(target.limits().max_queue_entries, 0),
      _rx(tcp::pdu_receiver::default_buffer_bytes),
      _tx(_io, fd, this, std::max<unsigned>(64, target.limits().max_queue_entries * send_iov_per_command),
          std::max<std::size_t>(4096, target.limits().max_queue_entries * send_arena_per_command)) {
    for (std::size_t i = _commands.size(); i-- > 0;) _free_slots.push_back(static_cast<std::uint16_t>(i));
    _held_aers.reserve(max_held_aers);
    _tx.set_zero_copy_min(target.limits().zero_copy_send_min);
    // Until ICReq/ICResp: no digests, and nothing longer than an ICReq.
    _rx.configure(false, false, sizeof(tcp::ic_req));
    static std::atomic<std::uint64_t> serials{0};
    _serial = serials.fetch_add(1, std::memory_order_relaxed) + 1;
    _target.qpair_opened(this);
}

tcp_qpair::~tcp_qpair() { _target.qpair_closed(this); }

bool tcp_qpair::io_queue_of(const subsystem* s) const noexcept {
    return _ctrl && _qid != 0 && _ctrl->subsys.get() == s;
}

unsigned tcp_qpair::begin_drain() noexcept {
    // Flip only when the other generation is empty (no drain is waiting on
    // it); otherwise wait for both (token 2).
    const unsigned old = _io_epoch;
    if (_io_inflight[old ^ 1] != 0) return 2;
    _io_epoch ^= 1;
    return old;
}

bool tcp_qpair::drained(unsigned token) const noexcept {
    if (token == 2) return _io_inflight[0] == 0 && _io_inflight[1] == 0;
    return _io_inflight[token] == 0;
}

future<> tcp_qpair::run() {
    bool ok = true;
    while (ok && _state != state::closing) {
        for (;;) {
            const auto ev = _rx.next();
            if (ev == tcp::pdu_receiver::event::need_more) break;
            if (ev == tcp::pdu_receiver::event::error) {
                const auto& e = _rx.error();
                ok = fatal(e.fes, e.fei, e.what);
            } else if (ev == tcp::pdu_receiver::event::header) {
                ok = on_header();
            } else {
                ok = on_data();
            }
            if (!ok || _state == state::closing) break;
        }
        if (!ok || _state == state::closing) break;
        if (!co_await tcp::receive_into(_io, _fd, _rx)) break;
    }
    co_await close_connection();
}

future<> tcp_qpair::close_connection() {
    _state = state::closing;
    // An admin queue that ends ends its controller now (its I/O queues
    // close, and a reconnect of the host waits for them: docs/nvmf.md),
    // not only once this queue pair has drained.
    if (_ctrl && _qid == 0) _ctrl->tear_down();
    {
        // What is queued (a TermReq, a Disconnect's answer) leaves first,
        // within a bound: a host that stopped reading cannot hold us.
        timer bound([fd = _fd] { ::shutdown(fd, SHUT_RDWR); });
        bound.arm(close_flush_bound);
        co_await _tx.drained();
    }
    ::shutdown(_fd, SHUT_RDWR);
    // Wake commands waiting for host data that will never come.
    for (auto& c : _commands) {
        if (c.data_ready) c.data_ready->set_value(false);
        c.data_ready.reset();
    }
    // Held Asynchronous Event Requests are never answered now.
    for (command* c : _held_aers) release_slot(c);
    _held_aers.clear();
    if (_running > 0) {
        _drained.emplace();
        co_await _drained->get_future();
    }
    co_await _tx.drained();  // sends of a shut socket fail at once
    if (_ctrl && _qid != 0) _ctrl->remove_io_queue(_fd);
    if (_ctrl && _qid == 0) {
        _ctrl->tear_down();  // its I/O queues close too
        _target.remove_controller(_ctrl->cntlid);
        log::info("NVMe/TCP controller {} of host {} disconnected", _ctrl->cntlid, _ctrl->hostnqn);
    }
    if (_cid_conflicts > 0) {
        log::info("NVMe/TCP connection fd {}: {} commands answered with Command ID Conflict", _fd, _cid_conflicts);
    }
    if (_counted_live) _ctrl->live_qpairs.fetch_sub(1);
    _target.connection_closed(_fd);
    ::close(_fd);
}

bool tcp_qpair::fatal(std::uint16_t fes, std::uint32_t fei, std::string_view what) {
    log::warn("NVMe/TCP connection fd {}: {}: closing with C2HTermReq", _fd, what);
    // The header of the PDU in error follows (SPDK's host refuses a
    // TermReq without it).
    const auto offending = _rx.last_header().first(std::min<std::size_t>(_rx.last_header().size(), tcp::term_req_max_data));
    std::array<std::byte, tcp::term_req_max_plen> pdu{};
    tcp::term_req t{};
    t.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_term_req);
    t.ch.hlen = sizeof t;
    t.ch.plen = static_cast<std::uint32_t>(sizeof t + offending.size());
    t.fes = fes;
    tcp::set_term_req_fei(t, fei);
    std::memcpy(pdu.data(), &t, sizeof t);
    if (!offending.empty()) std::memcpy(pdu.data() + sizeof t, offending.data(), offending.size());
    _tx.queue_raw(std::span<const std::byte>(pdu.data(), t.ch.plen));
    return false;
}

// ---- receiving -------------------------------------------------------------------

bool tcp_qpair::on_header() {
    const auto type = static_cast<tcp::pdu_type>(_rx.type());
    const auto h = _rx.header();
    const bool ic = type == tcp::pdu_type::ic_req;
    if ((_state == state::awaiting_icreq) != ic) {
        return fatal(tcp::fes::pdu_sequence_error, 0, "PDU out of sequence");
    }
    _rx_data = rx_data::none;
    _rx_cmd = nullptr;
    switch (type) {
        case tcp::pdu_type::ic_req: return on_icreq(load<tcp::ic_req>(h));
        case tcp::pdu_type::capsule_cmd: return on_capsule(load<tcp::capsule_cmd>(h));
        case tcp::pdu_type::h2c_data: return on_h2c_data(load<tcp::h2c_data>(h));
        case tcp::pdu_type::h2c_term_req:
            log::info("NVMe/TCP connection fd {}: host sent H2CTermReq", _fd);
            return false;
        default: return fatal(tcp::fes::invalid_header_field, 0, "unexpected PDU type");
    }
}

bool tcp_qpair::on_data() {
    command* c = _rx_cmd;
    const rx_data what = _rx_data;
    _rx_data = rx_data::none;
    _rx_cmd = nullptr;
    if (!c) return true;  // nothing waited for it
    if (what == rx_data::capsule) {
        c->received = _rx.data_length();
        ++_running;
        execute(c).ignore();
        return true;
    }
    c->received += _rx.data_length();
    if (c->received == c->length && c->data_ready) {
        auto p = std::move(*c->data_ready);
        c->data_ready.reset();
        p.set_value(true);
    }
    return true;
}

bool tcp_qpair::on_icreq(const tcp::ic_req& req) {
    if (req.pfv != tcp::pfv_1_0) {
        return fatal(tcp::fes::unsupported_parameter, offsetof(tcp::ic_req, pfv), "unsupported PFV");
    }
    if (req.hpda > tcp::max_pda) {  // (hpda + 1) * 4 must stay within 128 bytes
        return fatal(tcp::fes::unsupported_parameter, offsetof(tcp::ic_req, hpda), "HPDA above 31");
    }
    _hdgst = (req.dgst & tcp::dgst::header) != 0;
    _ddgst = (req.dgst & tcp::dgst::data) != 0;
    _hpda = req.hpda;
    tcp::ic_resp resp{};
    resp.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_resp);
    resp.ch.hlen = sizeof resp;
    resp.ch.plen = sizeof resp;
    resp.pfv = tcp::pfv_1_0;
    resp.cpda = 0;
    resp.dgst = req.dgst & (tcp::dgst::header | tcp::dgst::data);
    resp.maxh2cdata = _target.limits().maxh2cdata;
    _state = state::awaiting_connect;
    if (!_tx.queue_raw(std::as_bytes(std::span(&resp, 1)))) return false;
    // From here every PDU is framed with the negotiated digests.
    const std::uint32_t max_plen =
        std::max<std::uint32_t>(_target.limits().maxh2cdata, _target.limits().in_capsule_bytes) + 256;
    _rx.configure(_hdgst, _ddgst, max_plen, 0);
    _tx.configure(_hdgst, _ddgst, _hpda);
    return true;
}

bool tcp_qpair::on_capsule(const tcp::capsule_cmd& cap) {
    const sqe& cmd = cap.ccsqe;
    const std::uint32_t data_bytes = _rx.data_length();
    // A CID still taken: the host gave up on that command.
    const std::uint32_t taken = cmd.cid | cid_in_use;
    if (auto it = std::find(_slot_cid.begin(), _slot_cid.end(), taken); it != _slot_cid.end()) {
        command* old = &_commands[static_cast<std::size_t>(it - _slot_cid.begin())];
        auto held = std::find(_held_aers.begin(), _held_aers.end(), old);
        if (held != _held_aers.end()) {
            // An Asynchronous Event Request the host no longer waits for
            // (SPDK's host reuses their CIDs): dropped, never answered.
            log::debug("NVMe/TCP connection fd {}: CID {} of a held Asynchronous Event Request reused: dropped it",
                       _fd, cmd.cid);
            _held_aers.erase(held);
            release_slot(old);
        } else {
            // Still executing: the new command is refused, the old one
            // answers when it is done; the connection stays.
            if (_cid_conflicts++ == 0) {
                log::warn("NVMe/TCP connection fd {}: CID {} reused while its command (opcode {:#x}) still runs: "
                          "answered Command ID Conflict",
                          _fd, cmd.cid, old->cmd.opcode);
            }
            if (data_bytes > 0) _rx.discard_data();
            answer_now(cmd, make_status(sct::generic, sc::command_id_conflict, true));
            return true;
        }
    }
    if (_free_slots.empty()) {
        return fatal(tcp::fes::data_transfer_limit_exceeded, 0, "more commands than the queue holds");
    }
    const std::uint16_t slot = _free_slots.back();
    _free_slots.pop_back();
    _slot_cid[slot] = taken;
    command* c = &_commands[slot];
    c->busy = true;
    c->cmd = cmd;
    c->received = 0;
    c->in_capsule = data_bytes > 0;
    c->length = cmd.dptr.sgl.length;
    if (data_bytes == 0) {
        ++_running;
        execute(c).ignore();
        return true;
    }
    if (data_bytes > _target.limits().in_capsule_bytes || data_bytes > c->length) {
        release_slot(c);
        return fatal(tcp::fes::data_transfer_limit_exceeded, 0, "in-capsule data too large");
    }
    auto buf = engine::current()->dma().allocate(data_bytes);
    if (!buf) {
        release_slot(c);
        return fatal(tcp::fes::data_transfer_limit_exceeded, 0, "no DMA memory for in-capsule data");
    }
    c->data = std::move(*buf);
    _rx.deliver_to(c->data.data());
    _rx_data = rx_data::capsule;
    _rx_cmd = c;
    return true;
}

void tcp_qpair::release_slot(command* c) noexcept {
    const auto slot = static_cast<std::uint16_t>(c - _commands.data());
    c->busy = false;
    c->data.reset();
    _slot_cid[slot] = 0;
    _free_slots.push_back(slot);
}

bool tcp_qpair::on_h2c_data(const tcp::h2c_data& h) {
    if (h.ttag >= _commands.size() || !_commands[h.ttag].busy || !_commands[h.ttag].data_ready ||
        _commands[h.ttag].cmd.cid != h.cccid) {
        return fatal(tcp::fes::invalid_header_field, offsetof(tcp::h2c_data, ttag), "H2CData for no R2T");
    }
    command* c = &_commands[h.ttag];
    if (tcp::check_data_length(_rx.common(), h.datal) != tcp::pdu_check::ok || h.datao != c->received ||
        h.datal > c->length - c->received || h.datal > _target.limits().maxh2cdata) {
        return fatal(tcp::fes::data_transfer_out_of_range, offsetof(tcp::h2c_data, datao), "H2CData outside the R2T");
    }
    _rx.deliver_to(c->data.data() + h.datao);
    _rx_data = rx_data::h2c;
    _rx_cmd = c;
    return true;
}

// ---- sending ------------------------------------------------------------------

std::uint16_t tcp_qpair::next_sqhd() noexcept {
    _sqhd = static_cast<std::uint16_t>((_sqhd + 1) % (std::uint32_t{_sqsize} + 1));
    return _sqhd;
}

void tcp_qpair::pdu_sent(std::uint32_t token, bool) noexcept {
    release_slot(&_commands[token - 1]);
}

bool tcp_qpair::queue_response(command* c, const completion& r) {
    const std::uint32_t token = static_cast<std::uint32_t>(c - _commands.data()) + 1;
    // All or nothing: a C2HData queued without its CapsuleResp would leave
    // the slot's buffer in the queue after the slot is freed.
    if (!_tx.room_for(r.data.empty() ? 1 : 2, r.data.empty() ? 0 : 1)) return false;
    if (!r.data.empty()) {
        tcp::c2h_data h{};
        h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_data);
        h.ch.flags = tcp::pdu_flags::last_pdu;
        h.ch.hlen = sizeof h;
        h.cccid = c->cmd.cid;
        h.datao = 0;
        h.datal = static_cast<std::uint32_t>(r.data.size());
        // No CapsuleResp when the host disabled SQ flow control and the
        // command succeeded with nothing else to say.
        const bool success_in_data = (_sq_flow_disabled || _target.limits().c2h_success_always) && _qid != 0 &&
                                     r.status == 0 && r.dw0 == 0 && r.dw1 == 0;
        if (success_in_data) h.ch.flags |= tcp::pdu_flags::success;
        const io_vec v{const_cast<std::byte*>(r.data.data()), h.datal, -1};
        if (!_tx.queue(std::as_bytes(std::span(&h, 1)), io_vecs(&v, 1), 0, h.datal, success_in_data ? token : 0)) {
            return false;
        }
        if (success_in_data) return true;
    }
    tcp::capsule_resp resp{};
    resp.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp);
    resp.ch.hlen = sizeof resp;
    resp.rccqe.dw0 = r.dw0;
    resp.rccqe.dw1 = r.dw1;
    resp.rccqe.sqhd = next_sqhd();
    resp.rccqe.sqid = _qid;
    resp.rccqe.cid = c->cmd.cid;
    resp.rccqe.status = r.status;
    return _tx.queue(std::as_bytes(std::span(&resp, 1)), {}, 0, 0, token);
}

void tcp_qpair::answer_now(const sqe& cmd, std::uint16_t status) {
    tcp::capsule_resp resp{};
    resp.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp);
    resp.ch.hlen = sizeof resp;
    resp.rccqe.sqhd = next_sqhd();
    resp.rccqe.sqid = _qid;
    resp.rccqe.cid = cmd.cid;
    resp.rccqe.status = status;
    if (!_tx.queue(std::as_bytes(std::span(&resp, 1)))) shut_down_connection();
}

bool tcp_qpair::queue_r2t(command* c, std::uint16_t ttag) {
    tcp::r2t h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::r2t);
    h.ch.hlen = sizeof h;
    h.cccid = c->cmd.cid;
    h.ttag = ttag;
    h.r2to = c->received;
    h.r2tl = c->length - c->received;
    return _tx.queue(std::as_bytes(std::span(&h, 1)));
}

future<bool> tcp_qpair::fetch_data(command* c) {
    if (c->received == c->length) co_return true;
    if (c->in_capsule || _state == state::closing) co_return false;
    auto buf = engine::current()->dma().allocate(c->length);
    if (!buf) co_return false;
    c->data = std::move(*buf);
    c->data_ready.emplace();
    auto arrived = c->data_ready->get_future();
    const auto ttag = static_cast<std::uint16_t>(c - _commands.data());
    if (!queue_r2t(c, ttag)) {
        c->data_ready.reset();
        shut_down_connection();
        co_return false;
    }
    co_return co_await std::move(arrived);
}

}  // namespace ioe::nvme
