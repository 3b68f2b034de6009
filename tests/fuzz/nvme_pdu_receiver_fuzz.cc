// Fuzz target for the NVMe/TCP receive buffer and PDU parser alone
// (nvme/transport/pdu_receiver.cc): arbitrary byte streams, cut into
// receives of sizes chosen by the input, with each PDU's data delivered into
// destinations of a chosen shape or discarded. The receiver must never read
// or write outside its buffer or the destinations it was given, never stall
// (receive_iov() always offers room), and must not depend on how the stream
// was cut: the same stream fed in one piece gives the same events, errors
// and delivered bytes (the oracle).
//
// Input layout (shorter inputs are zero-padded to the 3-byte prefix):
//   byte 0  options: bit 0 header digest, bit 1 data digest, bit 2 start as
//           before ICReq/ICResp (no digests, PLEN <= 128) and switch to the
//           negotiated settings after the first header (as tcp_qpair does),
//           bit 3 the smallest buffer (4 KiB), bits 4-5 PDU data alignment
//           (0, 1, 7 or 31), bit 6 a small PLEN limit (4096 + 256 instead of
//           128 KiB + 256)
//   byte 1  bits 0-3: K, the number of receive sizes; bits 4-7: the shape of
//           destinations (pieces and offset)
//   byte 2  which PDUs with data are delivered (bit i % 8 set) or discarded
//   then    K little-endian u16 receive sizes (1 + v % 16384, used in turn;
//           K = 0: everything in one receive)
//   then    the byte stream.
// Destinations are separate heap blocks of exactly the size given (plus
// guard bytes that must stay untouched), so ASan (sanitize build) and the
// guards (any build) catch writes past them.
//
// IOE_FUZZ_LOG=1 prints each input's events (to read a crash reproducer).
//
// Seeds: tests/fuzz/corpus/nvme_pdu_receiver (make_nvme_pdu_receiver_corpus.py).
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/transport/pdu_receiver.hh"
#include "runtime/crc32c.hh"

namespace tcp = ioe::nvme::tcp;
using tcp::pdu_receiver;
using event = pdu_receiver::event;

namespace {

void require(bool ok) {
    if (!ok) __builtin_trap();
}

constexpr std::size_t guard = 8;
constexpr std::byte guard_fill{0x5A};
constexpr std::byte before_fill{0xC3};

struct options {
    bool hd = false;
    bool dd = false;
    bool icreq_first = false;
    std::size_t buffer = pdu_receiver::default_buffer_bytes;
    std::uint8_t pda = 0;
    std::uint32_t max_plen = 0;
    unsigned shape = 0;
    std::uint8_t deliver_mask = 0;
};

// One PDU's destination: `pieces` heap blocks holding offset + len bytes,
// the data going from `offset` on.
class sink {
public:
    void build(std::uint32_t len, unsigned pieces, std::uint32_t offset) {
        _len = len;
        _offset = offset;
        const std::uint64_t total = std::uint64_t{offset} + len;
        pieces = static_cast<unsigned>(std::min<std::uint64_t>(pieces, total));
        std::uint64_t left = total;
        for (unsigned i = 0; i < pieces; ++i) {
            const std::uint64_t n = i + 1 == pieces ? left : total / pieces;
            auto block = std::make_unique<std::byte[]>(n + 2 * guard);
            std::memset(block.get(), static_cast<int>(guard_fill), guard);
            std::memset(block.get() + guard, static_cast<int>(before_fill), n);
            std::memset(block.get() + guard + n, static_cast<int>(guard_fill), guard);
            _iov.push_back(ioe::io_vec{block.get() + guard, static_cast<std::uint32_t>(n), -1});
            _blocks.push_back(std::move(block));
            left -= n;
        }
    }
    ioe::io_vecs iov() const { return {_iov.data(), _iov.size()}; }
    std::uint32_t offset() const { return _offset; }

    // Guards untouched, and nothing written before `offset`.
    bool intact() const {
        std::uint64_t pos = 0;
        for (const auto& v : _iov) {
            for (std::size_t k = 0; k < guard; ++k) {
                if (v.data[-1 - static_cast<std::ptrdiff_t>(k)] != guard_fill || v.data[v.len + k] != guard_fill) {
                    return false;
                }
            }
            for (std::uint32_t k = 0; k < v.len && pos + k < _offset; ++k) {
                if (v.data[k] != before_fill) return false;
            }
            pos += v.len;
        }
        return true;
    }
    // CRC32C of the delivered data.
    std::uint32_t digest() const {
        std::uint32_t crc = ioe::crc32c(nullptr, 0);
        std::uint64_t skip = _offset;
        std::uint64_t left = _len;
        for (const auto& v : _iov) {
            if (left == 0) break;
            if (skip >= v.len) {
                skip -= v.len;
                continue;
            }
            const std::uint64_t n = std::min<std::uint64_t>(v.len - skip, left);
            crc = ioe::crc32c_extend(crc, v.data + skip, n);
            left -= n;
            skip = 0;
        }
        return crc;
    }

private:
    std::vector<std::unique_ptr<std::byte[]>> _blocks;
    std::vector<ioe::io_vec> _iov;
    std::uint32_t _len = 0;
    std::uint32_t _offset = 0;
};

struct record {
    event kind;
    std::uint8_t type = 0;
    std::uint32_t len = 0;
    std::uint16_t fes = 0;
    std::uint32_t fei = 0;
    std::uint32_t crc = 0;
    bool delivered = false;
    bool operator==(const record&) const = default;
};

// Feeds `stream` to a receiver in receives of `chunks` sizes (in turn;
// empty: all at once) and returns what it saw.
std::vector<record> run(const options& o, std::span<const std::uint8_t> stream, std::span<const std::size_t> chunks,
                        std::size_t buffer) {
    pdu_receiver rx(buffer);
    const std::size_t cap = std::max<std::size_t>(buffer, 4096);
    if (o.icreq_first) {
        rx.configure(false, false, sizeof(tcp::ic_req));
    } else {
        rx.configure(o.hd, o.dd, o.max_plen, o.pda);
    }
    bool negotiated = !o.icreq_first;
    bool negotiated_hd = negotiated && o.hd, negotiated_dd = negotiated && o.dd;
    std::uint32_t limit = negotiated ? o.max_plen : sizeof(tcp::ic_req);
    std::uint8_t pda = negotiated ? o.pda : 0;

    std::vector<record> log;
    std::unique_ptr<sink> dst;
    unsigned data_pdus = 0;
    bool failed = false;

    auto drain = [&] {
        for (;;) {
            const event ev = rx.next();
            if (ev == event::need_more) return;
            if (ev == event::error) {
                const auto& e = rx.error();
                require(e.fes == tcp::fes::invalid_header_field || e.fes == tcp::fes::header_digest_error);
                require(!e.what.empty());
                require(rx.next() == event::error);
                if (dst) require(dst->intact());
                log.push_back({event::error, 0, 0, e.fes, e.fei, 0, false});
                failed = true;
                return;
            }
            if (ev == event::header) {
                if (dst) require(dst->intact());
                dst.reset();
                const auto& ch = rx.common();
                require(check_header(ch, negotiated_hd, negotiated_dd, limit, pda) == tcp::pdu_check::ok);
                require(rx.header().size() == ch.hlen && ch.hlen <= tcp::max_header_bytes);
                require(rx.type() == ch.pdu_type);
                require(rx.data_length() < ch.plen);
                const std::uint32_t len = rx.data_length();
                bool delivered = false;
                if (len > 0) {
                    const unsigned i = data_pdus++;
                    if (o.deliver_mask & (1u << (i % 8))) {
                        dst = std::make_unique<sink>();
                        const unsigned pieces = 1 + (o.shape + i) % 4;
                        const std::uint32_t offset = ((o.shape >> 2) * 37u + i * 11u) % 64;
                        dst->build(len, pieces, offset);
                        rx.deliver_to(dst->iov(), dst->offset());
                        delivered = true;
                    } else if (i % 3 == 0) {
                        rx.discard_data();
                    }  // otherwise: the owner says nothing, which discards too
                }
                log.push_back({event::header, ch.pdu_type, len, 0, 0, 0, delivered});
                if (!negotiated) {  // the ICReq/ICResp exchange is over
                    negotiated = true;
                    negotiated_hd = o.hd;
                    negotiated_dd = o.dd;
                    limit = o.max_plen;
                    pda = o.pda;
                    rx.configure(o.hd, o.dd, o.max_plen, o.pda);
                }
                continue;
            }
            // event::data
            std::uint32_t crc = 0;
            if (dst) {
                require(dst->intact());
                crc = dst->digest();
            }
            log.push_back({event::data, 0, 0, 0, 0, crc, dst != nullptr});
            dst.reset();
        }
    };

    std::size_t pos = 0, turn = 0;
    drain();
    while (pos < stream.size() && !failed) {
        iovec iov[pdu_receiver::max_receive_iov];
        const unsigned n = rx.receive_iov(iov);
        require(n >= 1 && n <= pdu_receiver::max_receive_iov);
        std::size_t room = 0;
        for (unsigned i = 0; i < n; ++i) {
            // Every iovec must be writable memory from its first to its last byte.
            if (iov[i].iov_len > 0) {
                auto* b = static_cast<volatile std::byte*>(iov[i].iov_base);
                b[0] = b[0];
                b[iov[i].iov_len - 1] = b[iov[i].iov_len - 1];
            }
            room += iov[i].iov_len;
        }
        require(room > 0);  // a receiver that offers no room would stall the connection
        std::size_t want = chunks.empty() ? stream.size() - pos : chunks[turn++ % chunks.size()];
        want = std::min(want, stream.size() - pos);
        std::size_t got = 0;
        for (unsigned i = 0; i < n && got < want; ++i) {
            const std::size_t k = std::min(iov[i].iov_len, want - got);
            std::memcpy(iov[i].iov_base, stream.data() + pos + got, k);
            got += k;
        }
        rx.received(got);
        pos += got;
        require(rx.buffered() <= cap);
        drain();
    }
    if (dst) require(dst->intact());
    return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::uint8_t prefix[3] = {};
    std::memcpy(prefix, data, std::min<std::size_t>(size, 3));
    options o;
    o.hd = prefix[0] & 1;
    o.dd = prefix[0] & 2;
    o.icreq_first = prefix[0] & 4;
    o.buffer = (prefix[0] & 8) ? 4096 : pdu_receiver::default_buffer_bytes;
    static constexpr std::uint8_t pdas[4] = {0, 1, 7, 31};
    o.pda = pdas[(prefix[0] >> 4) & 3];
    o.max_plen = (prefix[0] & 64) ? 4096 + 256 : 131072 + 256;
    const unsigned k = prefix[1] & 0xf;
    o.shape = prefix[1] >> 4;
    o.deliver_mask = prefix[2];
    std::size_t pos = std::min<std::size_t>(size, 3);
    std::vector<std::size_t> chunks;
    for (unsigned i = 0; i < k && pos + 2 <= size; ++i, pos += 2) {
        const std::uint16_t v = static_cast<std::uint16_t>(data[pos] | (data[pos + 1] << 8));
        chunks.push_back(1 + v % 16384);
    }
    const std::span<const std::uint8_t> stream(data + pos, size - pos);

    const auto cut = run(o, stream, chunks, o.buffer);
    const auto whole = run(o, stream, {}, pdu_receiver::default_buffer_bytes);
    static const bool print = [] {
        const char* v = std::getenv("IOE_FUZZ_LOG");
        return v && *v == '1';
    }();
    if (print) {
        std::fprintf(stderr, "options %#x, %zu receive sizes, %zu stream bytes:", prefix[0], chunks.size(), stream.size());
        for (const record& r : cut) {
            switch (r.kind) {
                case event::header: std::fprintf(stderr, " H%u:%u%s", r.type, r.len, r.len && !r.delivered ? "(discard)" : ""); break;
                case event::data: std::fprintf(stderr, " D%s", r.delivered ? "" : "(discarded)"); break;
                default: std::fprintf(stderr, " E%u/%u", r.fes, r.fei); break;
            }
        }
        std::fprintf(stderr, "%s\n", cut == whole ? "" : "  <- differs from the whole stream");
    }
    // The oracle: how the stream was cut and the buffer size change nothing.
    require(cut == whole);
    return 0;
}
