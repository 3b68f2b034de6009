// Fuzz target for the NVMe/TCP initiator's receive path
// (nvme/initiator/nvmf_qpair.cc): the fuzzer plays a (possibly malicious)
// target. handshake() parses its ICResp; receive_loop() parses CapsuleResp,
// C2HData (received into the command's buffers at DATAO, digests checked
// when negotiated), R2T (answered with H2CData from the command's buffers)
// and C2HTermReq. The host must complete every command (done, timed out or
// connection lost) in bounded time, never crash, read or write out of
// bounds, or touch a command's buffers once the command has completed.
//
// Input layout (an 8-byte preamble, then the target's byte stream):
//   byte 0  flags: bit 0 / 1 ask for header / data digests (the prepended
//           ICResp grants them); bit 2 raw: no ICResp is prepended, the
//           stream starts with the target's ICResp (fuzzes the handshake);
//           bit 3 hold: keep the connection open after the stream (commands
//           must time out) instead of shutting our write side; bit 4 pause:
//           stop 300 ms (longer than the I/O timeout plus a sweep) after
//           `pause_at` bytes of the stream; bit 5 slow reader: read nothing
//           the host sends until the pause is over; bits 6-7: queue depth - 1
//   byte 1  MAXH2CDATA of the prepended ICResp: 4096 + 16 * byte 1
//   2..5    up to four commands, issued at once in this order (slots 0, 1,
//           ... so CIDs 0x80, 0x81, ... when the depth allows): kind in
//           bits 0-2 (0 none, 1 read, 2 write on R2T, 3 write in capsule,
//           4 Identify, 5 flush, 6 read / 7 write over two io_vecs),
//           blocks of 512 bytes in bits 3-7 (+1)
//   6..7    pause_at, little-endian
//
// How it runs: LLVMFuzzerInitialize starts one ioe::engine (1 shard, event
// poll mode) on a background std::thread. Per input: socketpair(AF_UNIX,
// SOCK_STREAM); one end goes to nvmf_qpair::adopt() on shard 0 (I/O timeout
// 200 ms), which then issues the commands over heap buffers, waits for all
// of them and close()s the queue pair. This thread writes the stream to the
// other end in pieces (draining what the host sends, unless told not to),
// then either shuts down its write side or holds the connection, and waits
// for the shard to report the input done (an eventfd; bounded: 5 s, then a
// trap, so a hang is a crash with the input saved, well inside the
// -timeout=10 CI passes).
//
// Buffer-lifetime checks: when a command completes, its read buffer is
// filled with a canary (checked after close(): a write into it means the
// host received data for a completed command), its write buffer with a
// canary run that must never appear in what the host sends, and both are
// ASan-poisoned until close() (catches user-space accesses in the Sanitize
// build).
//
// At process exit (libFuzzer calls exit()) an atexit hook stops the engine
// and joins its thread. Run with -detect_leaks=0 (same reasoning as
// nvme_tcp_target_fuzz.cc: coroutine frames parked on io_uring requests look
// leaked to the per-input leak check).
//
// Seeds: tests/fuzz/corpus/nvmf_host (tests/fuzz/make_nvmf_host_corpus.py).
#include <poll.h>
#include <sys/eventfd.h>
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

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

#include "nvme/initiator/nvmf_qpair.hh"
#include "nvme/spec/nvme_spec.hh"
#include "nvme/spec/nvme_tcp_spec.hh"
#include "runtime/engine.hh"
#include "runtime/future.hh"
#include "runtime/log.hh"

using namespace ioe;
using namespace ioe::nvme;

namespace {

constexpr auto k_io_timeout = std::chrono::milliseconds(200);
constexpr int k_pause_ms = 300;
constexpr int k_done_bound_ms = 5000;
constexpr std::byte k_in_canary{0xa5};
constexpr std::uint8_t k_out_canary = 0xc3;
constexpr int k_out_canary_run = 32;  // this many k_out_canary bytes in a row in the host's output = a finding

enum flag : std::uint8_t {
    f_hdgst = 1 << 0,
    f_ddgst = 1 << 1,
    f_raw = 1 << 2,
    f_hold = 1 << 3,
    f_pause = 1 << 4,
    f_slow_reader = 1 << 5,
};

struct harness {
    std::unique_ptr<engine> eng;
    std::thread thread;
    std::latch ready{1};
    std::atomic<bool> stopped{false};
};

harness* g_h = nullptr;

// One command the host issues, with its buffers (two pieces when split).
struct command {
    std::uint8_t kind = 0;
    std::uint32_t len = 0;
    std::vector<std::byte> a, b;  // heap: ASan sees accesses past their ends
    io_vec iov[2];
    unsigned pieces = 0;
    bool completed = false;
    host_completion result;
};

// Everything one input shares between this thread and the shard. The shard
// writes it until it signals `done_fd`; this thread reads it after.
struct run_state {
    tcp_digests want;
    unsigned depth = 1;
    int host_fd = -1;
    int done_fd = -1;
    std::vector<command> cmds;
    bool adopted = false;
    promise<> stream_sent;  // set on the shard once the whole stream is written
};

void fill_pattern(std::vector<std::byte>& v, unsigned seed) {
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::byte>((i * 7 + seed) & 0x7f);  // never 0xa5 / 0xc3
}

bool is_write(std::uint8_t kind) { return kind == 2 || kind == 3 || kind == 7; }

void build_command(command& c, std::uint8_t desc, unsigned index) {
    c.kind = desc & 7;
    c.len = 512u * (1u + (desc >> 3));
    if (c.kind == 4) c.len = 4096;
    if (c.kind == 5) c.len = 0;
    if (c.len == 0) return;
    if (c.kind == 6 || c.kind == 7) {  // two pieces: a short head and the rest
        const std::uint32_t head = std::min<std::uint32_t>(c.len, 100 + 13 * index);
        c.a.resize(head);
        c.b.resize(c.len - head);
    } else {
        c.a.resize(c.len);
    }
    fill_pattern(c.a, index);
    fill_pattern(c.b, index + 31);
    c.iov[c.pieces++] = io_vec{c.a.data(), static_cast<std::uint32_t>(c.a.size()), -1};
    if (!c.b.empty()) c.iov[c.pieces++] = io_vec{c.b.data(), static_cast<std::uint32_t>(c.b.size()), -1};
}

void mark_completed(command& c) {
    c.completed = true;
    const bool w = is_write(c.kind);
    for (auto* v : {&c.a, &c.b}) {
        if (v->empty()) continue;
        if (w) {
            std::memset(v->data(), k_out_canary, v->size());
        } else {
            std::fill(v->begin(), v->end(), k_in_canary);
        }
        ASAN_POISON_MEMORY_REGION(v->data(), v->size());
    }
}

future<> issue(nvmf_qpair& qp, command& c, std::uint32_t nsid_lba_seed) {
    sqe cmd{};
    data_view view{std::span<const io_vec>(c.iov, c.pieces), 0, c.len};
    data_view out, in;
    bool in_capsule = false;
    const std::uint32_t blocks = c.len / 512;
    switch (c.kind) {
        case 1:
        case 6:
            cmd.opcode = nvm_opcode::read;
            in = view;
            break;
        case 2:
        case 7:
            cmd.opcode = nvm_opcode::write;
            out = view;
            break;
        case 3:
            cmd.opcode = nvm_opcode::write;
            out = view;
            in_capsule = true;
            break;
        case 4:
            cmd.opcode = admin_opcode::identify;
            cmd.cdw10 = 1;
            in = view;
            break;
        default:
            cmd.opcode = nvm_opcode::flush;
            break;
    }
    cmd.nsid = 1;
    if (blocks > 0 && c.kind != 4) {
        cmd.cdw10 = nsid_lba_seed;
        cmd.cdw12 = blocks - 1;
    }
    c.result = co_await qp.execute(cmd, out, in, in_capsule);
    mark_completed(c);
}

future<> run_input(run_state& st) {
    std::unique_ptr<nvmf_qpair> qp;
    try {
        qp = co_await nvmf_qpair::adopt(st.host_fd, 1, st.depth, k_io_timeout, st.want);
    } catch (const std::exception&) {
        // Refused handshake: the fd is closed, nothing was issued.
    }
    if (qp) {
        st.adopted = true;
        std::vector<future<>> running;
        for (unsigned i = 0; i < st.cmds.size(); ++i) running.push_back(issue(*qp, st.cmds[i], i * 8));
        for (auto& f : running) co_await std::move(f);
        // Commands may complete (time out) before the rest of the stream is
        // there: keep the connection until it is, so that anything the queue
        // pair still does with their buffers shows in the checks.
        co_await st.stream_sent.get_future();
        co_await qp->close();
        qp.reset();
    } else {
        co_await st.stream_sent.get_future();  // st lives until done_fd is signalled
    }
    const std::uint64_t one = 1;
    if (::write(st.done_fd, &one, sizeof one) != sizeof one) std::abort();
}

void stop_engine() {
    harness* h = g_h;
    if (!h || h->stopped.exchange(true)) return;
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
            promise<> stopped;
            e.at_stop([&]() -> future<> {
                stopped.set_value();
                co_return;
            });
            h->ready.count_down();
            co_await stopped.get_future();
            co_return 0;
        });
    });
    h->ready.wait();
    std::atexit(stop_engine);
}

// ---- the target's side of the socket ------------------------------------------

// Counts runs of the write canary in what the host sends.
struct output_scan {
    int run = 0;
    bool found = false;
    std::size_t total = 0;  // bytes the host sent (seed debugging)
    void feed(const char* p, ssize_t n) {
        total += static_cast<std::size_t>(n);
        for (ssize_t i = 0; i < n; ++i) {
            run = static_cast<std::uint8_t>(p[i]) == k_out_canary ? run + 1 : 0;
            if (run >= k_out_canary_run) found = true;
        }
    }
};

// Reads what is there without blocking; false on EOF / error.
bool drain_once(int fd, output_scan& scan) {
    char buf[16384];
    for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            scan.feed(buf, r);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        return false;
    }
}

// Writes [p, p + n) in pieces, draining the host's output when `drain`.
// Gives up after `stall_ms` with neither side moving (the host stopped
// reading, or closed).
void write_stream(int fd, const std::uint8_t* p, std::size_t n, bool drain, int stall_ms, output_scan& scan) {
    bool open_for_read = true;
    for (std::size_t off = 0; off < n;) {
        pollfd pf{fd, static_cast<short>(POLLOUT | (drain && open_for_read ? POLLIN : 0)), 0};
        if (::poll(&pf, 1, stall_ms) <= 0) return;
        if ((pf.revents & POLLIN) && !drain_once(fd, scan)) open_for_read = false;
        if (pf.revents & (POLLERR | POLLHUP)) return;
        if (pf.revents & POLLOUT) {
            ssize_t w = ::send(fd, p + off, std::min<std::size_t>(4096, n - off), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (w <= 0) return;
            off += static_cast<std::size_t>(w);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    start_engine();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (!g_h) start_engine();
    constexpr std::size_t preamble = 8;
    if (size < preamble) return -1;  // not an input of this layout: keep it out of the corpus
    const std::uint8_t flags = data[0];
    run_state st;
    st.want.header = flags & f_hdgst;
    st.want.data = flags & f_ddgst;
    st.depth = 1u + (flags >> 6);
    st.cmds.reserve(4);  // build_command's io_vecs point into the elements
    for (unsigned i = 0; i < 4; ++i) {
        if ((data[2 + i] & 7) == 0) continue;
        st.cmds.emplace_back();
        build_command(st.cmds.back(), data[2 + i], i);
    }
    const std::size_t pause_at = data[6] | (std::size_t{data[7]} << 8);

    // The target's stream: a valid ICResp granting what was asked, unless raw.
    std::vector<std::uint8_t> stream;
    if (!(flags & f_raw)) {
        tcp::ic_resp r{};
        r.ch.pdu_type = static_cast<std::uint8_t>(tcp::pdu_type::ic_resp);
        r.ch.hlen = sizeof r;
        r.ch.plen = sizeof r;
        r.pfv = tcp::pfv_1_0;
        r.dgst = static_cast<std::uint8_t>((st.want.header ? tcp::dgst::header : 0) |
                                           (st.want.data ? tcp::dgst::data : 0));
        r.maxh2cdata = tcp::min_maxh2cdata + 16u * data[1];
        const auto* rb = reinterpret_cast<const std::uint8_t*>(&r);
        stream.assign(rb, rb + sizeof r);
    }
    stream.insert(stream.end(), data + preamble, data + size);

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        std::perror("socketpair");
        std::abort();
    }
    const int tfd = sv[0];
    st.host_fd = sv[1];
    if (flags & f_slow_reader) {
        // A small send buffer on the host's end: its sends block as soon as
        // we stop reading, instead of landing in ~200 KiB of socket buffer.
        int small = 4096;
        ::setsockopt(st.host_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    }
    st.done_fd = ::eventfd(0, EFD_CLOEXEC);
    if (st.done_fd < 0) std::abort();
    g_h->eng->post(0, [&st] { (void)run_input(st); });

    output_scan scan;
    const bool pause = flags & f_pause;
    const std::size_t first = pause ? std::min(pause_at, stream.size()) : stream.size();
    const bool slow = pause && (flags & f_slow_reader);
    write_stream(tfd, stream.data(), first, !slow, slow ? k_pause_ms : 2000, scan);
    if (pause) {
        ::usleep(k_pause_ms * 1000);
        write_stream(tfd, stream.data() + first, stream.size() - first, true, 2000, scan);
        // A moment for the host to act on it (and to send what it was
        // blocked on) before close().
        for (int i = 0; i < 4; ++i) {
            pollfd pf{tfd, POLLIN, 0};
            if (::poll(&pf, 1, 5) > 0 && !drain_once(tfd, scan)) break;
        }
    }
    g_h->eng->post(0, [&st] { st.stream_sent.set_value(); });
    if (!(flags & f_hold)) ::shutdown(tfd, SHUT_WR);

    // Drain until the shard reports the input done (bounded).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(k_done_bound_ms);
    bool open_for_read = true;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            std::fprintf(stderr, "nvmf_host_fuzz: commands did not complete within %d ms\n", k_done_bound_ms);
            __builtin_trap();
        }
        pollfd p[2] = {{st.done_fd, POLLIN, 0}, {tfd, static_cast<short>(open_for_read ? POLLIN : 0), 0}};
        int n = ::poll(p, 2, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!drain_once(tfd, scan)) open_for_read = false;
        }
        if (p[0].revents & POLLIN) break;
    }
    drain_once(tfd, scan);
    ::close(tfd);
    ::close(st.done_fd);

    // The shard is done with st: check the buffers.
    for (auto& c : st.cmds) {
        if (st.adopted && !c.completed) {
            std::fprintf(stderr, "nvmf_host_fuzz: a command never completed\n");
            __builtin_trap();
        }
        for (auto* v : {&c.a, &c.b}) {
            ASAN_UNPOISON_MEMORY_REGION(v->data(), v->size());
            if (!c.completed || is_write(c.kind)) continue;
            if (std::any_of(v->begin(), v->end(), [](std::byte b) { return b != k_in_canary; })) {
                std::fprintf(stderr, "nvmf_host_fuzz: data landed in a read buffer after its command completed\n");
                __builtin_trap();
            }
        }
    }
    if (std::getenv("IOE_FUZZ_LOG")) {  // seed debugging: how each command ended
        std::fprintf(stderr, "nvmf_host_fuzz: the host sent %zu bytes\n", scan.total);
        for (auto& c : st.cmds) {
            std::fprintf(stderr, "nvmf_host_fuzz: kind %u len %u: %s status %#x\n", c.kind, c.len,
                         !st.adopted ? "not issued (handshake refused)"
                         : c.result.how == host_completion::kind::done      ? "done"
                         : c.result.how == host_completion::kind::timed_out ? "timed out"
                                                                            : "connection lost",
                         c.result.cq.status);
        }
    }
    if (scan.found) {
        std::fprintf(stderr, "nvmf_host_fuzz: the host sent a write buffer's bytes after its command completed\n");
        __builtin_trap();
    }
    return 0;
}
