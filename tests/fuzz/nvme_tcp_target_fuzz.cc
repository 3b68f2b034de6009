// Fuzz target for the NVMe/TCP target's receive path and command handling
// (nvme/target/tcp_qpair.cc, target_commands.cc): each input is a raw byte
// stream a host sends on one connection. The target must answer or close
// the connection, never crash, read out of bounds or hang.
//
// How it runs: LLVMFuzzerInitialize starts one ioe::engine (1 shard, event poll
// mode) on a background std::thread; its main coroutine creates a malloc
// namespace and an nvmf_target (no listener: start() is not called) with
// one subsystem. A persistent admin connection (controller 1, host
// k_hostnqn, CC.EN = 1, three I/O queues granted) is set up once, so that
// inputs can Connect I/O queues (qid 1..4, cntlid 1) and reach the I/O
// commands. Per input: socketpair(AF_UNIX, SOCK_STREAM); one end goes to the
// target exactly as accept_loop() would hand over a TCP socket
// (connection_opened + tcp_qpair::start on shard 0); the input is written to
// the other end (a failed write = the target already closed), then
// shutdown(SHUT_WR), and everything the target sends is read and dropped
// until EOF (the target closes on end of input or a fatal error). Each wait
// is bounded (poll: 2 s per write step, 30 s for EOF, longer than the
// -timeout=10 CI passes) so a target hang shows up as a libFuzzer timeout
// (or a trap after 30 s without one) instead of an infinite wait.
//
// The input goes in several writes, cut at 1 to 7 points chosen from the
// input (a hash of its bytes seeds the choice: the same input is always cut
// the same way, and the seeds keep their meaning). Before each write after
// the first, the harness waits until the target has read everything written
// so far (SIOCOUTQ on the host end drops to 0, bounded at 2 s), so each
// piece reaches the target in a receive of its own: headers, digests,
// padding and data split across receives, and the direct receive path.
//
// At process exit (libFuzzer calls exit()) an atexit hook stops the engine
// and joins its thread, so no reactor runs while statics are destroyed; the
// stop hook closes the target's connections and the namespace first, so
// LeakSanitizer's exit check sees nothing left over.
//
// Run with -detect_leaks=0: libFuzzer's per-input leak check fires whenever
// an input allocates more than it frees, which is normal here (a queue pair
// may outlive its input by up to a second: keep_alive_watch), and then
// reports the suspended coroutine frames of live connections as leaks,
// because the only pointer to them is the user_data of an io_uring request
// (kernel-shared ring memory that LSan does not scan). The exit-time check
// still runs.
//
// Seeds: tests/fuzz/corpus/nvme_tcp_target (tests/fuzz/make_nvme_tcp_corpus.py).
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "nvme/target/target.hh"
#include "nvme/target/tcp_qpair.hh"
#include "runtime/engine.hh"
#include "runtime/future.hh"
#include "runtime/log.hh"
#include "storage/device_registry.hh"

using namespace ioe;
using namespace ioe::nvme;

namespace {

constexpr char k_subnqn[] = "nqn.2026-11.io.ioengine:fuzz";
constexpr char k_hostnqn[] = "nqn.2014-08.org.nvmexpress:uuid:fuzz-host";
constexpr char k_ns_uri[] = "malloc:///fz?size_mb=8&blk_size=512";

struct harness {
    std::unique_ptr<engine> eng;
    std::thread thread;
    std::latch ready{1};
    nvmf_target* target = nullptr;  // lives in the main coroutine's frame
    int admin_fd = -1;              // host end of the persistent admin connection
    std::atomic<bool> stopped{false};
};

harness* g_h = nullptr;

// ---- blocking host-side helpers ------------------------------------------------

bool write_all(int fd, const void* p, std::size_t n) {
    auto* b = static_cast<const char*>(p);
    while (n > 0) {
        ssize_t r = ::send(fd, b, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        b += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// Reads until EOF / error, dropping the data; false on timeout.
bool drain_to_eof(int fd, int timeout_ms) {
    char buf[16384];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return true;
    }
}

// Reads exactly n bytes within timeout_ms.
bool read_exact(int fd, void* out, std::size_t n, int timeout_ms) {
    auto* b = static_cast<char*>(out);
    while (n > 0) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
        ssize_t r = ::recv(fd, b, n, 0);
        if (r <= 0) return false;
        b += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// Where the input is cut into separate writes: 1 to 7 distinct offsets in
// (0, size), from a splitmix64 sequence seeded with the input's FNV-1a hash.
std::vector<std::size_t> cut_points(const std::uint8_t* data, std::size_t size) {
    std::vector<std::size_t> cuts;
    if (size < 2) return cuts;
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    auto next = [&h] {
        std::uint64_t z = (h += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    const unsigned n = 1 + static_cast<unsigned>(next() % 7);
    for (unsigned i = 0; i < n; ++i) {
        // Half of the cuts fall in the first 512 bytes (ICReq, Connect and
        // the first capsules), the others anywhere.
        const std::size_t span = (next() & 1) ? std::min<std::size_t>(size - 1, 512) : size - 1;
        cuts.push_back(1 + static_cast<std::size_t>(next() % span));
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    return cuts;
}

// Waits until the peer has read every byte written to `fd` (AF_UNIX:
// SIOCOUTQ counts the buffers the peer has not consumed entirely), reading and dropping what
// the peer sends meanwhile. false: the peer closed. Gives up waiting after
// timeout_ms (the next write may then share a receive).
bool wait_consumed(int fd, int timeout_ms) {
    char sink[16384];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        int unread = 0;
        if (::ioctl(fd, SIOCOUTQ, &unread) != 0 || unread <= 0) return true;
        if (std::chrono::steady_clock::now() > deadline) return true;
        ssize_t r = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r == 0) return false;
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        if (r < 0) std::this_thread::sleep_for(std::chrono::microseconds(20));  // the target's reactor runs meanwhile
    }
}

void append(std::vector<std::byte>& out, const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
}

void append_capsule(std::vector<std::byte>& out, const void* sqe_bytes_, const void* data, std::uint32_t data_len) {
    tcp::capsule_cmd cap{};
    cap.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::capsule_cmd);
    cap.ch.hlen = sizeof cap;
    cap.ch.pdo = data_len ? sizeof cap : 0;
    cap.ch.plen = sizeof cap + data_len;
    std::memcpy(&cap.ccsqe, sqe_bytes_, sizeof(sqe));
    append(out, &cap, sizeof cap);
    if (data_len) append(out, data, data_len);
}

// Sets up controller 1 on a persistent admin connection: ICReq, Connect
// (admin, KATO 0), Property Set CC.EN = 1, Set Features Number of Queues = 4.
// Returns the host end of the connection (kept open for the whole run).
int open_persistent_admin(nvmf_target& target, engine& eng) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    const int tfd = sv[1];
    eng.post(0, [&target, tfd] {
        target.connection_opened(tfd);
        tcp_qpair::start(target, tfd);
    });
    std::vector<std::byte> out;
    tcp::ic_req req{};
    req.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_req);
    req.ch.hlen = sizeof req;
    req.ch.plen = sizeof req;
    req.pfv = tcp::pfv_1_0;
    append(out, &req, sizeof req);

    connect_command c{};
    c.opcode = admin_opcode::fabrics;
    c.cid = 1;
    c.fctype = fctype::connect;
    c.sgl1.length = sizeof(connect_data);
    c.sgl1.identifier = sgl_identifier(sgl_type::data_block, sgl_subtype::offset);
    c.qid = 0;
    c.sqsize = 31;
    c.kato = 0;
    connect_data d{};
    d.hostid[0] = 0x42;
    d.cntlid = 0xffff;
    std::memcpy(d.subnqn, k_subnqn, sizeof k_subnqn - 1);
    std::memcpy(d.hostnqn, k_hostnqn, sizeof k_hostnqn - 1);
    append_capsule(out, &c, &d, sizeof d);

    property_set_command ps{};
    ps.opcode = admin_opcode::fabrics;
    ps.cid = 2;
    ps.fctype = fctype::property_set;
    ps.ofst = property::cc;
    ps.value = 1;  // CC.EN
    append_capsule(out, &ps, nullptr, 0);

    sqe sf{};
    sf.opcode = admin_opcode::set_features;
    sf.cid = 3;
    sf.cdw10 = feature::number_of_queues;
    sf.cdw11 = 3 | (3u << 16);
    append_capsule(out, &sf, nullptr, 0);

    if (!write_all(sv[0], out.data(), out.size())) std::abort();
    // ICResp (128) + three CapsuleResps (24 each).
    std::vector<std::byte> in(128 + 3 * sizeof(tcp::capsule_resp));
    if (!read_exact(sv[0], in.data(), in.size(), 5000)) {
        std::fprintf(stderr, "nvme_tcp_target_fuzz: the persistent admin connection did not come up\n");
        std::abort();
    }
    for (int i = 0; i < 3; ++i) {
        tcp::capsule_resp r;
        std::memcpy(&r, in.data() + 128 + i * sizeof r, sizeof r);
        if (r.ch.pdu_type != static_cast<std::uint8_t>(tcp::pdu_type::capsule_resp) || status_code(r.rccqe.status) != 0) {
            std::fprintf(stderr, "nvme_tcp_target_fuzz: admin setup command %d failed (status %#x)\n", i + 1,
                         r.rccqe.status);
            std::abort();
        }
        if (i == 0 && r.rccqe.dw0 != 1) {
            std::fprintf(stderr, "nvme_tcp_target_fuzz: expected controller 1, got %u\n", r.rccqe.dw0);
            std::abort();
        }
    }
    return sv[0];
}

void stop_engine() {
    harness* h = g_h;
    if (!h || h->stopped.exchange(true)) return;
    if (h->admin_fd >= 0) ::close(h->admin_fd);
    h->eng->stop(0);
    if (h->thread.joinable()) h->thread.join();
}

void start_engine() {
    auto* h = new harness;  // never freed: lives until exit
    g_h = h;
    if (const char* lvl = std::getenv("IOE_FUZZ_LOG"); lvl && *lvl) {
        log::set_level(spdlog::level::from_str(lvl));
    } else {
        log::set_level(spdlog::level::off);  // one line per refused PDU would dominate the run
    }
    engine_config cfg;
    cfg.cores = {0};
    cfg.reactor.mode = poll_mode::event;
    cfg.memory.size_mb = 64;
    h->eng = std::make_unique<engine>(cfg);
    h->thread = std::thread([h] {
        engine& e = *h->eng;
        e.run([h, &e]() -> future<int> {
            device_registry devices;
            subsystem_config sub;
            sub.nqn = k_subnqn;
            sub.namespaces.push_back(co_await devices.create(k_ns_uri));
            nvmf_target target("127.0.0.1", 0);
            co_await target.add_subsystem(std::move(sub));
            promise<> stopped;
            // The stop sequence ends the reactors once its hooks are done:
            // the cleanup runs inside the hook, main only waits for it.
            e.at_stop([&]() -> future<> {
                co_await target.stop();  // shuts every connection, waits for them to end (bounded)
                co_await devices.close_all();
                stopped.set_value();
            });
            h->target = &target;
            h->ready.count_down();
            co_await stopped.get_future();
            co_return 0;
        });
    });
    h->ready.wait();
    h->admin_fd = open_persistent_admin(*h->target, *h->eng);
    std::atexit(stop_engine);
}

}  // namespace

// The engine and the persistent admin connection come up before the first
// input, outside libFuzzer's per-input accounting.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    start_engine();
    return 0;
}

// IOE_FUZZ_CLAMP_HPDA=1 (off by default) caps an ICReq's HPDA at byte 10 to
// 31, the spec maximum, so a run can look past the target's known
// unchecked-HPDA overflow (send_pdu pads into the 256-byte _tx_header)
// until that is fixed.
bool clamp_hpda() {
    static const bool on = [] {
        const char* v = std::getenv("IOE_FUZZ_CLAMP_HPDA");
        return v && *v == '1';
    }();
    return on;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (!g_h) start_engine();
    std::vector<std::uint8_t> clamped;
    if (clamp_hpda() && size > 10 && data[0] == 0 && data[10] > tcp::max_pda) {
        clamped.assign(data, data + size);
        clamped[10] = tcp::max_pda;
        data = clamped.data();
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        std::perror("socketpair");
        std::abort();
    }
    const int tfd = sv[1];
    nvmf_target* target = g_h->target;
    g_h->eng->post(0, [target, tfd] {
        target->connection_opened(tfd);
        tcp_qpair::start(*target, tfd);
    });
    // The target may answer while we write (and close early): write in
    // pieces, draining what it sent so that neither side blocks on a full
    // buffer. A write error means the target closed: stop writing. At each
    // cut, wait until the target has read what came before.
    const std::size_t piece = 4096;
    char sink[16384];
    std::vector<std::size_t> cuts = cut_points(data, size);
    cuts.push_back(size);
    std::size_t off = 0;
    bool open = true;
    for (std::size_t cut : cuts) {
        if (off > 0 && !wait_consumed(sv[0], 2000)) break;
        while (open && off < cut) {
            pollfd p[1] = {{sv[0], POLLOUT | POLLIN, 0}};
            if (::poll(p, 1, 2000) <= 0) open = false;  // stuck: neither readable nor writable
            if (open && (p[0].revents & POLLIN)) {
                ssize_t r = ::recv(sv[0], sink, sizeof sink, MSG_DONTWAIT);
                if (r == 0) open = false;  // target closed
            }
            if (p[0].revents & (POLLERR | POLLHUP)) open = false;
            if (open && (p[0].revents & POLLOUT)) {
                ssize_t w = ::send(sv[0], data + off, std::min(piece, cut - off), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (w <= 0) open = false;
                if (w > 0) off += static_cast<std::size_t>(w);
            }
        }
        if (!open) break;
    }
    ::shutdown(sv[0], SHUT_WR);
    // Longer than the -timeout=10 given under ctest: a target that never
    // closes becomes a libFuzzer timeout (input saved), not an endless wait.
    if (!drain_to_eof(sv[0], 30000)) {
        std::fprintf(stderr, "nvme_tcp_target_fuzz: no EOF from the target within 30 s\n");
        __builtin_trap();
    }
    ::close(sv[0]);
    return 0;
}
