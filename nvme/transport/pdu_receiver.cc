// The NVMe/TCP receive buffer and PDU parser (see pdu_receiver.hh).
#include "nvme/transport/pdu_receiver.hh"

#include <algorithm>
#include <cstring>

#include "runtime/crc32c.hh"

namespace ioe::nvme::tcp {

namespace {

template <typename T>
T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

bool is_term_req(std::uint8_t type) {
    return type == static_cast<std::uint8_t>(pdu_type::h2c_term_req) ||
           type == static_cast<std::uint8_t>(pdu_type::c2h_term_req);
}

}  // namespace

pdu_receiver::pdu_receiver(std::size_t buffer_bytes)
    : _buf(new std::byte[std::max<std::size_t>(buffer_bytes, 4096)]),
      _cap(std::max<std::size_t>(buffer_bytes, 4096)) {}

void pdu_receiver::configure(bool header_digest, bool data_digest, std::uint32_t max_plen, std::uint8_t pda) noexcept {
    _hdgst = header_digest;
    _ddgst = data_digest;
    _max_plen = max_plen;
    _pda = pda;
}

pdu_receiver::event pdu_receiver::fail(std::string_view what, std::uint16_t fes, std::uint32_t fei) noexcept {
    _phase = phase::failed;
    _error = failure{what, fes, fei};
    return event::error;
}

void pdu_receiver::make_room(std::size_t n) noexcept {
    if (_cap - _start >= n) return;
    std::memmove(_buf.get(), _buf.get() + _start, _end - _start);
    _end -= _start;
    _start = 0;
}

std::size_t pdu_receiver::copy_out(std::size_t n) noexcept {
    const std::size_t k = std::min(n, _end - _start);
    if (k == 0) return 0;
    if (!_discard) {
        const std::byte* src = _buf.get() + _start;
        std::uint64_t skip = _sink_offset + _data_done;
        std::size_t left = k;
        for (const io_vec& e : _sink) {
            if (left == 0) break;
            if (skip >= e.len) {
                skip -= e.len;
                continue;
            }
            const std::size_t m = std::min<std::size_t>(e.len - skip, left);
            std::memcpy(e.data + skip, src, m);
            src += m;
            left -= m;
            skip = 0;
        }
    }
    _start += k;
    _data_done += static_cast<std::uint32_t>(k);
    return k;
}

std::uint32_t pdu_receiver::data_digest() const noexcept {
    std::uint32_t crc = 0;
    bool first = true;
    std::uint64_t skip = _sink_offset;
    std::size_t left = _data_len;
    for (const io_vec& e : _sink) {
        if (left == 0) break;
        if (skip >= e.len) {
            skip -= e.len;
            continue;
        }
        const std::size_t m = std::min<std::size_t>(e.len - skip, left);
        crc = first ? crc32c(e.data + skip, m) : crc32c_extend(crc, e.data + skip, m);
        first = false;
        left -= m;
        skip = 0;
    }
    return first ? crc32c(nullptr, 0) : crc;
}

void pdu_receiver::deliver_to(io_vecs iov, std::uint64_t offset) noexcept {
    _sink = iov;
    _sink_offset = offset;
    _sink_set = true;
    _discard = false;
}

void pdu_receiver::deliver_to(std::byte* dst) noexcept {
    _single = io_vec{dst, _data_len, -1};
    deliver_to(io_vecs(&_single, 1), 0);
}

void pdu_receiver::discard_data() noexcept {
    _sink = {};
    _sink_offset = 0;
    _sink_set = true;
    _discard = true;
}

pdu_receiver::event pdu_receiver::next() noexcept {
    for (;;) {
        switch (_phase) {
            case phase::failed: return event::error;
            case phase::header: {
                constexpr std::size_t common = sizeof(pdu_common_header);
                if (_end - _start < common) {
                    make_room(common);
                    return event::need_more;
                }
                _ch = load<pdu_common_header>(_buf.get() + _start);
                const pdu_check chk = check_header(_ch, _hdgst, _ddgst, _max_plen, _pda);
                if (chk != pdu_check::ok) {
                    _hdr_len = std::min<std::size_t>(_end - _start, max_header_bytes);
                    std::memcpy(_hdr, _buf.get() + _start, _hdr_len);
                    return fail(to_string(chk), fes::invalid_header_field, field_offset(chk));
                }
                const bool hd = (_ch.flags & pdu_flags::hdgstf) != 0;
                const std::size_t header_end = _ch.hlen + (hd ? digest_bytes : 0);
                if (_end - _start < header_end) {
                    make_room(header_end);
                    return event::need_more;
                }
                std::memcpy(_hdr, _buf.get() + _start, header_end);
                _hdr_len = _ch.hlen;
                _start += header_end;
                if (hd && crc32c(_hdr, _ch.hlen) != load<std::uint32_t>(_hdr + _ch.hlen)) {
                    return fail("header digest mismatch", fes::header_digest_error);
                }
                _has_ddgst = (_ch.flags & pdu_flags::ddgstf) != 0;
                const std::uint32_t dd = _has_ddgst ? digest_bytes : 0;
                if (_ch.pdo != 0 && !is_term_req(_ch.pdu_type)) {
                    _data_len = _ch.plen - _ch.pdo - dd;
                    _pad_left = static_cast<std::uint32_t>(_ch.pdo - header_end);
                } else {
                    // TermReq: the offending header follows at once; other
                    // PDUs without PDO carry no data (check_header).
                    _data_len = static_cast<std::uint32_t>(_ch.plen - header_end);
                    _pad_left = 0;
                    _has_ddgst = false;
                }
                _data_done = 0;
                _sink_set = false;
                _discard = false;
                _sink = {};
                _phase = _data_len > 0 ? phase::pad : phase::header;
                return event::header;
            }
            case phase::pad: {
                if (!_sink_set) discard_data();  // the owner did not say: nowhere
                const std::size_t k = std::min<std::size_t>(_pad_left, _end - _start);
                _start += k;
                _pad_left -= static_cast<std::uint32_t>(k);
                if (_pad_left > 0) return event::need_more;
                _phase = phase::data;
                break;
            }
            case phase::data: {
                copy_out(_data_len - _data_done);
                if (_data_done < _data_len) return event::need_more;
                if (!_has_ddgst) {
                    _phase = phase::header;
                    return event::data;
                }
                _phase = phase::digest;
                break;
            }
            case phase::digest: {
                if (_end - _start < digest_bytes) {
                    make_room(digest_bytes);
                    return event::need_more;
                }
                const auto want = load<std::uint32_t>(_buf.get() + _start);
                _start += digest_bytes;
                if (!_discard && data_digest() != want) {
                    return fail("data digest mismatch", fes::header_digest_error);
                }
                _phase = phase::header;
                return event::data;
            }
        }
    }
}

unsigned pdu_receiver::receive_iov(iovec* out) noexcept {
    unsigned n = 0;
    _direct_given = 0;
    if (_phase == phase::data && !_discard && _start == _end) {
        const std::size_t remaining = _data_len - _data_done;
        if (remaining >= direct_min) {
            std::uint64_t skip = _sink_offset + _data_done;
            std::size_t left = remaining;
            for (const io_vec& e : _sink) {
                if (left == 0 || n == max_receive_iov - 1) break;
                if (skip >= e.len) {
                    skip -= e.len;
                    continue;
                }
                const std::size_t m = std::min<std::size_t>(e.len - skip, left);
                out[n++] = iovec{e.data + skip, m};
                _direct_given += m;
                left -= m;
                skip = 0;
            }
        }
    }
    if (_start == _end) {
        _start = _end = 0;
    } else if (_cap - _end < _cap / 4) {
        // Little room left at the end: the unparsed bytes move to the front.
        std::memmove(_buf.get(), _buf.get() + _start, _end - _start);
        _end -= _start;
        _start = 0;
    }
    out[n++] = iovec{_buf.get() + _end, _cap - _end};
    return n;
}

void pdu_receiver::received(std::size_t n) noexcept {
    const std::size_t direct = std::min(n, _direct_given);
    _data_done += static_cast<std::uint32_t>(direct);
    _direct_given = 0;
    _end += n - direct;
}

}  // namespace ioe::nvme::tcp
