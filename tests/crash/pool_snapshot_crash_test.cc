// The kill loop with snapshots, clones and copy-on-write: the child
// (pool_crash_child ... snap) also snapshots writable volumes, clones
// snapshots and restores volumes to their parent snapshot, and its writes
// after a snapshot are granule COW writes. After
// each SIGKILL the pool is imported and checked: every acknowledged write of
// every volume reads back (or a later issued one), every snapshot and clone
// reads the content its source had when it was taken (blocks are stamped
// with the volume that wrote them, so a block that came through the chain
// names its origin), acknowledged volumes exist, destroyed ones do not, and
// the volumes' clusters add up to the pool's. IOE_CRASH_ITERATIONS sets the
// count (default 50).
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "storage/device_registry.hh"
#include "storage/pool.hh"
#include "tests/crash/crash_common.hh"
#include "tests/crash/crash_process.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;

namespace {

// (writer volume's name hash, generation); (0, 0) = zeros; (0, -1) = garbage.
using block_value = std::pair<std::uint64_t, std::int64_t>;

struct volume_model {
    std::map<std::uint64_t, std::set<block_value>> blocks;  // lba -> what it may hold
    bool acked = true;        // its creation (or snapshot, clone) was acknowledged
    bool destroy_issued = false;
    bool destroy_acked = false;
    bool discarded = false;  // may go with a child's destroy (or a merge)
};
using model = std::map<std::string, volume_model>;

// Replays one run's log over the state the previous check found.
void replay(const std::string& path, model& m) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        std::string op, name;
        s >> op >> name;
        std::vector<std::string> rest;
        for (std::string w; s >> w;) rest.push_back(w);
        if (rest.empty()) continue;
        const std::string& status = rest.back();
        if (op == "C") {
            if (status == "issued") m[name] = volume_model{{}, false, false, false, false};
            if (status == "ok") m[name].acked = true;
            if (status == "failed") m.erase(name);
        } else if (op == "S" || op == "K") {
            const std::string& made = rest[0];
            if (status == "issued") {
                volume_model v;
                v.blocks = m[name].blocks;  // the source's content at that moment
                v.acked = false;
                m[made] = std::move(v);
            }
            if (status == "ok") m[made].acked = true;
            if (status == "failed") m.erase(made);
        } else if (op == "B") {
            // Restore of `name` to snapshot rest[0]: every block the two
            // know becomes the snapshot's (zeros where it has none); until
            // acknowledged, either.
            const auto& from = m[rest[0]].blocks;
            auto& to = m[name].blocks;
            std::set<std::uint64_t> lbas;
            for (const auto& [lba, v] : from) lbas.insert(lba);
            for (const auto& [lba, v] : to) lbas.insert(lba);
            for (std::uint64_t lba : lbas) {
                auto it = from.find(lba);
                std::set<block_value> now = it == from.end() ? std::set<block_value>{block_value{0, 0}} : it->second;
                auto& may = to[lba];
                if (may.empty()) may.insert(block_value{0, 0});
                if (status == "ok") may.clear();
                may.insert(now.begin(), now.end());
            }
        } else if (op == "D") {
            if (status == "issued") m[name].destroy_issued = true;
            if (status == "ok") m[name].destroy_acked = true;
            if (status == "failed") m[name].destroy_issued = false;  // refused (busy): unchanged
        } else if (op == "W") {
            const std::uint64_t lba = std::stoull(rest[0]), n = std::stoull(rest[1]);
            const auto gen = static_cast<std::int64_t>(std::stoull(rest[2]));
            const block_value v{crash::name_hash(name), gen};
            for (std::uint64_t b = 0; b < n; ++b) {
                auto& may = m[name].blocks[lba + b];
                if (may.empty()) may.insert(block_value{0, 0});
                if (status == "ok") may.clear();
                may.insert(v);
            }
        }
    }
}

block_value read_value(const std::byte* p, std::uint32_t bs, std::uint64_t lba) {
    crash::stamp s;
    std::memcpy(&s, p, sizeof s);
    std::int64_t g = crash::read_generation(p, bs, s.replica, lba);
    if (g == 0) return {0, 0};
    if (g < 0) return {0, -1};
    return {s.replica, g};
}

std::vector<std::string> check(const std::string& image, model& m, std::uint64_t& verified,
                               std::uint64_t& snapshots_seen) {
    std::vector<std::string> problems;
    int rc = test::run_engine(test::small_config(1), [&](engine* e) -> future<int> {
        device_registry reg;
        block_device* dev = co_await reg.create("uring://" + image);
        std::unique_ptr<pool> p;
        try {
            p = co_await pool::import(dev, &reg);
        } catch (const std::exception& ex) {
            problems.push_back(std::string("import failed: ") + ex.what());
        }
        if (!p) {
            co_await reg.close_all();
            co_return 1;
        }
        std::uint64_t allocated = 0;
        std::set<std::string> present;
        std::set<std::string> discarded;
        for (const auto& ri : p->list_replicas()) {
            present.insert(ri.name);
            if (ri.discarded) discarded.insert(ri.name);
            allocated += ri.allocated_bytes;
            snapshots_seen += ri.snapshot;
            if (!m.count(ri.name)) problems.push_back("volume " + ri.name + " exists but was never made");
        }
        if (allocated != p->info().used_bytes) {
            problems.push_back("volumes hold " + std::to_string(allocated) + " bytes, the pool counts " +
                               std::to_string(p->info().used_bytes));
        }
        // A destroyed snapshot with several children stays, discarded; a
        // discarded one goes when a child's destroy leaves it one or none.
        // Any destroy issued in this run may have taken discarded ancestors.
        bool any_destroy = false;
        for (const auto& [name, v] : m) any_destroy |= v.destroy_issued;
        for (const auto& [name, v] : m) {
            if (v.acked && !v.destroy_issued && !(v.discarded && any_destroy) && !present.count(name)) {
                problems.push_back("volume " + name + " vanished");
            }
            if (v.destroy_acked && present.count(name) && !discarded.count(name)) {
                problems.push_back("volume " + name + " survived its destroy");
            }
        }
        const std::uint32_t bs = dev->block_size();
        auto buf = e->dma().allocate(bs);
        model now;
        for (auto& [name, v] : m) {
            replica* r = present.count(name) ? p->find_replica(name) : nullptr;
            if (!r) continue;
            auto& next = now[name];
            next.discarded = discarded.count(name) > 0;
            for (const auto& [lba, may] : v.blocks) {
                if (lba >= r->block_count()) continue;  // a resize that did not survive
                io_vec iv = to_io_vec(*buf);
                io_status st = co_await r->channel()->read(lba, 1, io_vecs(&iv, 1));
                if (!ok(st)) {
                    problems.push_back("read " + name + " lba " + std::to_string(lba) + ": " + std::string(to_string(st)));
                    continue;
                }
                block_value got = read_value(buf->data(), bs, lba);
                if (!may.count(got)) {
                    problems.push_back("volume " + name + " lba " + std::to_string(lba) + " holds generation " +
                                       std::to_string(got.second) + " of writer " + std::to_string(got.first) +
                                       ", allowed " + std::to_string(may.size()) + " values");
                }
                next.blocks[lba] = {got};
                ++verified;
            }
        }
        m = std::move(now);
        co_await p->export_pool();
        co_await reg.close_all();
        co_return 0;
    });
    if (rc != 0 && problems.empty()) problems.push_back("checker failed");
    return problems;
}

}  // namespace

TEST(crash, kill_loop_with_snapshots_clones_and_cow) {
    const char* env = std::getenv("IOE_CRASH_ITERATIONS");
    const int iterations = env ? std::atoi(env) : 50;
    const std::string image =
        std::filesystem::absolute("crash_snap_pool_" + std::to_string(::getpid()) + ".img").string();
    {
        int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 128 << 20), 0);
        ::close(fd);
    }
    std::mt19937_64 rng(54321);
    model m;
    int kills = 0;
    std::uint64_t verified = 0, snapshots_seen = 0;
    for (int i = 0; i < iterations; ++i) {
        const std::string log = image + "." + std::to_string(i) + ".log";
        std::vector<std::string> flags{"snap"};
        if (i == 0) flags.push_back("create");
        crash::child c = crash::spawn(image, log, static_cast<std::uint64_t>(i + 1), flags);
        ASSERT_GT(c.pid, 0);
        bool ready = crash::wait_ready(c.out_fd, 20000);
        if (ready) ::usleep(static_cast<useconds_t>(5000 + rng() % 150000));
        ::kill(c.pid, SIGKILL);
        int st = 0;
        ::waitpid(c.pid, &st, 0);
        ::close(c.out_fd);
        ASSERT_TRUE(ready) << "child " << i << " did not start (exit status " << st << ")";
        kills += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        replay(log, m);
        auto problems = check(image, m, verified, snapshots_seen);
        for (const auto& pr : problems) ADD_FAILURE() << "iteration " << i << ": " << pr;
        ::unlink(log.c_str());
        if (!problems.empty()) break;
    }
    ::unlink(image.c_str());
    EXPECT_EQ(kills, iterations);
    EXPECT_GT(verified, static_cast<std::uint64_t>(iterations) * 5);
    EXPECT_GT(snapshots_seen, 0u);
    std::printf("snapshot kill loop: %d kills, %llu block checks, %llu snapshots seen over the imports\n", kills,
                static_cast<unsigned long long>(verified), static_cast<unsigned long long>(snapshots_seen));
}
