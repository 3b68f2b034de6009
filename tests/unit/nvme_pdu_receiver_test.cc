// nvme/transport/pdu_receiver without a socket: byte streams of framed
// NVMe/TCP PDUs are fed through receive_iov()/received() the way recvmsg
// would fill the iovecs (in order, as many bytes as the "kernel" has), in
// chunks of chosen sizes. Covers several PDUs in one receive; every stream
// split at every byte boundary and one byte per receive, with header and
// data digests on and off; in-capsule data, H2CData, C2HData and TermReq
// data delivered (bytes checked, nothing written outside the destination);
// the direct path (data still to come >= direct_min: receive_iov() hands
// out the destination first, also in pieces and at an offset); discard_data;
// PDO padding; and the errors (each header check with its FEI, header digest
// and data digest mismatches) with their FES.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/transport/pdu_receiver.hh"
#include "runtime/crc32c.hh"

using namespace ioe;
using namespace ioe::nvme;
using ioe::nvme::tcp::pdu_receiver;
using event = pdu_receiver::event;

namespace {

using bytes = std::vector<std::byte>;

constexpr std::uint32_t k_max_plen = 1 << 20;

bytes pattern(std::size_t n, unsigned seed) {
    bytes v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 17 + (i >> 8)) & 0xff);
    return v;
}

template <typename T>
bytes as_bytes_of(const T& v) {
    bytes b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

void append_u32(bytes& out, std::uint32_t v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + 4);
}

// How a PDU is put on the wire.
struct framing {
    bool hd = false;                // HDGSTF and a header digest
    bool dd = false;                // DDGSTF and a data digest (PDUs with data)
    std::uint32_t pdo = 0;          // 0: right after the header (+ digest)
    std::uint8_t extra_flags = 0;   // LAST_PDU, SUCCESS
    bool corrupt_hd = false;
    bool corrupt_dd = false;
};

// A PDU header (type, hlen set by the caller) framed with `data`: flags,
// PDO and PLEN as a conforming sender sets them, digests, padding (0xAA).
bytes frame(bytes header, const bytes& data, const framing& f) {
    tcp::pdu_common_header ch;
    std::memcpy(&ch, header.data(), sizeof ch);
    const std::uint32_t hd = f.hd ? 4 : 0;
    const std::uint32_t dd = (f.dd && !data.empty()) ? 4 : 0;
    ch.flags = static_cast<std::uint8_t>(f.extra_flags | (hd ? tcp::pdu_flags::hdgstf : 0) |
                                         (dd ? tcp::pdu_flags::ddgstf : 0));
    const std::uint32_t pdo = data.empty() ? 0 : (f.pdo ? f.pdo : ch.hlen + hd);
    ch.pdo = static_cast<std::uint8_t>(pdo);
    ch.plen = static_cast<std::uint32_t>(data.empty() ? ch.hlen + hd : pdo + data.size() + dd);
    std::memcpy(header.data(), &ch, sizeof ch);
    bytes out = header;
    if (hd) append_u32(out, crc32c(header.data(), header.size()) ^ (f.corrupt_hd ? 1u : 0u));
    if (!data.empty()) {
        out.resize(pdo, std::byte{0xAA});
        out.insert(out.end(), data.begin(), data.end());
        if (dd) append_u32(out, crc32c(data.data(), data.size()) ^ (f.corrupt_dd ? 1u : 0u));
    }
    return out;
}

bytes capsule_header(std::uint16_t cid, std::uint32_t sgl_len = 0) {
    tcp::capsule_cmd c{};
    c.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_cmd);
    c.ch.hlen = sizeof c;
    c.ccsqe.opcode = nvm_opcode::write;
    c.ccsqe.cid = cid;
    c.ccsqe.nsid = 1;
    c.ccsqe.dptr.sgl.length = sgl_len;
    return as_bytes_of(c);
}

bytes h2c_header(std::uint16_t cid, std::uint16_t ttag, std::uint32_t datao, std::uint32_t datal) {
    tcp::h2c_data h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::h2c_data);
    h.ch.hlen = sizeof h;
    h.cccid = cid;
    h.ttag = ttag;
    h.datao = datao;
    h.datal = datal;
    return as_bytes_of(h);
}

bytes c2h_header(std::uint16_t cid, std::uint32_t datal) {
    tcp::c2h_data h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_data);
    h.ch.hlen = sizeof h;
    h.cccid = cid;
    h.datal = datal;
    return as_bytes_of(h);
}

bytes resp_header(std::uint16_t cid) {
    tcp::capsule_resp r{};
    r.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp);
    r.ch.hlen = sizeof r;
    r.rccqe.cid = cid;
    return as_bytes_of(r);
}

bytes r2t_header(std::uint16_t cid, std::uint32_t len) {
    tcp::r2t r{};
    r.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::r2t);
    r.ch.hlen = sizeof r;
    r.cccid = cid;
    r.r2tl = len;
    return as_bytes_of(r);
}

// TermReq: never digested, the offending header follows the 24 bytes.
bytes term_req(tcp::pdu_type type, std::uint16_t fes, const bytes& data, std::uint8_t pdo = 0) {
    tcp::term_req t{};
    t.ch.pdu_type = static_cast<std::uint8_t>(type);
    t.ch.hlen = sizeof t;
    t.ch.pdo = pdo;
    t.ch.plen = static_cast<std::uint32_t>(sizeof t + data.size());
    t.fes = fes;
    bytes out = as_bytes_of(t);
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// Copies `src` into the iovecs in order, as recvmsg fills them; returns how
// many bytes fit.
std::size_t scatter(const iovec* iov, unsigned n, std::span<const std::byte> src) {
    std::size_t done = 0;
    for (unsigned i = 0; i < n && done < src.size(); ++i) {
        const std::size_t k = std::min(iov[i].iov_len, src.size() - done);
        std::memcpy(iov[i].iov_base, src.data() + done, k);
        done += k;
    }
    return done;
}

// Drives a receiver as the owner's loop does and records what it saw.
// Each PDU with data gets a destination of its own with 16 guard bytes on
// either side (0xEE), unless `on_header` decides otherwise.
struct driver {
    static constexpr std::size_t guard = 16;

    pdu_receiver rx;
    std::vector<std::string> log;  // "H<type>:<data len>", "D", "E<fes>/<fei>"
    std::vector<bytes> headers;    // header() of each header event
    std::vector<bytes> sinks;      // destinations, guards included
    std::function<void(driver&)> on_header;  // default: deliver into a new sink
    unsigned max_iov_seen = 0;
    bool failed = false;

    explicit driver(bool hd = false, bool dd = false, std::size_t buffer = pdu_receiver::default_buffer_bytes,
                    std::uint8_t pda = 0)
        : rx(buffer) {
        rx.configure(hd, dd, k_max_plen, pda);
    }

    void deliver_to_new_sink() {
        sinks.emplace_back(rx.data_length() + 2 * guard, std::byte{0xEE});
        rx.deliver_to(sinks.back().data() + guard);
    }
    // The data of sink i, without its guards; fails if a guard was touched.
    bytes sink_data(std::size_t i) const {
        const bytes& s = sinks.at(i);
        for (std::size_t k = 0; k < guard; ++k) {
            EXPECT_EQ(s[k], std::byte{0xEE}) << "sink " << i << ": written before the destination";
            EXPECT_EQ(s[s.size() - 1 - k], std::byte{0xEE}) << "sink " << i << ": written past the destination";
        }
        return bytes(s.begin() + guard, s.end() - guard);
    }

    void drain() {
        for (;;) {
            const event ev = rx.next();
            if (ev == event::need_more) return;
            if (ev == event::header) {
                log.push_back("H" + std::to_string(rx.type()) + ":" + std::to_string(rx.data_length()));
                headers.emplace_back(rx.header().begin(), rx.header().end());
                if (rx.data_length() > 0) {
                    if (on_header) {
                        on_header(*this);
                    } else {
                        deliver_to_new_sink();
                    }
                }
            } else if (ev == event::data) {
                log.push_back("D");
            } else {
                log.push_back("E" + std::to_string(rx.error().fes) + "/" + std::to_string(rx.error().fei));
                EXPECT_FALSE(rx.error().what.empty());
                EXPECT_EQ(rx.next(), event::error) << "the error state is for good";
                failed = true;
                return;
            }
        }
    }

    // Feeds `stream`, each receive bringing the next chunk size (cycling
    // through `chunks`, each >= 1) or less when the iovecs hold less.
    void feed(std::span<const std::byte> stream, std::span<const std::size_t> chunks) {
        std::size_t pos = 0;
        std::size_t i = 0;
        drain();
        while (pos < stream.size() && !failed) {
            iovec iov[pdu_receiver::max_receive_iov];
            const unsigned n = rx.receive_iov(iov);
            ASSERT_GE(n, 1u);
            ASSERT_LE(n, pdu_receiver::max_receive_iov);
            max_iov_seen = std::max(max_iov_seen, n);
            const std::size_t want = std::min(chunks[i++ % chunks.size()], stream.size() - pos);
            const std::size_t got = scatter(iov, n, stream.subspan(pos, want));
            ASSERT_GT(got, 0u) << "receive_iov() offered no room";
            rx.received(got);
            pos += got;
            drain();
        }
    }
    void feed(std::span<const std::byte> stream, std::initializer_list<std::size_t> chunks) {
        std::vector<std::size_t> c(chunks);
        feed(stream, c);
    }
    void feed_all(std::span<const std::byte> stream) { feed(stream, {stream.size()}); }
};

bytes concat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::string hdr_event(tcp::pdu_type t, std::size_t len) {
    return "H" + std::to_string(static_cast<int>(t)) + ":" + std::to_string(len);
}

// A stream a target receives (and a few host-bound PDUs: the parser is
// shared), with what the driver must log and deliver.
struct scenario {
    bytes stream;
    std::vector<std::string> log;
    std::vector<bytes> data;     // per PDU with data, in order
    std::vector<bytes> headers;  // per PDU
};

scenario mixed_stream(bool hd, bool dd) {
    framing f{hd, dd};
    scenario s;
    auto add = [&](const bytes& header, const bytes& data, framing fr, tcp::pdu_type t) {
        bytes wire = frame(header, data, fr);
        s.stream.insert(s.stream.end(), wire.begin(), wire.end());
        s.log.push_back(hdr_event(t, data.size()));
        bytes h(wire.begin(), wire.begin() + header.size());
        s.headers.push_back(h);
        if (!data.empty()) {
            s.log.push_back("D");
            s.data.push_back(data);
        }
    };
    add(capsule_header(1), {}, f, tcp::pdu_type::capsule_cmd);                                 // no data
    add(capsule_header(2, 700), pattern(700, 1), f, tcp::pdu_type::capsule_cmd);                 // in-capsule
    add(h2c_header(3, 5, 0, 3), pattern(3, 2), framing{hd, dd, 0, tcp::pdu_flags::last_pdu},
        tcp::pdu_type::h2c_data);                                                                 // tiny data
    add(h2c_header(4, 6, 0, 5000), pattern(5000, 3), framing{hd, dd, 0, tcp::pdu_flags::last_pdu},
        tcp::pdu_type::h2c_data);                                                                 // direct path
    add(resp_header(5), {}, f, tcp::pdu_type::capsule_resp);
    add(c2h_header(6, 300), pattern(300, 4),
        framing{hd, dd, 0, tcp::pdu_flags::last_pdu | tcp::pdu_flags::success}, tcp::pdu_type::c2h_data);
    add(r2t_header(7, 4096), {}, f, tcp::pdu_type::r2t);
    add(capsule_header(8), {}, f, tcp::pdu_type::capsule_cmd);
    return s;
}

void expect_matches(driver& d, const scenario& s, const std::string& what) {
    ASSERT_FALSE(d.failed) << what << ": " << (d.log.empty() ? "" : d.log.back());
    ASSERT_EQ(d.log, s.log) << what;
    ASSERT_EQ(d.sinks.size(), s.data.size()) << what;
    for (std::size_t i = 0; i < s.data.size(); ++i) {
        ASSERT_TRUE(d.sink_data(i) == s.data[i]) << what << ": data of PDU with data #" << i << " differs";
    }
    ASSERT_EQ(d.headers, s.headers) << what;
    EXPECT_EQ(d.rx.buffered(), 0u) << what;
}

}  // namespace

// ---- several PDUs in one receive --------------------------------------------

TEST(nvme_pdu_receiver, several_pdus_in_one_receive) {
    for (int digests = 0; digests < 4; ++digests) {
        const bool hd = digests & 1, dd = digests & 2;
        scenario s = mixed_stream(hd, dd);
        driver d(hd, dd);
        d.feed_all(s.stream);
        expect_matches(d, s, "hd " + std::to_string(hd) + " dd " + std::to_string(dd));
        // The header event shows the PDU-specific fields as sent.
        tcp::capsule_cmd c;
        std::memcpy(&c, d.headers[1].data(), sizeof c);
        EXPECT_EQ(c.ccsqe.cid, 2);
        EXPECT_EQ(c.ccsqe.dptr.sgl.length, 700u);
        EXPECT_EQ(c.ch.flags & tcp::pdu_flags::hdgstf, hd ? tcp::pdu_flags::hdgstf : 0);
    }
}

TEST(nvme_pdu_receiver, icreq_before_digests_are_negotiated) {
    tcp::ic_req req{};
    req.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_req);
    req.ch.hlen = sizeof req;
    req.ch.plen = sizeof req;
    req.hpda = 3;
    req.dgst = tcp::dgst::header | tcp::dgst::data;
    pdu_receiver rx;
    rx.configure(false, false, sizeof(tcp::ic_req));
    iovec iov[pdu_receiver::max_receive_iov];
    EXPECT_EQ(rx.next(), event::need_more);
    const unsigned n = rx.receive_iov(iov);
    bytes wire = as_bytes_of(req);
    ASSERT_EQ(scatter(iov, n, wire), wire.size());
    rx.received(wire.size());
    ASSERT_EQ(rx.next(), event::header);
    EXPECT_EQ(rx.type(), static_cast<std::uint8_t>(tcp::pdu_type::ic_req));
    EXPECT_EQ(rx.data_length(), 0u);
    ASSERT_EQ(rx.header().size(), 128u);
    EXPECT_TRUE(std::equal(rx.header().begin(), rx.header().end(), wire.begin()));
    EXPECT_EQ(rx.next(), event::need_more);
    EXPECT_EQ(rx.buffered(), 0u);
}

// ---- splits -------------------------------------------------------------------

// The stream split in two at every byte boundary: every PDU is cut at every
// offset of its header, digest, padding, data and data digest once.
TEST(nvme_pdu_receiver, every_split_point_with_and_without_digests) {
    for (int digests = 0; digests < 4; ++digests) {
        const bool hd = digests & 1, dd = digests & 2;
        const scenario s = mixed_stream(hd, dd);
        for (std::size_t k = 1; k < s.stream.size(); ++k) {
            driver d(hd, dd);
            d.feed(s.stream, {k, s.stream.size()});
            expect_matches(d, s, "hd " + std::to_string(hd) + " dd " + std::to_string(dd) + " split at " +
                                     std::to_string(k));
            if (HasFatalFailure()) return;
        }
    }
}

// Two cuts a few bytes apart, everywhere: a header or a digest that arrives
// in three pieces.
TEST(nvme_pdu_receiver, every_pair_of_close_split_points) {
    const bool hd = true, dd = true;
    const scenario s = mixed_stream(hd, dd);
    for (std::size_t k = 1; k < s.stream.size(); ++k) {
        for (std::size_t gap : {1u, 2u, 3u, 5u, 7u}) {
            driver d(hd, dd);
            d.feed(s.stream, {k, gap, s.stream.size()});
            expect_matches(d, s, "cut at " + std::to_string(k) + " and " + std::to_string(k + gap));
            if (HasFatalFailure()) return;
        }
    }
}

TEST(nvme_pdu_receiver, one_byte_per_receive) {
    for (int digests = 0; digests < 4; ++digests) {
        const bool hd = digests & 1, dd = digests & 2;
        const scenario s = mixed_stream(hd, dd);
        driver d(hd, dd);
        d.feed(s.stream, {1});
        expect_matches(d, s, "one byte at a time");
    }
}

// Random chunk sizes (seeded: a failing seed is a regression test), on the
// default buffer and on the smallest one (4 KiB), where receives are cut
// short by the room left and the buffer compacts.
TEST(nvme_pdu_receiver, random_chunks_and_small_buffer) {
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
        std::mt19937 rng(seed);
        const bool hd = rng() & 1, dd = rng() & 1;
        scenario s = mixed_stream(hd, dd);
        // Repeat the stream so the buffer wraps and compacts many times.
        scenario big;
        for (int r = 0; r < 6; ++r) {
            big.stream.insert(big.stream.end(), s.stream.begin(), s.stream.end());
            big.log.insert(big.log.end(), s.log.begin(), s.log.end());
            big.data.insert(big.data.end(), s.data.begin(), s.data.end());
            big.headers.insert(big.headers.end(), s.headers.begin(), s.headers.end());
        }
        std::vector<std::size_t> chunks;
        std::uniform_int_distribution<std::size_t> len(1, seed % 3 == 0 ? 64 : 9000);
        for (int i = 0; i < 64; ++i) chunks.push_back(len(rng));
        driver d(hd, dd, seed % 2 ? 4096 : pdu_receiver::default_buffer_bytes);
        d.feed(big.stream, chunks);
        expect_matches(d, big, "seed " + std::to_string(seed));
        if (HasFatalFailure()) return;
    }
}

// ---- delivering data ------------------------------------------------------------

TEST(nvme_pdu_receiver, in_capsule_and_h2c_data_land_in_io_vecs_at_an_offset) {
    // The destination is three pieces; the PDU's data goes from byte 100 of
    // them on (as H2CData at DATAO into a command's buffer).
    const bytes data = pattern(3000, 5);
    for (int digests = 0; digests < 4; ++digests) {
        const bool hd = digests & 1, dd = digests & 2;
        bytes wire = concat({frame(capsule_header(9, 3000), data, {hd, dd}),
                             frame(h2c_header(9, 1, 100, 3000), data, {hd, dd, 0, tcp::pdu_flags::last_pdu})});
        for (std::size_t chunk : {std::size_t{1}, std::size_t{13}, std::size_t{700}, wire.size()}) {
            bytes a(1200, std::byte{0xEE}), b(900, std::byte{0xEE}), c(2000, std::byte{0xEE});
            io_vec pieces[3] = {{a.data(), 1200, -1}, {b.data(), 900, -1}, {c.data(), 1000, -1}};  // c: 1000 of 2000
            bytes whole(3000);
            driver d(hd, dd);
            int pdu_no = 0;
            d.on_header = [&](driver& dr) {
                if (pdu_no++ == 0) {
                    dr.rx.deliver_to(whole.data());
                } else {
                    dr.rx.deliver_to(io_vecs(pieces, 3), 100);
                }
            };
            d.feed(wire, {chunk});
            ASSERT_FALSE(d.failed) << d.log.back();
            ASSERT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::capsule_cmd, 3000), "D",
                                                       hdr_event(tcp::pdu_type::h2c_data, 3000), "D"}));
            EXPECT_TRUE(whole == data);
            bytes got;
            got.insert(got.end(), a.begin(), a.end());
            got.insert(got.end(), b.begin(), b.end());
            got.insert(got.end(), c.begin(), c.begin() + 1000);
            for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], std::byte{0xEE}) << "offset " << i << " written";
            EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin() + 100)) << "chunk " << chunk;
            // The io_vecs end 1000 bytes into c: nothing written past them.
            for (std::size_t i = 1000; i < 2000; ++i) ASSERT_EQ(c[i], std::byte{0xEE}) << "past the io_vecs";
        }
    }
}

TEST(nvme_pdu_receiver, term_req_data) {
    // An H2CTermReq carrying the offending 72-byte header; with digests
    // negotiated it still has none. PDO 0 and PDO = HLEN are both accepted.
    const bytes offending = capsule_header(77);
    for (std::uint8_t pdo : {std::uint8_t{0}, std::uint8_t{24}}) {
        bytes wire = concat({term_req(tcp::pdu_type::h2c_term_req, tcp::fes::invalid_header_field, offending, pdo),
                             frame(capsule_header(3), {}, {true, true})});
        for (std::size_t chunk : {std::size_t{1}, std::size_t{30}, wire.size()}) {
            driver d(true, true);
            d.feed(wire, {chunk});
            ASSERT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::h2c_term_req, 72), "D",
                                                       hdr_event(tcp::pdu_type::capsule_cmd, 0)}));
            EXPECT_TRUE(d.sink_data(0) == offending);
            tcp::term_req t;
            std::memcpy(&t, d.headers[0].data(), sizeof t);
            EXPECT_EQ(t.fes, tcp::fes::invalid_header_field);
        }
    }
    // A C2HTermReq with no data at all.
    driver d;
    d.feed_all(term_req(tcp::pdu_type::c2h_term_req, tcp::fes::pdu_sequence_error, {}));
    EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::c2h_term_req, 0)}));
}

TEST(nvme_pdu_receiver, pdo_padding_is_skipped) {
    // PDO 128 (the largest alignment, CPDA 31) and PDO 248 (up to 180 bytes
    // of padding, filled with 0xAA on the wire), with the header digest in
    // front of the padding.
    const bytes data = pattern(4000, 6);
    for (std::uint8_t pda : {std::uint8_t{0}, std::uint8_t{31}}) {
        for (std::uint32_t pdo : {128u, 248u}) {
            if (pdo % ((pda + 1u) * 4) != 0) continue;
            bytes wire = concat({frame(capsule_header(1, 4000), data, {true, true, pdo}),
                                 frame(h2c_header(1, 0, 0, 4000), data, {true, true, pdo, tcp::pdu_flags::last_pdu}),
                                 frame(capsule_header(2), {}, {true, true})});
            for (std::size_t chunk : {std::size_t{1}, std::size_t{100}, std::size_t{129}, wire.size()}) {
                driver d(true, true, pdu_receiver::default_buffer_bytes, pda);
                d.feed(wire, {chunk});
                ASSERT_FALSE(d.failed) << "pdo " << pdo << " pda " << int(pda) << ": " << d.log.back();
                ASSERT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::capsule_cmd, 4000), "D",
                                                           hdr_event(tcp::pdu_type::h2c_data, 4000), "D",
                                                           hdr_event(tcp::pdu_type::capsule_cmd, 0)}));
                EXPECT_TRUE(d.sink_data(0) == data) << "pdo " << pdo << " chunk " << chunk;
                EXPECT_TRUE(d.sink_data(1) == data) << "pdo " << pdo << " chunk " << chunk;
            }
        }
    }
    // With CPDA 31, a PDO that is not a multiple of 128 is refused (FEI: PDO).
    driver d(false, false, pdu_receiver::default_buffer_bytes, 31);
    d.feed_all(frame(capsule_header(1, 100), pattern(100, 1), {false, false, 76}));
    EXPECT_EQ(d.log, (std::vector<std::string>{"E1/3"}));
}

TEST(nvme_pdu_receiver, discard_data_and_data_nobody_asked_for) {
    // PDU 1: discard_data(); PDU 2: the owner says nothing (discarded too);
    // PDU 3: delivered. The stream stays in step; nothing is written.
    const bytes d1 = pattern(5000, 7), d2 = pattern(300, 8), d3 = pattern(600, 9);
    for (int digests = 0; digests < 4; ++digests) {
        const bool hd = digests & 1, dd = digests & 2;
        bytes wire = concat({frame(capsule_header(1, 5000), d1, {hd, dd}), frame(capsule_header(2, 300), d2, {hd, dd}),
                             frame(capsule_header(3, 600), d3, {hd, dd})});
        for (std::size_t chunk : {std::size_t{1}, std::size_t{80}, std::size_t{1000}, wire.size()}) {
            driver d(hd, dd);
            int pdu_no = 0;
            d.on_header = [&](driver& dr) {
                const int i = pdu_no++;
                if (i == 0) {
                    dr.rx.discard_data();  // never lands anywhere: no direct receive either
                } else if (i == 2) {
                    dr.deliver_to_new_sink();
                }
            };
            d.feed(wire, {chunk});
            ASSERT_FALSE(d.failed) << d.log.back();
            EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::capsule_cmd, 5000), "D",
                                                       hdr_event(tcp::pdu_type::capsule_cmd, 300), "D",
                                                       hdr_event(tcp::pdu_type::capsule_cmd, 600), "D"}));
            ASSERT_EQ(d.sinks.size(), 1u);
            EXPECT_TRUE(d.sink_data(0) == d3);
            EXPECT_EQ(d.max_iov_seen, 1u) << "discarded data was offered a direct receive";
        }
    }
}

// ---- the direct path ----------------------------------------------------------------

namespace {

// Feeds `n` bytes of `src` from `pos` through one receive_iov()/received().
std::size_t receive_once(pdu_receiver& rx, std::span<const std::byte> src, std::size_t& pos, std::size_t n,
                         iovec* iov_out = nullptr, unsigned* n_out = nullptr) {
    iovec iov[pdu_receiver::max_receive_iov];
    const unsigned k = rx.receive_iov(iov);
    if (iov_out) std::copy(iov, iov + k, iov_out);
    if (n_out) *n_out = k;
    const std::size_t got = scatter(iov, k, src.subspan(pos, std::min(n, src.size() - pos)));
    rx.received(got);
    pos += got;
    return got;
}

}  // namespace

TEST(nvme_pdu_receiver, direct_path_hands_out_the_destination_first) {
    for (int digests = 0; digests < 4; ++digests) {
        const bool hd = digests & 1, dd = digests & 2;
        const bytes data = pattern(16384, 10);
        const bytes h2c = frame(h2c_header(1, 0, 0, 16384), data, {hd, dd, 0, tcp::pdu_flags::last_pdu});
        const bytes next = frame(capsule_header(2), {}, {hd, dd});
        const bytes wire = concat({h2c, next});
        const std::size_t header_bytes = 24 + (hd ? 4 : 0);
        pdu_receiver rx;
        rx.configure(hd, dd, k_max_plen);
        bytes dst(16384 + 32, std::byte{0xEE});
        std::size_t pos = 0;

        // The header alone, then 1000 bytes of data with it.
        EXPECT_EQ(rx.next(), event::need_more);
        receive_once(rx, wire, pos, header_bytes + 1000);
        ASSERT_EQ(rx.next(), event::header);
        ASSERT_EQ(rx.data_length(), 16384u);
        rx.deliver_to(dst.data() + 16);
        ASSERT_EQ(rx.next(), event::need_more);  // the 1000 bytes copied out

        // 15384 bytes still to come: the destination first, then the buffer.
        iovec iov[pdu_receiver::max_receive_iov];
        unsigned n = 0;
        // The "kernel" has only part of it: 5000 bytes.
        receive_once(rx, wire, pos, 5000, iov, &n);
        ASSERT_EQ(n, 2u);
        EXPECT_EQ(iov[0].iov_base, dst.data() + 16 + 1000);
        EXPECT_EQ(iov[0].iov_len, 15384u);
        EXPECT_GE(iov[1].iov_len, 4096u);
        EXPECT_EQ(rx.buffered(), 0u) << "direct bytes went to the buffer";
        ASSERT_EQ(rx.next(), event::need_more);

        // The rest of the data, its digest and the next PDU in one receive.
        receive_once(rx, wire, pos, wire.size(), iov, &n);
        ASSERT_EQ(n, 2u);
        EXPECT_EQ(iov[0].iov_base, dst.data() + 16 + 6000);
        EXPECT_EQ(iov[0].iov_len, 10384u);
        EXPECT_EQ(pos, wire.size());
        EXPECT_EQ(rx.buffered(), next.size() + (dd ? 4 : 0));
        ASSERT_EQ(rx.next(), event::data);
        EXPECT_TRUE(std::equal(data.begin(), data.end(), dst.begin() + 16));
        for (int i = 0; i < 16; ++i) {
            EXPECT_EQ(dst[i], std::byte{0xEE});
            EXPECT_EQ(dst[dst.size() - 1 - i], std::byte{0xEE});
        }
        ASSERT_EQ(rx.next(), event::header);
        EXPECT_EQ(rx.type(), static_cast<std::uint8_t>(tcp::pdu_type::capsule_cmd));
        EXPECT_EQ(rx.next(), event::need_more);
        EXPECT_EQ(rx.buffered(), 0u);
    }
}

TEST(nvme_pdu_receiver, direct_path_threshold) {
    // Exactly direct_min bytes still to come: direct; one less: the buffer.
    for (std::size_t remaining : {pdu_receiver::direct_min, pdu_receiver::direct_min - 1}) {
        const bytes data = pattern(remaining + 10, 11);
        const bytes wire = frame(h2c_header(1, 0, 0, static_cast<std::uint32_t>(data.size())), data,
                                 {false, false, 0, tcp::pdu_flags::last_pdu});
        pdu_receiver rx;
        rx.configure(false, false, k_max_plen);
        bytes dst(data.size());
        std::size_t pos = 0;
        receive_once(rx, wire, pos, 24 + 10);
        ASSERT_EQ(rx.next(), event::header);
        rx.deliver_to(dst.data());
        ASSERT_EQ(rx.next(), event::need_more);
        iovec iov[pdu_receiver::max_receive_iov];
        unsigned n = 0;
        receive_once(rx, wire, pos, wire.size(), iov, &n);
        if (remaining >= pdu_receiver::direct_min) {
            ASSERT_EQ(n, 2u) << remaining;
            EXPECT_EQ(iov[0].iov_base, dst.data() + 10);
            EXPECT_EQ(iov[0].iov_len, remaining);
        } else {
            ASSERT_EQ(n, 1u) << remaining;
            EXPECT_FALSE(iov[0].iov_base >= static_cast<void*>(dst.data()) &&
                         iov[0].iov_base < static_cast<void*>(dst.data() + dst.size()));
        }
        ASSERT_EQ(rx.next(), event::data);
        EXPECT_TRUE(dst == data);
    }
}

TEST(nvme_pdu_receiver, direct_path_into_many_pieces) {
    // 12 pieces of 1 KiB, data from offset 512: the first receive gets 8
    // pieces of the destination (the ninth iovec is the buffer), later ones
    // the rest; with a data digest behind it.
    for (bool dd : {false, true}) {
        std::vector<bytes> mem(12, bytes(1024, std::byte{0xEE}));
        std::vector<io_vec> pieces;
        for (auto& m : mem) pieces.push_back(io_vec{m.data(), 1024, -1});
        const std::uint32_t len = 12 * 1024 - 512;
        const bytes data = pattern(len, 12);
        const bytes wire = concat({frame(h2c_header(1, 0, 512, len), data, {false, dd, 0, tcp::pdu_flags::last_pdu}),
                                   frame(resp_header(1), {}, {})});
        driver d(false, dd);
        d.on_header = [&](driver& dr) { dr.rx.deliver_to(io_vecs(pieces.data(), pieces.size()), 512); };
        // The header alone first, then receives of at most 3000 bytes.
        d.feed(wire, {24, 3000});
        ASSERT_FALSE(d.failed) << d.log.back();
        EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::h2c_data, len), "D",
                                                   hdr_event(tcp::pdu_type::capsule_resp, 0)}));
        EXPECT_EQ(d.max_iov_seen, pdu_receiver::max_receive_iov);
        bytes got;
        for (auto& m : mem) got.insert(got.end(), m.begin(), m.end());
        for (int i = 0; i < 512; ++i) ASSERT_EQ(got[i], std::byte{0xEE});
        EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin() + 512));
        // And the first direct receive offered exactly 8 pieces, the first at 512.
        pdu_receiver rx;
        rx.configure(false, dd, k_max_plen);
        std::size_t pos = 0;
        receive_once(rx, wire, pos, 24);
        ASSERT_EQ(rx.next(), event::header);
        rx.deliver_to(io_vecs(pieces.data(), pieces.size()), 512);
        ASSERT_EQ(rx.next(), event::need_more);
        iovec iov[pdu_receiver::max_receive_iov];
        const unsigned n = rx.receive_iov(iov);
        ASSERT_EQ(n, pdu_receiver::max_receive_iov);
        EXPECT_EQ(iov[0].iov_base, mem[0].data() + 512);
        EXPECT_EQ(iov[0].iov_len, 512u);
        for (unsigned i = 1; i < n - 1; ++i) {
            EXPECT_EQ(iov[i].iov_base, mem[i].data());
            EXPECT_EQ(iov[i].iov_len, 1024u);
        }
    }
}

TEST(nvme_pdu_receiver, data_digest_checked_after_a_direct_receive) {
    const bytes data = pattern(8192, 13);
    for (bool corrupt : {false, true}) {
        const bytes wire = frame(h2c_header(1, 0, 0, 8192), data, {true, true, 0, tcp::pdu_flags::last_pdu, false, corrupt});
        driver d(true, true);
        d.feed(wire, {28, 8192, 4});  // header + digest, data (direct), data digest
        if (corrupt) {
            EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::h2c_data, 8192), "E3/0"}));
        } else {
            EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::h2c_data, 8192), "D"}));
            EXPECT_TRUE(d.sink_data(0) == data);
        }
    }
}

// ---- errors ----------------------------------------------------------------------

namespace {

// A common header (and the rest of a header of that type) with chosen fields.
bytes raw_header(std::uint8_t type, std::uint8_t flags, std::uint8_t hlen, std::uint8_t pdo, std::uint32_t plen) {
    bytes b(std::max<std::size_t>(hlen, 8) + 8, std::byte{0});
    tcp::pdu_common_header ch{type, flags, hlen, pdo, plen};
    std::memcpy(b.data(), &ch, sizeof ch);
    return b;
}

std::vector<std::string> errors_of(const bytes& wire, bool hd, bool dd, std::uint32_t max_plen = k_max_plen) {
    driver d(hd, dd);
    d.rx.configure(hd, dd, max_plen);
    d.feed(wire, {1});  // one byte at a time: the check fires as soon as it can
    return d.log;
}

}  // namespace

TEST(nvme_pdu_receiver, bad_headers_fail_with_fes_invalid_header_field_and_the_field) {
    using tcp::pdu_flags::ddgstf;
    using tcp::pdu_flags::hdgstf;
    using tcp::pdu_flags::last_pdu;
    using tcp::pdu_flags::success;
    const std::uint8_t cap = 0x04, resp = 0x05, h2c = 0x06, c2h = 0x07, term = 0x02;
    struct bad {
        const char* what;
        bytes wire;
        bool hd, dd;
        std::string want;
    };
    const std::string type = "E1/0", flags = "E1/1", hlen = "E1/2", pdo = "E1/3", plen = "E1/4";
    const std::vector<bad> cases = {
        {"reserved type 08h", raw_header(0x08, 0, 24, 0, 24), false, false, type},
        {"unknown type 42h", raw_header(0x42, 0, 24, 0, 24), false, false, type},
        {"CapsuleCmd with LAST_PDU", raw_header(cap, last_pdu, 72, 0, 72), false, false, flags},
        {"HDGSTF not negotiated", raw_header(cap, hdgstf, 72, 0, 76), false, false, flags},
        {"no HDGSTF though negotiated", raw_header(cap, 0, 72, 0, 72), true, false, flags},
        {"DDGSTF not negotiated", raw_header(cap, ddgstf, 72, 72, 72 + 8), false, false, flags},
        {"no DDGSTF though negotiated", raw_header(h2c, last_pdu, 24, 24, 24 + 8), false, true, flags},
        {"DDGSTF on a PDU without data", raw_header(cap, ddgstf, 72, 0, 72), false, true, flags},
        {"SUCCESS without LAST_PDU", raw_header(c2h, success, 24, 24, 24 + 8), false, false, flags},
        {"TermReq with HDGSTF", raw_header(term, hdgstf, 24, 0, 24), true, true, flags},
        {"CapsuleCmd HLEN 71", raw_header(cap, 0, 71, 0, 71), false, false, hlen},
        {"CapsuleResp HLEN 72", raw_header(resp, 0, 72, 0, 72), false, false, hlen},
        {"PDO on a CapsuleResp", raw_header(resp, 0, 24, 24, 24), false, false, pdo},
        {"PDO inside the header", raw_header(cap, 0, 72, 64, 72 + 8), false, false, pdo},
        {"PDO inside the header digest", raw_header(cap, hdgstf, 72, 72, 76 + 8), true, false, pdo},
        {"PDO not dword aligned", raw_header(cap, 0, 72, 74, 74 + 8), false, false, pdo},
        {"data PDU without PDO", raw_header(h2c, last_pdu, 24, 0, 24 + 8), false, false, pdo},
        {"TermReq PDO 8", raw_header(term, 0, 24, 8, 24), false, false, pdo},
        {"PLEN shorter than the header", raw_header(resp, 0, 24, 0, 20), false, false, plen},
        {"PLEN of a CapsuleResp with a digest", raw_header(resp, hdgstf, 24, 0, 24), true, false, plen},
        {"PLEN leaves no data after PDO", raw_header(h2c, last_pdu, 24, 24, 24), false, false, plen},
        {"PLEN leaves no room for the data digest", raw_header(h2c, last_pdu | ddgstf, 24, 24, 27), false, true, plen},
        {"TermReq PLEN 153", raw_header(term, 0, 24, 0, 153), false, false, plen},
        {"PLEN near 2^32 (above the limit)", raw_header(h2c, last_pdu, 24, 24, 0xffffffffu), false, false, plen},
    };
    for (const bad& c : cases) {
        EXPECT_EQ(errors_of(c.wire, c.hd, c.dd), std::vector<std::string>{c.want}) << c.what;
    }
    // PLEN above the receiver's limit (FEI: PLEN).
    EXPECT_EQ(errors_of(raw_header(h2c, last_pdu, 24, 24, 24 + 4097), false, false, 24 + 4096),
              std::vector<std::string>{plen});
    // The limit itself is fine.
    bytes at_limit = frame(h2c_header(1, 0, 0, 4096), pattern(4096, 1), {false, false, 0, last_pdu});
    EXPECT_EQ(errors_of(at_limit, false, false, 24 + 4096),
              (std::vector<std::string>{hdr_event(tcp::pdu_type::h2c_data, 4096), "D"}));
}

TEST(nvme_pdu_receiver, bad_header_after_good_pdus_and_nothing_after_it) {
    // Good PDUs, then a bad one in the same receive, then more: the good
    // ones are handed out, the bad one fails, nothing after it is parsed.
    bytes wire = concat({frame(capsule_header(1), {}, {}), frame(capsule_header(2, 10), pattern(10, 1), {}),
                         raw_header(0x42, 0, 24, 0, 24), frame(capsule_header(3), {}, {})});
    driver d;
    d.feed_all(wire);
    EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::capsule_cmd, 0),
                                               hdr_event(tcp::pdu_type::capsule_cmd, 10), "D", "E1/0"}));
    // More bytes change nothing.
    iovec iov[pdu_receiver::max_receive_iov];
    const unsigned n = d.rx.receive_iov(iov);
    ASSERT_GE(n, 1u);
    const bytes more = frame(capsule_header(4), {}, {});
    d.rx.received(scatter(iov, n, more));
    EXPECT_EQ(d.rx.next(), event::error);
}

TEST(nvme_pdu_receiver, header_digest_mismatch) {
    for (bool dd : {false, true}) {
        // A capsule, a corrupt header digest on an H2CData: FES 03h, and its
        // data never lands.
        bytes wire = concat({frame(capsule_header(1), {}, {true, dd}),
                             frame(h2c_header(1, 0, 0, 100), pattern(100, 1),
                                   {true, dd, 0, tcp::pdu_flags::last_pdu, /*corrupt_hd=*/true})});
        for (std::size_t chunk : {std::size_t{1}, wire.size()}) {
            driver d(true, dd);
            d.feed(wire, {chunk});
            EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::capsule_cmd, 0),
                                                       "E" + std::to_string(tcp::fes::header_digest_error) + "/0"}));
            EXPECT_TRUE(d.sinks.empty());
        }
    }
}

// There is no FES for a data digest error in NVMe/TCP 1.0: like SPDK's
// fatal path, the receiver reports Header Digest Error (03h).
TEST(nvme_pdu_receiver, data_digest_mismatch) {
    for (bool hd : {false, true}) {
        bytes wire = concat({frame(capsule_header(1, 512), pattern(512, 1), {hd, true, 0, 0, false, true}),
                             frame(capsule_header(2), {}, {hd, true})});
        for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, wire.size()}) {
            driver d(hd, true);
            d.feed(wire, {chunk});
            EXPECT_EQ(d.log, (std::vector<std::string>{hdr_event(tcp::pdu_type::capsule_cmd, 512), "E3/0"}))
                << "chunk " << chunk;
        }
    }
}
