// nvme/transport/pdu_sender on a reactor (one shard) over an AF_UNIX
// socketpair: the sender writes one end, the test reads the other (without
// blocking the reactor: a non-blocking drain once the sender has drained, or
// a uring receive running beside it). Covers: PDUs queued in one loop
// iteration leave in one sendmsg (sends() counter), in two iterations in two;
// framing (HDGSTF/DDGSTF, PDO for every peer alignment, PLEN, header and data
// digests, zero padding) byte for byte as read from the other end, with the
// data gathered from several io_vecs at an offset and queue_raw() bytes
// copied; tokens reported only once their bytes are in the socket, in order,
// and a listener that queues from pdu_sent(); batches larger than the
// socket buffer (partial sends); queue() false when the batch's iovecs,
// arena or tokens are full and space() once it has gone; a failed socket
// (peer closed before, or while a send is blocked) reporting every token
// not sent, failed(), queue() false and drained() ready. Every wait is
// bounded.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/transport/pdu_receiver.hh"
#include "nvme/transport/pdu_sender.hh"
#include "runtime/crc32c.hh"
#include "runtime/reactor.hh"
#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace ioe::nvme;
using namespace std::chrono_literals;
using ioe::nvme::tcp::pdu_sender;

// ASSERT_* returns from a void function; in a coroutine: expect, then leave.
#define CO_ASSERT_TRUE(c)             \
    do {                              \
        const bool ok_ = (c);         \
        EXPECT_TRUE(ok_) << #c;       \
        if (!ok_) co_return;          \
    } while (0)
#define CO_ASSERT_EQ(a, b)            \
    do {                              \
        const bool ok_ = (a) == (b);  \
        EXPECT_EQ(a, b);              \
        if (!ok_) co_return;          \
    } while (0)
#define CO_ASSERT_GE(a, b)            \
    do {                              \
        const bool ok_ = (a) >= (b);  \
        EXPECT_GE(a, b);              \
        if (!ok_) co_return;          \
    } while (0)

namespace {

using bytes = std::vector<std::byte>;

bytes pattern(std::size_t n, unsigned seed) {
    bytes v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 29 + seed * 13 + (i >> 10)) & 0xff);
    return v;
}

template <typename T>
std::span<const std::byte> raw(const T& v) {
    return std::as_bytes(std::span(&v, 1));
}

struct recorder final : pdu_sender::listener {
    struct report {
        std::uint32_t token;
        bool sent;
        std::size_t peer_bytes;  // bytes waiting at the other end when reported
    };
    std::vector<report> reports;
    int peer_fd = -1;
    std::function<void(std::uint32_t)> also;  // runs after recording

    void pdu_sent(std::uint32_t token, bool sent) noexcept override {
        std::size_t waiting = 0;
        if (peer_fd >= 0) {
            static thread_local std::vector<char> peek(8 << 20);
            ssize_t r = ::recv(peer_fd, peek.data(), peek.size(), MSG_PEEK | MSG_DONTWAIT);
            waiting = r > 0 ? static_cast<std::size_t>(r) : 0;
        }
        reports.push_back({token, sent, waiting});
        if (also) also(token);
    }
};

// A socketpair whose ends close with the test.
struct pair_fds {
    int fd[2] = {-1, -1};
    pair_fds() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) != 0) throw std::runtime_error("socketpair");
    }
    ~pair_fds() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    void close_peer() {
        ::close(fd[1]);
        fd[1] = -1;
    }
};

// Everything readable at `fd` now (non-blocking).
bytes read_available(int fd) {
    bytes out;
    std::byte buf[65536];
    for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r <= 0) break;
        out.insert(out.end(), buf, buf + r);
    }
    return out;
}

// What a conforming sender puts on the wire for `header` (hlen bytes, type
// and the type's own flags set) with `data`: computed here independently.
bytes expected_frame(bytes header, const bytes& data, bool hd, bool dd, std::uint8_t peer_pda) {
    tcp::pdu_common_header ch;
    std::memcpy(&ch, header.data(), sizeof ch);
    const std::uint32_t hdl = hd ? 4 : 0;
    const std::uint32_t ddl = (dd && !data.empty()) ? 4 : 0;
    const std::uint32_t align = (std::uint32_t{peer_pda} + 1) * 4;
    const std::uint32_t pdo = data.empty() ? 0 : (ch.hlen + hdl + align - 1) / align * align;
    ch.flags = static_cast<std::uint8_t>(ch.flags | (hdl ? tcp::pdu_flags::hdgstf : 0) |
                                         (ddl ? tcp::pdu_flags::ddgstf : 0));
    ch.pdo = static_cast<std::uint8_t>(pdo);
    ch.plen = static_cast<std::uint32_t>(data.empty() ? ch.hlen + hdl : pdo + data.size() + ddl);
    std::memcpy(header.data(), &ch, sizeof ch);
    bytes out = header;
    auto put32 = [&out](std::uint32_t v) {
        auto* p = reinterpret_cast<const std::byte*>(&v);
        out.insert(out.end(), p, p + 4);
    };
    if (hdl) put32(crc32c(header.data(), header.size()));
    if (!data.empty()) {
        out.resize(pdo, std::byte{0});
        out.insert(out.end(), data.begin(), data.end());
        if (ddl) put32(crc32c(data.data(), data.size()));
    }
    return out;
}

bytes resp_pdu(std::uint16_t cid) {
    tcp::capsule_resp r{};
    r.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp);
    r.ch.hlen = sizeof r;
    r.rccqe.cid = cid;
    r.rccqe.sqhd = static_cast<std::uint16_t>(cid * 3);
    bytes b(sizeof r);
    std::memcpy(b.data(), &r, sizeof r);
    return b;
}

bytes c2h_pdu(std::uint16_t cid, std::uint32_t datal, bool last = true) {
    tcp::c2h_data h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_data);
    h.ch.flags = last ? tcp::pdu_flags::last_pdu : 0;
    h.ch.hlen = sizeof h;
    h.cccid = cid;
    h.datal = datal;
    bytes b(sizeof h);
    std::memcpy(b.data(), &h, sizeof h);
    return b;
}

bytes r2t_pdu(std::uint16_t cid, std::uint32_t len) {
    tcp::r2t h{};
    h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::r2t);
    h.ch.hlen = sizeof h;
    h.cccid = cid;
    h.ttag = 7;
    h.r2tl = len;
    bytes b(sizeof h);
    std::memcpy(b.data(), &h, sizeof h);
    return b;
}

void append(bytes& a, const bytes& b) { a.insert(a.end(), b.begin(), b.end()); }

// Runs body on shard 0 of a one-shard engine.
void on_reactor(std::function<future<>()> body) {
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        co_await with_timeout(20s, body());
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

}  // namespace

// ---- batching -------------------------------------------------------------------

TEST(nvme_pdu_sender, pdus_of_one_loop_iteration_leave_in_one_send) {
    on_reactor([]() -> future<> {
        pair_fds p;
        recorder rec;
        rec.peer_fd = p.fd[1];
        pdu_sender tx(local_reactor()->io(), p.fd[0], &rec);
        bytes want;
        std::vector<bytes> data;
        data.reserve(100);  // the buffers queued below stay where they are
        for (unsigned i = 0; i < 100; ++i) {
            if (i % 4 == 3) {
                data.push_back(pattern(100 + i, i));
                const bytes h = c2h_pdu(static_cast<std::uint16_t>(i), static_cast<std::uint32_t>(data.back().size()));
                io_vec v{data.back().data(), static_cast<std::uint32_t>(data.back().size()), -1};
                EXPECT_TRUE(tx.queue(h, io_vecs(&v, 1), 0, v.len, i + 1));
                append(want, expected_frame(h, data.back(), false, false, 0));
            } else {
                const bytes h = resp_pdu(static_cast<std::uint16_t>(i));
                EXPECT_TRUE(tx.queue(h, {}, 0, 0, i + 1));
                append(want, expected_frame(h, {}, false, false, 0));
            }
        }
        // Nothing goes before the end of this loop iteration.
        EXPECT_TRUE(rec.reports.empty());
        EXPECT_EQ(tx.sends(), 0u);
        EXPECT_FALSE(tx.idle());
        co_await tx.drained();
        EXPECT_TRUE(tx.idle());
        EXPECT_EQ(tx.sends(), 1u) << "100 PDUs of one loop iteration: one sendmsg";
        EXPECT_EQ(tx.pdus(), 100u);
        const bytes got = read_available(p.fd[1]);
        EXPECT_EQ(got.size(), want.size());
        EXPECT_TRUE(got == want);
        // Every token, in order, reported sent once its bytes were there.
        CO_ASSERT_EQ(rec.reports.size(), 100u);
        for (unsigned i = 0; i < 100; ++i) {
            EXPECT_EQ(rec.reports[i].token, i + 1);
            EXPECT_TRUE(rec.reports[i].sent);
            EXPECT_EQ(rec.reports[i].peer_bytes, want.size());
        }
    });
}

TEST(nvme_pdu_sender, two_loop_iterations_two_sends_and_a_listener_that_queues) {
    on_reactor([]() -> future<> {
        pair_fds p;
        recorder rec;
        pdu_sender tx(local_reactor()->io(), p.fd[0], &rec);
        bytes want;
        EXPECT_TRUE(tx.queue(resp_pdu(1), {}, 0, 0, 1));
        append(want, expected_frame(resp_pdu(1), {}, false, false, 0));
        co_await sleep(2ms);  // the first batch leaves at the end of that iteration
        EXPECT_TRUE(tx.queue(resp_pdu(2), {}, 0, 0, 2));
        append(want, expected_frame(resp_pdu(2), {}, false, false, 0));
        co_await tx.drained();
        EXPECT_EQ(tx.sends(), 2u);
        // A listener that answers a sent PDU with another one (as a qpair
        // sends the next R2T): it goes in a later send, after the first.
        rec.also = [&tx](std::uint32_t token) {
            if (token == 3) EXPECT_TRUE(tx.queue(resp_pdu(4), {}, 0, 0, 4));
        };
        EXPECT_TRUE(tx.queue(resp_pdu(3), {}, 0, 0, 3));
        append(want, expected_frame(resp_pdu(3), {}, false, false, 0));
        append(want, expected_frame(resp_pdu(4), {}, false, false, 0));
        co_await tx.drained();
        EXPECT_EQ(tx.sends(), 4u);
        EXPECT_TRUE(read_available(p.fd[1]) == want);
        CO_ASSERT_EQ(rec.reports.size(), 4u);
        for (unsigned i = 0; i < 4; ++i) {
            EXPECT_EQ(rec.reports[i].token, i + 1);
            EXPECT_TRUE(rec.reports[i].sent);
        }
    });
}

// ---- framing ----------------------------------------------------------------------

TEST(nvme_pdu_sender, framing_digests_pdo_and_plen) {
    on_reactor([]() -> future<> {
        for (int digests = 0; digests < 4; ++digests) {
            for (std::uint8_t pda : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{7}, std::uint8_t{31}}) {
                const bool hd = digests & 1, dd = digests & 2;
                pair_fds p;
                recorder rec;
                pdu_sender tx(local_reactor()->io(), p.fd[0], &rec);
                tx.configure(hd, dd, pda);
                // C2HData gathered from three pieces at an offset: bytes 300 ..
                // 300 + 5000 of a [1000 | 2500 | 3000] buffer.
                bytes m0 = pattern(1000, 1), m1 = pattern(2500, 2), m2 = pattern(3000, 3);
                io_vec pieces[3] = {{m0.data(), 1000, -1}, {m1.data(), 2500, -1}, {m2.data(), 3000, -1}};
                bytes all;
                append(all, m0);
                append(all, m1);
                append(all, m2);
                const bytes data(all.begin() + 300, all.begin() + 5300);
                bytes want;
                // An ICResp as it is (queue_raw copies it: the source changes after).
                tcp::ic_resp icr{};
                icr.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_resp);
                icr.ch.hlen = sizeof icr;
                icr.ch.plen = sizeof icr;
                icr.maxh2cdata = 131072;
                EXPECT_TRUE(tx.queue_raw(raw(icr)));
                append(want, bytes(raw(icr).begin(), raw(icr).end()));
                icr.maxh2cdata = 1;
                const bytes c2h = c2h_pdu(9, 5000);
                EXPECT_TRUE(tx.queue(c2h, io_vecs(pieces, 3), 300, 5000, 1));
                append(want, expected_frame(c2h, data, hd, dd, pda));
                // The SUCCESS flag the caller set stays.
                bytes c2hs = c2h_pdu(10, 8);
                c2hs[1] = static_cast<std::byte>(tcp::pdu_flags::last_pdu | tcp::pdu_flags::success);
                EXPECT_TRUE(tx.queue(c2hs, io_vecs(pieces, 1), 992, 8, 2));
                append(want, expected_frame(c2hs, bytes(m0.begin() + 992, m0.end()), hd, dd, pda));
                EXPECT_TRUE(tx.queue(r2t_pdu(11, 65536), {}, 0, 0, 3));
                append(want, expected_frame(r2t_pdu(11, 65536), {}, hd, dd, pda));
                EXPECT_TRUE(tx.queue(resp_pdu(12)));
                append(want, expected_frame(resp_pdu(12), {}, hd, dd, pda));
                co_await tx.drained();
                const bytes got = read_available(p.fd[1]);
                EXPECT_TRUE(got == want) << "hd " << hd << " dd " << dd << " pda " << int(pda) << ": " << got.size()
                                         << " bytes, want " << want.size();
                // The C2HData header as read: PDO aligned to the peer, PLEN.
                tcp::c2h_data h;
                CO_ASSERT_GE(got.size(), 128 + sizeof h);
                std::memcpy(&h, got.data() + 128, sizeof h);
                const std::uint32_t align = (pda + 1u) * 4;
                EXPECT_EQ(h.ch.pdo % align, 0u);
                EXPECT_GE(h.ch.pdo, 24u + (hd ? 4 : 0));
                EXPECT_LT(h.ch.pdo, 24u + (hd ? 4 : 0) + align);
                EXPECT_EQ(h.ch.plen, h.ch.pdo + 5000u + (dd ? 4 : 0));
                EXPECT_EQ((h.ch.flags & tcp::pdu_flags::hdgstf) != 0, hd);
                EXPECT_EQ((h.ch.flags & tcp::pdu_flags::ddgstf) != 0, dd);
                EXPECT_EQ(h.ch.flags & tcp::pdu_flags::last_pdu, tcp::pdu_flags::last_pdu);
                // And our own receiver, as a host with that HPDA, accepts it all.
                tcp::pdu_receiver rx;
                rx.configure(false, false, 128);
                iovec iov[tcp::pdu_receiver::max_receive_iov];
                std::size_t pos = 0;
                unsigned headers = 0, datas = 0;
                bytes sink(8192);
                for (;;) {
                    auto ev = rx.next();
                    if (ev == tcp::pdu_receiver::event::error) {
                        ADD_FAILURE() << "our receiver refused what we sent: " << rx.error().what;
                        break;
                    }
                    if (ev == tcp::pdu_receiver::event::header) {
                        if (++headers == 1) rx.configure(hd, dd, 1 << 20, pda);  // after the ICResp
                        if (rx.data_length() > 0) rx.deliver_to(sink.data());
                        continue;
                    }
                    if (ev == tcp::pdu_receiver::event::data) {
                        if (++datas == 1) EXPECT_TRUE(std::equal(data.begin(), data.end(), sink.begin()));
                        continue;
                    }
                    if (pos == got.size()) break;
                    const unsigned n = rx.receive_iov(iov);
                    std::size_t k = std::min(iov[0].iov_len, got.size() - pos);
                    std::memcpy(iov[0].iov_base, got.data() + pos, k);
                    rx.received(k);
                    pos += k;
                    (void)n;
                }
                EXPECT_EQ(headers, 5u);
                EXPECT_EQ(datas, 2u);
                CO_ASSERT_EQ(rec.reports.size(), 3u);
            }
        }
    });
}

// ---- partial sends ------------------------------------------------------------------

namespace {

future<bytes> read_exactly(int fd, std::size_t n) {
    bytes out(n);
    std::size_t got = 0;
    while (got < n) {
        io_result r = co_await local_reactor()->io().recv(fd, out.data() + got, n - got, 0);
        if (!r || r.value() == 0) break;
        got += r.value();
    }
    out.resize(got);
    co_return out;
}

}  // namespace

TEST(nvme_pdu_sender, batches_larger_than_the_socket_buffer) {
    on_reactor([]() -> future<> {
        pair_fds p;
        int small = 16384;
        ::setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        recorder rec;
        pdu_sender tx(local_reactor()->io(), p.fd[0], &rec);
        tx.configure(true, true, 0);
        // Three 1 MiB C2HData PDUs, each from 16 pieces, and responses
        // between them: far more than one sendmsg moves.
        std::vector<bytes> bufs;
        bufs.reserve(48);
        bytes want;
        for (unsigned pdu_no = 0; pdu_no < 3; ++pdu_no) {
            std::vector<io_vec> pieces;
            bytes data;
            for (unsigned i = 0; i < 16; ++i) {
                bufs.push_back(pattern(65536, pdu_no * 16 + i));
                pieces.push_back(io_vec{bufs.back().data(), 65536, -1});
                append(data, bufs.back());
            }
            const bytes h = c2h_pdu(static_cast<std::uint16_t>(pdu_no), 1u << 20);
            EXPECT_TRUE(tx.queue(h, io_vecs(pieces.data(), pieces.size()), 0, 1u << 20, pdu_no * 2 + 1));
            append(want, expected_frame(h, data, true, true, 0));
            EXPECT_TRUE(tx.queue(resp_pdu(static_cast<std::uint16_t>(pdu_no)), {}, 0, 0, pdu_no * 2 + 2));
            append(want, expected_frame(resp_pdu(static_cast<std::uint16_t>(pdu_no)), {}, true, true, 0));
        }
        bytes got = co_await read_exactly(p.fd[1], want.size());
        co_await tx.drained();
        EXPECT_EQ(got.size(), want.size());
        EXPECT_TRUE(got == want);
        EXPECT_GT(tx.sends(), 1u) << "expected partial sends";
        CO_ASSERT_EQ(rec.reports.size(), 6u);
        for (unsigned i = 0; i < 6; ++i) {
            EXPECT_EQ(rec.reports[i].token, i + 1);
            EXPECT_TRUE(rec.reports[i].sent);
        }
    });
}

// ---- bounds ---------------------------------------------------------------------

TEST(nvme_pdu_sender, queue_refuses_when_the_batch_is_full_and_space_follows) {
    on_reactor([]() -> future<> {
        {
            // Tokens: a batch holds max_iov (8) of them.
            pair_fds p;
            recorder rec;
            pdu_sender tx(local_reactor()->io(), p.fd[0], &rec, 8, 1024);
            unsigned queued = 0;
            while (queued < 100 && tx.queue(resp_pdu(static_cast<std::uint16_t>(queued)), {}, 0, 0, queued + 1)) {
                ++queued;
            }
            EXPECT_EQ(queued, 8u);
            co_await with_timeout(5s, tx.space());
            EXPECT_EQ(rec.reports.size(), 8u) << "space() before the full batch had gone";
            EXPECT_TRUE(tx.queue(resp_pdu(100), {}, 0, 0, 9));
            co_await tx.drained();
            EXPECT_EQ(read_available(p.fd[1]).size(), 9u * 24);
            EXPECT_EQ(rec.reports.size(), 9u);
        }
        {
            // Arena: 1024 bytes of framing hold 42 CapsuleResps of 24 bytes.
            pair_fds p;
            recorder rec;
            pdu_sender tx(local_reactor()->io(), p.fd[0], &rec, 8, 1024);
            unsigned queued = 0;
            while (queued < 100 && tx.queue(resp_pdu(static_cast<std::uint16_t>(queued)))) ++queued;
            EXPECT_EQ(queued, 42u);
            EXPECT_FALSE(tx.queue_raw(std::span<const std::byte>(resp_pdu(1))));
            co_await with_timeout(5s, tx.space());
            EXPECT_TRUE(tx.queue(resp_pdu(100)));
            co_await tx.drained();
            EXPECT_EQ(read_available(p.fd[1]).size(), 43u * 24);
        }
        {
            // iovecs: data PDUs from separate buffers, 8 iovecs per batch:
            // header, data, then digest + next header merge... a PDU needs
            // room for 2 + its pieces.
            pair_fds p;
            recorder rec;
            pdu_sender tx(local_reactor()->io(), p.fd[0], &rec, 8, 4096);
            tx.configure(false, true, 0);
            std::vector<bytes> bufs;
            bufs.reserve(20);
            bytes want;
            unsigned queued = 0;
            for (; queued < 20; ++queued) {
                bufs.push_back(pattern(512, queued));
                io_vec v{bufs.back().data(), 512, -1};
                const bytes h = c2h_pdu(static_cast<std::uint16_t>(queued), 512);
                if (!tx.queue(h, io_vecs(&v, 1), 0, 512, queued + 1)) break;
                append(want, expected_frame(h, bufs.back(), false, true, 0));
            }
            EXPECT_GE(queued, 2u);
            EXPECT_LT(queued, 8u);
            co_await with_timeout(5s, tx.space());
            co_await tx.drained();
            EXPECT_TRUE(read_available(p.fd[1]) == want);
            EXPECT_EQ(rec.reports.size(), queued);
        }
    });
}

// ---- a failed socket ----------------------------------------------------------------

TEST(nvme_pdu_sender, peer_gone_before_the_send_reports_every_token_not_sent) {
    on_reactor([]() -> future<> {
        pair_fds p;
        p.close_peer();
        recorder rec;
        pdu_sender tx(local_reactor()->io(), p.fd[0], &rec);
        for (unsigned i = 1; i <= 5; ++i) EXPECT_TRUE(tx.queue(resp_pdu(static_cast<std::uint16_t>(i)), {}, 0, 0, i));
        co_await with_timeout(5s, tx.drained());
        EXPECT_TRUE(tx.failed());
        CO_ASSERT_EQ(rec.reports.size(), 5u);
        for (unsigned i = 0; i < 5; ++i) {
            EXPECT_EQ(rec.reports[i].token, i + 1);
            EXPECT_FALSE(rec.reports[i].sent);
        }
        // From now on nothing is taken, and waits end at once.
        EXPECT_FALSE(tx.queue(resp_pdu(6), {}, 0, 0, 6));
        EXPECT_FALSE(tx.queue_raw(std::span<const std::byte>(resp_pdu(7))));
        EXPECT_TRUE(tx.space().available());
        EXPECT_TRUE(tx.drained().available());
        EXPECT_EQ(rec.reports.size(), 5u);
    });
}

TEST(nvme_pdu_sender, peer_gone_while_a_send_is_blocked) {
    on_reactor([]() -> future<> {
        pair_fds p;
        recorder rec;
        pdu_sender tx(local_reactor()->io(), p.fd[0], &rec);
        // 8 MiB the peer never reads: the send blocks once the socket is full.
        bytes big = pattern(8u << 20, 1);
        io_vec v{big.data(), static_cast<std::uint32_t>(big.size()), -1};
        EXPECT_TRUE(tx.queue(c2h_pdu(1, v.len), io_vecs(&v, 1), 0, v.len, 1));
        co_await sleep(20ms);
        EXPECT_GE(tx.sends(), 1u);
        EXPECT_TRUE(rec.reports.empty()) << "reported before its bytes had gone";
        // More while the first batch is stuck: pending.
        for (unsigned i = 2; i <= 4; ++i) EXPECT_TRUE(tx.queue(resp_pdu(static_cast<std::uint16_t>(i)), {}, 0, 0, i));
        auto drained = tx.drained();
        EXPECT_FALSE(drained.available());
        co_await sleep(5ms);
        EXPECT_TRUE(rec.reports.empty());
        p.close_peer();
        co_await with_timeout(5s, std::move(drained));
        EXPECT_TRUE(tx.failed());
        CO_ASSERT_EQ(rec.reports.size(), 4u);
        for (unsigned i = 0; i < 4; ++i) {
            EXPECT_EQ(rec.reports[i].token, i + 1);
            EXPECT_FALSE(rec.reports[i].sent) << "token " << i + 1;
        }
        EXPECT_FALSE(tx.queue(resp_pdu(5), {}, 0, 0, 5));
    });
}

// queue() said no to a PDU on an idle sender (it needs more iovecs than a
// batch holds): nothing is queued or in flight, so space() has nothing to
// wait for and must not leave its caller waiting for ever (it used to park
// a promise that only a send completion would resolve).
TEST(nvme_pdu_sender, space_is_ready_when_nothing_is_queued_or_in_flight) {
    on_reactor([]() -> future<> {
        pair_fds p;
        recorder rec;
        pdu_sender tx(local_reactor()->io(), p.fd[0], &rec, 8, 1024);
        std::vector<bytes> bufs(7, pattern(100, 1));
        std::vector<io_vec> pieces;
        for (auto& b : bufs) pieces.push_back(io_vec{b.data(), 100, -1});
        // 7 pieces + header + digest: more than 8 iovecs.
        EXPECT_FALSE(tx.queue(c2h_pdu(1, 700), io_vecs(pieces.data(), pieces.size()), 0, 700, 1));
        EXPECT_TRUE(tx.idle());
        EXPECT_FALSE(tx.failed());
        bool ready = false;
        try {
            co_await with_timeout(1s, tx.space());
            ready = true;
        } catch (const timed_out_error&) {
        }
        EXPECT_TRUE(ready) << "space() still not ready after 1 s with nothing queued or in flight";
        // The sender still works.
        EXPECT_TRUE(tx.queue(resp_pdu(2), {}, 0, 0, 2));
        co_await tx.drained();
        EXPECT_EQ(rec.reports.size(), 1u);
    });
}
