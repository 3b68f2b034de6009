// The minimal NVMe/TCP responder that gives nvmf_bench its transport limit
// (see tcp_limit_server.hh).
#include "bench/tcp_limit_server.hh"

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/target/identify_data.hh"
#include "runtime/engine.hh"

namespace ioe::bench {

namespace {

namespace tcp = nvme::tcp;

constexpr std::size_t rx_bytes = 256 << 10;
constexpr std::size_t tx_bytes = 4 << 20;
constexpr std::uint32_t max_read_bytes = 1 << 20;
constexpr std::uint16_t queue_entries = 128;
constexpr unsigned ring_entries = 256;
constexpr std::uint64_t accept_tag = 1;
constexpr std::chrono::microseconds idle_before_sleep{200};  // the reactors' adaptive default

template <typename T>
T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

struct connection {
    int fd = -1;
    std::uint16_t qid = 0;
    std::uint16_t sqsize = queue_entries - 1;
    std::uint16_t sqhd = 0;
    std::uint32_t cc = 0, csts = 0;
    std::string subnqn;
    // Received bytes: [rx_head, rx_len) not answered yet; a recv lands at rx_len.
    std::vector<std::byte> rx = std::vector<std::byte>(rx_bytes);
    std::size_t rx_head = 0, rx_len = 0;
    bool receiving = false;
    // Answers: `tx` fills while `out` is on the wire (one send at a time).
    std::vector<std::byte> tx = std::vector<std::byte>(tx_bytes);
    std::size_t tx_len = 0;
    std::vector<std::byte> out = std::vector<std::byte>(tx_bytes);
    std::size_t out_len = 0, out_off = 0;
    bool sending = false;
    bool closing = false;
};

// user_data: a connection pointer, its low bit set for a send.
std::uint64_t tag(connection* c, bool send) { return reinterpret_cast<std::uint64_t>(c) | (send ? 1u : 0u); }

}  // namespace

tcp_limit_server::tcp_limit_server(unsigned core, limit_namespace ns, bool one_send_per_command)
    : _core(core), _ns(ns), _one_send_per_command(one_send_per_command) {}

tcp_limit_server::~tcp_limit_server() { stop(); }

std::uint16_t tcp_limit_server::start() {
    _listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (_listen_fd < 0) throw std::runtime_error(std::string("tcp limit server: socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(_listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(_listen_fd, 16) != 0 ||
        ::getsockname(_listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        throw std::runtime_error(std::string("tcp limit server: listen on 127.0.0.1: ") + std::strerror(errno));
    }
    _stop = false;
    _thread = std::thread([this] { run(); });
    return ntohs(a.sin_port);
}

void tcp_limit_server::stop() {
    if (!_thread.joinable()) return;
    _stop = true;
    _thread.join();
    ::close(_listen_fd);
    _listen_fd = -1;
}

std::string tcp_limit_server::problem() const { return _problem; }

void tcp_limit_server::run() noexcept {
    if (auto err = pin_thread_to_core(_core); !err.empty()) _problem = err;
    io_uring ring;
    // The reactors' flags: completions are run when the thread next enters
    // the kernel (peek does when the TASKRUN flag says work is pending),
    // not by interrupting it.
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    int rc = io_uring_queue_init_params(ring_entries, &ring, &params);
    if (rc == -EINVAL) rc = io_uring_queue_init(ring_entries, &ring, 0);  // an older kernel
    if (rc < 0) {
        _problem = std::string("io_uring_queue_init: ") + std::strerror(-rc);
        return;
    }
    std::vector<std::unique_ptr<connection>> conns;
    std::vector<std::byte> data(max_read_bytes, std::byte{0});  // what every read returns
    std::array<std::byte, 4096> page{};

    auto get_sqe = [&ring] {
        io_uring_sqe* s = io_uring_get_sqe(&ring);
        if (!s) {
            io_uring_submit(&ring);
            s = io_uring_get_sqe(&ring);
        }
        return s;
    };
    auto submit_accept = [&] {
        io_uring_sqe* s = get_sqe();
        io_uring_prep_accept(s, _listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, accept_tag);
    };
    auto submit_recv = [&](connection* c) {
        if (c->receiving || c->closing) return;
        if (c->rx_head > 0) {  // no recv in flight: compact
            std::memmove(c->rx.data(), c->rx.data() + c->rx_head, c->rx_len - c->rx_head);
            c->rx_len -= c->rx_head;
            c->rx_head = 0;
        }
        if (c->rx_len == c->rx.size()) return;
        io_uring_sqe* s = get_sqe();
        io_uring_prep_recv(s, c->fd, c->rx.data() + c->rx_len, c->rx.size() - c->rx_len, 0);
        io_uring_sqe_set_data64(s, tag(c, false));
        c->receiving = true;
    };
    // Sends what is left of `out`, or swaps in `tx` when `out` is done.
    auto submit_send = [&](connection* c) {
        if (c->sending || c->closing) return;
        if (c->out_off == c->out_len) {
            if (c->tx_len == 0) return;
            std::swap(c->out, c->tx);
            c->out_len = c->tx_len;
            c->out_off = 0;
            c->tx_len = 0;
        }
        io_uring_sqe* s = get_sqe();
        io_uring_prep_send(s, c->fd, c->out.data() + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(s, tag(c, true));
        c->sending = true;
    };
    auto fail = [this](const std::string& what) {
        if (_problem.empty()) _problem = what;
    };

    // Appends bytes to c's answers.
    auto put = [](connection* c, const void* p, std::size_t n) {
        std::memcpy(c->tx.data() + c->tx_len, p, n);
        c->tx_len += n;
    };
    auto respond = [&](connection* c, std::uint16_t cid, std::uint16_t status, std::uint32_t dw0 = 0,
                       std::uint32_t dw1 = 0) {
        tcp::capsule_resp r{};
        r.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp);
        r.ch.hlen = sizeof r;
        r.ch.plen = sizeof r;
        c->sqhd = static_cast<std::uint16_t>((c->sqhd + 1) % (std::uint32_t{c->sqsize} + 1));
        r.rccqe.dw0 = dw0;
        r.rccqe.dw1 = dw1;
        r.rccqe.sqhd = c->sqhd;
        r.rccqe.sqid = c->qid;
        r.rccqe.cid = cid;
        r.rccqe.status = status;
        put(c, &r, sizeof r);
    };
    auto c2h = [&](connection* c, std::uint16_t cid, const std::byte* p, std::uint32_t n) {
        tcp::c2h_data h{};
        h.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::c2h_data);
        h.ch.flags = tcp::pdu_flags::last_pdu;
        h.ch.hlen = sizeof h;
        h.ch.pdo = sizeof h;
        h.ch.plen = static_cast<std::uint32_t>(sizeof h + n);
        h.cccid = cid;
        h.datao = 0;
        h.datal = n;
        put(c, &h, sizeof h);
        put(c, p, n);
    };
    const std::uint16_t ok = nvme::make_status(nvme::sct::generic, nvme::sc::success);
    const std::uint16_t invalid = nvme::make_status(nvme::sct::generic, nvme::sc::invalid_field, true);

    // Answers one capsule; false when it does not fit in tx now (try later).
    auto on_capsule = [&](connection* c, const std::byte* pdu, const tcp::pdu_common_header& ch) -> bool {
        const auto cmd = load<nvme::sqe>(pdu + sizeof ch);
        const std::uint32_t want = cmd.opcode == nvme::nvm_opcode::read || cmd.opcode == nvme::admin_opcode::identify
                                       ? std::min(cmd.dptr.sgl.length, max_read_bytes)
                                       : 0;
        if (c->tx.size() - c->tx_len < want + 64) return false;
        if (cmd.opcode == nvme::admin_opcode::fabrics) {
            const auto f = load<nvme::fabrics_command>(pdu + sizeof ch);
            if (f.fctype == nvme::fctype::connect) {
                const auto cc = load<nvme::connect_command>(pdu + sizeof ch);
                c->qid = cc.qid;
                c->sqsize = cc.sqsize;
                if (ch.pdo && ch.plen >= ch.pdo + sizeof(nvme::connect_data)) {
                    const auto d = load<nvme::connect_data>(pdu + ch.pdo);
                    c->subnqn.assign(d.subnqn, strnlen(d.subnqn, sizeof d.subnqn));
                }
                respond(c, cmd.cid, ok, 1);
            } else if (f.fctype == nvme::fctype::property_get) {
                const auto p = load<nvme::property_get_command>(pdu + sizeof ch);
                std::uint64_t v = 0;
                switch (p.ofst) {
                    case nvme::property::cap: v = nvme::cap_property(queue_entries); break;
                    case nvme::property::vs: v = nvme::vs_property; break;
                    case nvme::property::cc: v = c->cc; break;
                    case nvme::property::csts: v = c->csts; break;
                    default: respond(c, cmd.cid, invalid); return true;
                }
                respond(c, cmd.cid, ok, static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32));
            } else if (f.fctype == nvme::fctype::property_set) {
                const auto p = load<nvme::property_set_command>(pdu + sizeof ch);
                c->cc = static_cast<std::uint32_t>(p.value);
                c->csts = nvme::csts::with_ready(c->csts, (c->cc & nvme::cc::en) != 0);
                if (nvme::cc::shn(c->cc) != 0) c->csts = nvme::csts::with_shst(c->csts, nvme::csts::shst_complete);
                respond(c, cmd.cid, ok);
            } else {
                respond(c, cmd.cid, ok);
            }
        } else if (c->qid == 0 && cmd.opcode == nvme::admin_opcode::identify) {
            page.fill(std::byte{0});
            switch (cmd.cdw10 & 0xff) {
                case nvme::cns::controller: {
                    nvme::controller_profile p;
                    p.subnqn = c->subnqn;
                    p.serial = "tcp-limit";
                    p.model = "nvmf_bench tcp limit";
                    p.firmware = "0.1";
                    p.namespace_count = 1;
                    p.maxcmd = queue_entries;
                    nvme::build_identify_controller(p, page);
                    break;
                }
                case nvme::cns::namespace_data: {
                    nvme::namespace_profile n;
                    n.block_size = _ns.block_size;
                    n.block_count = _ns.block_count;
                    nvme::build_identify_namespace(n, page);
                    break;
                }
                case nvme::cns::namespace_id_descriptors: nvme::build_namespace_descriptors(uuid::random(), page); break;
                default: break;
            }
            c2h(c, cmd.cid, page.data(), std::min<std::uint32_t>(want, page.size()));
            respond(c, cmd.cid, ok);
        } else if (c->qid == 0 && cmd.opcode == nvme::admin_opcode::set_features &&
                   (cmd.cdw10 & 0xff) == nvme::feature::number_of_queues) {
            respond(c, cmd.cid, ok, cmd.cdw11);
        } else if (c->qid != 0 && cmd.opcode == nvme::nvm_opcode::read) {
            if (cmd.dptr.sgl.length > max_read_bytes) {
                respond(c, cmd.cid, invalid);
            } else {
                c2h(c, cmd.cid, data.data(), cmd.dptr.sgl.length);
                respond(c, cmd.cid, ok);
                _reads.fetch_add(1, std::memory_order_relaxed);
            }
        } else {
            respond(c, cmd.cid, ok);  // keep alive, in-capsule writes, flush, ...
        }
        return true;
    };

    // Answers every complete PDU in rx that fits, sends, keeps a recv
    // posted; false: close c.
    auto process = [&](connection* c) -> bool {
        while (c->rx_len - c->rx_head >= sizeof(tcp::pdu_common_header)) {
            if (_one_send_per_command && (c->sending || c->tx_len > 0)) break;
            const std::byte* pdu = c->rx.data() + c->rx_head;
            const auto ch = load<tcp::pdu_common_header>(pdu);
            if (ch.hlen < sizeof ch || ch.plen < ch.hlen || ch.plen > c->rx.size()) {
                fail("a PDU with a bad header");
                return false;
            }
            if (c->rx_len - c->rx_head < ch.plen) break;
            const auto type = static_cast<tcp::pdu_type>(ch.pdu_type);
            if (type == tcp::pdu_type::ic_req) {
                tcp::ic_resp r{};
                r.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_resp);
                r.ch.hlen = sizeof r;
                r.ch.plen = sizeof r;
                r.pfv = tcp::pfv_1_0;
                r.maxh2cdata = 131072;
                put(c, &r, sizeof r);
            } else if (type == tcp::pdu_type::capsule_cmd) {
                if (!on_capsule(c, pdu, ch)) break;  // tx is full: again when a send completes
                if (_one_send_per_command) {
                    c->rx_head += ch.plen;
                    break;  // the next capsule once this answer is sent
                }
            } else if (type == tcp::pdu_type::h2c_term_req) {
                return false;
            } else {
                fail("an unexpected PDU type " + std::to_string(ch.pdu_type));
                return false;
            }
            c->rx_head += ch.plen;
        }
        submit_send(c);
        submit_recv(c);
        return true;
    };
    // Closes c once no operation of it is in flight.
    auto close_conn = [&](connection* c) {
        c->closing = true;
        if (c->sending || c->receiving) {
            ::shutdown(c->fd, SHUT_RDWR);
            return;
        }
        ::close(c->fd);
        for (auto& p : conns) {
            if (p.get() == c) {
                p = std::move(conns.back());
                conns.pop_back();
                break;
            }
        }
    };

    submit_accept();
    auto last_work = std::chrono::steady_clock::now();
    while (!_stop.load(std::memory_order_relaxed)) {
        if (io_uring_sq_ready(&ring) > 0) io_uring_submit(&ring);
        io_uring_cqe* cqe = nullptr;
        if (io_uring_peek_cqe(&ring, &cqe) != 0) {
            // Adaptive, as the target's reactors: poll while busy, sleep in
            // the ring after idle_before_sleep without a completion.
            const auto now = std::chrono::steady_clock::now();
            if (now - last_work > idle_before_sleep) {
                __kernel_timespec ts{0, 50'000'000};  // then check _stop
                io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
            }
            continue;
        }
        last_work = std::chrono::steady_clock::now();
        while (io_uring_peek_cqe(&ring, &cqe) == 0) {
            const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
            const int res = cqe->res;
            io_uring_cqe_seen(&ring, cqe);
            if (ud == accept_tag) {
                if (res >= 0) {
                    int one = 1;
                    ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    auto c = std::make_unique<connection>();
                    c->fd = res;
                    submit_recv(c.get());
                    conns.push_back(std::move(c));
                }
                submit_accept();
                continue;
            }
            auto* c = reinterpret_cast<connection*>(ud & ~std::uint64_t{1});
            if (ud & 1) {
                c->sending = false;
                if (res > 0) c->out_off += static_cast<std::size_t>(res);
            } else {
                c->receiving = false;
                if (res > 0) c->rx_len += static_cast<std::size_t>(res);
            }
            if (res <= 0 || c->closing || !process(c)) close_conn(c);
        }
    }
    timespec cpu{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    _cpu_seconds = double(cpu.tv_sec) + double(cpu.tv_nsec) / 1e9;
    io_uring_queue_exit(&ring);  // cancels what is pending
    for (auto& c : conns) ::close(c->fd);
}

}  // namespace ioe::bench
