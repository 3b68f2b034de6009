// The process the crash test kills: it imports (or creates) a pool on a
// uring device and then, until SIGKILL, creates, resizes and destroys
// replicas and writes stamped blocks, logging every step (crash_common.hh).
// With "snap" it also takes snapshots and clones ("S vol snap", "K snap
// clone"), restores volumes to their parent snapshot ("B vol snap"), writes
// through copy-on-write, and destroys any volume (a parent is refused as
// busy and logged as failed).
// Usage: pool_crash_child IMAGE LOG SEED [create] [snap]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "storage/device_registry.hh"
#include "storage/pool.hh"
#include "tests/crash/crash_common.hh"

using namespace ioe;

namespace {

constexpr std::uint32_t MiB = 1 << 20;

struct logger {
    int fd;
    void line(const std::string& s) const {
        std::string l = s + "\n";
        if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::abort();
    }
};

future<io_status> write_blocks(block_device* r, std::uint64_t lba, std::uint32_t blocks, std::uint64_t gen) {
    const std::uint32_t bs = r->block_size();
    auto buf = engine::current()->dma().allocate(std::uint64_t(blocks) * bs);
    if (!buf) co_return io_status::internal_error;
    for (std::uint32_t b = 0; b < blocks; ++b) {
        crash::fill_block(buf->data() + std::uint64_t(b) * bs, bs, crash::name_hash(r->name()), lba + b, gen);
    }
    io_vec v = to_io_vec(*buf);
    co_return co_await r->channel()->write(lba, blocks, io_vecs(&v, 1));
}

future<int> run(std::string image, logger log, std::uint64_t seed, bool create, bool snaps) {
    std::mt19937_64 rng(seed);
    device_registry reg;
    block_device* dev = co_await reg.create("uring://" + image);
    std::unique_ptr<pool> p;
    if (create) {
        pool_create_options o;
        o.name = "crash";
        o.cluster_size = MiB;
        o.overwrite = true;
        p = co_await pool::create(dev, o, &reg);
    } else {
        p = co_await pool::import(dev, &reg);
    }
    std::printf("ready\n");
    std::fflush(stdout);
    std::uint64_t gen = seed << 32;  // generations never repeat across runs
    for (std::uint64_t op = 0;; ++op) {
        auto replicas = p->list_replicas();
        unsigned dice = rng() % 100;
        if (replicas.empty() || dice < 8) {
            std::string name = "r" + std::to_string(seed) + "-" + std::to_string(op);
            std::uint64_t size = (1 + rng() % 6) * MiB;
            bool thin = rng() % 2;
            std::string what = "C " + name + " " + std::to_string(size) + " " + (thin ? "thin" : "thick");
            log.line(what + " issued");
            try {
                co_await p->create_replica(name, uuid::random(), size, thin);
                log.line(what + " ok");
            } catch (const storage_error&) {
                log.line(what + " failed");  // e.g. no space: not an error of the pool
            }
            continue;
        }
        const auto& victim = replicas[rng() % replicas.size()];
        if (snaps && dice >= 30 && dice < 34 && !victim.snapshot && !victim.parent.empty()) {
            // Restore to the parent snapshot.
            std::string what = "B " + victim.name + " " + victim.parent;
            log.line(what + " issued");
            co_await p->restore_replica(victim.name, victim.parent);
            log.line(what + " ok");
            continue;
        }
        if (snaps && dice >= 16 && dice < 30) {
            // Snapshots of writable volumes, clones of snapshots.
            const bool snapshot = !victim.snapshot;
            std::string name = (snapshot ? "s" : "k") + std::to_string(seed) + "-" + std::to_string(op);
            std::string what = (snapshot ? "S " : "K ") + victim.name + " " + name;
            log.line(what + " issued");
            try {
                if (snapshot) {
                    snapshot_options o;
                    o.name = name;
                    o.txid = "tx" + std::to_string(op);
                    co_await p->snapshot_replica(victim.name, o);
                } else {
                    co_await p->clone_snapshot(victim.name, name);
                }
                log.line(what + " ok");
            } catch (const storage_error&) {
                log.line(what + " failed");  // no space, too many volumes
            }
            continue;
        }
        if (dice < 12 && replicas.size() > 2) {
            // With snapshots: mostly volumes nobody descends from, so that
            // the pool keeps room for new snapshots and clones.
            std::string target = victim.name;
            if (snaps && rng() % 4 != 0) {
                std::set<std::string> parents;
                for (const auto& ri : replicas) parents.insert(ri.parent);
                std::vector<std::string> leaves;
                for (const auto& ri : replicas) {
                    if (!parents.count(ri.name)) leaves.push_back(ri.name);
                }
                if (!leaves.empty()) target = leaves[rng() % leaves.size()];
            }
            std::string what = "D " + target;
            log.line(what + " issued");
            try {
                co_await p->destroy_replica(target);
                log.line(what + " ok");
            } catch (const storage_error&) {
                if (!snaps) throw;
                log.line(what + " failed");  // busy: the parent of another volume
            }
        } else if (dice < 16) {
            std::uint64_t size = victim.size_bytes + (1 + rng() % 2) * MiB;
            std::string what = "R " + victim.name + " " + std::to_string(size);
            log.line(what + " issued");
            try {
                co_await p->resize_replica(victim.name, size);
                log.line(what + " ok");
            } catch (const storage_error&) {
                log.line(what + " failed");
            }
        } else {
            if (victim.snapshot) continue;  // read-only
            replica* r = p->find_replica(victim.name);
            const std::uint64_t blocks_total = r->block_count();
            std::uint32_t blocks = 1 + rng() % 8;
            std::uint64_t lba = rng() % (blocks_total - blocks + 1);
            ++gen;
            std::string what = "W " + victim.name + " " + std::to_string(lba) + " " + std::to_string(blocks) + " " +
                               std::to_string(gen);
            log.line(what + " issued");
            io_status st = co_await write_blocks(r, lba, blocks, gen);
            log.line(what + (ok(st) ? " ok" : " failed"));
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: pool_crash_child IMAGE LOG SEED [create] [snap]\n");
        return 2;
    }
    log::set_level(spdlog::level::warn);
    int fd = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 3;
    engine_config cfg;
    cfg.cores = {0};
    cfg.memory.size_mb = 32;
    engine e(cfg);
    std::string image = argv[1];
    std::uint64_t seed = std::stoull(argv[3]);
    bool create = false, snaps = false;
    for (int i = 4; i < argc; ++i) {
        create |= std::string(argv[i]) == "create";
        snaps |= std::string(argv[i]) == "snap";
    }
    return e.run([&] { return run(image, logger{fd}, seed, create, snaps); });
}
