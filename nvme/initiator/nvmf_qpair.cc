// The host side of an NVMe/TCP queue pair: connecting, ICReq/ICResp, the
// CID table, capsules and H2CData queued on the send queue, the receive loop
// over the connection's PDU buffer (see nvmf_qpair.hh). Mirrors
// nvme/target/tcp_qpair.cc.
#include "nvme/initiator/nvmf_qpair.hh"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <fmt/format.h>
#include <stdexcept>
#include <system_error>

#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/transport/pdu_socket.hh"
#include "runtime/crc32c.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/socket_io.hh"

namespace ioe::nvme {

namespace {

template <typename T>
T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

std::string os_message(int err) { return std::generic_category().message(err); }

constexpr std::uint16_t slot_mask = nvmf_qpair::max_depth - 1;
static_assert((nvmf_qpair::max_depth & slot_mask) == 0, "max_depth must be a power of two");

// Shuts the socket down when it fires: bounds a wait on it (connect,
// handshake) without leaving an operation that outlives its frame.
struct shutdown_guard {
    timer t;
    explicit shutdown_guard(int fd, std::chrono::milliseconds after) : t([fd] { ::shutdown(fd, SHUT_RDWR); }) {
        t.arm(after);
    }
    bool fired() const noexcept { return !t.armed(); }
};

}  // namespace

nvmf_qpair::nvmf_qpair(int fd, std::uint16_t qid, unsigned depth, std::chrono::milliseconds io_timeout)
    : _fd(fd),
      _io(local_reactor()->io()),
      _qid(qid),
      _depth(std::clamp<unsigned>(depth, 1, max_depth)),
      _timeout(io_timeout),
      _slots(max_depth),
      _rx(tcp::pdu_receiver::default_buffer_bytes),
      _tx(_io, fd, this),
      _sweeper([this] { sweep(); }) {
    for (std::size_t i = 0; i < _slots.size(); ++i) _slots[i].cid = static_cast<std::uint16_t>(i);
}

nvmf_qpair::~nvmf_qpair() {
    if (_receiver && !_receiver->available()) {
        log::error("nvmf qpair {} destroyed before close(): the receive loop is still running", _qid);
    }
    if (_fd >= 0) ::close(_fd);
}

future<std::unique_ptr<nvmf_qpair>> nvmf_qpair::open(std::string host, std::uint16_t port, std::uint16_t qid,
                                                     unsigned depth, std::chrono::milliseconds io_timeout,
                                                     tcp_digests want) {
    // Control path: getaddrinfo blocks briefly (numeric addresses do not).
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        throw std::runtime_error(fmt::format("resolve {}: {}", host, ::gai_strerror(rc)));
    }
    sockaddr_storage addr{};
    socklen_t addr_len = static_cast<socklen_t>(res->ai_addrlen);
    std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
    const int family = res->ai_family;
    ::freeaddrinfo(res);

    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(fmt::format("socket: {}", os_message(errno)));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto bound = std::min<std::chrono::milliseconds>(io_timeout, std::chrono::milliseconds(10000));
    {
        shutdown_guard guard(fd, bound);
        io_result r = co_await local_reactor()->io().connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len);
        if (!r) {
            ::close(fd);
            throw std::runtime_error(fmt::format("TCP connect to {}:{}: {}", host, port,
                                                 guard.fired() ? "timed out" : os_message(r.error().value())));
        }
    }
    co_return co_await adopt(fd, qid, depth, io_timeout, want);
}

future<std::unique_ptr<nvmf_qpair>> nvmf_qpair::adopt(int fd, std::uint16_t qid, unsigned depth,
                                                      std::chrono::milliseconds io_timeout, tcp_digests want) {
    std::unique_ptr<nvmf_qpair> qp(new nvmf_qpair(fd, qid, depth, io_timeout));  // owns fd from here
    co_await qp->handshake(want);
    qp->_receiver.emplace(qp->receive_loop());
    qp->_sweeper.arm_periodic(std::chrono::milliseconds(std::clamp<long>(io_timeout.count() / 4, 10, 1000)));
    co_return qp;
}

future<> nvmf_qpair::handshake(tcp_digests want) {
    tcp::ic_req req{};
    req.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_req);
    req.ch.hlen = sizeof req;
    req.ch.plen = sizeof req;
    req.pfv = tcp::pfv_1_0;
    req.hpda = 0;
    req.dgst = static_cast<std::uint8_t>((want.header ? tcp::dgst::header : 0) | (want.data ? tcp::dgst::data : 0));
    req.maxr2t = 0;  // one R2T per command outstanding
    shutdown_guard guard(_fd, std::min<std::chrono::milliseconds>(_timeout, std::chrono::milliseconds(10000)));
    if (!co_await ioe::send_all(_io, _fd, &req, sizeof req)) throw std::runtime_error("ICReq: send failed");
    std::array<std::byte, sizeof(tcp::ic_resp)> buf{};
    if (!co_await ioe::recv_exact(_io, _fd, buf.data(), buf.size())) {
        throw std::runtime_error(guard.fired() ? "ICResp: timed out" : "ICResp: the target closed the connection");
    }
    const auto resp = load<tcp::ic_resp>(buf.data());
    if (resp.ch.pdu_type != static_cast<std::uint8_t>(tcp::pdu_type::ic_resp) || resp.ch.hlen != sizeof resp ||
        resp.ch.plen != sizeof resp) {
        throw std::runtime_error(fmt::format("ICResp: unexpected PDU type {:#x}", resp.ch.pdu_type));
    }
    if (resp.pfv != tcp::pfv_1_0) throw std::runtime_error(fmt::format("ICResp: unsupported PFV {}", resp.pfv));
    if (resp.dgst & ~req.dgst) throw std::runtime_error("ICResp: the target enabled digests we did not ask for");
    if (resp.dgst != req.dgst) {
        throw std::runtime_error(fmt::format("ICResp: the target refused the digests asked for (asked {:#x}, got {:#x})",
                                             req.dgst, resp.dgst));
    }
    _hdgst = resp.dgst & tcp::dgst::header;
    _ddgst = resp.dgst & tcp::dgst::data;
    if (resp.maxh2cdata < tcp::min_maxh2cdata || resp.maxh2cdata % 4 != 0) {
        throw std::runtime_error(fmt::format("ICResp: invalid MAXH2CDATA {}", resp.maxh2cdata));
    }
    if (resp.cpda != 0) throw std::runtime_error(fmt::format("ICResp: CPDA {} is not supported", resp.cpda));
    _maxh2cdata = resp.maxh2cdata;
    // From here every PDU is framed with the negotiated digests; we asked
    // for HPDA 0 and accept CPDA 0 only.
    _rx.configure(_hdgst, _ddgst, std::numeric_limits<std::uint32_t>::max(), 0);
    _tx.configure(_hdgst, _ddgst, 0);
}

// ---- sending -------------------------------------------------------------------

future<bool> nvmf_qpair::queue_pdu(std::span<const std::byte> header, const data_view* data, std::uint32_t offset,
                                   std::uint32_t len, std::uint32_t token) {
    for (;;) {
        if (_dead || _tx.failed()) co_return false;
        const bool queued = data && len > 0 ? _tx.queue(header, data->iov, data->offset + offset, len, token)
                                            : _tx.queue(header, {}, 0, 0, token);
        if (queued) co_return true;
        if (_tx.idle()) {
            log::error("nvmf qpair {}: a PDU of {} bytes in more pieces than a send batch holds: closing", _qid, len);
            co_return false;
        }
        co_await _tx.space();
    }
}

void nvmf_qpair::pdu_sent(std::uint32_t token, bool) noexcept { transfer_done(_slots[token - 1]); }

void nvmf_qpair::transfer_done(slot& s) noexcept {
    if (s.transfers > 0) --s.transfers;
    if (s.transfers == 0 && s.answered) {
        s.answered = false;
        finish(s, host_completion{host_completion::kind::done, s.answer});
    }
}

// ---- the CID table ---------------------------------------------------------------

nvmf_qpair::slot* nvmf_qpair::find(std::uint16_t cid) noexcept {
    slot& s = _slots[cid & slot_mask];
    return s.busy && s.cid == cid ? &s : nullptr;
}

void nvmf_qpair::release(slot& s) noexcept {
    if (s.abandoned && _abandoned_count) _abandoned_count->fetch_sub(1, std::memory_order_relaxed);
    s.busy = false;
    s.abandoned = false;
    s.answered = false;
    s.transfers = 0;
    s.in = {};
    s.out = {};
    --_busy;
    if (!_slot_waiters.empty()) {
        promise<bool> p = std::move(_slot_waiters.front().ready);
        _slot_waiters.pop_front();
        p.set_value(true);
    }
}

void nvmf_qpair::finish(slot& s, host_completion c) {
    if (s.transfers > 0 && c.how == host_completion::kind::done) {
        // Its buffers are still being sent or received: it completes once
        // that is over (transfer_done), so they are never touched after.
        s.answered = true;
        s.answer = c.cq;
        return;
    }
    if (s.abandoned || !s.done) {  // timed out earlier: its waiter has gone
        release(s);
        return;
    }
    promise<host_completion> p = std::move(*s.done);
    s.done.reset();
    release(s);
    p.set_value(c);
}

void nvmf_qpair::fail_all() noexcept {
    for (auto& s : _slots) {
        if (s.busy) finish(s, host_completion{host_completion::kind::connection_lost, {}});
    }
    while (!_slot_waiters.empty()) {
        promise<bool> p = std::move(_slot_waiters.front().ready);
        _slot_waiters.pop_front();
        p.set_value(true);  // execute() sees _dead
    }
}

void nvmf_qpair::sweep() noexcept {
    const auto now = steady_clock::now();
    for (auto& s : _slots) {
        if (!s.busy || s.abandoned || !s.done || now < s.deadline) continue;
        if (s.transfers > 0) {
            // Its buffers are on the wire: completing it now would hand them
            // back while we still read or write them. End the connection:
            // the transfer fails, then the command completes as lost.
            log::warn("nvmf qpair {}: command {} timed out after {} ms with its data still in transfer: closing",
                      _qid, s.cid, _timeout.count());
            abort();
            return;
        }
        log::warn("nvmf qpair {}: command {} timed out after {} ms", _qid, s.cid, _timeout.count());
        s.abandoned = true;  // the slot stays taken until the target answers
        if (_abandoned_count) _abandoned_count->fetch_add(1, std::memory_order_relaxed);
        s.in = {};
        s.out = {};
        promise<host_completion> p = std::move(*s.done);
        s.done.reset();
        p.set_value(host_completion{host_completion::kind::timed_out, {}});
    }
    // Commands waiting for a slot (all taken, e.g. by timed-out commands
    // the target never answered) time out too.
    while (!_slot_waiters.empty() && now >= _slot_waiters.front().deadline) {
        promise<bool> p = std::move(_slot_waiters.front().ready);
        _slot_waiters.pop_front();
        p.set_value(false);
    }
}

future<host_completion> nvmf_qpair::execute(sqe cmd, data_view out, data_view in, bool in_capsule) {
    const auto deadline = steady_clock::now() + _timeout;
    while (!_dead && _busy >= _depth) {
        _slot_waiters.push_back(slot_waiter{promise<bool>{}, deadline});
        if (!co_await _slot_waiters.back().ready.get_future()) {
            co_return host_completion{host_completion::kind::timed_out, {}};
        }
    }
    if (_dead) co_return host_completion{host_completion::kind::connection_lost, {}};
    // Next fit: a CID freed just now is not the next one handed out.
    unsigned idx = _next_slot;
    while (_slots[idx].busy) idx = (idx + 1) % _depth;
    _next_slot = (idx + 1) % _depth;
    slot& s = _slots[idx];
    s.busy = true;
    ++_busy;
    s.generation = static_cast<std::uint16_t>(s.generation + 1);
    s.cid = static_cast<std::uint16_t>(((s.generation & 0x1ffu) << 7) | idx);
    s.out = out;
    s.in = in;
    s.deadline = deadline;
    ++s.transfers;  // until the capsule (and in-capsule data) is sent
    s.done.emplace();
    future<host_completion> f = s.done->get_future();

    cmd.cid = s.cid;
    cmd.set_psdt(psdt::sgl_mptr_contiguous);
    const bool with_data = in_capsule && out.len > 0;
    if (out.len > 0 || in.len > 0) {
        cmd.dptr.sgl = sgl_descriptor{};
        cmd.dptr.sgl.length = out.len > 0 ? out.len : in.len;
        cmd.dptr.sgl.identifier = with_data
                                      ? sgl_identifier(sgl_type::data_block, sgl_subtype::offset)
                                      : sgl_identifier(sgl_type::transport_data_block, sgl_subtype::transport_specific);
    }
    tcp::capsule_cmd cap{};
    cap.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_cmd);
    cap.ch.hlen = sizeof cap;  // flags, PDO and PLEN: the send queue frames it
    cap.ccsqe = cmd;
    const std::uint32_t token = static_cast<std::uint32_t>(idx) + 1;
    s.transfers = with_data ? 1 : 0;  // until the capsule's data is sent (pdu_sent)
    const bool queued = co_await queue_pdu(std::as_bytes(std::span(&cap, 1)), with_data ? &out : nullptr, 0,
                                           with_data ? out.len : 0, with_data ? token : 0);
    if (!queued) {
        // (the slot may have been completed and reused meanwhile: the count is per slot)
        if (with_data && _slots[idx].busy && _slots[idx].cid == cmd.cid) transfer_done(_slots[idx]);
        if (!_dead) {
            _dead = true;
            ::shutdown(_fd, SHUT_RDWR);  // the receive loop ends and fails every command
        }
    }
    co_return co_await std::move(f);
}

// ---- receiving -------------------------------------------------------------------

future<bool> nvmf_qpair::answer_r2t(tcp::r2t r) {
    slot* s = find(r.cccid);
    // (answered: its CapsuleResp came already; no data may be asked for now)
    if (!s || s->abandoned || s->answered || r.r2tl == 0 || std::uint64_t{r.r2to} + r.r2tl > s->out.len) {
        log::warn("nvmf qpair {}: R2T for command {} ({}+{}) that has no such data: closing", _qid, r.cccid, r.r2to,
                  r.r2tl);
        co_return false;
    }
    const data_view out = s->out;
    const std::uint32_t token = static_cast<std::uint32_t>(s - _slots.data()) + 1;
    const std::uint32_t end = r.r2to + r.r2tl;
    for (std::uint32_t off = r.r2to; off < end;) {
        const std::uint32_t n = std::min(_maxh2cdata, end - off);
        tcp::h2c_data h{};
        h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::h2c_data);
        h.ch.flags = off + n == end ? tcp::pdu_flags::last_pdu : 0;
        h.ch.hlen = sizeof h;
        h.cccid = r.cccid;
        h.ttag = r.ttag;
        h.datao = off;
        h.datal = n;
        ++s->transfers;  // until this PDU is sent (pdu_sent)
        if (!co_await queue_pdu(std::as_bytes(std::span(&h, 1)), &out, off, n, token)) {
            transfer_done(*s);
            co_return false;
        }
        off += n;
    }
    co_return true;
}

bool nvmf_qpair::on_header() {
    const auto& ch = _rx.common();
    const auto hdr = _rx.header();
    const auto type = static_cast<tcp::pdu_type>(ch.pdu_type);
    _rx_slot = nullptr;
    switch (type) {
        case tcp::pdu_type::capsule_resp: {
            const auto resp = load<tcp::capsule_resp>(hdr.data());
            if (slot* s = find(resp.rccqe.cid)) {
                finish(*s, host_completion{host_completion::kind::done, resp.rccqe});
            } else {
                log::warn("nvmf qpair {}: CapsuleResp for unknown command {}", _qid, resp.rccqe.cid);
            }
            return true;
        }
        case tcp::pdu_type::c2h_data: {
            const auto h = load<tcp::c2h_data>(hdr.data());
            if (tcp::check_data_length(ch, h.datal) != tcp::pdu_check::ok) {
                log::warn("nvmf qpair {}: C2HData with inconsistent PDO/PLEN/DATAL: closing", _qid);
                return false;
            }
            slot* s = find(h.cccid);
            _rx_cid = h.cccid;
            _rx_success = (ch.flags & tcp::pdu_flags::success) != 0;
            if (s && !s->abandoned && std::uint64_t{h.datao} + h.datal <= s->in.len) {
                ++s->transfers;  // until the data has landed (on_data)
                _rx_slot = s;
                _rx.deliver_to(s->in.iov, s->in.offset + h.datao);
            } else {
                if (!s || !s->abandoned) log::warn("nvmf qpair {}: C2HData for unknown command {}", _qid, h.cccid);
                _rx.discard_data();
            }
            return true;
        }
        case tcp::pdu_type::c2h_term_req: {
            const auto t = load<tcp::term_req>(hdr.data());
            log::warn("nvmf qpair {}: the target ended the connection (C2HTermReq FES {:#x} FEI {})", _qid, t.fes,
                      tcp::term_req_fei(t));
            return false;
        }
        case tcp::pdu_type::r2t: return true;  // answered by the receive loop (answer_r2t)
        default:
            log::warn("nvmf qpair {}: unexpected PDU type {:#x}: closing", _qid, ch.pdu_type);
            return false;
    }
}

void nvmf_qpair::on_data() {
    slot* s = _rx_slot;
    _rx_slot = nullptr;
    if (s) transfer_done(*s);  // an answer that came first completes it now
    if (_rx_success) {
        _rx_success = false;
        if (slot* d = find(_rx_cid)) {
            cqe c{};
            c.cid = _rx_cid;
            c.sqid = _qid;
            finish(*d, host_completion{host_completion::kind::done, c});
        }
    }
}

future<> nvmf_qpair::receive_loop() {
    bool ok = true;
    while (ok) {
        for (;;) {
            const auto ev = _rx.next();
            if (ev == tcp::pdu_receiver::event::need_more) break;
            if (ev == tcp::pdu_receiver::event::error) {
                const auto& ch = _rx.common();
                log::warn("nvmf qpair {}: bad PDU (type {:#x}, hlen {}, plen {}): {}: closing", _qid, ch.pdu_type,
                          ch.hlen, ch.plen, _rx.error().what);
                ok = false;
                break;
            }
            if (ev == tcp::pdu_receiver::event::data) {
                on_data();
                continue;
            }
            ok = on_header();
            if (ok && _rx.type() == static_cast<std::uint8_t>(tcp::pdu_type::r2t)) {
                ok = co_await answer_r2t(load<tcp::r2t>(_rx.header().data()));
            }
            if (!ok) break;
        }
        if (!ok || _dead) break;
        if (!co_await tcp::receive_into(_io, _fd, _rx)) break;
    }
    if (_rx_slot) {  // a C2HData cut short: its buffers are not written any more
        slot* s = _rx_slot;
        _rx_slot = nullptr;
        if (s->transfers > 0) --s->transfers;
    }
    const bool lost = !_closed;
    if (lost) log::warn("nvmf qpair {}: connection lost", _qid);
    _dead = true;
    ::shutdown(_fd, SHUT_RDWR);
    co_await _tx.drained();  // sends of a shut socket fail at once; then no buffer is in use
    fail_all();
    if (lost && _on_lost) {
        auto fn = std::move(_on_lost);
        _on_lost = nullptr;
        fn();
    }
}

void nvmf_qpair::abort() noexcept {
    if (_dead) return;
    _dead = true;
    ::shutdown(_fd, SHUT_RDWR);  // the receive loop ends: commands fail, on_lost runs
}

future<> nvmf_qpair::close() {
    if (_closed) co_return;
    _closed = true;
    _dead = true;
    _sweeper.cancel();
    ::shutdown(_fd, SHUT_RDWR);
    if (_receiver) co_await std::move(*_receiver);
    _receiver.reset();
    co_await _tx.drained();
    fail_all();
    ::close(_fd);
    _fd = -1;
}

}  // namespace ioe::nvme
