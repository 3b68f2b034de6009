// The nexus's integration scenarios 2 and 5 (issue 6) in one process with a
// real etcd holding the child health, our NVMe/TCP target serving the remote
// replicas and our initiator reaching them (nvmf:// children over loopback):
//
// * Scenario 2: a full rebuild, verify mode on, of a third (remote) child
//   added while writers on both shards keep writing stamped blocks: the
//   rebuild completes (no miscompare), full, every block copied; afterwards
//   the three replicas are byte-identical and every block holds its last
//   acknowledged stamp.
// * Scenario 5: fault injection with fault_device under the children: a read
//   error on one child is retried on the other (right bytes) and the child is
//   retired (faulted io-error, unhealthy in etcd as read by a second client);
//   a write error on every child fails the write with the children's status
//   as the caller sees it through a published nexus; a slow remote child
//   times out (io_timeout_ms) and is retired (reason timeout) while the I/O
//   succeeds on the other, and its late completion changes nothing; a child
//   out of space is retired with reason no-space; a write that timed out and
//   lands late at the target does not undo the child's rebuild.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/target/target.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/fault_device.hh"
#include "storage/nexus/etcd_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "tests/etcd/etcd_fixture.hh"
#include "tests/etcd/etcd_test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t k_block = 512;
constexpr char k_nqn_prefix[] = "nqn.2026-11.io.ioengine:scenario-";

future<io_status> io_on(unsigned shard, block_device* dev, bool write, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(30s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        const auto blocks = static_cast<std::uint32_t>(buf.size() / dev->block_size());
        co_return write ? co_await ch->write(lba, blocks, io_vecs(&v, 1)) : co_await ch->read(lba, blocks, io_vecs(&v, 1));
    }));
}

// The whole of dev, read from shard 0 in 256 KiB pieces.
future<std::vector<std::byte>> whole(block_device* dev) {
    std::vector<std::byte> all(dev->block_count() * dev->block_size());
    const std::size_t piece = 256 * 1024;
    for (std::size_t off = 0; off < all.size(); off += piece) {
        std::vector<std::byte> b(std::min(piece, all.size() - off));
        EXPECT_EQ(co_await io_on(0, dev, false, off / dev->block_size(), b), io_status::success) << dev->name();
        std::memcpy(all.data() + off, b.data(), b.size());
    }
    co_return all;
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 13 + seed * 37 + (i >> 9)) & 0xff);
    return v;
}

std::string nqn(const std::string& what) { return k_nqn_prefix + what; }

const child_info* child_of(const nexus_info& i, const std::string& uri) {
    for (auto& c : i.children)
        if (c.uri == uri) return &c;
    return nullptr;
}

// What etcd says about a child: nullopt when the record or the child is missing.
std::optional<bool> healthy_in(const std::optional<nexus_health_record>& r, const uuid& id) {
    if (!r) return std::nullopt;
    for (auto& [u, h] : r->children)
        if (u == id.to_string()) return h;
    return std::nullopt;
}

nexus_options options(const std::string& key, child_health_store& store, device_registry& reg,
                      std::uint32_t segment_bytes = 64 * 1024) {
    nexus_options o;
    o.health_key = key;
    o.health = &store;
    o.registry = &reg;
    o.segment_bytes = segment_bytes;
    o.health_retries = 3;
    o.health_retry_delay = 100ms;
    return o;
}

// ---- scenario 2: stamped blocks ---------------------------------------------

// Every 512-byte block carries a stamp (which block, which writer, which
// write) and a filler derived from it, so a block from another write, another
// place or an older write is recognised.
struct stamp {
    std::uint64_t magic;
    std::uint64_t lba;
    std::uint64_t seq;  // 0: the initial fill
    std::uint32_t writer;
    std::uint32_t check;
};
static_assert(sizeof(stamp) == 32);
constexpr std::uint64_t k_magic = 0x53434e325354414dull;  // "SCN2STAM"
constexpr std::uint32_t k_initial_writer = 0xffff;

void fill_block(std::byte* p, std::uint64_t lba, std::uint32_t writer, std::uint64_t seq) {
    stamp s{k_magic, lba, seq, writer, static_cast<std::uint32_t>(lba * 2654435761u ^ seq * 40503u ^ writer)};
    std::memcpy(p, &s, sizeof s);
    for (std::size_t i = sizeof s; i < k_block; ++i)
        p[i] = static_cast<std::byte>((lba * 131 + seq * 7 + writer * 3 + i) & 0xff);
}

std::string describe_block(const std::byte* p) {
    stamp s;
    std::memcpy(&s, p, sizeof s);
    if (s.magic != k_magic) return "no stamp";
    return fmt::format("stamp lba {} writer {} seq {}", s.lba, s.writer, s.seq);
}

// Scenario 2's geometry: 32 MiB children, 64 KiB segments (512 of them),
// 4 KiB writes; 8 writers (4 per shard), writer w owning the chunks c with
// c % 8 == w, one write in flight each, so "the last acknowledged write" of
// every chunk is well defined.
constexpr std::uint64_t k_s2_mb = 32;
constexpr std::uint64_t k_s2_blocks = k_s2_mb * 1024 * 1024 / k_block;
constexpr std::uint32_t k_s2_segment = 64 * 1024;
constexpr std::uint64_t k_chunk_blocks = 8;
constexpr std::uint64_t k_chunks = k_s2_blocks / k_chunk_blocks;
constexpr unsigned k_writers_per_shard = 4;
constexpr unsigned k_rebuild_parallel = 16;

struct write_log {
    // Per chunk: the seq of its last acknowledged write (0: the initial fill)
    // and its writer. Each chunk is written by one writer only.
    std::vector<std::uint64_t> seq = std::vector<std::uint64_t>(k_chunks, 0);
    std::vector<std::uint32_t> writer = std::vector<std::uint32_t>(k_chunks, k_initial_writer);
    std::vector<bool> unknown = std::vector<bool>(k_chunks, false);  // a write failed: content undefined
    std::atomic<bool> stop{false};
    // The rebuild, as the test body sees it (updated every few ms).
    std::atomic<bool> rebuilding{false};
    std::atomic<std::uint64_t> copied_blocks{0};
    // Counters.
    std::atomic<std::uint64_t> writes{0}, failed{0}, during_rebuild{0}, ahead_of_copy{0}, near_copy{0};
};

future<> writer_loop(block_device* n, write_log& log, unsigned w) {
    std::vector<std::byte> buf(k_chunk_blocks * k_block);
    std::uint64_t rng = 0x9e3779b97f4a7c15ull * (w + 1);
    const unsigned writers = 2 * k_writers_per_shard;
    while (!log.stop.load(std::memory_order_relaxed)) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        const std::uint64_t chunk = (rng % (k_chunks / writers)) * writers + w;
        const std::uint64_t lba = chunk * k_chunk_blocks;
        const std::uint64_t seq = log.seq[chunk] + 1;
        for (std::uint64_t b = 0; b < k_chunk_blocks; ++b) fill_block(buf.data() + b * k_block, lba + b, w, seq);
        if (log.rebuilding.load(std::memory_order_relaxed)) {
            log.during_rebuild.fetch_add(1, std::memory_order_relaxed);
            const std::uint64_t front = log.copied_blocks.load(std::memory_order_relaxed);
            if (lba >= front) log.ahead_of_copy.fetch_add(1, std::memory_order_relaxed);
            // Segments are claimed in order, by k_rebuild_parallel workers,
            // each holding a run of up to 4 under one lock and the next run
            // locked ahead: just past the copied prefix are the segments
            // being copied now.
            if (lba >= front && lba < front + 8 * k_rebuild_parallel * (k_s2_segment / k_block))
                log.near_copy.fetch_add(1, std::memory_order_relaxed);
        }
        io_channel* ch = n->channel();
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        const io_status st =
            ch ? co_await ch->write(lba, k_chunk_blocks, io_vecs(&v, 1)) : io_status::namespace_not_ready;
        log.writes.fetch_add(1, std::memory_order_relaxed);
        if (ok(st)) {
            log.seq[chunk] = seq;
            log.writer[chunk] = w;
        } else {
            log.failed.fetch_add(1, std::memory_order_relaxed);
            log.unknown[chunk] = true;
            co_await sleep(1ms);
        }
    }
}

// The image every replica must hold: each chunk's last acknowledged write.
std::vector<std::byte> expected_image(const write_log& log) {
    std::vector<std::byte> img(k_s2_blocks * k_block);
    for (std::uint64_t c = 0; c < k_chunks; ++c)
        for (std::uint64_t b = 0; b < k_chunk_blocks; ++b) {
            const std::uint64_t lba = c * k_chunk_blocks + b;
            fill_block(img.data() + lba * k_block, lba, log.writer[c], log.seq[c]);
        }
    return img;
}

// Compares a replica with the expected image; reports the first few bad blocks.
::testing::AssertionResult holds_last_acknowledged(const std::vector<std::byte>& got,
                                                   const std::vector<std::byte>& want, const write_log& log) {
    if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size();
    unsigned bad = 0;
    std::string first;
    for (std::uint64_t lba = 0; lba < k_s2_blocks; ++lba) {
        if (log.unknown[lba / k_chunk_blocks]) continue;
        if (std::memcmp(got.data() + lba * k_block, want.data() + lba * k_block, k_block) == 0) continue;
        if (++bad <= 5)
            first += fmt::format("\n  block {}: has {}, want {}", lba, describe_block(got.data() + lba * k_block),
                                 describe_block(want.data() + lba * k_block));
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << bad << " blocks differ from their last acknowledged write" << first;
}

}  // namespace

// Scenario 2: a full rebuild with verify of a new remote child (the copy
// crosses NVMe/TCP) while both shards keep writing.
TEST(nexus_scenarios, full_rebuild_of_a_new_child_under_writes_with_verify) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(2, [&](engine& e, control_thread& ctl) -> future<> {
        nvme::register_nvmf_backend();
        etcd_client client(e, ctl, test::etcd_config_for({etcd.endpoint()}, 3000));
        etcd_health_store store(client);
        etcd_client other(e, ctl, test::etcd_config_for({etcd.endpoint()}, 3000));
        etcd_health_store reader(other);
        const std::string key = "/ioengine/nexus/scenario-2/health";

        device_registry devices;
        const std::string size = fmt::format("size_mb={}&blk_size={}", k_s2_mb, k_block);
        block_device* local = co_await devices.create("malloc:///s2local?" + size);
        // The local child behind a fault device: during the rebuild its reads
        // (the copy's source) are slowed down, so that every segment copy
        // holds its range lock for a while and the writers run into it.
        auto source = std::make_unique<fault_device>("s2src", local);
        co_await devices.add(source.get());
        block_device* disk1 = co_await devices.create("malloc:///s2r1?" + size);
        block_device* disk2 = co_await devices.create("malloc:///s2r2?" + size);
        auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
        co_await target->add_subsystem(nvme::subsystem_config{nqn("r1"), "s2r1", "ioengine", {disk1}, {}, {}});
        co_await target->add_subsystem(nvme::subsystem_config{nqn("r2"), "s2r2", "ioengine", {disk2}, {}, {}});
        co_await target->start();
        const auto remote = [&](const char* r) {
            return fmt::format("nvmf://127.0.0.1:{}/{}?io_timeout_ms=10000", target->port(), nqn(r));
        };
        auto o = options(key, store, devices, k_s2_segment);
        o.rebuild_verify = true;
        o.rebuild_parallel = k_rebuild_parallel;
        auto n = co_await nexus::create("scen2", uuid::random(), {"bdev:///s2src", remote("r1")}, o);
        EXPECT_EQ(n->state(), nexus_state::online);
        EXPECT_EQ(n->block_count(), k_s2_blocks);

        // Every block stamped with the initial fill (through the nexus: both children).
        write_log log;
        {
            std::vector<std::byte> piece(1024 * 1024);
            for (std::uint64_t lba = 0; lba < k_s2_blocks; lba += piece.size() / k_block) {
                for (std::uint64_t b = 0; b < piece.size() / k_block; ++b)
                    fill_block(piece.data() + b * k_block, lba + b, k_initial_writer, 0);
                EXPECT_EQ(co_await io_on(static_cast<unsigned>(lba / 2048 % 2), n.get(), true, lba, piece), io_status::success);
            }
        }

        // Writers on both shards, then the third child added with a rebuild.
        std::vector<future<>> writers;
        for (unsigned w = 0; w < 2 * k_writers_per_shard; ++w) {
            writers.push_back(submit_to(w / k_writers_per_shard,
                                        [&n, &log, w]() -> future<> { return writer_loop(n.get(), log, w); }));
        }
        co_await sleep(200ms);
        const std::uint64_t before_add = log.writes.load();
        const std::string new_child = remote("r2");
        co_await source->add_rule(fault_rule::delay_by(op_mask::read, 10ms));
        const auto t0 = steady_clock::now();
        co_await n->add_child(new_child, true);
        log.rebuilding.store(true);
        EXPECT_EQ(n->state(), nexus_state::degraded);
        {
            auto info = n->info();
            const child_info* c = child_of(info, new_child);
            EXPECT_TRUE(c && c->state == child_state::degraded);
            // Not healthy in etcd while it is being rebuilt.
            if (c) EXPECT_EQ(healthy_in(co_await reader.load(key), c->id), std::optional<bool>(false));
        }
        const auto deadline = steady_clock::now() + 60s;
        while (steady_clock::now() < deadline) {
            auto p = n->rebuild_status(new_child);
            if (!p) break;
            log.copied_blocks.store(p->blocks_done);
            co_await sleep(2ms);
        }
        log.rebuilding.store(false);
        const auto rebuild_time = steady_clock::now() - t0;
        // Writes go on a little after the rebuild, to the three children.
        co_await sleep(200ms);
        log.stop.store(true);
        for (auto& w : writers) co_await std::move(w);
        co_await with_timeout(30s, n->rebuilds_idle());
        co_await source->clear_rules();

        fmt::print("scenario 2: rebuild {} ms; writes {} (before add {}, during rebuild {}, ahead of the copy {}, "
                   "near the segments being copied {}), failed {}\n",
                   std::chrono::duration_cast<std::chrono::milliseconds>(rebuild_time).count(), log.writes.load(),
                   before_add, log.during_rebuild.load(), log.ahead_of_copy.load(), log.near_copy.load(),
                   log.failed.load());
        EXPECT_FALSE(n->rebuild_status(new_child)) << "the rebuild did not finish within 60 s";
        EXPECT_EQ(log.failed.load(), 0u);
        // The writes really overlapped the copy.
        EXPECT_GT(log.during_rebuild.load(), 100u);
        EXPECT_GT(log.ahead_of_copy.load(), 20u) << "no write landed on a segment not yet copied";
        EXPECT_GT(log.near_copy.load(), 5u) << "no write landed next to the segments being copied";

        EXPECT_EQ(n->state(), nexus_state::online);
        EXPECT_EQ(n->rebuild_history().size(), 1u);
        if (!n->rebuild_history().empty()) {
            const rebuild_progress& h = n->rebuild_history().back();
            EXPECT_EQ(h.state, rebuild_state::completed) << h.error;
            EXPECT_EQ(h.error, "");
            EXPECT_FALSE(h.partial);
            EXPECT_EQ(h.child, new_child);
            EXPECT_EQ(h.source, "bdev:///s2src") << "a local source is preferred";
            EXPECT_EQ(h.blocks_total, k_s2_blocks);
            EXPECT_EQ(h.blocks_done, h.blocks_total);
        }
        // etcd (read by another client): all three healthy.
        {
            auto rec = co_await reader.load(key);
            for (auto& c : n->info().children) EXPECT_EQ(healthy_in(rec, c.id), std::optional<bool>(true)) << c.uri;
        }

        // The replicas, read directly: identical, and each block its last acknowledged stamp.
        const auto want = expected_image(log);
        const auto a = co_await whole(local);
        const auto b = co_await whole(disk1);
        const auto c = co_await whole(disk2);
        EXPECT_TRUE(a == b) << "the local and the first remote replica differ";
        EXPECT_TRUE(a == c) << "the rebuilt replica differs from the local one";
        EXPECT_TRUE(holds_last_acknowledged(a, want, log)) << "local replica";
        EXPECT_TRUE(holds_last_acknowledged(c, want, log)) << "rebuilt replica";
        // And through the nexus, from both shards.
        std::vector<std::byte> r(1024 * 1024);
        for (std::uint64_t lba = 0; lba < k_s2_blocks; lba += 16 * r.size() / k_block) {
            EXPECT_EQ(co_await io_on(1, n.get(), false, lba, r), io_status::success);
            EXPECT_EQ(std::memcmp(r.data(), want.data() + lba * k_block, r.size()), 0) << "nexus read at " << lba;
        }

        co_await n->shutdown();
        co_await n->close();
        n.reset();
        co_await target->stop();
        target.reset();
        co_await devices.remove(source->name());
        co_await source->close();
        co_await devices.close_all();
    });
}

// ---- scenario 5: fault injection ----------------------------------------------

namespace {

// A local child (bdev:///f5local: a malloc device behind a fault device) and
// a remote one (nvmf://: our target serving a malloc device behind a fault
// device, reached through our initiator), 4 MiB each.
struct fault_rig {
    device_registry devices;
    block_device* local_disk = nullptr;
    block_device* remote_disk = nullptr;
    std::unique_ptr<fault_device> local_fault;
    std::unique_ptr<fault_device> remote_fault;  // what the target serves
    std::unique_ptr<nvme::nvmf_target> target;
    const std::string local_uri = "bdev:///f5local";
    std::string remote_uri;

    future<> make(unsigned io_timeout_ms) {
        nvme::register_nvmf_backend();
        local_disk = co_await devices.create("malloc:///m5local?size_mb=4&blk_size=512");
        remote_disk = co_await devices.create("malloc:///m5remote?size_mb=4&blk_size=512");
        local_fault = std::make_unique<fault_device>("f5local", local_disk);
        co_await devices.add(local_fault.get());
        remote_fault = std::make_unique<fault_device>("f5remote", remote_disk);
        target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
        co_await target->add_subsystem(
            nvme::subsystem_config{nqn("remote"), "f5remote", "ioengine", {remote_fault.get()}, {}, {}});
        co_await target->start();
        remote_uri = fmt::format("nvmf://127.0.0.1:{}/{}?io_timeout_ms={}&fast_io_fail_ms=200&reconnect_delay_ms=50",
                                 target->port(), nqn("remote"), io_timeout_ms);
    }
    std::vector<std::string> uris() const { return {local_uri, remote_uri}; }
    future<> close() {
        co_await target->stop();
        target.reset();
        co_await devices.remove(local_fault->name());
        co_await local_fault->close();
        co_await remote_fault->close();
        co_await devices.close_all();
    }
};

// Scenario 5's frame: etcd, a store for the nexus and a second client that
// reads the record back, the rig, a nexus over both children.
void with_fault_rig(unsigned io_timeout_ms,
                    std::function<future<>(fault_rig&, nexus&, etcd_health_store& reader, const std::string& key)> body) {
    test::etcd_server etcd;
    if (!etcd.available()) GTEST_SKIP() << "no etcd binary (install Debian's etcd-server: scripts/deps.sh)";
    test::run_with_control(2, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client client(e, ctl, test::etcd_config_for({etcd.endpoint()}, 3000));
        etcd_health_store store(client);
        etcd_client other(e, ctl, test::etcd_config_for({etcd.endpoint()}, 3000));
        etcd_health_store reader(other);
        const std::string key = "/ioengine/nexus/scenario-5/health";
        fault_rig rig;
        co_await rig.make(io_timeout_ms);
        auto n = co_await nexus::create("scen5", uuid::random(), rig.uris(), options(key, store, rig.devices));
        EXPECT_EQ(n->state(), nexus_state::online);
        // Before: both healthy in etcd.
        {
            auto rec = co_await reader.load(key);
            EXPECT_EQ(healthy_in(rec, rig.local_disk->id()), std::optional<bool>(true));
            EXPECT_EQ(healthy_in(rec, rig.remote_disk->id()), std::optional<bool>(true));
        }
        std::exception_ptr error;
        try {
            co_await body(rig, *n, reader, key);
        } catch (...) {
            error = std::current_exception();
        }
        co_await n->close();
        n.reset();
        co_await rig.close();
        if (error) std::rethrow_exception(error);
    });
}

::testing::AssertionResult child_is(const nexus& n, const std::string& uri, child_state state, fault_reason reason) {
    auto info = n.info();
    const child_info* c = child_of(info, uri);
    if (!c) return ::testing::AssertionFailure() << uri << " is not a child";
    if (c->state == state && c->reason == reason) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << uri << " is " << to_string(c->state) << " (" << to_string(c->reason)
                                         << "), want " << to_string(state) << " (" << to_string(reason) << ")";
}

bool faulted(const nexus& n, const std::string& uri) {
    auto info = n.info();
    const child_info* c = child_of(info, uri);
    return c && c->state == child_state::faulted;
}

long ms_since(steady_clock::time_point t) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t).count());
}

}  // namespace

// 5a: a read error on the remote child (crossing NVMe/TCP as an NVMe status)
// is retried on the local child with the right bytes; the remote child is
// retired (faulted, io-error), unhealthy in etcd when the read returns, and
// gets no more I/O.
TEST(nexus_scenarios, read_error_is_retried_on_another_child_and_the_child_retired) {
    with_fault_rig(5000, [](fault_rig& rig, nexus& n, etcd_health_store& reader, const std::string& key) -> future<> {
        auto a = pattern(8192, 1);
        EXPECT_EQ(co_await io_on(0, &n, true, 256, a), io_status::success);
        const std::uint64_t rule =
            co_await rig.remote_fault->add_rule(fault_rule::fail(op_mask::read, io_status::unrecovered_read_error));
        // Round robin: within a few reads from one shard, one goes to the remote child.
        unsigned reads = 0;
        for (; reads < 4 && !faulted(n, rig.remote_uri); ++reads) {
            std::vector<std::byte> r(a.size());
            EXPECT_EQ(co_await io_on(0, &n, false, 256, r), io_status::success);
            EXPECT_TRUE(r == a) << "read " << reads << " returned the wrong bytes";
            if (faulted(n, rig.remote_uri)) {
                // The read has returned: etcd (another client) already says so.
                auto rec = co_await reader.load(key);
                EXPECT_EQ(healthy_in(rec, rig.remote_disk->id()), std::optional<bool>(false));
                EXPECT_EQ(healthy_in(rec, rig.local_disk->id()), std::optional<bool>(true));
            }
        }
        EXPECT_EQ(co_await rig.remote_fault->hits(rule), 1u) << "the remote child saw one failing read";
        EXPECT_TRUE(child_is(n, rig.remote_uri, child_state::faulted, fault_reason::io_error));
        EXPECT_TRUE(child_is(n, rig.local_uri, child_state::online, fault_reason::none));
        EXPECT_EQ(n.state(), nexus_state::degraded);
        // Retired: reads from both shards come from the local child only, and
        // a new write does not reach the remote replica.
        for (unsigned i = 0; i < 6; ++i) {
            std::vector<std::byte> r(a.size());
            EXPECT_EQ(co_await io_on(i % 2, &n, false, 256, r), io_status::success);
            EXPECT_TRUE(r == a);
        }
        EXPECT_EQ(co_await rig.remote_fault->hits(rule), 1u) << "a retired child was read again";
        auto b = pattern(8192, 2);
        EXPECT_EQ(co_await io_on(1, &n, true, 256, b), io_status::success);
        std::vector<std::byte> on_remote(b.size()), on_local(b.size());
        EXPECT_EQ(co_await io_on(0, rig.remote_disk, false, 256, on_remote), io_status::success);
        EXPECT_EQ(co_await io_on(0, rig.local_disk, false, 256, on_local), io_status::success);
        EXPECT_TRUE(on_remote == a) << "a retired child still gets writes";
        EXPECT_TRUE(on_local == b);
    });
}

// 5b: every child fails a write: the write fails with their status (Write
// Fault: SCT 2h Media and Data Integrity Errors, SC 80h), as a host sees it
// through the nexus published over NVMe/TCP; the nexus is faulted and then
// refuses I/O with Namespace Not Ready.
TEST(nexus_scenarios, write_error_on_every_child_fails_the_write_with_the_child_status) {
    with_fault_rig(5000, [](fault_rig& rig, nexus& n, etcd_health_store& reader, const std::string& key) -> future<> {
        co_await rig.target->add_subsystem(nvme::subsystem_config{nqn("nexus"), "scen5", "ioengine nexus", {&n}, {}, {}});
        block_device* front = co_await rig.devices.create(fmt::format(
            "nvmf://127.0.0.1:{}/{}?name=front5&io_timeout_ms=10000", rig.target->port(), nqn("nexus")));
        auto a = pattern(4096, 3);
        EXPECT_EQ(co_await io_on(1, front, true, 64, a), io_status::success);
        std::vector<std::byte> r(a.size());
        EXPECT_EQ(co_await io_on(0, rig.remote_disk, false, 64, r), io_status::success);
        EXPECT_TRUE(r == a);

        co_await rig.local_fault->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault));
        co_await rig.remote_fault->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault));
        auto b = pattern(4096, 4);
        const io_status st = co_await io_on(0, front, true, 64, b);
        EXPECT_EQ(st, io_status::write_fault);
        EXPECT_EQ(static_cast<unsigned>(st), 0x280u) << "SCT 2h / SC 80h";
        EXPECT_EQ(n.state(), nexus_state::faulted);
        EXPECT_TRUE(child_is(n, rig.local_uri, child_state::faulted, fault_reason::io_error));
        EXPECT_TRUE(child_is(n, rig.remote_uri, child_state::faulted, fault_reason::io_error));
        // Faulted: every I/O fails with Namespace Not Ready (SCT 0 / SC 82h),
        // through the target and directly.
        EXPECT_EQ(co_await io_on(1, front, true, 64, b), io_status::namespace_not_ready);
        EXPECT_EQ(co_await io_on(0, front, false, 64, r), io_status::namespace_not_ready);
        EXPECT_EQ(co_await io_on(1, &n, false, 64, r), io_status::namespace_not_ready);
        // Neither replica has the failed write.
        EXPECT_EQ(co_await io_on(0, rig.local_disk, false, 64, r), io_status::success);
        EXPECT_TRUE(r == a);
        auto rec = co_await reader.load(key);
        EXPECT_TRUE(rec.has_value());
        if (rec) {
            std::string flags;
            for (auto& [id, h] : rec->children) flags += fmt::format(" {}={}", id, h);
            fmt::print("scenario 5b: etcd record after every child failed a write:{}\n", flags);
        }
        co_await rig.devices.destroy("front5");
        co_await rig.target->remove_subsystem(nqn("nexus"));
    });
}

// 5c: the remote child is slow (its target-side device delays reads and
// writes by 1.5 s, its io_timeout_ms is 300): the I/O completes through the
// local child once the remote command times out, the remote child is retired
// (faulted, timeout; unhealthy in etcd), the nexus degraded; once the late
// completions have arrived nothing has changed: the read buffers hold the
// local bytes (the remote replica holds different ones) and reads are right.
void slow_child(bool read_first) {
    with_fault_rig(300, [read_first](fault_rig& rig, nexus& n, etcd_health_store& reader,
                                     const std::string& key) -> future<> {
        constexpr auto delay = 1500ms;
        auto a = pattern(8192, 5);
        EXPECT_EQ(co_await io_on(0, &n, true, 512, a), io_status::success);
        EXPECT_EQ(co_await io_on(1, &n, true, 600, a), io_status::success);  // both shards' queues open
        // The remote replica gets other bytes at 512: a late read
        // completion landing in a caller's buffer would show them.
        auto stale = pattern(8192, 6);
        EXPECT_EQ(co_await io_on(0, rig.remote_disk, true, 512, stale), io_status::success);
        const std::uint64_t rule = co_await rig.remote_fault->add_rule(
            fault_rule::delay_by(op_mask::read | op_mask::write, std::chrono::duration_cast<std::chrono::microseconds>(delay)));

        std::vector<std::vector<std::byte>> buffers;
        long slowest = 0;
        auto c = pattern(4096, 7);
        if (read_first) {
            buffers.reserve(4);
            for (unsigned i = 0; i < 4 && !faulted(n, rig.remote_uri); ++i) {
                buffers.emplace_back(a.size());
                const auto t = steady_clock::now();
                EXPECT_EQ(co_await io_on(0, &n, false, 512, buffers.back()), io_status::success);
                slowest = std::max(slowest, ms_since(t));
                EXPECT_TRUE(buffers.back() == a) << "read " << i;
            }
        } else {
            const auto t = steady_clock::now();
            EXPECT_EQ(co_await io_on(1, &n, true, 1024, c), io_status::success);
            slowest = ms_since(t);
        }
        EXPECT_GE(slowest, 250) << "no I/O waited for the remote child's timeout";
        EXPECT_LT(slowest, 1400) << "the I/O waited for the slow child instead of timing out";
        EXPECT_TRUE(child_is(n, rig.remote_uri, child_state::faulted, fault_reason::timeout));
        EXPECT_TRUE(child_is(n, rig.local_uri, child_state::online, fault_reason::none));
        EXPECT_EQ(n.state(), nexus_state::degraded);
        auto rec = co_await reader.load(key);
        EXPECT_EQ(healthy_in(rec, rig.remote_disk->id()), std::optional<bool>(false));
        EXPECT_EQ(healthy_in(rec, rig.local_disk->id()), std::optional<bool>(true));
        EXPECT_GE(co_await rig.remote_fault->hits(rule), 1u);

        // The delayed commands complete at the target now; nothing moves.
        co_await sleep(delay + 700ms);
        for (std::size_t i = 0; i < buffers.size(); ++i)
            EXPECT_TRUE(buffers[i] == a) << "read buffer " << i << " changed after its read completed";
        for (unsigned shard = 0; shard < 2; ++shard) {
            std::vector<std::byte> r(a.size());
            EXPECT_EQ(co_await io_on(shard, &n, false, 512, r), io_status::success);
            EXPECT_TRUE(r == a);
            if (!read_first) {
                std::vector<std::byte> rc(c.size());
                EXPECT_EQ(co_await io_on(shard, &n, false, 1024, rc), io_status::success);
                EXPECT_TRUE(rc == c);
            }
        }
        EXPECT_EQ(n.state(), nexus_state::degraded);
    });
}

TEST(nexus_scenarios, slow_child_read_times_out_and_the_child_is_retired) { slow_child(true); }
TEST(nexus_scenarios, slow_child_write_times_out_and_the_child_is_retired) { slow_child(false); }

// 5d: the remote child answers a write with Capacity Exceeded (a thin pool
// full): it is retired with reason no-space; the write succeeds on the other.
TEST(nexus_scenarios, a_child_out_of_space_is_retired_with_reason_no_space) {
    with_fault_rig(5000, [](fault_rig& rig, nexus& n, etcd_health_store& reader, const std::string& key) -> future<> {
        co_await rig.remote_fault->add_rule(fault_rule::fail(op_mask::write, io_status::capacity_exceeded));
        auto a = pattern(16384, 8);
        EXPECT_EQ(co_await io_on(1, &n, true, 4000, a), io_status::success);
        EXPECT_TRUE(child_is(n, rig.remote_uri, child_state::faulted, fault_reason::no_space));
        EXPECT_EQ(n.state(), nexus_state::degraded);
        auto rec = co_await reader.load(key);
        EXPECT_EQ(healthy_in(rec, rig.remote_disk->id()), std::optional<bool>(false));
        EXPECT_EQ(healthy_in(rec, rig.local_disk->id()), std::optional<bool>(true));
        std::vector<std::byte> r(a.size());
        EXPECT_EQ(co_await io_on(0, &n, false, 4000, r), io_status::success);
        EXPECT_TRUE(r == a);
    });
}

// A write that timed out on the slow child still lands there later (the
// initiator abandoned the command, the target did not): if the child is
// brought back and rebuilt before that, the late write must not leave it
// holding older data than the other child.
// Before the fix this was a stale read: nvmf_qpair::sweep() completes a
// timed-out command as aborted while the target still runs it, and
// online_child() started the rebuild at once, so the abandoned write landed
// after its segment was copied. Now the rebuild first waits until the
// device has no abandoned command left (block_device::settle).
TEST(nexus_scenarios, late_write_of_a_timed_out_child_does_not_undo_its_rebuild) {
    with_fault_rig(300, [](fault_rig& rig, nexus& n, etcd_health_store&, const std::string&) -> future<> {
        auto old_bytes = pattern(4096, 9);
        auto new_bytes = pattern(4096, 10);
        co_await rig.remote_fault->add_rule(fault_rule::delay_by(op_mask::write, 1500ms).at_most(1));
        EXPECT_EQ(co_await io_on(0, &n, true, 2048, old_bytes), io_status::success);  // times out on the remote
        EXPECT_TRUE(child_is(n, rig.remote_uri, child_state::faulted, fault_reason::timeout));
        EXPECT_EQ(co_await io_on(0, &n, true, 2048, new_bytes), io_status::success);  // the local child only
        co_await n.online_child(rig.remote_uri);
        co_await with_timeout(30s, n.rebuilds_idle());
        EXPECT_TRUE(child_is(n, rig.remote_uri, child_state::online, fault_reason::none));
        co_await sleep(2s);  // the abandoned write completes at the target
        std::vector<std::byte> on_local(4096), on_remote(4096);
        EXPECT_EQ(co_await io_on(0, rig.local_disk, false, 2048, on_local), io_status::success);
        EXPECT_EQ(co_await io_on(0, rig.remote_disk, false, 2048, on_remote), io_status::success);
        EXPECT_TRUE(on_local == new_bytes);
        EXPECT_TRUE(on_remote == new_bytes) << "the online remote child holds "
                                            << (on_remote == old_bytes ? "the older, timed-out write" : "other bytes");
        // What a reader of the nexus sees, from both children in turn.
        for (unsigned i = 0; i < 4; ++i) {
            std::vector<std::byte> r(4096);
            EXPECT_EQ(co_await io_on(0, &n, false, 2048, r), io_status::success);
            EXPECT_TRUE(r == new_bytes) << "read " << i << " returned "
                                        << (r == old_bytes ? "the older, timed-out write (a stale read)" : "other bytes");
        }
    });
}
