// The NVMe/TCP target queue pair's transport: PDU framing, digests, R2T,
// C2HData and responses (see tcp_qpair.hh; commands are in
// target_commands.cc).
#include "nvme/target/tcp_qpair.hh"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "nvme/spec/nvme_tcp_check.hh"
#include "runtime/crc32c.hh"
#include "runtime/engine.hh"
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

std::uint32_t digest_of(std::span<const std::byte> bytes) { return crc32c(bytes.data(), bytes.size()); }

// Reads up to this size leave as one send (C2HData header, data, CapsuleResp
// copied into a staging buffer): a copy of a few KiB costs far less than the
// two extra sends, TCP segments and wake-ups of the host it saves. Larger
// reads go from the command's buffer without a copy, in three sends of which
// the first two carry MSG_MORE.
constexpr std::size_t coalesced_read_max = 16384;
// The largest framed header: PDU header, header digest and PDO padding
// (PDO is at most 255).
constexpr std::size_t max_framed_header = 256;

struct framing {
    bool hdgst = false;
    bool ddgst = false;
    std::uint8_t hpda = 0;
};

// Writes `header` (ch filled but for flags/pdo/plen, which this sets from
// the negotiated digests and HPDA), its digest and the padding up to PDO to
// `out` (max_framed_header bytes). Returns the bytes written; *dd is the
// data digest size that follows `data_len` bytes of data.
std::size_t frame_header(const framing& f, std::span<const std::byte> header, std::size_t data_len, bool data_pdu,
                         std::byte* out, std::uint32_t* dd) {
    std::memcpy(out, header.data(), header.size());
    auto ch = load<tcp::pdu_common_header>(out);
    const std::uint32_t hd = f.hdgst ? 4 : 0;
    *dd = (f.ddgst && data_pdu && data_len > 0) ? 4 : 0;
    std::uint32_t pdo = 0;
    std::uint32_t pad = 0;
    if (data_len > 0) {
        const std::uint32_t align = (std::uint32_t{f.hpda} + 1) * 4;
        pdo = (ch.hlen + hd + align - 1) / align * align;
        pad = pdo - ch.hlen - hd;
    }
    ch.flags = static_cast<std::uint8_t>(ch.flags | (hd ? tcp::pdu_flags::hdgstf : 0) |
                                         (*dd ? tcp::pdu_flags::ddgstf : 0));
    ch.pdo = static_cast<std::uint8_t>(pdo);
    ch.plen = static_cast<std::uint32_t>(ch.hlen + hd + pad + data_len + *dd);
    std::memcpy(out, &ch, sizeof ch);
    std::size_t n = ch.hlen;
    if (hd) {
        std::uint32_t d = digest_of(std::span<const std::byte>(out, ch.hlen));
        std::memcpy(out + n, &d, 4);
        n += 4;
    }
    std::memset(out + n, 0, pad);
    return n + pad;
}

// Sends all of [p, p + len) with MSG_MORE: more of the PDU follows, so the
// kernel holds a partial segment for it.
future<bool> send_more(uring& io, int fd, const std::byte* p, std::size_t len) {
    while (len > 0) {
        io_result r = co_await io.send(fd, p, len, MSG_NOSIGNAL | MSG_MORE);
        if (!r || r.value() == 0) co_return false;
        p += r.value();
        len -= r.value();
    }
    co_return true;
}

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
      _slot_cid(target.limits().max_queue_entries, 0) {
    for (std::size_t i = _commands.size(); i-- > 0;) _free_slots.push_back(static_cast<std::uint16_t>(i));
}

future<> tcp_qpair::run() {
    for (;;) {
        bool ok = false;
        try {
            ok = co_await recv_pdu();
        } catch (const std::exception& e) {
            log::warn("NVMe/TCP connection fd {}: {}", _fd, e.what());
        }
        if (!ok) break;
    }
    _state = state::closing;
    ::shutdown(_fd, SHUT_RDWR);
    // Wake commands waiting for host data that will never come.
    for (auto& c : _commands) {
        if (c.data_ready) c.data_ready->set_value(false);
        c.data_ready.reset();
    }
    if (_running > 0) {
        _drained.emplace();
        co_await _drained->get_future();
    }
    if (_ctrl && _qid != 0) _ctrl->remove_io_queue(_fd);
    if (_ctrl && _qid == 0) {
        _ctrl->tear_down();  // its I/O queues close too
        _target.remove_controller(_ctrl->cntlid);
        log::info("NVMe/TCP controller {} of host {} disconnected", _ctrl->cntlid, _ctrl->hostnqn);
    }
    _target.connection_closed(_fd);
    ::close(_fd);
}

future<bool> tcp_qpair::recv_exact(void* buf, std::size_t len) { return ioe::recv_exact(_io, _fd, buf, len); }

// PDO may put up to ~250 bytes of padding before the data: discarded through
// the scratch buffer, a piece at a time.
future<bool> tcp_qpair::skip_bytes(std::size_t n) { return discard(_io, _fd, _scratch, n); }

future<bool> tcp_qpair::fatal(std::uint16_t fes, std::uint32_t fei, const char* what) {
    log::warn("NVMe/TCP connection fd {}: {}: closing with C2HTermReq", _fd, what);
    tcp::term_req t{};
    t.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_term_req);
    t.ch.hlen = sizeof t;
    t.ch.plen = sizeof t;
    t.fes = fes;
    tcp::set_term_req_fei(t, fei);
    auto guard = co_await _send_lock.hold();
    co_await send_all(std::as_bytes(std::span(&t, 1)));
    co_return false;
}

future<bool> tcp_qpair::recv_pdu() {
    std::byte* h = _rx_header.data();
    if (!co_await recv_exact(h, sizeof(tcp::pdu_common_header))) co_return false;
    auto ch = load<tcp::pdu_common_header>(h);
    const std::uint32_t max_plen =
        std::max<std::uint32_t>(_target.limits().maxh2cdata, _target.limits().in_capsule_bytes) + 256;
    tcp::pdu_check chk = tcp::check_header(ch, _hdgst, _ddgst, max_plen);
    if (chk != tcp::pdu_check::ok) {
        co_return co_await fatal(tcp::fes::invalid_header_field, tcp::field_offset(chk),
                                 tcp::to_string(chk).data());
    }
    const auto type = static_cast<tcp::pdu_type>(ch.pdu_type);
    const bool ic = type == tcp::pdu_type::ic_req;
    if ((_state == state::awaiting_icreq) != ic) {
        co_return co_await fatal(tcp::fes::pdu_sequence_error, 0, "PDU out of sequence");
    }
    const std::uint32_t rest = tcp::remaining_header_bytes(ch);
    if (!co_await recv_exact(h + sizeof ch, rest)) co_return false;
    if (ch.flags & tcp::pdu_flags::hdgstf) {
        std::uint32_t want = load<std::uint32_t>(h + ch.hlen);
        if (digest_of(std::span(h, ch.hlen)) != want) {
            co_return co_await fatal(tcp::fes::header_digest_error, 0, "header digest mismatch");
        }
    }
    switch (type) {
        case tcp::pdu_type::ic_req: co_return co_await on_icreq(load<tcp::ic_req>(h));
        case tcp::pdu_type::capsule_cmd: co_return co_await on_capsule(load<tcp::capsule_cmd>(h));
        case tcp::pdu_type::h2c_data: co_return co_await on_h2c_data(load<tcp::h2c_data>(h));
        case tcp::pdu_type::h2c_term_req:
            log::info("NVMe/TCP connection fd {}: host sent H2CTermReq", _fd);
            co_return false;
        default: co_return co_await fatal(tcp::fes::invalid_header_field, 0, "unexpected PDU type");
    }
}

future<bool> tcp_qpair::on_icreq(const tcp::ic_req& req) {
    if (req.pfv != tcp::pfv_1_0) {
        co_return co_await fatal(tcp::fes::unsupported_parameter, offsetof(tcp::ic_req, pfv), "unsupported PFV");
    }
    if (req.hpda > tcp::max_pda) {  // (hpda + 1) * 4 must stay within 128 bytes
        co_return co_await fatal(tcp::fes::unsupported_parameter, offsetof(tcp::ic_req, hpda), "HPDA above 31");
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
    auto guard = co_await _send_lock.hold();
    co_return co_await send_all(std::as_bytes(std::span(&resp, 1)));
}

future<bool> tcp_qpair::on_capsule(const tcp::capsule_cmd& cap) {
    const sqe& cmd = cap.ccsqe;
    const std::uint32_t data_bytes =
        cap.ch.pdo ? cap.ch.plen - cap.ch.pdo - ((cap.ch.flags & tcp::pdu_flags::ddgstf) ? tcp::digest_bytes : 0) : 0;
    // The CID must not be in use already; then a free slot.
    const std::uint32_t taken = cmd.cid | cid_in_use;
    if (std::find(_slot_cid.begin(), _slot_cid.end(), taken) != _slot_cid.end()) {
        co_return co_await fatal(tcp::fes::invalid_header_field, 0, "command id already in use");
    }
    if (_free_slots.empty()) {
        co_return co_await fatal(tcp::fes::data_transfer_limit_exceeded, 0, "more commands than the queue holds");
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
    if (data_bytes > 0) {
        if (data_bytes > _target.limits().in_capsule_bytes || data_bytes > c->length) {
            release_slot(c);
            co_return co_await fatal(tcp::fes::data_transfer_limit_exceeded, 0, "in-capsule data too large");
        }
        const std::uint32_t pad = cap.ch.pdo - cap.ch.hlen - ((cap.ch.flags & tcp::pdu_flags::hdgstf) ? 4 : 0);
        if (!co_await skip_bytes(pad)) co_return false;
        auto buf = engine::current()->dma().allocate(data_bytes);
        if (!buf) {
            release_slot(c);
            co_return co_await fatal(tcp::fes::data_transfer_limit_exceeded, 0, "no DMA memory for in-capsule data");
        }
        c->data = std::move(*buf);
        if (!co_await recv_exact(c->data.data(), data_bytes)) co_return false;
        if (cap.ch.flags & tcp::pdu_flags::ddgstf) {
            std::uint32_t want = 0;
            if (!co_await recv_exact(&want, 4)) co_return false;
            if (digest_of(std::span(c->data.data(), data_bytes)) != want) {
                c->data.reset();
                release_slot(c);
                co_return co_await fatal(tcp::fes::header_digest_error, 0, "data digest mismatch");
            }
        }
        c->received = data_bytes;
    }
    ++_running;
    execute(c).ignore();
    co_return true;
}

void tcp_qpair::release_slot(command* c) noexcept {
    const auto slot = static_cast<std::uint16_t>(c - _commands.data());
    c->busy = false;
    c->responding = false;
    _slot_cid[slot] = 0;
    _free_slots.push_back(slot);
}

future<bool> tcp_qpair::on_h2c_data(const tcp::h2c_data& h) {
    if (h.ttag >= _commands.size() || !_commands[h.ttag].busy || !_commands[h.ttag].data_ready ||
        _commands[h.ttag].cmd.cid != h.cccid) {
        co_return co_await fatal(tcp::fes::invalid_header_field, offsetof(tcp::h2c_data, ttag), "H2CData for no R2T");
    }
    command* c = &_commands[h.ttag];
    if (tcp::check_data_length(h.ch, h.datal) != tcp::pdu_check::ok || h.datao != c->received ||
        h.datal > c->length - c->received || h.datal > _target.limits().maxh2cdata) {
        co_return co_await fatal(tcp::fes::data_transfer_out_of_range, offsetof(tcp::h2c_data, datao),
                                 "H2CData outside the R2T");
    }
    const std::uint32_t pad = h.ch.pdo - h.ch.hlen - ((h.ch.flags & tcp::pdu_flags::hdgstf) ? 4 : 0);
    if (!co_await skip_bytes(pad)) co_return false;
    std::byte* dst = c->data.data() + h.datao;
    if (!co_await recv_exact(dst, h.datal)) co_return false;
    if (h.ch.flags & tcp::pdu_flags::ddgstf) {
        std::uint32_t want = 0;
        if (!co_await recv_exact(&want, 4)) co_return false;
        if (digest_of(std::span(dst, h.datal)) != want) {
            co_return co_await fatal(tcp::fes::header_digest_error, 0, "data digest mismatch");
        }
    }
    c->received += h.datal;
    if (c->received == c->length) {
        auto p = std::move(*c->data_ready);
        c->data_ready.reset();
        p.set_value(true);
    }
    co_return true;
}

// ---- sending ------------------------------------------------------------------

future<bool> tcp_qpair::send_all(std::span<const std::byte> bytes) {
    return ioe::send_all(_io, _fd, bytes.data(), bytes.size());
}

// header: the PDU header with ch filled but for flags/pdo/plen, which this
// sets from the negotiated digests. Caller holds _send_lock. Header,
// digest and padding leave in one send; the data (if any) in the next, with
// MSG_MORE on the first so that they can share a segment.
future<bool> tcp_qpair::send_pdu(std::span<const std::byte> header, std::span<const std::byte> data, bool data_pdu) {
    static_assert(std::tuple_size_v<decltype(_tx_header)> >= max_framed_header);
    std::uint32_t dd = 0;
    const std::size_t n = frame_header(framing{_hdgst, _ddgst, _hpda}, header, data.size(), data_pdu,
                                       _tx_header.data(), &dd);
    if (data.empty()) co_return co_await send_all(std::span<const std::byte>(_tx_header.data(), n));
    if (!co_await send_more(_io, _fd, _tx_header.data(), n)) co_return false;
    if (!dd) co_return co_await send_all(data);
    if (!co_await send_more(_io, _fd, data.data(), data.size())) co_return false;
    std::uint32_t d = digest_of(data);
    std::memcpy(_scratch.data(), &d, 4);
    co_return co_await send_all(std::span<const std::byte>(_scratch.data(), 4));
}

std::uint16_t tcp_qpair::next_sqhd() noexcept {
    _sqhd = static_cast<std::uint16_t>((_sqhd + 1) % (std::uint32_t{_sqsize} + 1));
    return _sqhd;
}

future<bool> tcp_qpair::send_response(command* c, const completion& r) {
    auto guard = co_await _send_lock.hold();
    tcp::capsule_resp resp{};
    resp.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp);
    resp.ch.hlen = sizeof resp;
    resp.rccqe.dw0 = r.dw0;
    resp.rccqe.dw1 = r.dw1;
    resp.rccqe.sqhd = next_sqhd();
    resp.rccqe.sqid = _qid;
    resp.rccqe.cid = c->cmd.cid;
    resp.rccqe.status = r.status;
    const auto resp_bytes = std::as_bytes(std::span(&resp, 1));
    if (r.data.empty()) co_return co_await send_pdu(resp_bytes, {}, false);

    tcp::c2h_data h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_data);
    h.ch.flags = tcp::pdu_flags::last_pdu;
    h.ch.hlen = sizeof h;
    h.cccid = c->cmd.cid;
    h.datao = 0;
    h.datal = static_cast<std::uint32_t>(r.data.size());
    const auto h_bytes = std::as_bytes(std::span(&h, 1));
    if (r.data.size() <= coalesced_read_max) {
        // One send: [C2HData header | data | data digest | CapsuleResp].
        const framing f{_hdgst, _ddgst, _hpda};
        auto staging = engine::current()->dma().allocate(2 * max_framed_header + r.data.size() + 4);
        if (staging) {
            std::byte* out = staging->data();
            std::uint32_t dd = 0, unused = 0;
            std::size_t n = frame_header(f, h_bytes, r.data.size(), true, out, &dd);
            std::memcpy(out + n, r.data.data(), r.data.size());
            n += r.data.size();
            if (dd) {
                const std::uint32_t d = digest_of(r.data);
                std::memcpy(out + n, &d, 4);
                n += 4;
            }
            n += frame_header(f, resp_bytes, 0, false, out + n, &unused);
            co_return co_await send_all(std::span<const std::byte>(out, n));
        }
        // No staging memory now: the sends below still work.
    }
    // Zero copy: header, data (and digest) with MSG_MORE, as the response
    // follows at once; then the response, which pushes them all out.
    const framing f{_hdgst, _ddgst, _hpda};
    std::uint32_t dd = 0, unused = 0;
    std::size_t n = frame_header(f, h_bytes, r.data.size(), true, _tx_header.data(), &dd);
    if (!co_await send_more(_io, _fd, _tx_header.data(), n)) co_return false;
    if (!co_await send_more(_io, _fd, r.data.data(), r.data.size())) co_return false;
    if (dd) {
        const std::uint32_t d = digest_of(r.data);
        std::memcpy(_scratch.data(), &d, 4);
        if (!co_await send_more(_io, _fd, _scratch.data(), 4)) co_return false;
    }
    n = frame_header(f, resp_bytes, 0, false, _tx_header.data(), &unused);
    co_return co_await send_all(std::span<const std::byte>(_tx_header.data(), n));
}

future<bool> tcp_qpair::send_r2t(command* c, std::uint16_t ttag) {
    auto guard = co_await _send_lock.hold();
    tcp::r2t h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::r2t);
    h.ch.hlen = sizeof h;
    h.cccid = c->cmd.cid;
    h.ttag = ttag;
    h.r2to = c->received;
    h.r2tl = c->length - c->received;
    co_return co_await send_pdu(std::as_bytes(std::span(&h, 1)), {}, false);
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
    if (!co_await send_r2t(c, ttag)) {
        c->data_ready.reset();
        co_return false;
    }
    co_return co_await std::move(arrived);
}

}  // namespace ioe::nvme
