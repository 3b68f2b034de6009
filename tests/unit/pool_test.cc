// Pools and replicas on malloc devices: create/import/export/destroy, thick
// and thin replicas, out-of-space, unmap, resize, I/O from two shards, and
// imports after torn metadata updates (through the fault device).
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/device_registry.hh"
#include "storage/fault_device.hh"
#include "storage/pool.hh"
#include "tests/unit/pool_test_util.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
namespace pf = ioe::pool_format;

namespace {

constexpr std::uint32_t MiB = 1 << 20;

pool_create_options opts(std::string name) {
    pool_create_options o;
    o.name = std::move(name);
    o.cluster_size = MiB;  // small clusters: small test devices
    return o;
}

// Runs body on shard 0 with a registry and a 64 MiB malloc device "d0".
int with_device(std::function<future<int>(device_registry*, block_device*)> body, unsigned shards = 1,
                const char* uri = "malloc:///d0?size_mb=64&blk_size=4096") {
    return test::run_engine(test::small_config(shards), [&](engine*) -> future<int> {
        device_registry reg;
        block_device* dev = co_await reg.create(uri);
        int rc = co_await body(&reg, dev);
        co_await reg.close_all();
        co_return rc;
    });
}

storage_errc code_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const storage_error& s) {
        return s.code;
    } catch (...) {
        return storage_errc::internal;
    }
}

}  // namespace

TEST(pool, create_reports_capacity_and_refuses_a_second_pool) {
    pool_info info;
    storage_errc second = storage_errc::internal;
    std::string message;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        info = p->info();
        try {
            co_await pool::create(dev, opts("p1"), reg);
        } catch (const storage_error& e) {
            second = e.code;
            message = e.what();
        }
        auto o = opts("p1");
        o.overwrite = true;
        co_await p->export_pool();
        auto p1 = co_await pool::create(dev, o, reg);
        co_await p1->export_pool();
        co_return p1->pool_name() == "p1" ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(info.name, "p0");
    EXPECT_EQ(info.cluster_size, MiB);
    EXPECT_EQ(info.capacity_bytes, 63ull * MiB);  // 64 MiB minus the 1 MiB metadata area
    EXPECT_EQ(info.used_bytes, 0u);
    EXPECT_EQ(second, storage_errc::already_exists);
    EXPECT_NE(message.find("already holds pool \"p0\""), std::string::npos) << message;
}

TEST(pool, thick_replica_data_and_metadata_survive_export_and_import) {
    pool_info before, after;
    int bad = -2;
    bool clean = false;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r0", uuid::random(), 5 * MiB, false);
        if (co_await test::write_stamped_range(r, 0, 1280, 7) != io_status::success) co_return 1;
        before = p->info();
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        after = q->info();
        clean = after.was_exported;
        block_device* again = co_await reg->find("r0");  // registered for bdev:///
        bad = co_await test::count_bad(again, 0, 1280, 7);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(before.used_bytes, 5ull * MiB);  // thick: reserved at creation
    EXPECT_EQ(before.committed_bytes, 5ull * MiB);
    EXPECT_EQ(after.used_bytes, before.used_bytes);
    EXPECT_EQ(after.replica_count, 1u);
    EXPECT_TRUE(clean);
    EXPECT_EQ(bad, 0);
}

TEST(pool, thin_replica_allocates_on_first_write_and_reads_zeros_elsewhere) {
    std::uint64_t used_empty = 1, used_after = 0, used_reimport = 0;
    int zeros_bad = -2, data_bad = -2, data_bad_after = -2;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("thin", uuid::random(), 40 * MiB, true);
        used_empty = p->info().used_bytes;
        zeros_bad = co_await test::count_bad(r, 0, 256, -1);
        // Two writes in cluster 3, one straddling clusters 5 and 6.
        if (io_status st = co_await test::write_stamped(r, 3 * 256 + 10, 4, 1); st != io_status::success) {
            ADD_FAILURE() << "write: " << to_string(st);
            co_return 1;
        }
        if (co_await test::write_stamped(r, 6 * 256 - 2, 4, 2) != io_status::success) co_return 2;
        used_after = p->info().used_bytes;
        data_bad = co_await test::count_bad(r, 3 * 256 + 10, 4, 1) + co_await test::count_bad(r, 6 * 256 - 2, 4, 2) +
                   co_await test::count_bad(r, 3 * 256, 10, -1);  // rest of the cluster is zero
        co_await p->export_pool();
        p.reset();
        auto q = co_await pool::import(dev, reg);
        used_reimport = q->info().used_bytes;
        replica* r2 = q->find_replica("thin");
        data_bad_after = co_await test::count_bad(r2, 6 * 256 - 2, 4, 2);
        co_await q->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(used_empty, 0u);
    EXPECT_EQ(zeros_bad, 0);
    EXPECT_EQ(used_after, 3ull * MiB);
    EXPECT_EQ(data_bad, 0);
    EXPECT_EQ(used_reimport, 3ull * MiB);
    EXPECT_EQ(data_bad_after, 0);
}

TEST(pool, full_pool_fails_writes_with_capacity_exceeded_and_nothing_else_breaks) {
    io_status full = io_status::success;
    int earlier_bad = -2;
    bool recovered = false;
    int rc = with_device(
        [&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);  // 16 MiB: 15 clusters
            replica* big = co_await p->create_replica("big", uuid::random(), 64 * MiB, true);
            std::uint64_t lba = 0;
            for (;; lba += 256) {
                io_status st = co_await test::write_stamped(big, lba, 1, 3);
                if (st != io_status::success) {
                    full = st;
                    break;
                }
                if (lba > 64 * 256) co_return 1;
            }
            earlier_bad = co_await test::count_bad(big, 0, 1, 3) + co_await test::count_bad(big, lba - 256, 1, 3);
            // Freeing space makes the pool usable again.
            co_await p->destroy_replica("big");
            replica* small = co_await p->create_replica("small", uuid::random(), 4 * MiB, false);
            recovered = co_await test::write_stamped(small, 0, 8, 4) == io_status::success &&
                        co_await test::count_bad(small, 0, 8, 4) == 0;
            co_await p->export_pool();
            co_return 0;
        },
        1, "malloc:///d0?size_mb=16&blk_size=4096");
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(full, io_status::capacity_exceeded);
    EXPECT_EQ(earlier_bad, 0);
    EXPECT_TRUE(recovered);
}

TEST(pool, thick_replica_that_does_not_fit_is_refused) {
    storage_errc code = storage_errc::internal;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        try {
            co_await p->create_replica("huge", uuid::random(), 100 * MiB, false);
        } catch (...) {
            code = code_of(std::current_exception());
        }
        int used = static_cast<int>(p->info().used_bytes);
        co_await p->export_pool();
        co_return used;  // nothing leaked by the refusal
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(code, storage_errc::no_space);
}

TEST(pool, unmap_of_whole_thin_clusters_frees_them) {
    std::uint64_t used_full = 0, used_after = 1;
    int zeros = -2, kept = -2;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("t", uuid::random(), 8 * MiB, true);
        for (int c = 0; c < 4; ++c) co_await test::write_stamped(r, c * 256, 256, 5);  // 1 MiB each
        used_full = p->info().used_bytes;
        // Clusters 1 and 2 whole, plus half of cluster 3 (zeroed, kept).
        io_status st = co_await r->channel()->unmap(256, 2 * 256 + 128);
        if (!ok(st)) co_return 1;
        used_after = p->info().used_bytes;
        zeros = co_await test::count_bad(r, 256, 2 * 256 + 128, -1);
        kept = co_await test::count_bad(r, 0, 256, 5) + co_await test::count_bad(r, 3 * 256 + 128, 128, 5);
        co_await p->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(used_full, 4ull * MiB);
    EXPECT_EQ(used_after, 2ull * MiB);
    EXPECT_EQ(zeros, 0);
    EXPECT_EQ(kept, 0);
}

TEST(pool, resize_grows_and_refuses_to_shrink) {
    std::uint64_t blocks_after = 0, used_after = 0;
    storage_errc shrink = storage_errc::internal;
    int bad = -2;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        replica* r = co_await p->create_replica("r", uuid::random(), 2 * MiB, false);
        co_await test::write_stamped(r, 0, 16, 9);
        co_await p->resize_replica("r", 6 * MiB);
        blocks_after = r->block_count();
        used_after = p->info().used_bytes;
        // The new space is usable and the old data is still there.
        if (co_await test::write_stamped(r, 5 * 256, 16, 10) != io_status::success) co_return 1;
        bad = co_await test::count_bad(r, 0, 16, 9) + co_await test::count_bad(r, 5 * 256, 16, 10) +
              co_await test::count_bad(r, 3 * 256, 16, -1);
        try {
            co_await p->resize_replica("r", 1 * MiB);
        } catch (...) {
            shrink = code_of(std::current_exception());
        }
        co_await p->export_pool();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(blocks_after, 6u * 256);
    EXPECT_EQ(used_after, 6ull * MiB);
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(shrink, storage_errc::invalid_argument);
}

TEST(pool, destroyed_pool_cannot_be_imported) {
    storage_errc code = storage_errc::internal;
    int rc = with_device([&](device_registry* reg, block_device* dev) -> future<int> {
        auto p = co_await pool::create(dev, opts("p0"), reg);
        co_await p->create_replica("r", uuid::random(), MiB, true);
        co_await p->destroy();
        p.reset();
        try {
            co_await pool::import(dev, reg);
        } catch (...) {
            code = code_of(std::current_exception());
        }
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(code, storage_errc::not_found);
}

TEST(pool, two_shards_write_and_read_one_thin_replica) {
    IOE_NEED_CORES(2);
    int bad0 = -2, bad1 = -2;
    int rc = with_device(
        [&](device_registry* reg, block_device* dev) -> future<int> {
            auto p = co_await pool::create(dev, opts("p0"), reg);
            replica* r = co_await p->create_replica("shared", uuid::random(), 32 * MiB, true);
            // Shard 0 writes even blocks, shard 1 odd ones, in the same clusters,
            // all at once (allocation races included).
            auto writer = [](replica* r, unsigned parity) -> future<int> {
                std::vector<future<io_status>> ios;
                for (std::uint64_t lba = parity; lba < 8 * 256; lba += 2) ios.push_back(test::write_stamped(r, lba, 1, 11));
                int failed = 0;
                for (auto& f : ios) failed += (co_await std::move(f)) != io_status::success;
                co_return failed;
            };
            auto other = submit_to(1, [r, writer] { return writer(r, 1); });
            int f0 = co_await writer(r, 0);
            int f1 = co_await std::move(other);
            if (f0 || f1) co_return 1;
            // Each shard reads everything back.
            bad0 = co_await test::count_bad(r, 0, 8 * 256, 11);
            bad1 = co_await submit_to(1, [r] { return test::count_bad(r, 0, 8 * 256, 11); });
            co_await p->export_pool();
            co_return p->info().used_bytes == 8ull * MiB ? 0 : 2;
        },
        2);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(bad0, 0);
    EXPECT_EQ(bad1, 0);
}

// Torn updates: every write after the N-th is dropped while a replica is
// created and written; the pool must import to the old or the new state.
TEST(pool, torn_metadata_updates_import_old_or_new_state) {
    int outcomes_old = 0, outcomes_new = 0, failures = 0;
    int rc = with_device([&](device_registry*, block_device* dev) -> future<int> {
        for (std::uint64_t n = 0; n < 64; ++n) {
            // A fresh pool with one thin replica holding one written cluster.
            auto o = opts("p0");
            o.overwrite = true;
            auto p = co_await pool::create(dev, o, nullptr);
            replica* base = co_await p->create_replica("base", uuid::random(), 4 * MiB, true);
            co_await test::write_stamped(base, 0, 4, 1);
            co_await p->export_pool();
            p.reset();
            // The update, through a device that loses every write after n.
            fault_device faulty("faulty", dev);
            fault_rule drop;
            drop.ops = op_mask::write | op_mask::write_zeroes | op_mask::flush;
            drop.action = fault_action::drop;
            drop.skip = n;
            std::uint64_t rule = co_await faulty.add_rule(drop);
            bool completed = false;
            try {
                auto q = co_await pool::import(&faulty, nullptr);
                replica* r = co_await q->create_replica("new", uuid::random(), 3 * MiB, false);
                co_await test::write_stamped(r, 0, 4, 2);
                co_await test::write_stamped(q->find_replica("base"), 256, 4, 3);  // thin allocation
                co_await q->export_pool();
                completed = true;
            } catch (const std::exception&) {
            }
            std::uint64_t dropped = co_await faulty.hits(rule);
            co_await faulty.close();
            // Import the real device: it must be consistent (decode checks
            // every cluster) and hold either the old or the new replica set.
            try {
                auto check = co_await pool::import(dev, nullptr);
                auto info = check->info();
                bool has_new = check->find_replica("new") != nullptr;
                bool base_ok = co_await test::count_bad(check->find_replica("base"), 0, 4, 1) == 0;
                if (!base_ok) ++failures;
                if (has_new) {
                    ++outcomes_new;
                    if (info.used_bytes < 4ull * MiB) ++failures;  // thick replica complete
                } else {
                    ++outcomes_old;
                }
                co_await check->export_pool();
            } catch (const std::exception& e) {
                ADD_FAILURE() << "n=" << n << ": import failed: " << e.what();
                ++failures;
            }
            if (completed && dropped == 0) break;  // the whole update went through
        }
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(failures, 0);
    EXPECT_GT(outcomes_old, 0);
    EXPECT_GT(outcomes_new, 0);
}

TEST(pool, grow_takes_in_the_space_a_file_gained_and_survives_import) {
    const std::string path = std::filesystem::absolute("pool_grow_" + std::to_string(::getpid()) + ".img").string();
    {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 32 << 20), 0);
        ::close(fd);
    }
    std::uint64_t before = 0, after = 0, reimported = 0;
    int bad = -2;
    int rc = test::run_engine(test::small_config(1), [&](engine*) -> future<int> {
        device_registry reg;
        block_device* dev = co_await reg.create("uring://" + path);
        auto p = co_await pool::create(dev, opts("g"), &reg);
        before = p->info().capacity_bytes;
        replica* r = co_await p->create_replica("r", uuid::random(), 8 * MiB, true);
        co_await test::write_stamped(r, 0, 8, 21);
        if (::truncate(path.c_str(), 64 << 20) != 0) co_return 1;  // the device grew
        co_await p->grow();
        after = p->info().capacity_bytes;
        co_await p->export_pool();
        p.reset();
        co_await reg.destroy(dev->name());
        dev = co_await reg.create("uring://" + path);
        auto q = co_await pool::import(dev, &reg);
        reimported = q->info().capacity_bytes;
        bad = co_await test::count_bad(q->find_replica("r"), 0, 8, 21);
        co_await q->export_pool();
        co_await reg.close_all();
        co_return 0;
    });
    ::unlink(path.c_str());
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(before, 31ull * MiB);
    EXPECT_EQ(after, 63ull * MiB);
    EXPECT_EQ(reimported, 63ull * MiB);
    EXPECT_EQ(bad, 0);
}
