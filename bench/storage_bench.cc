// storage_bench: IOPS and latency of a replica, of the raw uring device under
// it and of fio on the same file, in one run (see bench/README.md).
//   storage_bench [--json] [--file PATH] [--seconds N] [--warmup N] [--keep-file]
// 1. The file (default ./storage_bench.img, 1 GiB; not /tmp, which may be
//    tmpfs without O_DIRECT) is written whole with O_DIRECT and fsynced: a
//    sparse file would read its holes without any I/O.
// 2. fio (io_uring, direct) on the file, one workload after the other.
// 3. One engine, one shard, busy polling: the raw device (uring:///FILE, LBAs
//    from 0 through dev->channel()); then a pool on that device (overwrite)
//    with a thick replica filling it, pre-written whole, measured, destroyed;
//    then malloc:/// raw and a thick replica on it (the engine's own cost).
// Each workload: QD coroutines, each looping {random aligned offset (xorshift)
// or the next sequential one, I/O on its own DMA buffer, latency into a
// preallocated array}; a warm-up, then `--seconds` measured. Latency = issue
// to completion (steady_clock); fio's figure is its completion latency (clat).
// Nothing allocates from the heap between the start and the end of a window.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "storage/device_registry.hh"
#include "storage/pool.hh"

namespace {

using ioe::future;
using clk = std::chrono::steady_clock;

std::uint64_t xorshift(std::uint64_t& x) noexcept {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

// ---- parameters, workloads, results ------------------------------------------

struct params {
    bool json = false, keep_file = false;
    std::string file = "storage_bench.img";
    double seconds = 5;
    double warmup = 0.5;
    std::uint64_t file_mb = 1024;
};

struct workload {
    const char* name;
    bool write, random;
    std::uint32_t bytes;
    unsigned qd;
    const char* fio_rw;
};

constexpr workload workloads[] = {
    {"randread4k_qd1", false, true, 4096, 1, "randread"},
    {"randread4k_qd32", false, true, 4096, 32, "randread"},
    {"randwrite4k_qd32", true, true, 4096, 32, "randwrite"},
    {"read128k_qd8", false, false, 128 << 10, 8, "read"},
};
constexpr std::size_t nworkloads = std::size(workloads);
constexpr std::size_t qd1 = 0, qd32 = 1;  // randread4k_qd1, randread4k_qd32
constexpr double malloc_qd1_seconds = 1;  // replica vs device on RAM: no disk noise
constexpr int paired_windows = 10;        // alternating device/replica QD-1 windows
constexpr double paired_seconds = 0.5;

struct figures {
    double iops = 0, p50_us = 0, p99_us = 0;
    std::uint64_t errors = 0;
    bool done = false;
    double cpu_wait_pct = 0;  // of the run, our thread was runnable but off its core
};

struct results {
    figures fio[nworkloads], device[nworkloads], replica[nworkloads];
    figures malloc_replica, malloc_device_qd1, malloc_replica_qd1;
    // QD-1 p50 of replica minus device in alternating short windows on the
    // same file (the disk drifts by tens of us between long windows).
    std::vector<double> paired_qd1_diff_us;
    bool fio_pinned = true;  // until pinning fails
    std::string error;  // the first thing that failed
};

void usage() {
    std::fputs("usage: storage_bench [--json] [--file PATH] [--seconds N] [--warmup N] [--keep-file]\n"
               "  --json: one JSON object on stdout (logs on stderr); --file: the test file (default\n"
               "  ./storage_bench.img; on a disk, not tmpfs); --seconds: measured per workload and path\n"
               "  (default 5); --warmup: unmeasured before each (0.5); --keep-file: do not delete it\n", stderr);
}

bool parse_args(int argc, char** argv, params& p) {
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&](double& out, double min) {
            char* end = nullptr;
            if (i + 1 < argc) out = std::strtod(argv[++i], &end);
            return end && *end == '\0' && out >= min;
        };
        double mb = 0;
        if (a == "--json") {
            p.json = true;
        } else if (a == "--keep-file") {
            p.keep_file = true;
        } else if (a == "--file" && i + 1 < argc) {
            p.file = argv[++i];
        } else if (a == "--seconds" || a == "--warmup") {
            if (!value(a == "--seconds" ? p.seconds : p.warmup, a == "--seconds" ? 0.1 : 0)) return false;
        } else if (a == "--size-mb" && value(mb, 64)) {  // quick trials only: the spec is 1 GiB
            p.file_mb = static_cast<std::uint64_t>(mb);
        } else {
            return false;
        }
    }
    return true;
}

// ---- fio: run, and read its JSON --------------------------------------------------

// Just enough JSON for fio's output: objects, arrays, numbers (strings skipped).
struct jvalue {
    double num = 0;
    std::vector<std::string> keys;  // object members: keys[i] -> vals[i]
    std::vector<jvalue> vals;       // also array elements
    const jvalue* get(std::string_view k) const {
        for (std::size_t i = 0; i < keys.size(); ++i) if (keys[i] == k) return &vals[i];
        return nullptr;
    }
};

struct jparser {
    const char *p, *e;
    void ws() { while (p < e && std::strchr(" \t\r\n", *p)) ++p; }
    bool str(std::string& out) {
        if (p >= e || *p != '"') return false;
        for (++p; p < e && *p != '"'; ++p) {
            if (*p == '\\' && ++p >= e) return false;  // an escape is kept as its letter
            out += *p;
        }
        return p++ < e;
    }
    bool value(jvalue& v, int depth = 0) {
        ws();
        if (p >= e || depth > 64) return false;
        if (*p == '"') {
            std::string ignored;
            return str(ignored);
        }
        if (*p != '{' && *p != '[') {
            char* end = nullptr;
            v.num = std::strtod(p, &end);
            if (end != p) return p = end, true;
            for (std::string_view lit : {"true", "false", "null"}) {
                if (std::string_view(p, e - p).starts_with(lit)) return p += lit.size(), true;
            }
            return false;
        }
        const bool obj = *p++ == '{';
        const char close = obj ? '}' : ']';
        ws();
        if (p < e && *p == close) return ++p, true;
        for (;;) {
            ws();
            if (obj) {
                if (!str(v.keys.emplace_back())) return false;
                ws();
                if (p >= e || *p++ != ':') return false;
            }
            if (!value(v.vals.emplace_back(), depth + 1)) return false;
            ws();
            if (p >= e || (*p != ',' && *p != close)) return false;
            if (*p++ == close) return true;
        }
    }
};

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs `cmd` through the shell; its stdout in `out`, its exit status returned.
int run_capture(const std::string& cmd, std::string& out) {
    out.clear();
    FILE* f = ::popen(cmd.c_str(), "r");
    if (!f) return -1;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    const int st = ::pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool have_fio(std::string& version) {
    const int rc = run_capture("fio --version 2>/dev/null", version);
    while (!version.empty() && std::isspace(static_cast<unsigned char>(version.back()))) version.pop_back();
    return rc == 0 && !version.empty();
}

// The value at a path of keys ("" takes the first element of an array).
const jvalue* at(const jvalue* v, std::initializer_list<std::string_view> path) {
    for (std::string_view k : path) v = !v ? nullptr : !k.empty() ? v->get(k) : v->vals.empty() ? nullptr : &v->vals[0];
    return v;
}

// Parses jobs[0].<read|write>: iops and the clat percentiles (ns -> us).
bool parse_fio(const std::string& out, bool write, figures& f) {
    const std::size_t start = out.find('{');
    jvalue root;
    jparser jp{out.data() + std::min(start, out.size()), out.data() + out.size()};
    if (start == std::string::npos || !jp.value(root)) return false;
    const jvalue* dir = at(&root, {"jobs", "", write ? "write" : "read"});
    const jvalue* iops = at(dir, {"iops"});
    const jvalue* p50 = at(dir, {"clat_ns", "percentile", "50.000000"});
    const jvalue* p99 = at(dir, {"clat_ns", "percentile", "99.000000"});
    const jvalue* err = at(&root, {"jobs", "", "error"});
    if (!iops || !p50 || !p99) return false;
    f = figures{iops->num, p50->num / 1000, p99->num / 1000, err ? static_cast<std::uint64_t>(err->num) : 0, true};
    return true;
}

// One fio workload; pinned to `core` unless pinning failed before.
bool run_fio(const params& p, const std::string& path, const workload& w, unsigned core, bool& pin, figures& f) {
    const auto ms = [](double s) { return static_cast<long>(s * 1000 + 0.5); };
    for (;;) {
        const std::string cmd = fmt::format(
            "timeout -k 5 {} fio --name=storage_bench --filename={} --size={}M --ioengine=io_uring --direct=1 "
            "--rw={} --bs={} --iodepth={} --numjobs=1 --time_based --runtime={}ms --ramp_time={}ms --norandommap "
            "--randrepeat=0 --group_reporting --output-format=json{}",
            static_cast<long>(p.seconds + p.warmup) + 60, shell_quote(path), p.file_mb, w.fio_rw, w.bytes, w.qd,
            ms(p.seconds), ms(p.warmup), pin ? fmt::format(" --cpus_allowed={}", core) : std::string());
        std::fprintf(stderr, "storage_bench: fio %s%s\n", w.name, pin ? "" : " (unpinned)");
        std::string out;
        int rc = run_capture(cmd, out);
        if (rc == 0 && parse_fio(out, w.write, f)) return true;
        if (!pin) {
            std::fprintf(stderr, "storage_bench: fio failed (exit %d) for %s: %.2000s\n", rc, w.name, out.c_str());
            return false;
        }
        std::fprintf(stderr, "storage_bench: fio pinned to core %u failed (exit %d); retrying unpinned\n", core, rc);
        pin = false;
    }
}

// Writes the whole file with non-zero data (O_DIRECT, 1 MiB at a time), fsyncs.
bool prepare_file(const params& p, std::string& err) {
    struct stat st {};
    if (::stat(p.file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) return err = p.file + " is not a file", false;
    const int fd = ::open(p.file.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = fmt::format("open {} with O_DIRECT: {}{}", p.file, std::strerror(errno),
                          errno == EINVAL ? " (no O_DIRECT on that file system, e.g. tmpfs: use --file)" : "");
        return false;
    }
    constexpr std::size_t chunk = 1 << 20;
    const std::uint64_t size = p.file_mb << 20;
    void* mem = nullptr;
    bool good = ::ftruncate(fd, static_cast<off_t>(size)) == 0 && ::posix_memalign(&mem, 4096, chunk) == 0;
    const auto t0 = clk::now();
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (std::uint64_t off = 0; off < size && good; off += chunk) {
        for (std::size_t i = 0; i < chunk / 8; ++i) static_cast<std::uint64_t*>(mem)[i] = xorshift(x);
        good = ::pwrite(fd, mem, chunk, static_cast<off_t>(off)) == static_cast<ssize_t>(chunk);
    }
    if (!good || ::fsync(fd) != 0) err = fmt::format("writing {}: {}", p.file, std::strerror(errno));
    std::free(mem);
    ::close(fd);
    std::fprintf(stderr, "storage_bench: wrote %s (%llu MiB) in %.1f s\n", p.file.c_str(),
                 static_cast<unsigned long long>(p.file_mb), std::chrono::duration<double>(clk::now() - t0).count());
    return err.empty();
}

// ---- engine measurements -----------------------------------------------------------

// The number at `field` (from 0) of a /proc file, or -1.
double proc_number(const char* path, int field) {
    double v = -1;
    if (FILE* f = std::fopen(path, "r")) {
        for (int i = 0; i <= field; ++i) v = std::fscanf(f, "%lf", &v) == 1 ? v : -1;
        std::fclose(f);
    }
    return v;
}
// Nanoseconds the calling thread has spent runnable but waiting for a CPU.
double cpu_wait_ns() { return proc_number("/proc/thread-self/schedstat", 1); }

// `n` DMA buffers of `bytes`, each filled with its own byte.
std::vector<ioe::dma_buffer> dma_buffers(unsigned n, std::size_t bytes) {
    std::vector<ioe::dma_buffer> v;
    for (unsigned i = 0; i < n; ++i) {
        auto b = ioe::engine::current()->dma().allocate(bytes);
        if (!b) throw std::runtime_error("DMA pool exhausted");
        std::memset(b->data(), 0x5a ^ static_cast<int>(i), bytes);
        v.push_back(std::move(b.value()));
    }
    return v;
}

// One workload in progress: shared by its QD coroutines (one shard).
struct run_state {
    ioe::io_channel* ch = nullptr;
    std::uint32_t blocks = 0;   // per I/O
    std::uint64_t slots = 0;    // I/O-sized slots in the span
    bool write = false, random = false;
    clk::time_point begin, end;  // the measured window
    std::uint32_t* samples = nullptr;
    std::size_t cap = 0, n = 0;
    std::uint64_t ops = 0, errors = 0, next = 0;
    ioe::io_status first_error = ioe::io_status::success;
};

future<> worker(run_state* s, ioe::io_vec v, std::uint64_t x) {
    const ioe::io_vecs iov(&v, 1);
    unsigned ready_in_a_row = 0;
    for (;;) {
        const clk::time_point t0 = clk::now();
        if (t0 >= s->end || s->errors > 1000) break;
        std::uint64_t slot;
        if (s->random) {
            slot = xorshift(x) % s->slots;
        } else if ((slot = s->next++) + 1 == s->slots) {
            s->next = 0;
        }
        const std::uint64_t lba = slot * s->blocks;
        future<ioe::io_status> f = s->write ? s->ch->write(lba, s->blocks, iov) : s->ch->read(lba, s->blocks, iov);
        const bool was_ready = f.available();
        const ioe::io_status st = co_await std::move(f);
        const clk::time_point t1 = clk::now();
        if (!ioe::ok(st)) {
            if (s->errors++ == 0) s->first_error = st;
            continue;
        }
        if (t1 >= s->begin && t1 <= s->end && ++s->ops && s->n < s->cap) {
            s->samples[s->n++] = std::uint32_t(std::min<std::int64_t>((t1 - t0) / std::chrono::nanoseconds(1), ~0u));
        }
        // A backend that completes in place (malloc) never suspends: let the
        // other coroutines of the queue depth (and the reactor) run.
        if (was_ready && ++ready_in_a_row == 16) {
            ready_in_a_row = 0;
            co_await ioe::yield();
        }
    }
}

// Runs `w` on `dev` (its calling-shard channel) over its whole size.
future<figures> run_workload(ioe::block_device* dev, const workload* w, double seconds, double warmup,
                             std::vector<std::uint32_t>* samples, const char* label) {
    ioe::io_channel* ch = dev->channel();
    if (!ch) throw std::runtime_error(std::string("no channel to ") + label);
    std::vector<ioe::dma_buffer> bufs = dma_buffers(w->qd, w->bytes);
    std::vector<future<>> running;
    running.reserve(w->qd);
    const std::uint32_t blocks = w->bytes / dev->block_size();
    const auto begin = clk::now() + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(warmup));
    run_state s{.ch = ch, .blocks = blocks, .slots = dev->block_count() / blocks, .write = w->write,
                .random = w->random, .begin = begin,
                .end = begin + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds)),
                .samples = samples->data(), .cap = samples->size()};
    std::fprintf(stderr, "storage_bench: %s %s\n", label, w->name);
    const double wait0 = cpu_wait_ns();
    const auto t0 = clk::now();
    for (unsigned i = 0; i < w->qd; ++i) {
        running.push_back(worker(&s, ioe::to_io_vec(bufs[i]), 0x2545f4914f6cdd1dull * (i + 1) + w->bytes));
    }
    for (auto& r : running) co_await std::move(r);
    const double wait_pct = (cpu_wait_ns() - wait0) / double(std::chrono::nanoseconds(clk::now() - t0).count());
    if (s.errors) {
        std::fprintf(stderr, "storage_bench: %s %s: %llu I/O errors, the first: %s\n", label, w->name,
                     static_cast<unsigned long long>(s.errors), std::string(ioe::to_string(s.first_error)).c_str());
    }
    std::sort(s.samples, s.samples + s.n);
    auto pct = [&s](double q) {
        if (s.n == 0) return 0.0;
        std::size_t rank = static_cast<std::size_t>(q / 100.0 * double(s.n) + 0.999999);
        return s.samples[std::clamp<std::size_t>(rank, 1, s.n) - 1] / 1000.0;
    };
    co_return figures{double(s.ops) / seconds, pct(50), pct(99), s.errors, true, wait0 < 0 ? -1 : wait_pct * 100};
}

future<> fill_worker(ioe::io_channel* ch, std::uint64_t* next, std::uint64_t total, ioe::io_vec v,
                     std::uint32_t bs, ioe::io_status* err) {
    const std::uint64_t per = v.len / bs;
    while (*next < total && ioe::ok(*err)) {
        const std::uint64_t lba = *next;
        const auto n = static_cast<std::uint32_t>(std::min(per, total - lba));
        *next += n;
        ioe::io_vec part{v.data, n * bs, v.buf_index};
        ioe::io_status st = co_await ch->write(lba, n, ioe::io_vecs(&part, 1));
        if (!ioe::ok(st)) *err = st;
    }
}

// Writes every block of `dev` (1 MiB writes, QD 4), then flushes.
future<> fill_device(ioe::block_device* dev) {
    ioe::io_channel* ch = dev->channel();
    std::vector<ioe::dma_buffer> bufs = dma_buffers(4, 1 << 20);
    std::vector<future<>> running;
    std::uint64_t next = 0;
    ioe::io_status err = ioe::io_status::success;
    const auto t0 = clk::now();
    for (auto& b : bufs) {
        running.push_back(fill_worker(ch, &next, dev->block_count(), ioe::to_io_vec(b), dev->block_size(), &err));
    }
    for (auto& r : running) co_await std::move(r);
    if (ioe::ok(err)) err = co_await ch->flush();
    if (!ioe::ok(err)) throw std::runtime_error(fmt::format("pre-writing {}: {}", dev->name(), ioe::to_string(err)));
    std::fprintf(stderr, "storage_bench: pre-wrote %s (%llu MiB) in %.1f s\n", dev->name().c_str(),
                 static_cast<unsigned long long>(dev->size_bytes() >> 20),
                 std::chrono::duration<double>(clk::now() - t0).count());
}

// A pool on `dev` (replacing whatever is there) with one thick replica that
// takes all its space, written whole.
future<ioe::replica*> make_replica(ioe::block_device* dev, std::unique_ptr<ioe::pool>* out) {
    ioe::pool_create_options o;
    o.name = "storage_bench";
    o.overwrite = true;
    *out = co_await ioe::pool::create(dev, o);
    const std::uint64_t bytes = (*out)->info().capacity_bytes;
    ioe::replica* r = co_await (*out)->create_replica("storage_bench_r", ioe::uuid::random(), bytes, false);
    co_await fill_device(r);
    co_return r;
}

struct engine_args {
    const params* p;
    std::string path;  // absolute
    results* res;
    std::vector<std::uint32_t>* samples;
};

future<> measure_all(engine_args a, ioe::device_registry* reg) {
    auto run = [&a](ioe::block_device* d, std::size_t w, const char* label, double secs) {  // not a coroutine
        return run_workload(d, &workloads[w], secs, a.p->warmup, a.samples, label);
    };
    ioe::block_device* dev = co_await reg->create("uring://" + a.path);
    for (std::size_t i = 0; i < nworkloads; ++i) a.res->device[i] = co_await run(dev, i, "device", a.p->seconds);
    std::unique_ptr<ioe::pool> pl;
    ioe::replica* r = co_await make_replica(dev, &pl);
    for (std::size_t i = 0; i < nworkloads; ++i) a.res->replica[i] = co_await run(r, i, "replica", a.p->seconds);
    for (int k = 0; k < paired_windows; ++k) {
        figures d = co_await run_workload(dev, &workloads[qd1], paired_seconds, 0.1, a.samples, "device (paired)");
        figures rr = co_await run_workload(r, &workloads[qd1], paired_seconds, 0.1, a.samples, "replica (paired)");
        if (d.done && rr.done) a.res->paired_qd1_diff_us.push_back(rr.p50_us - d.p50_us);
    }
    co_await pl->destroy();
    pl.reset();
    ioe::block_device* mem = co_await reg->create("malloc:///m?size_mb=1100&blk_size=4096");
    const double short_secs = std::min(a.p->seconds, malloc_qd1_seconds);
    a.res->malloc_device_qd1 = co_await run(mem, qd1, "malloc device", short_secs);
    r = co_await make_replica(mem, &pl);
    a.res->malloc_replica_qd1 = co_await run(r, qd1, "malloc replica", short_secs);
    a.res->malloc_replica = co_await run(r, qd32, "malloc replica", a.p->seconds);
    co_await pl->destroy();
}

future<int> engine_main(engine_args a) {
    ioe::device_registry reg;
    try {
        co_await measure_all(a, &reg);
    } catch (const std::exception& e) {
        a.res->error = e.what();
    }
    co_await reg.close_all();
    co_return a.res->error.empty() ? 0 : 1;
}

// Ends the process if the run hangs (everything here is bounded in time).

}  // namespace

int main(int argc, char** argv) {
    params p;
    if (!parse_args(argc, argv, p)) return usage(), 2;
    ioe::log::set_level(spdlog::level::warn);
    std::string fio_version;
    if (!have_fio(fio_version)) {
        std::fprintf(stderr,
                     "storage_bench: fio not found in PATH; it is the baseline of this benchmark. Install it "
                     "(apt-get install fio, or scripts/deps.sh) and run again.\n");
        return 1;
    }
    const unsigned core = ioe::allowed_cores().at(0);  // the engine's core, and fio's
    const double load_start = proc_number("/proc/loadavg", 0);
    ioe::bench::start_watchdog("storage_bench", std::chrono::seconds(static_cast<long>((nworkloads * 3 + 3) * (p.seconds + p.warmup)) + 600));

    results res;
    if (std::string err; !prepare_file(p, err)) return std::fprintf(stderr, "storage_bench: %s\n", err.c_str()), 1;
    const std::string path = std::filesystem::absolute(p.file).lexically_normal().string();

    // fio first, alone on the machine's disk and core.
    for (std::size_t i = 0; i < nworkloads; ++i) {
        if (!run_fio(p, path, workloads[i], core, res.fio_pinned, res.fio[i]) && res.error.empty()) {
            res.error = fmt::format("fio {} failed", workloads[i].name);
        }
    }

    // Then the engine: one shard, busy polling.
    std::vector<std::uint32_t> samples(static_cast<std::size_t>(
        std::min(p.seconds * 4e6, 64e6)));  // 4M I/O per second; touched here, before any window
    ioe::engine_config cfg;
    cfg.cores = {core};
    cfg.reactor.mode = ioe::poll_mode::busy;
    cfg.memory.size_mb = 256;
    int rc = 1;
    try {
        ioe::engine e(cfg);
        engine_args a{&p, path, &res, &samples};
        rc = e.run([a] { return engine_main(a); });
    } catch (const std::exception& ex) {
        res.error = ex.what();
    }
    if (rc != 0 && res.error.empty()) res.error = fmt::format("engine exited with {}", rc);
    if (!res.error.empty()) std::fprintf(stderr, "storage_bench: %s\n", res.error.c_str());
    if (!p.keep_file) ::unlink(path.c_str());

    // ---- report ----
    std::vector<std::pair<std::string, std::string>> kv;
    auto num = [&kv](std::string k, double v, int digits) { kv.emplace_back(k, fmt::format("{:.{}f}", v, digits)); };
    std::uint64_t errors = 0;
    std::string waits;  // engine runs only
    const std::pair<const char*, figures*> paths[] = {{"replica", res.replica}, {"device", res.device},
                                                      {"fio", res.fio}};
    for (const auto& [name, figs] : paths) {
        for (std::size_t i = 0; i < nworkloads; ++i) {
            const std::string k = fmt::format("{}_{}", name, workloads[i].name);
            num(k + "_iops", figs[i].iops, 0);
            num(k + "_p50_us", figs[i].p50_us, 2);
            num(k + "_p99_us", figs[i].p99_us, 2);
            errors += figs[i].errors;
            if (figs == res.fio) continue;
            waits += fmt::format("{}\"{}\": {:.1f}", waits.empty() ? "" : ", ", k, figs[i].cpu_wait_pct);
        }
    }
    num("replica_malloc_randread4k_qd32_iops", res.malloc_replica.iops, 0);
    num("replica_malloc_randread4k_qd1_p50_us", res.malloc_replica_qd1.p50_us, 3);
    num("device_malloc_randread4k_qd1_p50_us", res.malloc_device_qd1.p50_us, 3);
    num("replica_minus_device_p50_us_malloc_randread4k_qd1",
        res.malloc_replica_qd1.p50_us - res.malloc_device_qd1.p50_us, 3);
    errors += res.malloc_replica.errors + res.malloc_replica_qd1.errors + res.malloc_device_qd1.errors;
    bool all_iops_met = true;
    std::string targets;
    for (std::size_t i = 0; i < nworkloads; ++i) {
        const double ratio = res.fio[i].iops > 0 ? res.replica[i].iops / res.fio[i].iops : 0;
        const bool met = res.fio[i].done && res.replica[i].done && ratio >= 0.95;
        all_iops_met &= met;
        num(fmt::format("replica_vs_fio_{}", workloads[i].name), ratio, 3);
        targets += fmt::format("\"replica_vs_fio_{}_met\": {}, ", workloads[i].name, met);
    }
    const double overhead = res.replica[qd1].p50_us - res.device[qd1].p50_us;
    num("replica_minus_device_p50_us_randread4k_qd1", overhead, 2);
    // The target is judged on the paired windows (median of the differences).
    double paired = overhead;
    if (!res.paired_qd1_diff_us.empty()) {
        auto d = res.paired_qd1_diff_us;
        std::sort(d.begin(), d.end());
        paired = d[d.size() / 2];
        num("replica_minus_device_p50_us_randread4k_qd1_paired", paired, 2);
    }
    const bool lat_met = res.replica[qd1].done && res.device[qd1].done && paired < 2.0;
    num("seconds_per_workload", p.seconds, 1);
    num("warmup_seconds", p.warmup, 1);
    num("io_errors", double(errors), 0);
    const double load_end = proc_number("/proc/loadavg", 0);

    if (p.json) {
        std::string out = "{";
        for (const auto& [k, v] : kv) out += fmt::format("\"{}\": {}, ", k, v);
        out += fmt::format(
            "\"targets\": {{\"replica_vs_fio_min\": 0.95, {}\"replica_vs_fio_all_met\": {}, "
            "\"replica_minus_device_p50_us_max\": 2.0, \"replica_minus_device_p50_us_met\": {}}}, ",
            targets, all_iops_met, lat_met);
        out += fmt::format("\"engine_cpu_wait_pct\": {{{}}}, ", waits);
        out += fmt::format(
            "\"config\": {{\"file\": \"{}\", \"file_mb\": {}, \"core\": {}, \"poll\": \"busy\", \"fio\": \"{}\", "
            "\"fio_pinned\": {}, \"fio_latency\": \"clat\", \"hardware_threads\": {}, \"loadavg_start\": {:.2f}, "
            "\"loadavg_end\": {:.2f}}}",
            ioe::bench::json_escape(path), p.file_mb, core, ioe::bench::json_escape(fio_version), res.fio_pinned,
            std::thread::hardware_concurrency(), load_start, load_end);
        if (!res.error.empty()) out += fmt::format(", \"error\": \"{}\"", ioe::bench::json_escape(res.error));
        std::fputs((out + "}\n").c_str(), stdout);
    } else {
        for (const auto& [k, v] : kv) std::printf("%-45s %14s\n", k.c_str(), v.c_str());
        std::printf("%-45s %14s\n", "target replica >= 0.95x fio (all)", all_iops_met ? "met" : "MISSED");
        std::printf("%-45s %14s\n", "target replica - device p50 < 2 us (QD 1)", lat_met ? "met" : "MISSED");
    }
    return res.error.empty() && errors == 0 ? 0 : 1;
}
