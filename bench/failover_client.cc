// nexus_failover_bench's client (see failover_client.hh): QD 1 writes on the
// old path, and on SIGUSR1 the first write completed on the new path.
#include "bench/failover_client.hh"

#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "nvme/initiator/nvmf_backend.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"

namespace ioe::bench::failover {

namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_move{false};
void on_usr1(int) { g_move = true; }

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

void say(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

constexpr std::uint32_t io_bytes = 4096;

// Writes block after block (QD 1) on `dev` until told to move (old path);
// counts completions.
future<> write_until_moved(block_device* dev, dma_buffer* buf, std::uint64_t* done, bool* ready_said) {
    io_channel* ch = dev->channel();
    const std::uint32_t blocks = io_bytes / dev->block_size();
    const io_vec v = to_io_vec(*buf, 0, io_bytes);
    std::uint64_t lba = 0;
    while (!g_move.load() && ch) {
        const io_status st = co_await ch->write(lba, blocks, io_vecs(&v, 1));
        if (ok(st)) {
            ++*done;
            if (!*ready_said) {
                say("client: ready");
                *ready_said = true;
            }
        } else {
            co_await sleep(1ms);
        }
        lba = (lba + blocks) % (dev->block_count() - blocks);
    }
}

future<int> client_body(std::string old_uri, std::string new_uri) {
    nvme::register_nvmf_backend();
    device_registry devices;
    block_device* old_dev = nullptr;
    try {
        old_dev = co_await devices.create(old_uri);
    } catch (const std::exception& e) {
        say(std::string("client: cannot open the old path ") + old_uri + ": " + e.what());
        co_return 1;
    }
    auto a = engine::current()->dma().allocate(io_bytes);
    auto b = engine::current()->dma().allocate(io_bytes);
    if (!a || !b || old_dev->block_size() > io_bytes || old_dev->block_count() < 2 * io_bytes / old_dev->block_size()) {
        say("client: no DMA buffer, or the volume is too small for 4 KiB writes");
        co_await devices.close_all();
        co_return 1;
    }
    std::memset(a->data(), 0xc7, io_bytes);
    std::memset(b->data(), 0xd8, io_bytes);
    std::uint64_t done_old = 0;
    bool ready = false;
    auto old_loop = write_until_moved(old_dev, &*a, &done_old, &ready);
    while (!g_move.load()) co_await sleep(1ms);

    // Moved: the takeover call has returned. Connect to the new node and
    // write until the first write completes there.
    int rc = 1;
    try {
        block_device* dev = co_await devices.create(new_uri);
        io_channel* ch = dev->channel();
        const io_vec v = to_io_vec(*b, 0, io_bytes);
        const std::uint32_t blocks = io_bytes / dev->block_size();
        for (unsigned attempt = 0; ch && attempt < 10000; ++attempt) {
            const io_status st = co_await ch->write(0, blocks, io_vecs(&v, 1));
            if (ok(st)) {
                say("client: first_io_ns=" + std::to_string(monotonic_ns()));
                rc = 0;
                break;
            }
            if (attempt == 0) say(std::string("client: first write on the new path: ") + std::string(to_string(st)));
            co_await sleep(1ms);
        }
    } catch (const std::exception& e) {
        say(std::string("client: cannot open the new path ") + new_uri + ": " + e.what());
    }
    if (rc != 0) say("client: no write completed on the new path");
    co_await std::move(old_loop);  // bounded by the old path's fast_io_fail_ms
    say("client: old path writes completed " + std::to_string(done_old));
    co_await devices.close_all();
    co_return rc;
}

}  // namespace

int client_main(int argc, char** argv) {
    // nexus_failover_bench --client CORE OLD_URI NEW_URI
    if (argc != 5) {
        std::fprintf(stderr, "usage: nexus_failover_bench --client CORE OLD_URI NEW_URI\n");
        return 2;
    }
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    ::sigaction(SIGUSR1, &sa, nullptr);
    log::set_level(spdlog::level::warn);
    engine_config cfg;
    cfg.cores = {static_cast<unsigned>(std::atoi(argv[2]))};
    cfg.reactor.mode = poll_mode::adaptive;
    cfg.memory.size_mb = 16;
    try {
        engine e(cfg);
        std::string old_uri = argv[3], new_uri = argv[4];
        return e.run([old_uri, new_uri] { return client_body(old_uri, new_uri); });
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "nexus_failover_bench --client: %s\n", ex.what());
        return 1;
    }
}

}  // namespace ioe::bench::failover
