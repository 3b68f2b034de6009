// The NVMe/TCP send queue and its batched vectored send (see pdu_sender.hh).
#include "nvme/transport/pdu_sender.hh"

#include <climits>
#include <cstring>

#include "runtime/crc32c.hh"

namespace ioe::nvme::tcp {

namespace {

// Walks the pieces of [offset, offset + len) of `iov`.
template <typename F>
void for_each_piece(io_vecs iov, std::uint64_t offset, std::uint32_t len, F f) {
    for (const io_vec& e : iov) {
        if (len == 0) break;
        if (offset >= e.len) {
            offset -= e.len;
            continue;
        }
        const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(e.len - offset, len));
        f(e.data + offset, n);
        offset = 0;
        len -= n;
    }
}

}  // namespace

pdu_sender::pdu_sender(uring& io, int fd, listener* l, unsigned max_iov, std::size_t arena_bytes)
    : _io(io), _fd(fd), _listener(l), _max_iov(std::max(max_iov, 8u)), _arena_bytes(std::max<std::size_t>(arena_bytes, 1024)) {
    init(_pending);
    init(_in_flight);
    _space.reserve(8);
    _drained.reserve(2);
}

pdu_sender::~pdu_sender() {
    if (reactor* r = local_reactor()) r->cancel_end_of_loop(this);
}

void pdu_sender::init(batch& b) {
    b.iov.reset(new iovec[_max_iov]);
    b.arena.reset(new std::byte[_arena_bytes]);
    b.tokens.reset(new std::uint32_t[_max_iov]);
}

void pdu_sender::configure(bool header_digest, bool data_digest, std::uint8_t peer_pda) noexcept {
    _hdgst = header_digest;
    _ddgst = data_digest;
    _peer_pda = peer_pda;
}

void pdu_sender::append(batch& b, std::byte* p, std::size_t len) noexcept {
    if (len == 0) return;
    b.bytes += len;
    if (b.iov_count > 0) {
        iovec& last = b.iov[b.iov_count - 1];
        if (static_cast<std::byte*>(last.iov_base) + last.iov_len == p) {
            last.iov_len += len;
            return;
        }
    }
    b.iov[b.iov_count++] = iovec{p, len};
}

bool pdu_sender::queue(std::span<const std::byte> header, io_vecs data, std::uint64_t offset, std::uint32_t data_len,
                       std::uint32_t token) {
    if (_failed) return false;
    batch& b = _pending;
    pdu_common_header ch;
    std::memcpy(&ch, header.data(), sizeof ch);
    const std::uint32_t hd = _hdgst ? digest_bytes : 0;
    const std::uint32_t dd = (_ddgst && data_len > 0) ? digest_bytes : 0;
    std::uint32_t pdo = 0, pad = 0;
    if (data_len > 0) {
        const std::uint32_t align = (std::uint32_t{_peer_pda} + 1) * 4;
        pdo = (static_cast<std::uint32_t>(header.size()) + hd + align - 1) / align * align;
        pad = pdo - static_cast<std::uint32_t>(header.size()) - hd;
    }
    unsigned pieces = 0;
    for_each_piece(data, offset, data_len, [&](std::byte*, std::uint32_t) { ++pieces; });
    const std::size_t arena_need = header.size() + hd + pad + dd;
    if (b.iov_count + 2 + pieces > _max_iov || b.arena_used + arena_need > _arena_bytes ||
        b.token_count + 1 > _max_iov) {
        return false;
    }
    ch.flags = static_cast<std::uint8_t>(ch.flags | (hd ? pdu_flags::hdgstf : 0) | (dd ? pdu_flags::ddgstf : 0));
    ch.pdo = static_cast<std::uint8_t>(pdo);
    ch.plen = static_cast<std::uint32_t>(header.size() + hd + pad + data_len + dd);
    std::byte* out = b.arena.get() + b.arena_used;
    std::memcpy(out, header.data(), header.size());
    std::memcpy(out, &ch, sizeof ch);
    std::size_t n = header.size();
    if (hd) {
        const std::uint32_t d = crc32c(out, header.size());
        std::memcpy(out + n, &d, digest_bytes);
        n += digest_bytes;
    }
    std::memset(out + n, 0, pad);
    n += pad;
    append(b, out, n);
    b.arena_used += n;
    std::uint32_t crc = 0;
    bool first = true;
    for_each_piece(data, offset, data_len, [&](std::byte* p, std::uint32_t len) {
        append(b, p, len);
        if (dd) {
            crc = first ? crc32c(p, len) : crc32c_extend(crc, p, len);
            first = false;
        }
    });
    if (dd) {
        std::byte* d = b.arena.get() + b.arena_used;
        std::memcpy(d, &crc, digest_bytes);
        append(b, d, digest_bytes);
        b.arena_used += digest_bytes;
    }
    if (token != 0) b.tokens[b.token_count++] = token;
    ++_pdus;
    kick();
    return true;
}

bool pdu_sender::room_for(unsigned pdus, unsigned data_pieces) const noexcept {
    // Per PDU at most: header, digest, padding (PDO <= 255) and data digest.
    constexpr std::size_t framing_max = max_header_bytes + digest_bytes + 256 + digest_bytes;
    const batch& b = _pending;
    return !_failed && b.iov_count + 2 * pdus + data_pieces <= _max_iov &&
           b.arena_used + pdus * framing_max <= _arena_bytes && b.token_count + pdus <= _max_iov;
}

bool pdu_sender::queue_raw(std::span<const std::byte> bytes) {
    if (_failed) return false;
    batch& b = _pending;
    if (b.iov_count + 1 > _max_iov || b.arena_used + bytes.size() > _arena_bytes) return false;
    std::byte* out = b.arena.get() + b.arena_used;
    std::memcpy(out, bytes.data(), bytes.size());
    append(b, out, bytes.size());
    b.arena_used += bytes.size();
    ++_pdus;
    kick();
    return true;
}

void pdu_sender::kick() noexcept {
    if (!_sending) local_reactor()->at_end_of_loop(this);
}

void pdu_sender::run_end_of_loop() noexcept {
    if (_sending || _failed || _pending.iov_count == 0) return;
    std::swap(_pending, _in_flight);
    _sending = true;
    send_in_flight().ignore();
}

future<> pdu_sender::send_in_flight() {
    batch& b = _in_flight;
    iovec* iov = b.iov.get();
    unsigned left = b.iov_count;
    bool ok = true;
    const bool zero_copy = _zero_copy_min > 0 && b.bytes >= _zero_copy_min;
    while (left > 0) {
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = std::min<unsigned>(left, IOV_MAX);
        ++_sends;
        io_result r = zero_copy ? co_await _io.sendmsg_zc(_fd, &m, MSG_NOSIGNAL)
                                : co_await _io.sendmsg(_fd, &m, MSG_NOSIGNAL);
        if (!r || r.value() == 0) {
            ok = false;
            break;
        }
        std::size_t sent = r.value();
        while (left > 0 && sent >= iov->iov_len) {
            sent -= iov->iov_len;
            ++iov;
            --left;
        }
        if (left > 0 && sent > 0) {
            iov->iov_base = static_cast<std::byte*>(iov->iov_base) + sent;
            iov->iov_len -= sent;
        }
    }
    if (!ok) _failed = true;
    report(b, ok);
    _sending = false;
    if (_failed) {
        fail_pending();
    } else if (_pending.iov_count > 0) {
        local_reactor()->at_end_of_loop(this);
    }
    wake_waiters();
}

void pdu_sender::report(batch& b, bool sent) noexcept {
    const unsigned n = b.token_count;
    b.iov_count = 0;
    b.arena_used = 0;
    b.token_count = 0;
    b.bytes = 0;
    // The listener may queue more (into _pending): b is not touched below.
    for (unsigned i = 0; i < n; ++i) _listener->pdu_sent(b.tokens[i], sent);
}

void pdu_sender::fail_pending() noexcept {
    // Report from a copy of the count: the listener cannot queue (failed).
    report(_pending, false);
}

void pdu_sender::wake_waiters() noexcept {
    if (!_space.empty()) {
        std::vector<promise<>> w;
        w.swap(_space);
        for (auto& p : w) p.set_value();
    }
    if (!_sending && (_failed || _pending.iov_count == 0) && !_drained.empty()) {
        std::vector<promise<>> w;
        w.swap(_drained);
        for (auto& p : w) p.set_value();
    }
}

future<> pdu_sender::space() {
    // Failed, or nothing queued or in flight (a PDU that did not fit an
    // empty batch never will: the caller must see that, not wait).
    if (_failed || idle()) return make_ready_future<>();
    // Not sending: the full pending batch goes at the end of this loop
    // iteration (queue() asked for that), and its completion wakes us.
    _space.emplace_back();
    return _space.back().get_future();
}

future<> pdu_sender::drained() {
    if (!_sending && (_failed || _pending.iov_count == 0)) return make_ready_future<>();
    _drained.emplace_back();
    return _drained.back().get_future();
}

}  // namespace ioe::nvme::tcp
