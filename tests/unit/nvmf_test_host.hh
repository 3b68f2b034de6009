// A small blocking NVMe/TCP host for target tests: plain POSIX sockets on
// its own std::thread (so the reactors keep running), every receive bounded
// by SO_RCVTIMEO so a target bug fails a test instead of hanging it; command
// helpers (Connect, properties, Identify, reads and writes, digests), a
// session (admin + I/O queue) and with_target(), which runs a client against
// an nvmf_target serving a 16 MiB malloc namespace and lets the client run
// configuration calls on the target's home shard (optionally with the
// namespace behind a fault_device, so a test can delay or fail its I/O).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"
#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_check.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/target/target.hh"
#include "runtime/crc32c.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/fault_device.hh"
#include "tests/unit/test_engine.hh"

namespace ioe::nvme::test_host {

using namespace std::chrono_literals;


constexpr char k_subnqn[] = "nqn.2026-11.io.ioengine:test";
constexpr char k_good_host[] = "nqn.host:good";
constexpr char k_other_host[] = "nqn.host:other";  // allowed too: a second host (reservations)
constexpr char k_ns_uri[] = "malloc:///ns1?size_mb=16&blk_size=512";
constexpr std::uint32_t k_block = 512;
constexpr std::uint64_t k_blocks = 16ull * 1024 * 1024 / k_block;  // 32768

inline std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// ---- the host ----------------------------------------------------------------

struct pdu {
    tcp::pdu_common_header ch{};
    std::array<std::byte, 128> hdr{};  // the whole PDU header, common header included
    std::vector<std::byte> data;

    tcp::pdu_type type() const { return static_cast<tcp::pdu_type>(ch.pdu_type); }
    template <typename T>
    T as() const {
        T v;
        std::memcpy(&v, hdr.data(), sizeof v);
        return v;
    }
};

struct cmd_result {
    cqe cq{};
    std::vector<std::byte> data;  // C2HData, placed at DATAO
    unsigned r2ts = 0;
    unsigned c2h_pdus = 0;
    bool success_flag = false;  // the last C2HData carried SUCCESS: no CapsuleResp came
};

inline std::uint8_t sc_of(const cqe& c) { return status_code(c.status); }
inline std::uint8_t sct_of(const cqe& c) { return status_code_type(c.status); }

// One NVMe/TCP connection, blocking, every receive bounded by 5 s.
class host {
public:
    explicit host(std::uint16_t port) {
        _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (_fd < 0) throw std::runtime_error(errno_text("socket"));
        timeval tv{5, 0};
        ::setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        ::setsockopt(_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        if (::connect(_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            int err = errno;
            ::close(_fd);
            errno = err;
            throw std::runtime_error(errno_text("connect"));
        }
    }
    ~host() {
        if (_fd >= 0) ::close(_fd);
    }
    host(const host&) = delete;
    host& operator=(const host&) = delete;

    bool hdgst = false;
    bool ddgst = false;
    std::uint32_t maxh2cdata = 0;

    void send_raw(const void* p, std::size_t n) {
        auto* b = static_cast<const char*>(p);
        while (n > 0) {
            ssize_t r = ::send(_fd, b, n, MSG_NOSIGNAL);
            if (r <= 0) throw std::runtime_error(errno_text("send"));
            b += r;
            n -= static_cast<std::size_t>(r);
        }
    }
    void recv_raw(void* p, std::size_t n) {
        auto* b = static_cast<char*>(p);
        while (n > 0) {
            ssize_t r = ::recv(_fd, b, n, 0);
            if (r == 0) throw std::runtime_error("recv: the target closed the connection");
            if (r < 0) {
                if (errno == EINTR) continue;
                throw std::runtime_error(errno_text("recv"));
            }
            b += r;
            n -= static_cast<std::size_t>(r);
        }
    }
    // Bytes (or EOF) arrive within `wait` (nothing is consumed).
    bool readable_within(std::chrono::milliseconds wait) {
        pollfd p{_fd, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
    }
    // Closes the connection now (a host that goes away).
    void close_now() {
        if (_fd >= 0) ::close(_fd);
        _fd = -1;
    }

    // The target closed the connection (EOF or reset) within the timeout.
    bool peer_closed() {
        char b;
        for (;;) {
            ssize_t r = ::recv(_fd, &b, 1, 0);
            if (r == 0) return true;
            if (r < 0 && errno == EINTR) continue;
            return r < 0 && (errno == ECONNRESET || errno == EPIPE);
        }
    }

    // Receives one PDU, checking its digests.
    pdu recv_pdu() {
        pdu p;
        recv_raw(p.hdr.data(), sizeof p.ch);
        std::memcpy(&p.ch, p.hdr.data(), sizeof p.ch);
        if (p.ch.hlen < sizeof p.ch || p.ch.hlen > 128) throw std::runtime_error("received a PDU with a bad HLEN");
        recv_raw(p.hdr.data() + sizeof p.ch, p.ch.hlen - sizeof p.ch);
        if (p.type() == tcp::pdu_type::c2h_term_req) {
            p.data.resize(p.ch.plen - p.ch.hlen);
            if (!p.data.empty()) recv_raw(p.data.data(), p.data.size());
            return p;
        }
        const bool want_hd = hdgst && tcp::type_has_header_digest(p.ch.pdu_type);
        if (((p.ch.flags & tcp::pdu_flags::hdgstf) != 0) != want_hd) {
            throw std::runtime_error("received PDU type " + std::to_string(p.ch.pdu_type) + " with wrong HDGSTF");
        }
        if (want_hd) {
            std::uint32_t d = 0;
            recv_raw(&d, 4);
            if (d != crc32c(p.hdr.data(), p.ch.hlen)) throw std::runtime_error("received a bad header digest");
        }
        if (p.ch.pdo) {
            const std::uint32_t hd = want_hd ? 4 : 0;
            std::vector<std::byte> pad(p.ch.pdo - p.ch.hlen - hd);
            if (!pad.empty()) recv_raw(pad.data(), pad.size());
            const std::uint32_t dd = (p.ch.flags & tcp::pdu_flags::ddgstf) ? 4 : 0;
            if (ddgst != (dd != 0)) throw std::runtime_error("received a data PDU with wrong DDGSTF");
            p.data.resize(p.ch.plen - p.ch.pdo - dd);
            recv_raw(p.data.data(), p.data.size());
            if (dd) {
                std::uint32_t d = 0;
                recv_raw(&d, 4);
                if (d != crc32c(p.data.data(), p.data.size())) throw std::runtime_error("received a bad data digest");
            }
        } else if (p.ch.plen != p.ch.hlen + (want_hd ? 4u : 0u)) {
            throw std::runtime_error("received a PDU whose PLEN does not match its header");
        }
        return p;
    }

    // Sends a PDU whose header has type and hlen set; fills flags/pdo/plen and
    // the digests as negotiated. corrupt_*: send a wrong digest.
    void send_pdu(std::span<const std::byte> header, std::span<const std::byte> data, std::uint8_t extra_flags = 0,
                  bool corrupt_hdgst = false, bool corrupt_ddgst = false) {
        std::vector<std::byte> out(header.begin(), header.end());
        tcp::pdu_common_header ch;
        std::memcpy(&ch, out.data(), sizeof ch);
        const std::uint32_t hd = hdgst ? 4 : 0;
        const std::uint32_t dd = (ddgst && !data.empty()) ? 4 : 0;
        ch.flags = static_cast<std::uint8_t>(extra_flags | (hd ? tcp::pdu_flags::hdgstf : 0) |
                                             (dd ? tcp::pdu_flags::ddgstf : 0));
        ch.pdo = data.empty() ? 0 : static_cast<std::uint8_t>(ch.hlen + hd);
        ch.plen = static_cast<std::uint32_t>(ch.hlen + hd + data.size() + dd);
        std::memcpy(out.data(), &ch, sizeof ch);
        if (hd) {
            std::uint32_t d = crc32c(out.data(), ch.hlen) ^ (corrupt_hdgst ? 1u : 0u);
            auto* b = reinterpret_cast<const std::byte*>(&d);
            out.insert(out.end(), b, b + 4);
        }
        out.insert(out.end(), data.begin(), data.end());
        if (dd) {
            std::uint32_t d = crc32c(data.data(), data.size()) ^ (corrupt_ddgst ? 1u : 0u);
            auto* b = reinterpret_cast<const std::byte*>(&d);
            out.insert(out.end(), b, b + 4);
        }
        send_raw(out.data(), out.size());
    }

    // ICReq -> ICResp; checks the answer and records the digests.
    void icreq(std::uint8_t dgst = 0) {
        tcp::ic_req req{};
        req.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_req);
        req.ch.hlen = sizeof req;
        req.ch.plen = sizeof req;
        req.pfv = tcp::pfv_1_0;
        req.dgst = dgst;
        send_raw(&req, sizeof req);
        pdu p = recv_pdu();
        if (p.type() != tcp::pdu_type::ic_resp) throw std::runtime_error("ICReq: no ICResp");
        auto resp = p.as<tcp::ic_resp>();
        EXPECT_EQ(resp.ch.hlen, 128);
        EXPECT_EQ(resp.ch.plen, 128u);
        EXPECT_EQ(resp.pfv, tcp::pfv_1_0);
        EXPECT_GE(resp.maxh2cdata, tcp::min_maxh2cdata);
        EXPECT_EQ(resp.maxh2cdata % 4, 0u);
        EXPECT_EQ(resp.dgst, dgst);
        maxh2cdata = resp.maxh2cdata;
        hdgst = resp.dgst & tcp::dgst::header;
        ddgst = resp.dgst & tcp::dgst::data;
    }

    std::uint16_t next_cid() { return _cid++; }

    // Commands sent without waiting (Asynchronous Event Requests): their
    // answers may arrive during exec() and are kept in held_completions.
    std::vector<std::uint16_t> held_cids;
    std::vector<cqe> held_completions;
    bool is_held(std::uint16_t cid) const {
        return std::find(held_cids.begin(), held_cids.end(), cid) != held_cids.end();
    }
    // The answer to held command `cid` (already received, or the next PDU).
    cqe wait_held(std::uint16_t cid) {
        for (;;) {
            for (auto it = held_completions.begin(); it != held_completions.end(); ++it) {
                if (it->cid == cid) {
                    cqe c = *it;
                    held_completions.erase(it);
                    return c;
                }
            }
            pdu p = recv_pdu();
            if (p.type() != tcp::pdu_type::capsule_resp) throw std::runtime_error("expected a CapsuleResp");
            held_completions.push_back(p.as<tcp::capsule_resp>().rccqe);
        }
    }

    void send_capsule(const sqe& cmd, std::span<const std::byte> data, bool corrupt_ddgst = false) {
        tcp::capsule_cmd cap{};
        cap.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_cmd);
        cap.ch.hlen = sizeof cap;
        cap.ccsqe = cmd;
        send_pdu(std::as_bytes(std::span(&cap, 1)), data, 0, false, corrupt_ddgst);
    }

    // Sends cmd (with in-capsule data if any) and runs it to its CapsuleResp:
    // answers R2Ts from r2t_data, collects C2HData.
    cmd_result exec(const sqe& cmd, std::span<const std::byte> in_capsule = {},
                std::span<const std::byte> r2t_data = {}) {
        send_capsule(cmd, in_capsule);
        cmd_result r;
        for (;;) {
            pdu p = recv_pdu();
            switch (p.type()) {
                case tcp::pdu_type::capsule_resp: {
                    r.cq = p.as<tcp::capsule_resp>().rccqe;
                    if (r.cq.cid != cmd.cid) {
                        if (!is_held(r.cq.cid)) throw std::runtime_error("CapsuleResp for another command");
                        held_completions.push_back(r.cq);  // an Asynchronous Event Request answered
                        break;
                    }
                    return r;
                }
                case tcp::pdu_type::c2h_data: {
                    auto h = p.as<tcp::c2h_data>();
                    if (h.cccid != cmd.cid) throw std::runtime_error("C2HData for another command");
                    if (h.datal != p.data.size()) throw std::runtime_error("C2HData DATAL does not match its data");
                    if (r.data.size() < h.datao + h.datal) r.data.resize(h.datao + h.datal);
                    std::memcpy(r.data.data() + h.datao, p.data.data(), h.datal);
                    ++r.c2h_pdus;
                    if (p.ch.flags & tcp::pdu_flags::success) {
                        r.cq.cid = cmd.cid;
                        r.success_flag = true;
                        return r;
                    }
                    break;
                }
                case tcp::pdu_type::r2t: {
                    auto h = p.as<tcp::r2t>();
                    ++r.r2ts;
                    if (h.cccid != cmd.cid) throw std::runtime_error("R2T for another command");
                    if (std::uint64_t{h.r2to} + h.r2tl > r2t_data.size()) throw std::runtime_error("R2T beyond the data");
                    // Two or more H2CData PDUs: exercise DATAO and LAST_PDU.
                    const std::uint32_t chunk = std::min<std::uint32_t>(maxh2cdata, 32768);
                    for (std::uint32_t off = h.r2to; off < h.r2to + h.r2tl; off += chunk) {
                        const std::uint32_t n = std::min(chunk, h.r2to + h.r2tl - off);
                        send_h2c(h.cccid, h.ttag, off, r2t_data.subspan(off, n), off + n == h.r2to + h.r2tl);
                    }
                    break;
                }
                case tcp::pdu_type::c2h_term_req: {
                    auto t = p.as<tcp::term_req>();
                    throw std::runtime_error("target sent C2HTermReq, FES " + std::to_string(t.fes));
                }
                default: throw std::runtime_error("unexpected PDU type " + std::to_string(p.ch.pdu_type));
            }
        }
    }

    void send_h2c(std::uint16_t cccid, std::uint16_t ttag, std::uint32_t datao, std::span<const std::byte> data,
                  bool last, bool corrupt_ddgst = false) {
        tcp::h2c_data h{};
        h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::h2c_data);
        h.ch.hlen = sizeof h;
        h.cccid = cccid;
        h.ttag = ttag;
        h.datao = datao;
        h.datal = static_cast<std::uint32_t>(data.size());
        send_pdu(std::as_bytes(std::span(&h, 1)), data, last ? tcp::pdu_flags::last_pdu : 0, false, corrupt_ddgst);
    }

    // Expects a C2HTermReq (returns its FES and FEI) and then the close.
    std::pair<std::uint16_t, std::uint32_t> expect_term_req() {
        pdu p = recv_pdu();
        EXPECT_EQ(p.ch.pdu_type, 0x03) << "expected a C2HTermReq";
        if (p.type() != tcp::pdu_type::c2h_term_req) return {0xffff, 0};
        auto t = p.as<tcp::term_req>();
        EXPECT_EQ(t.ch.hlen, 24);
        EXPECT_TRUE(peer_closed()) << "the target did not close after C2HTermReq";
        return {t.fes, tcp::term_req_fei(t)};
    }

private:
    int _fd = -1;
    std::uint16_t _cid = 1;
};

// ---- commands ----------------------------------------------------------------

inline sqe make_sqe(host& h, std::uint8_t opcode, std::uint32_t nsid = 0) {
    sqe s{};
    s.opcode = opcode;
    s.cid = h.next_cid();
    s.nsid = nsid;
    s.set_psdt(psdt::sgl_mptr_contiguous);
    return s;
}
inline void sgl_in_capsule(sqe& s, std::uint32_t len) {
    s.dptr.sgl.address = 0;
    s.dptr.sgl.length = len;
    s.dptr.sgl.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::offset);
}
inline void sgl_transport(sqe& s, std::uint32_t len) {
    s.dptr.sgl.address = 0;
    s.dptr.sgl.length = len;
    s.dptr.sgl.identifier = sgl_identifier(sgl_type::transport_data_block, sgl_subtype::transport_specific);
}

// cattr: Connect attributes (bit 2: the host disables SQ flow control).
inline cmd_result nvmf_connect(host& h, std::uint16_t qid, std::uint16_t cntlid, const std::string& hostnqn,
               const std::string& subnqn, std::uint8_t cattr = 0, std::uint8_t hostid0 = 0x42) {
    connect_command c{};
    c.opcode = admin_opcode::fabrics;
    c.cid = h.next_cid();
    c.fctype = fctype::connect;
    c.sgl1.length = sizeof(connect_data);
    c.sgl1.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::offset);
    c.qid = qid;
    c.sqsize = 31;
    c.kato = 0;
    c.cattr = cattr;
    connect_data d{};
    d.hostid[0] = hostid0;
    d.cntlid = cntlid;
    std::memcpy(d.subnqn, subnqn.data(), std::min(subnqn.size(), sizeof d.subnqn - 1));
    std::memcpy(d.hostnqn, hostnqn.data(), std::min(hostnqn.size(), sizeof d.hostnqn - 1));
    sqe s;
    std::memcpy(&s, &c, sizeof s);
    return h.exec(s, std::as_bytes(std::span(&d, 1)));
}

inline cmd_result property_get(host& h, std::uint32_t ofst, bool eight) {
    property_get_command p{};
    p.opcode = admin_opcode::fabrics;
    p.cid = h.next_cid();
    p.fctype = fctype::property_get;
    p.attrib = eight ? property_size::eight_bytes : property_size::four_bytes;
    p.ofst = ofst;
    sqe s;
    std::memcpy(&s, &p, sizeof s);
    return h.exec(s);
}

inline cmd_result property_set(host& h, std::uint32_t ofst, std::uint64_t value) {
    property_set_command p{};
    p.opcode = admin_opcode::fabrics;
    p.cid = h.next_cid();
    p.fctype = fctype::property_set;
    p.ofst = ofst;
    p.value = value;
    sqe s;
    std::memcpy(&s, &p, sizeof s);
    return h.exec(s);
}

inline cmd_result do_identify(host& h, std::uint8_t cns_value, std::uint32_t nsid = 0) {
    sqe s = make_sqe(h, admin_opcode::identify, nsid);
    s.cdw10 = cns_value;
    sgl_transport(s, identify_bytes);
    return h.exec(s);
}

inline sqe rw(host& h, std::uint8_t opcode, std::uint64_t lba, std::uint32_t blocks) {
    sqe s = make_sqe(h, opcode, 1);
    s.cdw10 = static_cast<std::uint32_t>(lba);
    s.cdw11 = static_cast<std::uint32_t>(lba >> 32);
    s.cdw12 = blocks - 1;
    return s;
}

inline cmd_result read_blocks(host& h, std::uint64_t lba, std::uint32_t blocks) {
    sqe s = rw(h, nvm_opcode::read, lba, blocks);
    sgl_transport(s, blocks * k_block);
    return h.exec(s);
}

inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed * 7 + (i >> 9)) & 0xff);
    return v;
}

inline bool all_zero(std::span<const std::byte> b) {
    for (auto x : b)
        if (x != std::byte{0}) return false;
    return true;
}

inline ::testing::AssertionResult is_ok(const cmd_result& r) {
    if (status_ok(r.cq.status)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "status sct " << int(sct_of(r.cq)) << " sc 0x" << std::hex
                                         << int(sc_of(r.cq));
}
#define EXPECT_OK(res) EXPECT_TRUE(is_ok(res))

// A controller: admin queue connected and enabled, plus one I/O queue.
struct session {
    std::unique_ptr<host> admin;
    std::unique_ptr<host> io;
    std::uint16_t cntlid = 0;
    std::string hostnqn = k_good_host;
    std::uint8_t hostid0 = 0x42;
};

// Admin queue: ICReq, Connect, CC.EN=1, CSTS.RDY=1.
// hostid0: the first byte of the Connect data's HOSTID (the rest is 0).
inline session open_admin(std::uint16_t port, std::uint8_t dgst = 0, const std::string& hostnqn = k_good_host,
                          std::uint8_t hostid0 = 0x42) {
    session s;
    s.hostnqn = hostnqn;
    s.hostid0 = hostid0;
    s.admin = std::make_unique<host>(port);
    s.admin->icreq(dgst);
    cmd_result c = nvmf_connect(*s.admin, 0, 0xffff, hostnqn, k_subnqn, 0, hostid0);
    if (!status_ok(c.cq.status)) throw std::runtime_error("admin Connect failed");
    EXPECT_EQ(c.cq.sqid, 0);
    s.cntlid = static_cast<std::uint16_t>(c.cq.dw0 & 0xffff);
    EXPECT_NE(s.cntlid, 0);
    EXPECT_NE(s.cntlid, 0xffff);
    cmd_result cc = property_set(*s.admin, property::cc, cc::en | (6u << 16) | (4u << 20));
    EXPECT_OK(cc);
    cmd_result st = property_get(*s.admin, property::csts, false);
    EXPECT_OK(st);
    EXPECT_TRUE(csts::ready(st.cq.dw0)) << "CSTS " << st.cq.dw0;
    return s;
}

// Set Features Number of Queues, then Connect I/O queue 1.
inline void open_io(session& s, std::uint16_t port, std::uint8_t dgst = 0, std::uint8_t cattr = 0) {
    sqe f = make_sqe(*s.admin, admin_opcode::set_features);
    f.cdw10 = feature::number_of_queues;
    f.cdw11 = (1u << 16) | 1u;  // 2 SQs, 2 CQs (0's based)
    cmd_result fr = s.admin->exec(f);
    EXPECT_OK(fr);
    EXPECT_EQ(fr.cq.dw0, (1u << 16) | 1u);
    s.io = std::make_unique<host>(port);
    s.io->icreq(dgst);
    cmd_result c = nvmf_connect(*s.io, 1, s.cntlid, s.hostnqn, k_subnqn, cattr, s.hostid0);
    if (!status_ok(c.cq.status)) throw std::runtime_error("I/O queue Connect failed");
    EXPECT_EQ(c.cq.sqid, 1);
    EXPECT_EQ(c.cq.dw0 & 0xffff, s.cntlid);
}

// A quick check that a session still works: Keep Alive on the admin queue,
// a 1-block write and read back on the I/O queue.
inline void check_alive(session& s, std::uint64_t lba, unsigned seed) {
    cmd_result ka = s.admin->exec(make_sqe(*s.admin, admin_opcode::keep_alive));
    EXPECT_OK(ka);
    auto data = pattern(k_block, seed);
    sqe w = rw(*s.io, nvm_opcode::write, lba, 1);
    sgl_in_capsule(w, k_block);
    EXPECT_OK(s.io->exec(w, data));
    cmd_result r = read_blocks(*s.io, lba, 1);
    EXPECT_OK(r);
    EXPECT_TRUE(r.data == data);
}

// Lets the client thread run configuration calls on the target's home
// shard (add_namespace, remove_subsystem, ...) and wait for them.
class target_control {
public:
    using job = std::function<future<>(nvmf_target&, device_registry&)>;

    // Runs fn on the home shard; waits up to 30 s; rethrows its exception.
    void run(job fn) {
        std::future<void> done;
        {
            std::lock_guard lk(_mutex);
            _job = std::move(fn);
            _done = std::promise<void>();
            done = _done.get_future();
        }
        if (done.wait_for(30s) != std::future_status::ready) throw std::runtime_error("configuration call timed out");
        done.get();
    }

    // With target_options::fault_namespace: the fault_device in front of
    // namespace 1 (rules are added from a job, on the home shard).
    fault_device* faults = nullptr;

    // The home shard's side: runs a pending job, if any.
    future<> serve(nvmf_target& t, device_registry& d) {
        job fn;
        {
            std::lock_guard lk(_mutex);
            fn = std::move(_job);
            _job = nullptr;
        }
        if (!fn) co_return;
        std::exception_ptr error;
        try {
            co_await fn(t, d);
        } catch (...) {
            error = std::current_exception();
        }
        std::lock_guard lk(_mutex);
        if (error) {
            _done.set_exception(error);
        } else {
            _done.set_value();
        }
    }

private:
    std::mutex _mutex;
    job _job;
    std::promise<void> _done;
};

struct target_options {
    bool fault_namespace = false;  // namespace 1 behind a fault_device (target_control::faults)
    target_limits limits{};
    std::function<void(nvmf_target&)> setup;  // runs before the subsystem is added
};

// Runs `client` on its own thread against a target on an ephemeral port; the
// shard-0 coroutine serves its configuration calls and polls for its end
// (bounded), then stops the target and closes the registry.
inline void with_target(const target_options& opts, const std::function<void(std::uint16_t, target_control&)>& client) {
    std::atomic<bool> done{false};
    bool finished = false;
    target_control ctl;
    int rc = test::run_engine(test::small_config(2), [&](engine*) -> future<int> {
        device_registry devices;
        subsystem_config sub;
        sub.nqn = k_subnqn;
        sub.allowed_hosts = {k_good_host, k_other_host};
        block_device* ns = co_await devices.create(k_ns_uri);
        std::unique_ptr<fault_device> faulty;
        if (opts.fault_namespace) {
            faulty = std::make_unique<fault_device>("ns1.fault", ns);
            ctl.faults = faulty.get();
            ns = faulty.get();
        }
        sub.namespaces.push_back(ns);
        auto target = std::make_unique<nvmf_target>("127.0.0.1", 0, opts.limits);
        if (opts.setup) opts.setup(*target);
        co_await target->add_subsystem(std::move(sub));
        co_await target->start();
        const std::uint16_t port = target->port();
        EXPECT_NE(port, 0);
        std::thread t([&client, &done, &ctl, port] {
            try {
                client(port, ctl);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "host: " << e.what();
            }
            done.store(true);
        });
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        while (!done.load() && std::chrono::steady_clock::now() < deadline) {
            co_await ctl.serve(*target, devices);
            co_await ioe::sleep(1ms);
        }
        finished = done.load();
        co_await target->stop();  // a stuck host sees its connections close
        const auto deadline2 = std::chrono::steady_clock::now() + 30s;
        while (!done.load() && std::chrono::steady_clock::now() < deadline2) {
            co_await ctl.serve(*target, devices);
            co_await ioe::sleep(1ms);
        }
        t.join();
        target.reset();
        if (faulty) {
            co_await faulty->close();  // before the device it wraps
            faulty.reset();
        }
        co_await devices.close_all();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(finished) << "the host did not finish within 60 s";
}

inline void with_target(const std::function<void(std::uint16_t, target_control&)>& client) {
    with_target(target_options{}, client);
}

inline void with_target(const std::function<void(std::uint16_t)>& client) {
    with_target([&client](std::uint16_t port, target_control&) { client(port); });
}


}  // namespace ioe::nvme::test_host
