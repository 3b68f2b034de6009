// pcie-smoke: the end-to-end check of the user-space NVMe driver on a real
// (or QEMU-emulated) controller bound to vfio-pci, used by
// tests/e2e/pcie_vfio_test.sh inside a VM.
//
//   pcie-smoke write BDF [--mb N] [--seed S] [--huge-mb N]
//       engine on every allowed core, pcie:///BDF, a pool "smoke" (1 MiB
//       clusters, overwriting any pool there) and a thick replica "r0" of N
//       MiB (default 16); every 512-byte block b of the replica is written
//       with the 8-byte word (b << 16 | S) repeated, from shard 0 and shard 1
//       alternately, read back and checked; then every chunk is read at once
//       while the controller is reset (each read succeeds or fails
//       "aborted", none is lost), every block is checked again, the pool is
//       exported and the controller shut down.
//   pcie-smoke verify BDF [--mb N] [--seed S] [--huge-mb N]
//       a fresh engine imports the pool from the device and checks every
//       block of "r0" again.
//   pcie-smoke scan-image PATH [--mb N] [--seed S]
//       the host's side (no engine): reads a raw image and finds every
//       512-byte block b < N MiB / 512 stamped with (b << 16 | S), exactly
//       once each, wherever the pool put it.
// Prints one JSON line; exit 0 when every block is right, 1 otherwise, 2 on
// a usage or set-up error (the message says what to do).
#include <cstdio>
#include <fstream>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <vector>

#include "nvme/pcie/pcie_backend.hh"
#include "nvme/pcie/pcie_device.hh"
#include "runtime/cores.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/pool.hh"

namespace {

using namespace ioe;

constexpr std::uint32_t chunk_bytes = 256 << 10;

struct args {
    bool write = false;
    std::string bdf;
    std::uint64_t mb = 16;
    std::uint16_t seed = 4242;
    std::size_t huge_mb = 0;
};

void stamp(std::byte* p, std::uint32_t bytes, std::uint64_t first_block, std::uint16_t seed) {
    for (std::uint32_t off = 0; off < bytes; off += 8) {
        const std::uint64_t w = ((first_block + off / 512) << 16) | seed;
        std::memcpy(p + off, &w, 8);
    }
}

// Writes (or checks) [offset, offset + bytes) of `dev` on the calling shard;
// returns the number of bad 512-byte blocks, or -1 on an I/O error.
future<long> pass(block_device* dev, std::uint64_t offset, std::uint32_t bytes, std::uint16_t seed, bool write) {
    auto buf = engine::current()->dma().allocate(bytes);
    if (!buf) co_return -1;
    io_channel* ch = dev->channel();
    const std::uint32_t bs = dev->block_size();
    io_vec v = to_io_vec(*buf, 0, bytes);
    if (write) {
        stamp(buf->data(), bytes, offset / 512, seed);
        if (!ok(co_await ch->write(offset / bs, bytes / bs, io_vecs(&v, 1)))) co_return -1;
    }
    std::memset(buf->data(), 0xa5, bytes);
    if (!ok(co_await ch->read(offset / bs, bytes / bs, io_vecs(&v, 1)))) co_return -1;
    std::vector<std::byte> want(bytes);
    stamp(want.data(), bytes, offset / 512, seed);
    long bad = 0;
    for (std::uint32_t b = 0; b < bytes; b += 512) bad += std::memcmp(buf->data() + b, want.data() + b, 512) != 0;
    co_return bad;
}

// One chunk read, for the reset under load: its status only.
future<io_status> read_chunk(block_device* dev, std::uint64_t offset) {
    auto buf = engine::current()->dma().allocate(chunk_bytes);
    if (!buf) co_return io_status::internal_error;
    io_vec v = to_io_vec(*buf, 0, chunk_bytes);
    co_return co_await dev->channel()->read(offset / dev->block_size(), chunk_bytes / dev->block_size(),
                                            io_vecs(&v, 1));
}

// Reads of every chunk in flight at once while the controller is reset:
// each must succeed or fail "aborted" (none lost, none with another error);
// returns how many were aborted, or -1.
future<long> reset_under_load(nvme::pcie_device* pd, block_device* r, const args& a, std::string& why) {
    std::vector<future<io_status>> fs;
    for (std::uint64_t off = 0; off < (a.mb << 20); off += chunk_bytes) fs.push_back(read_chunk(r, off));
    co_await sleep(std::chrono::microseconds(0));  // one reactor loop: the doorbell rings, reads reach the device
    co_await pd->controller().reset("pcie-smoke: reset requested under load");
    long aborted = 0;
    for (auto& f : fs) {
        io_status st = co_await std::move(f);
        if (st == io_status::aborted) {
            ++aborted;
        } else if (!ok(st)) {
            why = fmt::format("a read in flight during the reset ended with {}", to_string(st));
            co_return -1;
        }
    }
    if (pd->controller().state() != nvme::controller_state::live) {
        why = fmt::format("the controller is {} after the reset", to_string(pd->controller().state()));
        co_return -1;
    }
    co_return aborted;
}

// Every chunk of the replica, alternately on shard 0 and the last shard.
future<long> sweep(block_device* r, const args& a, bool write) {
    const std::uint64_t total = a.mb << 20;
    long bad = 0;
    for (std::uint64_t off = 0; off < total; off += chunk_bytes) {
        const unsigned shard = (off / chunk_bytes) % 2 ? shard_count() - 1 : 0;
        long b = co_await submit_to(shard, [r, off, seed = a.seed, write] {
            return pass(r, off, chunk_bytes, seed, write);
        });
        if (b < 0) co_return -1;
        bad += b;
    }
    co_return bad;
}

future<int> run(const args& a, std::string& out) {
    nvme::register_pcie_backend();
    device_registry reg;
    block_device* dev = nullptr;
    try {
        dev = co_await reg.create("pcie:///" + a.bdf);
    } catch (const std::exception& e) {
        out = fmt::format("{{\"ok\": false, \"step\": \"open\", \"error\": \"{}\"}}", e.what());
    }
    if (!dev) {
        co_await reg.close_all();
        co_return 2;
    }
    auto* pd = static_cast<nvme::pcie_device*>(dev);
    std::unique_ptr<pool> p;
    long bad = -1, aborted = 0;
    std::string step;
    try {
        if (a.write) {
            step = "create";
            pool_create_options o;
            o.name = "smoke";
            o.cluster_size = 1 << 20;
            o.overwrite = true;
            p = co_await pool::create(dev, o, &reg);
            co_await p->create_replica("r0", uuid::random(), a.mb << 20, false);
        } else {
            step = "import";
            p = co_await pool::import(dev, &reg);
        }
        step = a.write ? "write" : "verify";
        block_device* r = co_await reg.find("r0");
        bad = co_await sweep(r, a, a.write);
        if (a.write && bad == 0) {
            step = "reset";
            std::string why;
            aborted = co_await reset_under_load(pd, r, a, why);
            if (aborted < 0) throw std::runtime_error(why);
            step = "verify after reset";
            bad = co_await sweep(r, a, false);
        }
        co_await p->export_pool();
    } catch (const std::exception& e) {
        out = fmt::format("{{\"ok\": false, \"step\": \"{}\", \"error\": \"{}\"}}", step, e.what());
    }
    const auto counters = pd->controller().counters();
    p.reset();
    co_await reg.close_all();
    if (!out.empty()) co_return 2;
    out = fmt::format("{{\"ok\": {}, \"mode\": \"{}\", \"bdf\": \"{}\", \"replica_mb\": {}, \"seed\": {}, "
                      "\"bad_blocks\": {}, \"resets\": {}, \"aborted_by_reset\": {}, \"timeouts\": {}}}",
                      bad == 0 ? "true" : "false", a.write ? "write" : "verify", a.bdf, a.mb, a.seed, bad,
                      counters.resets, aborted, counters.timeouts);
    co_return bad == 0 ? 0 : 1;
}

// The host's check of the image (see the header comment).
int scan_image(const std::string& path, const args& a) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::printf("{\"ok\": false, \"step\": \"scan\", \"error\": \"cannot open %s\"}\n", path.c_str());
        return 2;
    }
    const std::uint64_t want = (a.mb << 20) / 512;
    std::vector<std::uint32_t> seen(want, 0);
    std::vector<char> buf(1 << 20);
    std::uint64_t stray = 0;
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto got = static_cast<std::size_t>(in.gcount());
        for (std::size_t off = 0; off + 512 <= got; off += 512) {
            std::uint64_t w;
            std::memcpy(&w, buf.data() + off, 8);
            if ((w & 0xffff) != a.seed) continue;
            bool all = true;
            for (std::size_t i = 8; i < 512 && all; i += 8) all = std::memcmp(buf.data() + off + i, &w, 8) == 0;
            if (!all) continue;
            if ((w >> 16) < want) {
                ++seen[w >> 16];
            } else {
                ++stray;
            }
        }
    }
    std::uint64_t missing = 0, dup = 0;
    for (auto n : seen) {
        missing += n == 0;
        dup += n > 1;
    }
    const bool good = missing == 0 && dup == 0;
    std::printf("{\"ok\": %s, \"mode\": \"scan-image\", \"blocks\": %llu, \"missing\": %llu, \"duplicated\": %llu, "
                "\"stray\": %llu}\n",
                good ? "true" : "false", static_cast<unsigned long long>(want),
                static_cast<unsigned long long>(missing), static_cast<unsigned long long>(dup),
                static_cast<unsigned long long>(stray));
    return good ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    args a;
    const bool scan = argc >= 3 && std::strcmp(argv[1], "scan-image") == 0;
    if (argc < 3 || (!scan && std::strcmp(argv[1], "write") != 0 && std::strcmp(argv[1], "verify") != 0)) {
        std::fprintf(stderr, "usage: pcie-smoke write|verify BDF [--mb N] [--seed S] [--huge-mb N]\n"
                             "       pcie-smoke scan-image PATH [--mb N] [--seed S]\n");
        return 2;
    }
    a.write = std::strcmp(argv[1], "write") == 0;
    a.bdf = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--mb") a.mb = std::stoull(argv[i + 1]);
        else if (k == "--seed") a.seed = static_cast<std::uint16_t>(std::stoul(argv[i + 1]));
        else if (k == "--huge-mb") a.huge_mb = std::stoull(argv[i + 1]);
        else {
            std::fprintf(stderr, "pcie-smoke: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (a.mb == 0 || (a.mb << 20) % chunk_bytes) {
        std::fprintf(stderr, "pcie-smoke: --mb must be a positive number of MiB\n");
        return 2;
    }
    if (scan) return scan_image(a.bdf, a);
    engine_config cfg;
    auto cores = allowed_cores();
    for (unsigned i = 0; i < cores.size() && i < 2; ++i) cfg.cores.push_back(cores[i]);
    cfg.memory.size_mb = 64;
    cfg.memory.huge_mb = a.huge_mb;
    std::string out;
    int rc = 2;
    try {
        engine e(cfg);
        rc = e.run([&]() -> future<int> { return run(a, out); });
    } catch (const std::exception& ex) {
        out = fmt::format("{{\"ok\": false, \"step\": \"engine\", \"error\": \"{}\"}}", ex.what());
    }
    std::printf("%s\n", out.c_str());
    return rc;
}
