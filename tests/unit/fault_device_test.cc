// fault_device: every action (fail, delay, corrupt, drop) checked by the
// bytes the inner device holds and the statuses and hit counts seen; LBA
// ranges, skip/count, time windows, rules added from one shard acting on
// another, and removing rules restoring pass-through. The inner device is a
// small in-memory device defined here (synchronous, ready futures), so these
// tests depend on no real backend.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <ostream>
#include <vector>

#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/errors.hh"
#include "storage/fault_device.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace ioe {
static void PrintTo(io_status s, std::ostream* os) { *os << to_string(s); }
}  // namespace ioe

namespace {

constexpr std::uint32_t bs = 512;
constexpr std::uint64_t device_blocks = 64;

// ---- an in-memory inner device ------------------------------------------------

class mem_device;

class mem_channel final : public device_channel {
public:
    explicit mem_channel(mem_device& dev) noexcept : _dev(dev) {}
    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override;
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override;
    future<io_status> flush() override { return make_ready_future<io_status>(io_status::success); }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override;
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override { return write_zeroes(lba, blocks); }

private:
    mem_device& _dev;
};

class mem_device final : public block_device {
public:
    mem_device() : block_device("mem0", "test-mem", uuid::random(), bs, device_blocks), bytes(bs * device_blocks) {}

    // Does the medium hold `expected` from block `lba` on?
    bool holds(std::uint64_t lba, const std::vector<std::byte>& expected) const {
        return std::memcmp(bytes.data() + lba * bs, expected.data(), expected.size()) == 0;
    }
    bool zero(std::uint64_t lba, std::uint64_t blocks) const {
        for (std::uint64_t i = lba * bs; i < (lba + blocks) * bs; ++i) {
            if (bytes[i] != std::byte{0}) return false;
        }
        return true;
    }

    std::vector<std::byte> bytes;

protected:
    std::unique_ptr<device_channel> open_channel() override { return std::make_unique<mem_channel>(*this); }
};

future<io_status> mem_channel::read(std::uint64_t lba, std::uint32_t, io_vecs iov) {
    const std::byte* p = _dev.bytes.data() + lba * bs;
    for (const auto& v : iov) {
        std::memcpy(v.data, p, v.len);
        p += v.len;
    }
    return make_ready_future<io_status>(io_status::success);
}

future<io_status> mem_channel::write(std::uint64_t lba, std::uint32_t, io_vecs iov) {
    std::byte* p = _dev.bytes.data() + lba * bs;
    for (const auto& v : iov) {
        std::memcpy(p, v.data, v.len);
        p += v.len;
    }
    return make_ready_future<io_status>(io_status::success);
}

future<io_status> mem_channel::write_zeroes(std::uint64_t lba, std::uint64_t blocks) {
    std::memset(_dev.bytes.data() + lba * bs, 0, blocks * bs);
    return make_ready_future<io_status>(io_status::success);
}

// ---- helpers --------------------------------------------------------------------

// Bytes for `blocks` blocks, different per block and per seed.
std::vector<std::byte> pattern(std::uint64_t lba, std::uint64_t blocks, unsigned seed) {
    std::vector<std::byte> v(blocks * bs);
    for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] = std::byte(static_cast<unsigned char>(seed * 31 + (lba + i / bs) * 7 + i * 13 + 1));
    }
    return v;
}

// The buffers live in these coroutine frames until the I/O completes.
future<io_status> write_blocks(block_device* d, std::uint64_t lba, std::vector<std::byte> data) {
    io_vec v{data.data(), static_cast<std::uint32_t>(data.size()), -1};
    co_return co_await d->channel()->write(lba, static_cast<std::uint32_t>(data.size() / bs), io_vecs(&v, 1));
}

struct read_result {
    io_status st = io_status::internal_error;
    std::vector<std::byte> bytes;
};

future<read_result> read_blocks(block_device* d, std::uint64_t lba, std::uint32_t blocks) {
    read_result r;
    r.bytes.resize(std::size_t(blocks) * bs);
    io_vec v{r.bytes.data(), static_cast<std::uint32_t>(r.bytes.size()), -1};
    r.st = co_await d->channel()->read(lba, blocks, io_vecs(&v, 1));
    co_return r;
}

// Just the status (keeps the result aggregate out of co_await expressions:
// GCC 12 may destroy such temporaries twice).
future<io_status> read_status(block_device* d, std::uint64_t lba, std::uint32_t blocks) {
    read_result r = co_await read_blocks(d, lba, blocks);
    co_return r.st;
}

// The storage error code a control call failed with, or nullopt.
template <typename T>
future<std::optional<storage_errc>> error_of(future<T> f) {
    try {
        co_await std::move(f);
    } catch (const storage_error& e) {
        co_return e.code;
    }
    co_return std::nullopt;
}

future<> close_both(std::unique_ptr<fault_device> dev, std::unique_ptr<mem_device> mem) {
    co_await dev->close();
    co_await mem->close();
}

constexpr io_status success = io_status::success;
constexpr io_status wfault = io_status::write_fault;
constexpr io_status rfault = io_status::unrecovered_read_error;

}  // namespace

// ---- tests ----------------------------------------------------------------------

TEST(fault_device, flip_block_heads_crosses_buffer_boundaries_and_undoes_itself) {
    std::vector<std::byte> a(700), b(300), c(2072);  // 6 blocks, block 2 split across a/b/c
    io_vec v[3] = {{a.data(), 700, -1}, {b.data(), 300, -1}, {c.data(), 2072, -1}};
    flip_block_heads(io_vecs(v, 3), bs, 10, 6, 11, 15);  // blocks 11..14: offsets 512, 1024, 1536, 2048
    EXPECT_EQ(a[0], std::byte{0});
    EXPECT_EQ(a[512], std::byte{0xff});
    EXPECT_EQ(c[1024 - 1000], std::byte{0xff});
    EXPECT_EQ(c[1536 - 1000], std::byte{0xff});
    EXPECT_EQ(c[2048 - 1000], std::byte{0xff});
    EXPECT_EQ(c[2560 - 1000], std::byte{0});  // block 15: outside the range
    int flipped = 0;
    for (auto* buf : {&a, &b, &c}) {
        for (auto x : *buf) flipped += x != std::byte{0};
    }
    EXPECT_EQ(flipped, 4);
    flip_block_heads(io_vecs(v, 3), bs, 10, 6, 11, 15);
    flipped = 0;
    for (auto* buf : {&a, &b, &c}) {
        for (auto x : *buf) flipped += x != std::byte{0};
    }
    EXPECT_EQ(flipped, 0);
}

TEST(fault_device, without_rules_every_operation_passes_through_byte_exact) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        EXPECT_EQ(dev->name(), "mem0.fault");
        EXPECT_EQ(dev->product(), "fault");
        EXPECT_EQ(dev->block_size(), bs);
        EXPECT_EQ(dev->block_count(), device_blocks);
        EXPECT_TRUE(dev->id() == mem->id());
        EXPECT_EQ(dev->inner(), mem.get());

        auto w = pattern(3, 4, 1);
        EXPECT_EQ(co_await write_blocks(dev.get(), 3, w), success);
        EXPECT_TRUE(mem->holds(3, w));
        auto r = co_await read_blocks(dev.get(), 3, 4);
        EXPECT_EQ(r.st, success);
        EXPECT_TRUE(r.bytes == w);

        // The inner completes synchronously, so a pass-through I/O is ready
        // at once: no coroutine or timer stood in between.
        std::vector<std::byte> buf(bs);
        io_vec v{buf.data(), bs, -1};
        auto f = dev->channel()->read(3, 1, io_vecs(&v, 1));
        EXPECT_TRUE(f.available());
        EXPECT_EQ(co_await std::move(f), success);

        EXPECT_EQ(co_await dev->channel()->write_zeroes(4, 1), success);
        EXPECT_TRUE(mem->zero(4, 1));
        EXPECT_EQ(co_await dev->channel()->unmap(5, 1), success);
        EXPECT_TRUE(mem->zero(5, 1));
        EXPECT_EQ(co_await dev->channel()->flush(), success);
        EXPECT_TRUE(mem->holds(3, pattern(3, 1, 1)));

        channel_stats s = co_await mem->stats();
        EXPECT_EQ(s.write_ops, 1u);
        EXPECT_EQ(s.read_ops, 2u);
        EXPECT_EQ(s.zeroes_ops, 1u);
        EXPECT_EQ(s.unmap_ops, 1u);
        EXPECT_EQ(s.flush_ops, 1u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, fail_acts_only_on_io_overlapping_the_lba_range) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto wid = co_await dev->add_rule(fault_rule::fail(op_mask::write, wfault).on_blocks(10, 20));
        auto rid = co_await dev->add_rule(fault_rule::fail(op_mask::read, rfault).on_blocks(10, 20));

        auto a = pattern(8, 2, 1);
        EXPECT_EQ(co_await write_blocks(dev.get(), 8, a), success);                  // 8..9
        EXPECT_EQ(co_await write_blocks(dev.get(), 8, pattern(8, 3, 2)), wfault);    // 8..10
        EXPECT_EQ(co_await write_blocks(dev.get(), 19, pattern(19, 1, 2)), wfault);  // 19
        EXPECT_EQ(co_await write_blocks(dev.get(), 20, pattern(20, 4, 2)), success); // 20..23
        EXPECT_EQ(co_await write_blocks(dev.get(), 5, pattern(5, 30, 2)), wfault);   // 5..34 covers it
        // Failed writes never reached the medium.
        EXPECT_TRUE(mem->holds(8, a));
        EXPECT_TRUE(mem->zero(10, 10));
        EXPECT_TRUE(mem->holds(20, pattern(20, 4, 2)));

        EXPECT_EQ(co_await read_status(dev.get(), 0, 10), success);
        EXPECT_EQ(co_await read_status(dev.get(), 9, 2), rfault);
        EXPECT_EQ(co_await read_status(dev.get(), 20, 1), success);
        // Operations outside the mask pass.
        EXPECT_EQ(co_await dev->channel()->write_zeroes(10, 1), success);
        EXPECT_EQ(co_await dev->channel()->flush(), success);

        EXPECT_EQ(co_await dev->hits(wid), 3u);
        EXPECT_EQ(co_await dev->hits(rid), 1u);
        channel_stats s = co_await mem->stats();
        EXPECT_EQ(s.write_ops, 2u);
        EXPECT_EQ(s.read_ops, 2u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, skip_and_count_fail_only_the_third_and_fourth_writes) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto id = co_await dev->add_rule(fault_rule::fail(op_mask::write, wfault).after(2).at_most(2));
        std::vector<io_status> seen;
        for (std::uint64_t lba = 0; lba < 6; ++lba) {
            seen.push_back(co_await write_blocks(dev.get(), lba, pattern(lba, 1, 3)));
        }
        EXPECT_EQ(seen, (std::vector<io_status>{success, success, wfault, wfault, success, success}));
        EXPECT_TRUE(mem->holds(0, pattern(0, 1, 3)));
        EXPECT_TRUE(mem->holds(1, pattern(1, 1, 3)));
        EXPECT_TRUE(mem->zero(2, 2));
        EXPECT_TRUE(mem->holds(4, pattern(4, 1, 3)));
        EXPECT_TRUE(mem->holds(5, pattern(5, 1, 3)));
        EXPECT_EQ(co_await dev->hits(id), 2u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, drop_after_n_writes_acknowledges_but_the_medium_keeps_old_data) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto old_data = pattern(0, 6, 1);
        EXPECT_EQ(co_await write_blocks(mem.get(), 0, old_data), success);  // straight to the medium

        // A power cut after the 2nd write: every later write, zeroing and
        // flush is acknowledged and lost.
        auto id = co_await dev->add_rule(
            fault_rule::drop(op_mask::write | op_mask::write_zeroes | op_mask::flush).after(2));
        for (std::uint64_t lba = 0; lba < 6; ++lba) {
            EXPECT_EQ(co_await write_blocks(dev.get(), lba, pattern(lba, 1, 9)), success);
        }
        EXPECT_EQ(co_await dev->channel()->flush(), success);
        EXPECT_EQ(co_await dev->channel()->write_zeroes(0, 6), success);

        EXPECT_TRUE(mem->holds(0, pattern(0, 1, 9)));
        EXPECT_TRUE(mem->holds(1, pattern(1, 1, 9)));
        std::vector<std::byte> old_tail(old_data.begin() + 2 * bs, old_data.end());
        EXPECT_TRUE(mem->holds(2, old_tail));
        auto r = co_await read_blocks(dev.get(), 2, 4);  // reads are not dropped
        EXPECT_EQ(r.st, success);
        EXPECT_TRUE(r.bytes == old_tail);

        channel_stats s = co_await mem->stats();
        EXPECT_EQ(s.write_ops, 1u + 2u);  // the direct one + the two let through
        EXPECT_EQ(s.flush_ops, 0u);
        EXPECT_EQ(s.zeroes_ops, 0u);
        EXPECT_EQ(co_await dev->hits(id), 4u + 1u + 1u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, delay_completes_no_earlier_than_the_delay_with_correct_data) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto id = co_await dev->add_rule(fault_rule::delay_by(op_mask::read, 20ms));
        auto w = pattern(7, 2, 4);
        // Writes do not match: they pass through, ready at once.
        io_vec v{w.data(), static_cast<std::uint32_t>(w.size()), -1};
        auto wf = dev->channel()->write(7, 2, io_vecs(&v, 1));
        EXPECT_TRUE(wf.available());
        EXPECT_EQ(co_await std::move(wf), success);

        auto t0 = steady_clock::now();
        auto r = co_await read_blocks(dev.get(), 7, 2);
        auto elapsed = steady_clock::now() - t0;
        EXPECT_GE(elapsed, 20ms);
        EXPECT_EQ(r.st, success);
        EXPECT_TRUE(r.bytes == w);
        EXPECT_EQ(co_await dev->hits(id), 1u);
        EXPECT_EQ((co_await mem->stats()).read_ops, 1u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, corrupt_reads_return_flipped_bytes_and_leave_the_medium_intact) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto w = pattern(0, 6, 5);
        EXPECT_EQ(co_await write_blocks(dev.get(), 0, w), success);
        auto id = co_await dev->add_rule(fault_rule::corrupt(op_mask::read).on_blocks(2, 4));

        auto r = co_await read_blocks(dev.get(), 0, 6);
        EXPECT_EQ(r.st, success);
        auto expected = w;
        expected[2 * bs] ^= std::byte{0xff};
        expected[3 * bs] ^= std::byte{0xff};
        EXPECT_FALSE(r.bytes == w);
        EXPECT_TRUE(r.bytes == expected);
        EXPECT_TRUE(mem->holds(0, w));
        auto direct = co_await read_blocks(mem.get(), 0, 6);
        EXPECT_TRUE(direct.bytes == w);

        auto outside = co_await read_blocks(dev.get(), 4, 2);  // no overlap: intact
        EXPECT_TRUE(outside.bytes == std::vector<std::byte>(w.begin() + 4 * bs, w.end()));
        EXPECT_EQ(co_await dev->hits(id), 1u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, corrupt_writes_store_flipped_bytes_and_restore_the_callers_buffer) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto id = co_await dev->add_rule(fault_rule::corrupt(op_mask::write));
        auto w = pattern(10, 2, 6);
        auto buf = w;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        EXPECT_EQ(co_await dev->channel()->write(10, 2, io_vecs(&v, 1)), success);
        EXPECT_TRUE(buf == w);  // the caller's data is back as it was

        auto stored = w;
        stored[0] ^= std::byte{0xff};
        stored[bs] ^= std::byte{0xff};
        EXPECT_TRUE(mem->holds(10, stored));
        auto r = co_await read_blocks(dev.get(), 10, 2);  // reads are not corrupted by this rule
        EXPECT_TRUE(r.bytes == stored);
        EXPECT_EQ(co_await dev->hits(id), 1u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, time_window_rules_act_only_inside_their_window) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto later = fault_rule::fail(op_mask::write, wfault);
        later.not_before = steady_clock::now() + 1h;
        auto later_id = co_await dev->add_rule(later);
        auto expired = fault_rule::fail(op_mask::write, wfault);
        expired.not_after = steady_clock::now() - 1s;
        auto expired_id = co_await dev->add_rule(expired);
        EXPECT_EQ(co_await write_blocks(dev.get(), 0, pattern(0, 1, 1)), success);
        EXPECT_TRUE(mem->holds(0, pattern(0, 1, 1)));
        EXPECT_EQ(co_await dev->hits(later_id), 0u);
        EXPECT_EQ(co_await dev->hits(expired_id), 0u);

        auto soon = fault_rule::fail(op_mask::write, wfault);
        soon.not_before = steady_clock::now() + 100ms;
        auto soon_id = co_await dev->add_rule(soon);
        io_status before = co_await write_blocks(dev.get(), 1, pattern(1, 1, 1));
        if (steady_clock::now() < soon.not_before) {
            EXPECT_EQ(before, success);
        }
        co_await sleep(soon.not_before - steady_clock::now() + 5ms);
        EXPECT_EQ(co_await write_blocks(dev.get(), 2, pattern(2, 1, 1)), wfault);
        EXPECT_TRUE(mem->zero(2, 1));
        EXPECT_EQ(co_await dev->hits(soon_id), 1u);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, rules_added_on_one_shard_act_on_every_shards_channel) {
    IOE_NEED_CORES(2);
    int rc = test::run_engine(test::small_config(2), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        fault_device* d = dev.get();
        auto write_on = [d](unsigned shard, std::uint64_t lba, unsigned seed) {
            return submit_to(shard, [d, lba, seed] { return write_blocks(d, lba, pattern(lba, 1, seed)); });
        };
        auto read_on = [d](unsigned shard, std::uint64_t lba) {
            return submit_to(shard, [d, lba] { return read_status(d, lba, 1); });
        };

        // Added on shard 1, acts on shard 0; shard 1's channel opens only
        // after the rule exists and starts with it.
        auto id = co_await submit_to(1, [d] { return d->add_rule(fault_rule::fail(op_mask::write, wfault)); });
        EXPECT_EQ(co_await write_on(0, 0, 1), wfault);
        EXPECT_EQ(co_await write_on(1, 1, 1), wfault);
        EXPECT_EQ(co_await submit_to(1, [d, id] { return d->hits(id); }), 2u);
        EXPECT_TRUE(mem->zero(0, 2));
        co_await submit_to(1, [d, id] { return d->remove_rule(id); });
        EXPECT_EQ(co_await write_on(0, 0, 2), success);
        EXPECT_EQ(co_await write_on(1, 1, 2), success);
        EXPECT_TRUE(mem->holds(0, pattern(0, 1, 2)));
        EXPECT_TRUE(mem->holds(1, pattern(1, 1, 2)));

        // Added on shard 0, acts on shard 1; cleared from shard 1.
        auto rid = co_await dev->add_rule(fault_rule::fail(op_mask::read, rfault));
        EXPECT_EQ(co_await read_on(1, 0), rfault);
        EXPECT_EQ(co_await read_on(0, 0), rfault);
        EXPECT_EQ(co_await dev->hits(rid), 2u);
        co_await submit_to(1, [d] { return d->clear_rules(); });
        read_result r1 = co_await submit_to(1, [d] { return read_blocks(d, 1, 1); });
        EXPECT_EQ(r1.st, success);
        EXPECT_TRUE(r1.bytes == pattern(1, 1, 2));
        EXPECT_EQ(co_await read_on(0, 0), success);

        // skip/count are per shard: each shard lets its own first write by.
        auto sid = co_await dev->add_rule(fault_rule::fail(op_mask::write, wfault).after(1).at_most(1));
        std::vector<io_status> seen;
        seen.push_back(co_await write_on(0, 2, 3));
        seen.push_back(co_await write_on(1, 3, 3));
        seen.push_back(co_await write_on(0, 4, 3));
        seen.push_back(co_await write_on(1, 5, 3));
        seen.push_back(co_await write_on(0, 6, 3));
        EXPECT_EQ(seen, (std::vector<io_status>{success, success, wfault, wfault, success}));
        EXPECT_EQ(co_await submit_to(1, [d, sid] { return d->hits(sid); }), 2u);
        EXPECT_TRUE(mem->holds(2, pattern(2, 1, 3)));
        EXPECT_TRUE(mem->holds(3, pattern(3, 1, 3)));
        EXPECT_TRUE(mem->zero(4, 2));
        EXPECT_TRUE(mem->holds(6, pattern(6, 1, 3)));
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, remove_and_clear_restore_pass_through) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        auto w_id = co_await dev->add_rule(fault_rule::fail(op_mask::write, wfault).on_blocks(0, 8));
        auto r_id = co_await dev->add_rule(fault_rule::fail(op_mask::read, rfault));
        EXPECT_EQ(co_await write_blocks(dev.get(), 0, pattern(0, 1, 1)), wfault);
        EXPECT_EQ(co_await read_status(dev.get(), 0, 1), rfault);

        co_await dev->remove_rule(w_id);
        EXPECT_EQ(co_await write_blocks(dev.get(), 0, pattern(0, 1, 1)), success);
        EXPECT_TRUE(mem->holds(0, pattern(0, 1, 1)));
        EXPECT_EQ(co_await read_status(dev.get(), 0, 1), rfault);
        EXPECT_EQ(co_await dev->hits(r_id), 2u);  // survives the other rule's removal
        EXPECT_EQ(co_await error_of(dev->hits(w_id)), storage_errc::not_found);
        EXPECT_EQ(co_await error_of(dev->remove_rule(w_id)), storage_errc::not_found);

        co_await dev->clear_rules();
        std::vector<std::byte> buf(bs);
        io_vec v{buf.data(), bs, -1};
        auto f = dev->channel()->read(0, 1, io_vecs(&v, 1));
        EXPECT_TRUE(f.available());  // pass-through again
        EXPECT_EQ(co_await std::move(f), success);
        EXPECT_TRUE(buf == pattern(0, 1, 1));
        EXPECT_EQ(co_await error_of(dev->hits(r_id)), storage_errc::not_found);
        auto next = co_await dev->add_rule(fault_rule::drop(op_mask::flush));
        EXPECT_GT(next, r_id);  // ids are never reused
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

TEST(fault_device, invalid_rules_are_refused_with_a_message) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto mem = std::make_unique<mem_device>();
        auto dev = wrap_with_faults(*mem);
        EXPECT_EQ(co_await error_of(dev->add_rule(fault_rule::fail(op_mask::none, wfault))),
                  storage_errc::invalid_argument);
        EXPECT_EQ(co_await error_of(dev->add_rule(fault_rule::drop(op_mask::write).on_blocks(10, 10))),
                  storage_errc::invalid_argument);
        EXPECT_EQ(co_await error_of(dev->add_rule(fault_rule::corrupt(op_mask::flush))),
                  storage_errc::invalid_argument);
        auto window = fault_rule::fail(op_mask::write, wfault);
        window.not_before = steady_clock::now() + 1s;
        window.not_after = steady_clock::now();
        EXPECT_EQ(co_await error_of(dev->add_rule(window)), storage_errc::invalid_argument);
        std::string what;
        try {
            co_await dev->add_rule(fault_rule::drop(op_mask::write).on_blocks(5, 2));
        } catch (const storage_error& e) {
            what = e.what();
        }
        EXPECT_EQ(what, "fault device \"mem0.fault\": rule: empty LBA range [5, 2)");
        // Nothing was installed.
        EXPECT_EQ(co_await write_blocks(dev.get(), 0, pattern(0, 1, 1)), success);
        co_await close_both(std::move(dev), std::move(mem));
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}
