// The kill loop: a child process (pool_crash_child) works on a pool on a
// file until this test kills it with SIGKILL at a random moment; the test
// then imports the pool and checks that every acknowledged write reads back
// (or a later write to the same block that was issued but not yet
// acknowledged), every replica whose creation was acknowledged exists, no
// replica exists that was never asked for, and the allocation accounting
// adds up. Seeded; IOE_CRASH_ITERATIONS sets the count (default 50).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

struct replica_state {
    std::uint64_t size_bytes = 0;
    std::map<std::uint64_t, std::int64_t> blocks;  // lba -> generation it holds (0 = zeros)
};
using pool_state = std::map<std::string, replica_state>;

// What one child run did, from its log.
struct run_log {
    struct create {
        std::uint64_t size;
        bool acked;
    };
    struct write {
        std::string replica;
        std::uint64_t lba, blocks, gen;
        bool acked;
    };
    std::map<std::string, create> creates;
    std::map<std::string, bool> destroys;  // name -> acked
    std::map<std::string, std::pair<std::uint64_t, bool>> resizes;  // last size asked, acked
    std::vector<write> writes;
};

run_log parse(const std::string& path) {
    run_log out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        std::string op, name;
        s >> op >> name;
        if (op == "C") {
            std::uint64_t size;
            std::string kind, status;
            s >> size >> kind >> status;
            if (status == "issued") out.creates[name] = {size, false};
            if (status == "ok") out.creates[name].acked = true;
            if (status == "failed") out.creates.erase(name);
        } else if (op == "D") {
            std::string status;
            s >> status;
            out.destroys[name] = status == "ok";
        } else if (op == "R") {
            std::uint64_t size;
            std::string status;
            s >> size >> status;
            if (status == "issued") out.resizes[name] = {size, false};
            if (status == "ok") out.resizes[name].second = true;
        } else if (op == "W") {
            run_log::write w{name, 0, 0, 0, false};
            std::string status;
            s >> w.lba >> w.blocks >> w.gen >> status;
            if (status == "issued") out.writes.push_back(w);
            if (status == "ok") {
                for (auto& x : out.writes)
                    if (x.gen == w.gen) x.acked = true;
            }
        }
    }
    return out;
}

// Imports the pool and checks it against `state` and this run's log;
// updates `state` to what is there now. Returns the problems found.
std::vector<std::string> check(const std::string& image, pool_state& state, const run_log& log,
                               std::uint64_t& verified) {
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
        pool_state now;
        std::set<std::string> present;
        std::uint64_t allocated = 0;
        for (const auto& ri : p->list_replicas()) {
            present.insert(ri.name);
            allocated += ri.allocated_bytes;
            bool known = state.count(ri.name) || log.creates.count(ri.name);
            if (!known) problems.push_back("replica " + ri.name + " exists but was never created");
            now[ri.name].size_bytes = ri.size_bytes;
        }
        auto info = p->info();
        if (allocated != info.used_bytes) {
            problems.push_back("replicas hold " + std::to_string(allocated) + " bytes, the pool counts " +
                               std::to_string(info.used_bytes));
        }
        auto must_exist = [&](const std::string& name) {
            auto d = log.destroys.find(name);
            return d == log.destroys.end();  // no destroy issued
        };
        for (const auto& [name, st] : state) {
            if (must_exist(name) && !present.count(name)) problems.push_back("replica " + name + " vanished");
            if (log.destroys.count(name) && log.destroys.at(name) && present.count(name)) {
                problems.push_back("replica " + name + " survived an acknowledged destroy");
            }
        }
        for (const auto& [name, c] : log.creates) {
            if (c.acked && must_exist(name) && !present.count(name)) {
                problems.push_back("acknowledged replica " + name + " is missing");
            }
        }
        for (const auto& [name, rs] : log.resizes) {
            if (rs.second && present.count(name) && now[name].size_bytes != rs.first) {
                problems.push_back("acknowledged resize of " + name + " is lost");
            }
        }
        // Expected generations per block: the last acknowledged one (or the
        // state's), plus any issued after it.
        std::map<std::pair<std::string, std::uint64_t>, std::set<std::int64_t>> allowed;
        for (const auto& [name, st] : state) {
            for (const auto& [lba, g] : st.blocks) allowed[{name, lba}] = {g};
        }
        for (const auto& w : log.writes) {
            for (std::uint64_t b = 0; b < w.blocks; ++b) {
                auto& a = allowed[{w.replica, w.lba + b}];
                if (a.empty()) a.insert(0);  // never written before: zeros
                if (w.acked) a.clear();
                a.insert(static_cast<std::int64_t>(w.gen));
            }
        }
        const std::uint32_t bs = dev->block_size();
        auto buf = e->dma().allocate(bs);
        for (const auto& [key, gens] : allowed) {
            const auto& [name, lba] = key;
            replica* r = p->find_replica(name);
            if (!r || lba >= r->block_count()) continue;  // replica gone (destroy issued) or resize lost
            io_vec v = to_io_vec(*buf);
            io_status st = co_await r->channel()->read(lba, 1, io_vecs(&v, 1));
            if (!ok(st)) {
                problems.push_back("read " + name + " lba " + std::to_string(lba) + ": " + std::string(to_string(st)));
                continue;
            }
            std::int64_t got = crash::read_generation(buf->data(), bs, crash::name_hash(name), lba);
            if (!gens.count(got)) {
                problems.push_back("replica " + name + " lba " + std::to_string(lba) + " holds generation " +
                                   std::to_string(got) + ", expected one of " + std::to_string(gens.size()) +
                                   " (first " + std::to_string(*gens.begin()) + ")");
            }
            now[name].blocks[lba] = got;
            ++verified;
        }
        state = std::move(now);
        co_await p->export_pool();
        co_await reg.close_all();
        co_return 0;
    });
    if (rc != 0 && problems.empty()) problems.push_back("checker failed");
    return problems;
}

}  // namespace

TEST(crash, kill_loop_loses_no_acknowledged_write) {
    const char* env = std::getenv("IOE_CRASH_ITERATIONS");
    const int iterations = env ? std::atoi(env) : 50;
    const std::string image =
        std::filesystem::absolute("crash_pool_" + std::to_string(::getpid()) + ".img").string();
    {
        int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 128 << 20), 0);
        ::close(fd);
    }
    std::mt19937_64 rng(12345);
    pool_state state;
    int kills = 0;
    std::uint64_t verified = 0, acked_writes = 0;
    for (int i = 0; i < iterations; ++i) {
        const std::string log = image + "." + std::to_string(i) + ".log";
        std::vector<std::string> flags;
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
        run_log parsed = parse(log);
        for (const auto& w : parsed.writes) acked_writes += w.acked;
        auto problems = check(image, state, parsed, verified);
        for (const auto& pr : problems) ADD_FAILURE() << "iteration " << i << ": " << pr;
        ::unlink(log.c_str());
        if (!problems.empty()) break;
    }
    ::unlink(image.c_str());
    EXPECT_EQ(kills, iterations);
    // The children did real work and the checks looked at it.
    EXPECT_GT(acked_writes, static_cast<std::uint64_t>(iterations) * 5);
    EXPECT_GT(verified, static_cast<std::uint64_t>(iterations) * 5);
    std::printf("kill loop: %d kills, %llu acknowledged writes, %llu block checks\n", kills,
                static_cast<unsigned long long>(acked_writes), static_cast<unsigned long long>(verified));
}
