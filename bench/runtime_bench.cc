// runtime_bench: the runtime's own figures against baselines measured in the
// same run (see bench/README.md for what every key means).
//
//   runtime_bench [--json] [--reps N] [--idle-seconds N] [--dir PATH] [--quick]
//                 [--window N] [--profile rtt|msgs|ready] [--verbose]
//
// Every measurement but the two idle ones is repeated --reps times (default
// 5) and the median of the repetitions is reported. Baseline runs and engine
// runs are interleaved (rep 1: baselines, busy engine, adaptive engine; rep
// 2: the same...) so that noise from a shared machine hits both sides alike.
// A watchdog ends the process (exit 3) if a phase hangs.
//
// Heap allocations are counted by replacing the global operator new (every
// variant) with versions that bump one atomic counter and call malloc.
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "bench/heap_count.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/timer.hh"

// Written once per measurement so that the optimizer keeps the loops.
volatile std::int64_t g_sink;


namespace {

using ioe::future;
using clk = std::chrono::steady_clock;

std::int64_t now_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t process_cpu_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Keeps `v` alive for the optimizer at no run-time cost.
template <typename T>
inline void keep(T& v) noexcept {
    asm volatile("" : "+r"(v));
}

// ---- parameters and results -------------------------------------------------

struct params {
    bool json = false;
    bool verbose = false;
    unsigned reps = 5;
    double idle_seconds = 5;
    std::string dir;                      // where the O_DIRECT file goes
    std::string profile;                  // --profile: one measurement in a loop
    double profile_seconds = 10;
    std::size_t rtt_samples = 200'000;
    std::size_t rtt_warmup = 10'000;
    std::uint64_t msgs = 2'000'000;
    unsigned window = 1024;               // submit_to messages in flight (throughput)
    std::size_t baseline_queue = 256;     // = smp::default_ring_capacity
    std::uint64_t ready_iters = 20'000'000;
    std::size_t alloc_warmup = 10'000;
    std::size_t alloc_calls = 100'000;
    std::size_t read_warmup = 200;
    std::size_t read_calls = 2'000;
    std::size_t file_bytes = 16 << 20;
    std::size_t wakeup_samples = 2'000;
    std::chrono::microseconds idle_before_sleep{50};
};

// One repetition's figures.
struct rep_result {
    double smp_rtt_p50 = 0, smp_rtt_p99 = 0;
    double base_rtt_p50 = 0, base_rtt_p99 = 0;
    double smp_mps = 0, base_mps = 0, base_rr_mps = 0;
    double ready_ns = 0;
    double allocs_per_call = 0, allocs_per_read = 0;
    double read_p50 = 0;
    double wake_p50 = 0, wake_p99 = 0;
};

double percentile(std::vector<std::int64_t>& v, double p) {
    if (v.empty()) return 0;
    std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * double(v.size())));
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
    return double(v[k]);
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

ioe::engine_config make_config(ioe::poll_mode mode, const params& p) {
    ioe::engine_config cfg;
    cfg.cores = {0, 1};
    cfg.reactor.mode = mode;
    cfg.reactor.idle_before_sleep = p.idle_before_sleep;
    cfg.memory.size_mb = 16;
    return cfg;
}

// ---- engine side: busy mode -----------------------------------------------------

// Round trips shard 0 -> shard 1 -> shard 0, one in flight.
future<> smp_rtt(std::size_t warmup, std::size_t n, std::vector<std::int64_t>* samples) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < warmup; ++i) {
        sum += co_await ioe::submit_to(1, [] { return 1; });
    }
    for (std::size_t i = 0; i < n; ++i) {
        std::int64_t t0 = now_ns();
        sum += co_await ioe::submit_to(1, [] { return 1; });
        samples->push_back(now_ns() - t0);
    }
    keep(sum);
}

// One-way throughput: n messages, at most `window` in flight; returns msgs/s
// from the first send to the last completion.
future<double> smp_throughput(std::uint64_t n, unsigned window) {
    std::vector<future<>> slots;
    slots.reserve(window);
    for (unsigned i = 0; i < window; ++i) slots.push_back(ioe::make_ready_future<>());
    // A short warm-up fills the slab with message blocks.
    for (std::uint64_t i = 0; i < std::uint64_t(window) * 4; ++i) {
        auto& s = slots[i % window];
        co_await std::move(s);
        s = ioe::submit_to(1, [] {});
    }
    for (auto& s : slots) {
        co_await std::move(s);
        s = ioe::make_ready_future<>();
    }
    std::int64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < n; ++i) {
        auto& s = slots[i % window];
        co_await std::move(s);
        s = ioe::submit_to(1, [] {});
    }
    for (auto& s : slots) co_await std::move(s);
    std::int64_t dt = now_ns() - t0;
    co_return double(n) * 1e9 / double(dt);
}

// Cost of co_await on a ready future, per await.
future<double> coroutine_ready(std::uint64_t iters) {
    std::int64_t acc = 0;
    std::int64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < iters; ++i) {
        int v = co_await ioe::make_ready_future<int>(static_cast<int>(i));
        keep(v);
        acc += v;
    }
    std::int64_t dt = now_ns() - t0;
    g_sink = acc;
    co_return double(dt) / double(iters);
}

future<double> allocs_per_call(std::size_t warmup, std::size_t calls) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < warmup; ++i) sum += co_await ioe::submit_to(1, [] { return 1; });
    std::uint64_t a0 = ioe::bench::heap_allocations();
    for (std::size_t i = 0; i < calls; ++i) sum += co_await ioe::submit_to(1, [] { return 1; });
    std::uint64_t a1 = ioe::bench::heap_allocations();
    keep(sum);
    co_return double(a1 - a0) / double(calls);
}

struct read_figures {
    double allocs_per_read = -1;
    double p50_ns = 0;
};

// 4 KiB O_DIRECT reads into a registered DMA buffer, one at a time.
future<read_figures> reads(ioe::engine* e, int fd, std::size_t file_bytes, std::size_t warmup, std::size_t calls,
                           std::vector<std::int64_t>* lat) {
    read_figures out;
    auto r = e->dma().allocate(4096);
    if (!r) {
        ioe::log::error("dma allocate failed: {}", r.error().message());
        co_return out;
    }
    ioe::dma_buffer buf = std::move(r.value());
    const std::uint64_t blocks = file_bytes / 4096;
    std::uint64_t x = 88172645463325252ull;  // xorshift: offsets without allocation
    auto next_off = [&x, blocks] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return (x % blocks) * 4096;
    };
    auto& io = ioe::local_reactor()->io();
    for (std::size_t i = 0; i < warmup; ++i) {
        auto res = co_await io.read(fd, buf.data(), 4096, next_off(), buf.buf_index());
        if (!res || res.value() != 4096) {
            ioe::log::error("read failed: {}", res ? std::string("short read") : res.error().message());
            co_return out;
        }
    }
    std::uint64_t a0 = ioe::bench::heap_allocations();
    for (std::size_t i = 0; i < calls; ++i) {
        std::int64_t t0 = now_ns();
        auto res = co_await io.read(fd, buf.data(), 4096, next_off(), buf.buf_index());
        lat->push_back(now_ns() - t0);
        if (!res) {
            ioe::log::error("read failed: {}", res.error().message());
            co_return out;
        }
    }
    std::uint64_t a1 = ioe::bench::heap_allocations();
    out.allocs_per_read = double(a1 - a0) / double(calls);
    out.p50_ns = percentile(*lat, 50);
    co_return out;
}

struct busy_args {
    ioe::engine* e;
    const params* p;
    rep_result* r;
    std::vector<std::int64_t>* samples;   // rtt, preallocated
    std::vector<std::int64_t>* read_lat;  // preallocated
    int fd;
};

future<int> busy_main(busy_args a) {
    a.samples->clear();
    co_await smp_rtt(a.p->rtt_warmup, a.p->rtt_samples, a.samples);
    a.r->smp_rtt_p50 = percentile(*a.samples, 50);
    a.r->smp_rtt_p99 = percentile(*a.samples, 99);
    a.r->smp_mps = co_await smp_throughput(a.p->msgs, a.p->window);
    a.r->ready_ns = co_await coroutine_ready(a.p->ready_iters);
    a.r->allocs_per_call = co_await allocs_per_call(a.p->alloc_warmup, a.p->alloc_calls);
    if (a.fd >= 0) {
        a.read_lat->clear();
        read_figures rf = co_await reads(a.e, a.fd, a.p->file_bytes, a.p->read_warmup, a.p->read_calls, a.read_lat);
        a.r->allocs_per_read = rf.allocs_per_read;
        a.r->read_p50 = rf.p50_ns;
    } else {
        a.r->allocs_per_read = -1;
    }
    co_return 0;
}

// --profile NAME: one measurement in a loop for `seconds`, for perf.
future<int> profile_main(std::string what, double seconds, const params* p, std::vector<std::int64_t>* samples) {
    std::int64_t end = now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    while (now_ns() < end) {
        if (what == "rtt") {
            samples->clear();
            co_await smp_rtt(p->rtt_warmup, p->rtt_samples, samples);
            std::fprintf(stderr, "rtt p50 %.0f ns\n", percentile(*samples, 50));
        } else if (what == "msgs") {
            double mps = co_await smp_throughput(p->msgs, p->window);
            std::fprintf(stderr, "msgs/s %.4g\n", mps);
        } else if (what == "ready") {
            double ns = co_await coroutine_ready(p->ready_iters);
            std::fprintf(stderr, "ready %.2f ns\n", ns);
        } else {
            std::fprintf(stderr, "runtime_bench: --profile rtt|msgs|ready\n");
            co_return 2;
        }
    }
    co_return 0;
}

// ---- engine side: adaptive mode -------------------------------------------------

// Time from queueing a message for a sleeping shard 1 to its handler running.
// Shard 0 stays awake (a loop of yields) and watches shard 1's `sleeping`
// flag; once set, it waits a further 20 us so that shard 1 is inside the
// io_uring wait and not still between setting the flag and the syscall.
future<int> wakeup_main(ioe::engine* e, std::size_t count, std::vector<std::int64_t>* samples) {
    ioe::reactor& r1 = e->reactor_of(1);
    std::size_t misses = 0;
    while (samples->size() < count) {
        while (!r1.sleeping()) co_await ioe::yield();
        std::int64_t seen = now_ns();
        while (now_ns() - seen < 20'000) co_await ioe::yield();
        if (!r1.sleeping()) {
            ++misses;
            continue;
        }
        std::int64_t t0 = now_ns();
        std::int64_t d = co_await ioe::submit_to(1, [t0] { return now_ns() - t0; });
        samples->push_back(d);
    }
    if (misses) ioe::log::info("wakeup: {} attempt(s) found shard 1 awake again", misses);
    co_return 0;
}

future<int> idle_main(double seconds, unsigned shards, double* pct) {
    using namespace std::chrono_literals;
    co_await ioe::sleep(200ms);  // let both shards settle
    std::int64_t c0 = process_cpu_ns(), w0 = now_ns();
    co_await ioe::sleep(std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9)));
    std::int64_t c1 = process_cpu_ns(), w1 = now_ns();
    *pct = double(c1 - c0) / (double(w1 - w0) * shards) * 100.0;
    co_return 0;
}

// ---- baselines: two pinned threads, boost::lockfree::spsc_queue --------------------

using spsc = boost::lockfree::spsc_queue<std::uint64_t>;

void pin_or_die(unsigned core) {
    std::string err = ioe::pin_thread_to_core(core);
    if (!err.empty()) {
        std::fprintf(stderr, "runtime_bench: %s\n", err.c_str());
        std::exit(1);
    }
}

void baseline_rtt(const params& p, std::vector<std::int64_t>& samples, double& p50, double& p99) {
    spsc ping(p.baseline_queue), pong(p.baseline_queue);
    const std::size_t total = p.rtt_warmup + p.rtt_samples;
    std::thread echo([&] {
        pin_or_die(1);
        for (std::size_t i = 0; i < total; ++i) {
            std::uint64_t v;
            while (!ping.pop(v)) {
            }
            while (!pong.push(v + 1)) {
            }
        }
    });
    std::thread driver([&] {
        pin_or_die(0);
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < total; ++i) {
            std::int64_t t0 = now_ns();
            while (!ping.push(i)) {
            }
            std::uint64_t v;
            while (!pong.pop(v)) {
            }
            if (i >= p.rtt_warmup) samples.push_back(now_ns() - t0);
            sum += v;
        }
        keep(sum);
    });
    driver.join();
    echo.join();
    p50 = percentile(samples, 50);
    p99 = percentile(samples, 99);
}

double baseline_throughput(const params& p) {
    spsc q(p.baseline_queue);
    const std::uint64_t n = p.msgs;
    std::atomic<int> ready{0};
    std::int64_t t0 = 0, t1 = 0;
    std::thread consumer([&] {
        pin_or_die(1);
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        std::uint64_t sum = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
            std::uint64_t v;
            while (!q.pop(v)) {
            }
            sum += v;
        }
        t1 = now_ns();
        keep(sum);
    });
    std::thread producer([&] {
        pin_or_die(0);
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        t0 = now_ns();
        for (std::uint64_t i = 0; i < n; ++i) {
            while (!q.push(i)) {
            }
        }
    });
    producer.join();
    consumer.join();
    return double(n) * 1e9 / double(t1 - t0);
}

// Informational, not a target: what submit_to does, written by hand. The
// producer sends a pointer to a 128-byte, cache-line aligned object (two
// lines, like a submit_to message) through one queue; the consumer reads both
// lines, writes a result into it and sends it back through a second queue;
// the producer reads the result and reuses the object. At most `window`
// objects are in flight. Counts completed round trips per second.
struct alignas(64) rr_object {
    std::uint64_t arg = 0;     // line 0, written by the producer
    std::uint64_t link = 0;    // line 0, written by the consumer
    char pad0[48];
    std::uint64_t tag = 0;     // line 1, written by the producer
    std::uint64_t result = 0;  // line 1, written by the consumer
    char pad1[48];
};
static_assert(sizeof(rr_object) == 128);

double baseline_roundtrip_throughput(const params& p) {
    using q_t = boost::lockfree::spsc_queue<rr_object*>;
    q_t req(p.baseline_queue), resp(p.baseline_queue);
    std::vector<rr_object> pool(p.window);
    const std::uint64_t n = p.msgs;
    std::atomic<int> ready{0};
    std::int64_t t0 = 0, t1 = 0;
    std::thread consumer([&] {
        pin_or_die(1);
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        for (std::uint64_t i = 0; i < n; ++i) {
            rr_object* o;
            while (!req.pop(o)) {
            }
            o->result = o->arg + o->tag;
            o->link = i;
            while (!resp.push(o)) {
            }
        }
    });
    std::thread producer([&] {
        pin_or_die(0);
        std::vector<rr_object*> free_list;
        free_list.reserve(pool.size());
        for (auto& o : pool) free_list.push_back(&o);
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        t0 = now_ns();
        std::uint64_t sent = 0, done = 0, sum = 0;
        while (done < n) {
            while (sent < n && !free_list.empty()) {
                rr_object* o = free_list.back();
                o->arg = sent;
                o->tag = 1;
                if (!req.push(o)) break;
                free_list.pop_back();
                ++sent;
            }
            rr_object* o;
            while (resp.pop(o)) {
                sum += o->result;
                free_list.push_back(o);
                ++done;
            }
        }
        t1 = now_ns();
        keep(sum);
    });
    producer.join();
    consumer.join();
    return double(n) * 1e9 / double(t1 - t0);
}

// ---- the O_DIRECT file ------------------------------------------------------------

constexpr long tmpfs_magic = 0x01021994;

// Creates an unlinked file of `bytes` in `dir` and opens it with O_DIRECT;
// -1 (and a log line) when the directory cannot do O_DIRECT.
int make_direct_file(const std::string& dir, std::size_t bytes) {
    struct statfs sf {};
    if (::statfs(dir.c_str(), &sf) == 0 && sf.f_type == tmpfs_magic) {
        std::fprintf(stderr, "runtime_bench: %s is tmpfs (no O_DIRECT)\n", dir.c_str());
        return -1;
    }
    std::string path = dir + "/runtime_bench.XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back('\0');
    int wfd = ::mkstemp(name.data());
    if (wfd < 0) {
        std::fprintf(stderr, "runtime_bench: cannot create a file in %s: %s\n", dir.c_str(), std::strerror(errno));
        return -1;
    }
    std::vector<char> chunk(1 << 20);
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131 + 7);
    for (std::size_t off = 0; off < bytes; off += chunk.size()) {
        if (::pwrite(wfd, chunk.data(), chunk.size(), static_cast<off_t>(off)) != ssize_t(chunk.size())) {
            std::fprintf(stderr, "runtime_bench: write to %s failed: %s\n", name.data(), std::strerror(errno));
            ::close(wfd);
            ::unlink(name.data());
            return -1;
        }
    }
    ::fsync(wfd);
    int fd = ::open(name.data(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    int err = errno;
    ::close(wfd);
    ::unlink(name.data());
    if (fd < 0) {
        std::fprintf(stderr, "runtime_bench: O_DIRECT open in %s failed: %s\n", dir.c_str(), std::strerror(err));
    }
    return fd;
}

int open_direct_file(const params& p) {
    std::vector<std::string> dirs;
    if (!p.dir.empty()) {
        dirs.push_back(p.dir);
    } else {
        dirs = {".", "/var/tmp"};
    }
    for (const auto& d : dirs) {
        int fd = make_direct_file(d, p.file_bytes);
        if (fd >= 0) return fd;
    }
    return -1;
}

// ---- watchdog and machine load -----------------------------------------------------

// Ends the process if a phase does not finish in time: a benchmark that hangs
// (a lost message, a lost wake-up) must say so, not block a script forever.
class watchdog {
public:
    watchdog() : _thread([this] { loop(); }) {}
    ~watchdog() {
        {
            std::lock_guard<std::mutex> lk(_m);
            _quit = true;
        }
        _cv.notify_all();
        _thread.join();
    }
    void arm(const char* what, std::chrono::seconds limit) {
        std::lock_guard<std::mutex> lk(_m);
        _what = what;
        _deadline = clk::now() + limit;
        _limit = limit;
        _armed = true;
        _cv.notify_all();
    }
    void disarm() {
        std::lock_guard<std::mutex> lk(_m);
        _armed = false;
        _cv.notify_all();
    }

private:
    void loop() {
        std::unique_lock<std::mutex> lk(_m);
        while (!_quit) {
            if (!_armed) {
                _cv.wait(lk);
                continue;
            }
            if (_cv.wait_until(lk, _deadline) == std::cv_status::timeout && _armed && clk::now() >= _deadline) {
                std::fprintf(stderr, "runtime_bench: %s did not finish within %lld s: giving up (exit 3)\n", _what,
                             static_cast<long long>(_limit.count()));
                std::fflush(stderr);
                std::_Exit(3);
            }
        }
    }
    std::mutex _m;
    std::condition_variable _cv;
    const char* _what = "";
    clk::time_point _deadline{};
    std::chrono::seconds _limit{0};
    bool _armed = false;
    bool _quit = false;
    std::thread _thread;
};

// Machine-wide CPU use from /proc/stat, to tell how much of the machine
// others used while we measured (the figures are only as good as this).
struct cpu_sample {
    double busy = 0;   // user+nice+system+irq+softirq, seconds over all CPUs
    double steal = 0;  // seconds the hypervisor ran someone else
    std::int64_t wall_ns = 0, self_ns = 0;
};

cpu_sample sample_cpu() {
    cpu_sample c;
    std::ifstream f("/proc/stat");
    std::string cpu;
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    f >> cpu >> user >> nice >> sys >> idle >> iowait >> irq >> softirq >> steal;
    const double hz = double(sysconf(_SC_CLK_TCK));
    c.busy = double(user + nice + sys + irq + softirq) / hz;
    c.steal = double(steal) / hz;
    c.wall_ns = now_ns();
    c.self_ns = process_cpu_ns();
    return c;
}

struct machine_load {
    double other_pct = 0;  // CPU used by other processes, % of all CPUs
    double steal_pct = 0;  // steal time, % of all CPUs
};

machine_load load_between(const cpu_sample& a, const cpu_sample& b) {
    const double cpus = double(std::max(1u, std::thread::hardware_concurrency()));
    const double wall = double(b.wall_ns - a.wall_ns) / 1e9;
    const double self = double(b.self_ns - a.self_ns) / 1e9;
    machine_load m;
    m.other_pct = std::clamp((b.busy - a.busy - self) / (wall * cpus) * 100.0, 0.0, 100.0);
    m.steal_pct = (b.steal - a.steal) / (wall * cpus) * 100.0;
    return m;
}

// ---- main ---------------------------------------------------------------------------

void usage() {
    std::fprintf(stderr,
                 "usage: runtime_bench [--json] [--reps N] [--idle-seconds N] [--dir PATH] [--quick] [--window N]\n"
                 "                     [--profile rtt|msgs|ready] [--verbose]\n"
                 "  --json            one JSON object on stdout (logs on stderr)\n"
                 "  --reps N          repetitions of each measurement, median reported (default 5)\n"
                 "  --idle-seconds N  length of each idle-CPU window (default 5)\n"
                 "  --dir PATH        directory for the O_DIRECT test file (default: . then /var/tmp)\n"
                 "  --quick           10x fewer iterations (smoke test)\n"
                 "  --window N        submit_to messages in flight in the throughput test (default 1024)\n"
                 "  --profile WHAT    rtt|msgs|ready: that engine measurement in a loop for 10 s (for perf)\n"
                 "  --verbose         engine logs at info level\n");
}

bool parse_args(int argc, char** argv, params& p) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) return nullptr;
            return argv[++i];
        };
        if (a == "--json") {
            p.json = true;
        } else if (a == "--verbose") {
            p.verbose = true;
        } else if (a == "--quick") {
            p.rtt_samples /= 10;
            p.msgs /= 10;
            p.ready_iters /= 10;
            p.alloc_calls /= 10;
            p.read_calls /= 10;
            p.wakeup_samples /= 10;
        } else if (a == "--reps") {
            const char* v = value();
            if (!v || std::atoi(v) < 1) return false;
            p.reps = static_cast<unsigned>(std::atoi(v));
        } else if (a == "--idle-seconds") {
            const char* v = value();
            if (!v || std::atof(v) <= 0) return false;
            p.idle_seconds = std::atof(v);
        } else if (a == "--window") {
            const char* v = value();
            if (!v || std::atoi(v) < 1) return false;
            p.window = static_cast<unsigned>(std::atoi(v));
        } else if (a == "--profile") {
            const char* v = value();
            if (!v) return false;
            p.profile = v;
        } else if (a == "--dir") {
            const char* v = value();
            if (!v) return false;
            p.dir = v;
        } else {
            return false;
        }
    }
    return true;
}

struct summary {
    double smp_rtt_p50, smp_rtt_p99, base_rtt_p50, base_rtt_p99;
    double smp_mps, base_mps, base_rr_mps, ready_ns, allocs_call, allocs_read, read_p50;
    double wake_p50, wake_p99, idle_adaptive, idle_busy;
};

template <typename F>
double med(const std::vector<rep_result>& reps, F f) {
    std::vector<double> v;
    for (const auto& r : reps) v.push_back(f(r));
    return median(std::move(v));
}

std::string fmt_bool(bool b) { return b ? "true" : "false"; }

}  // namespace

int main(int argc, char** argv) {
    params p;
    if (!parse_args(argc, argv, p)) {
        usage();
        return 2;
    }
    ioe::log::set_level(p.verbose ? spdlog::level::info : spdlog::level::warn);
    if (std::thread::hardware_concurrency() < 2) {
        std::fprintf(stderr, "runtime_bench: needs at least 2 cores (cores 0 and 1)\n");
        return 1;
    }

    if (!p.profile.empty()) {
        ioe::engine e(make_config(ioe::poll_mode::busy, p));
        std::vector<std::int64_t> samples;
        samples.reserve(p.rtt_samples);
        return e.run([&p, &samples] { return profile_main(p.profile, p.profile_seconds, &p, &samples); });
    }

    int fd = open_direct_file(p);
    if (fd < 0) std::fprintf(stderr, "runtime_bench: no O_DIRECT file: allocs_per_read not measured\n");

    std::vector<std::int64_t> samples, read_lat, wake;
    samples.reserve(p.rtt_samples);
    read_lat.reserve(p.read_calls);
    wake.reserve(p.wakeup_samples);

    watchdog dog;
    const cpu_sample start = sample_cpu();
    std::vector<rep_result> reps(p.reps);
    for (unsigned rep = 0; rep < p.reps; ++rep) {
        rep_result& r = reps[rep];
        const cpu_sample rep_start = sample_cpu();
        std::fprintf(stderr, "runtime_bench: repetition %u/%u\n", rep + 1, p.reps);
        // Baselines right before the engine, so that both see the same machine.
        dog.arm("the baselines", std::chrono::seconds(120));
        samples.clear();
        baseline_rtt(p, samples, r.base_rtt_p50, r.base_rtt_p99);
        r.base_mps = baseline_throughput(p);
        r.base_rr_mps = baseline_roundtrip_throughput(p);
        {
            dog.arm("the busy-mode engine (rtt, msgs, coroutine, allocs, reads)", std::chrono::seconds(300));
            ioe::engine e(make_config(ioe::poll_mode::busy, p));
            busy_args a{&e, &p, &r, &samples, &read_lat, fd};
            int rc = e.run([a] { return busy_main(a); });
            if (rc != 0) return rc;
        }
        {
            dog.arm("the adaptive-mode engine (wake-up latency)", std::chrono::seconds(120));
            ioe::engine e(make_config(ioe::poll_mode::adaptive, p));
            wake.clear();
            int rc = e.run([&e, &p, &wake] { return wakeup_main(&e, p.wakeup_samples, &wake); });
            if (rc != 0) return rc;
            r.wake_p50 = percentile(wake, 50);
            r.wake_p99 = percentile(wake, 99);
        }
        dog.disarm();
        machine_load ml = load_between(rep_start, sample_cpu());
        std::fprintf(stderr,
                     "runtime_bench: rep %u: rtt p50 %.0f/%.0f ns (smp/baseline), msgs/s %.3g/%.3g (round-trip baseline "
                     "%.3g), ready %.2f ns, "
                     "allocs %.3f/call %.3f/read, read p50 %.0f ns, wakeup p50 %.0f ns; others used %.0f%% of the "
                     "CPUs, steal %.1f%%\n",
                     rep + 1, r.smp_rtt_p50, r.base_rtt_p50, r.smp_mps, r.base_mps, r.base_rr_mps, r.ready_ns, r.allocs_per_call,
                     r.allocs_per_read, r.read_p50, r.wake_p50, ml.other_pct, ml.steal_pct);
    }
    if (fd >= 0) ::close(fd);

    summary s{};
    s.smp_rtt_p50 = med(reps, [](const rep_result& r) { return r.smp_rtt_p50; });
    s.smp_rtt_p99 = med(reps, [](const rep_result& r) { return r.smp_rtt_p99; });
    s.base_rtt_p50 = med(reps, [](const rep_result& r) { return r.base_rtt_p50; });
    s.base_rtt_p99 = med(reps, [](const rep_result& r) { return r.base_rtt_p99; });
    s.smp_mps = med(reps, [](const rep_result& r) { return r.smp_mps; });
    s.base_mps = med(reps, [](const rep_result& r) { return r.base_mps; });
    s.base_rr_mps = med(reps, [](const rep_result& r) { return r.base_rr_mps; });
    s.ready_ns = med(reps, [](const rep_result& r) { return r.ready_ns; });
    s.allocs_call = med(reps, [](const rep_result& r) { return r.allocs_per_call; });
    s.allocs_read = med(reps, [](const rep_result& r) { return r.allocs_per_read; });
    s.read_p50 = med(reps, [](const rep_result& r) { return r.read_p50; });
    s.wake_p50 = med(reps, [](const rep_result& r) { return r.wake_p50; });
    s.wake_p99 = med(reps, [](const rep_result& r) { return r.wake_p99; });

    double idle_load_adaptive = 0, idle_load_busy = 0;
    for (ioe::poll_mode mode : {ioe::poll_mode::adaptive, ioe::poll_mode::busy}) {
        std::fprintf(stderr, "runtime_bench: idle %s engine for %.1f s\n", std::string(ioe::to_string(mode)).c_str(),
                     p.idle_seconds);
        dog.arm("the idle engine", std::chrono::seconds(60 + static_cast<long>(p.idle_seconds)));
        ioe::engine e(make_config(mode, p));
        double pct = 0;
        const unsigned shards = e.shards();
        const cpu_sample before = sample_cpu();
        int rc = e.run([&p, &pct, shards] { return idle_main(p.idle_seconds, shards, &pct); });
        if (rc != 0) return rc;
        const machine_load ml = load_between(before, sample_cpu());
        std::fprintf(stderr, "runtime_bench: idle %s: %.3f%% CPU; others used %.1f%% of the CPUs meanwhile\n",
                     std::string(ioe::to_string(mode)).c_str(), pct, ml.other_pct);
        (mode == ioe::poll_mode::adaptive ? s.idle_adaptive : s.idle_busy) = pct;
        (mode == ioe::poll_mode::adaptive ? idle_load_adaptive : idle_load_busy) = ml.other_pct;
    }
    dog.disarm();
    const machine_load load = load_between(start, sample_cpu());

    const double rtt_ratio = s.smp_rtt_p50 / s.base_rtt_p50;
    const double msgs_ratio = s.smp_mps / s.base_mps;
    const bool rtt_ok = rtt_ratio <= 1.5;
    const bool msgs_ok = msgs_ratio >= 1.0;
    const bool call_ok = s.allocs_call == 0;
    const bool read_ok = s.allocs_read == 0;
    const bool idle_ok = s.idle_adaptive < 1.0;

    if (p.json) {
        std::string out = "{";
        auto num = [&out](const char* key, double v, int prec) {
            out += fmt::format("\"{}\": {:.{}f}, ", key, v, prec);
        };
        num("smp_rtt_ns_p50", s.smp_rtt_p50, 0);
        num("smp_rtt_ns_p99", s.smp_rtt_p99, 0);
        num("baseline_rtt_ns_p50", s.base_rtt_p50, 0);
        num("baseline_rtt_ns_p99", s.base_rtt_p99, 0);
        num("smp_msgs_per_s", s.smp_mps, 0);
        num("baseline_msgs_per_s", s.base_mps, 0);
        num("baseline_roundtrip_msgs_per_s", s.base_rr_mps, 0);
        num("coroutine_ready_ns", s.ready_ns, 2);
        num("allocs_per_call", s.allocs_call, 4);
        num("allocs_per_read", s.allocs_read, 4);
        num("read_4k_ns_p50", s.read_p50, 0);
        num("idle_cpu_pct_adaptive", s.idle_adaptive, 3);
        num("idle_cpu_pct_busy", s.idle_busy, 1);
        num("wakeup_ns_p50", s.wake_p50, 0);
        num("wakeup_ns_p99", s.wake_p99, 0);
        num("rtt_ratio", rtt_ratio, 3);
        num("msgs_ratio", msgs_ratio, 3);
        num("msgs_ratio_vs_roundtrip_baseline", s.smp_mps / s.base_rr_mps, 3);
        out += fmt::format(
            "\"targets\": {{\"rtt_ratio_max\": 1.5, \"rtt_ratio_met\": {}, \"msgs_ratio_min\": 1.0, "
            "\"msgs_ratio_met\": {}, \"allocs_per_call_met\": {}, \"allocs_per_read_met\": {}, "
            "\"idle_cpu_pct_adaptive_max\": 1.0, \"idle_cpu_pct_adaptive_met\": {}}}, ",
            fmt_bool(rtt_ok), fmt_bool(msgs_ok), fmt_bool(call_ok), fmt_bool(read_ok), fmt_bool(idle_ok));
        out += fmt::format(
            "\"config\": {{\"repetitions\": {}, \"rtt_samples\": {}, \"msgs\": {}, \"window\": {}, "
            "\"baseline_queue\": {}, \"ready_iters\": {}, \"alloc_calls\": {}, \"read_calls\": {}, "
            "\"wakeup_samples\": {}, \"idle_before_sleep_us\": {}, \"idle_seconds\": {}, \"cores\": [0, 1], "
            "\"hardware_threads\": {}}}, ",
            p.reps, p.rtt_samples, p.msgs, p.window, p.baseline_queue, p.ready_iters, p.alloc_calls, p.read_calls,
            p.wakeup_samples, p.idle_before_sleep.count(), p.idle_seconds, std::thread::hardware_concurrency());
        out += fmt::format(
            "\"machine\": {{\"other_processes_cpu_pct\": {:.1f}, \"steal_pct\": {:.1f}, "
            "\"other_processes_cpu_pct_idle_adaptive\": {:.1f}, \"other_processes_cpu_pct_idle_busy\": {:.1f}}}",
            load.other_pct, load.steal_pct, idle_load_adaptive, idle_load_busy);
        out += "}\n";
        std::fputs(out.c_str(), stdout);
    } else {
        auto row = [](const char* name, double v, const char* unit, const char* target) {
            std::printf("%-30s %16.2f %-8s %s\n", name, v, unit, target);
        };
        std::printf("%-30s %16s %-8s %s\n", "measure", "value", "unit", "target");
        row("smp_rtt_ns_p50", s.smp_rtt_p50, "ns", rtt_ok ? "<= 1.5x baseline: met" : "<= 1.5x baseline: MISSED");
        row("smp_rtt_ns_p99", s.smp_rtt_p99, "ns", "");
        row("baseline_rtt_ns_p50", s.base_rtt_p50, "ns", "");
        row("baseline_rtt_ns_p99", s.base_rtt_p99, "ns", "");
        row("rtt_ratio", rtt_ratio, "x", "");
        row("smp_msgs_per_s", s.smp_mps, "msg/s", msgs_ok ? ">= baseline: met" : ">= baseline: MISSED");
        row("baseline_msgs_per_s", s.base_mps, "msg/s", "");
        row("baseline_roundtrip_msgs_per_s", s.base_rr_mps, "msg/s", "(informational)");
        row("msgs_ratio", msgs_ratio, "x", "");
        row("coroutine_ready_ns", s.ready_ns, "ns", "");
        row("allocs_per_call", s.allocs_call, "allocs", call_ok ? "== 0: met" : "== 0: MISSED");
        row("allocs_per_read", s.allocs_read, "allocs", read_ok ? "== 0: met" : "== 0: MISSED");
        row("read_4k_ns_p50", s.read_p50, "ns", "");
        row("idle_cpu_pct_adaptive", s.idle_adaptive, "%", idle_ok ? "< 1: met" : "< 1: MISSED");
        row("idle_cpu_pct_busy", s.idle_busy, "%", "");
        row("wakeup_ns_p50", s.wake_p50, "ns", "");
        row("wakeup_ns_p99", s.wake_p99, "ns", "");
        std::printf("(median of %u repetitions; idle figures measured once, %.1f s each)\n", p.reps, p.idle_seconds);
        std::printf("(during the run other processes used %.1f%% of the machine's CPUs; steal %.1f%%)\n",
                    load.other_pct, load.steal_pct);
    }
    return 0;
}
