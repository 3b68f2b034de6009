// The backend devices (malloc://, null://, uring:// on a file and on a loop
// device) through the device registry, on shard 0 and shard 1: bytes written
// with one io_vec and with several read back the same, range and length
// checks, write_zeroes, unmap, flush, close waiting for I/O in flight, and bad
// URIs refused with a code and a message naming the bad part.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "storage/backend_schemes.hh"
#include "storage/device_registry.hh"
#include "storage/malloc_device.hh"
#include "storage/uuid.hh"
#include "storage/uring_device.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;

namespace {

constexpr std::size_t buf_bytes = 64 << 10;  // every DMA buffer here: one size class

std::string cwd() {
    char buf[PATH_MAX];
    return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string(".");
}

// A file in the build directory (a real file system: tmpfs may lack O_DIRECT).
struct scratch_file {
    std::string path;
    scratch_file(const char* tag, off_t size)
        : path(cwd() + "/storage_devices_" + tag + "_" + std::to_string(::getpid()) + ".img") {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
        if (fd >= 0) {
            EXPECT_EQ(::ftruncate(fd, size), 0);
            ::close(fd);
        }
    }
    ~scratch_file() { ::unlink(path.c_str()); }
    std::string uri(const std::string& query = "") const { return "uring://" + path + query; }
};

std::uint8_t pattern_byte(std::uint8_t seed, std::size_t i) {
    return static_cast<std::uint8_t>(seed + i * 7 + i / 512);
}
void fill(std::byte* p, std::size_t n, std::uint8_t seed) {
    for (std::size_t i = 0; i < n; ++i) p[i] = std::byte{pattern_byte(seed, i)};
}
bool all_bytes(const std::byte* p, std::size_t n, std::uint8_t v) {
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] != std::byte{v}) return false;
    return true;
}

dma_buffer dma(engine* e) {
    auto b = e->dma().allocate(buf_bytes);
    if (!b) throw std::runtime_error("DMA pool exhausted in the test");
    return std::move(b.value());
}

// Runs body(engine, registry) on shard 0 of a two-shard engine; the registry
// closes what is left afterwards. Returns the engine's exit code.
int with_registry(std::function<future<>(engine*, device_registry*)> body) {
    auto cfg = test::small_config(2);
    cfg.memory.size_mb = 32;
    std::string failure;
    int rc = test::run_engine(cfg, [&body, &failure](engine* e) -> future<int> {
        device_registry reg;
        try {
            co_await body(e, &reg);
        } catch (const std::exception& ex) {
            failure = ex.what();
        }
        co_await reg.close_all();
        co_return failure.empty() ? 0 : 1;
    });
    EXPECT_EQ(failure, "");
    return rc;
}

struct data_path_options {
    bool stores_data = true;   // false: null device, reads leave buffers alone
    bool max_iovecs = false;   // uring: more than 64 io_vecs is invalid_field
};

// The data path on the calling shard's channel, in blocks [base, base + 24).
future<> exercise(engine* e, block_device* dev, std::uint64_t base, std::uint8_t seed, data_path_options opt) {
    io_channel* ch = dev->channel();
    if (!ch) {
        ADD_FAILURE() << dev->name() << ": no channel on shard " << this_shard_id();
        co_return;
    }
    const std::size_t bs = dev->block_size();
    const std::uint64_t count = dev->block_count();
    SCOPED_TRACE(dev->name() + " on shard " + std::to_string(this_shard_id()));
    dma_buffer wb = dma(e), rb = dma(e), b2 = dma(e), b3 = dma(e);

    // One io_vec: write 4 blocks, read them back.
    fill(wb.data(), 4 * bs, seed);
    std::memset(rb.data(), 0xEE, 4 * bs);
    io_vec w1 = to_io_vec(wb, 0, 4 * bs), r1 = to_io_vec(rb, 0, 4 * bs);
    EXPECT_EQ(co_await ch->write(base, 4, {&w1, 1}), io_status::success);
    EXPECT_EQ(co_await ch->read(base, 4, {&r1, 1}), io_status::success);
    if (opt.stores_data) {
        EXPECT_EQ(std::memcmp(wb.data(), rb.data(), 4 * bs), 0) << "single io_vec round trip";
    } else {
        EXPECT_TRUE(all_bytes(rb.data(), 4 * bs, 0xEE)) << "the null device wrote into a read buffer";
    }

    // Gather: 1 block from wb, 2 from the middle of b2, 1 from b3.
    fill(wb.data(), bs, seed + 1);
    fill(b2.data(), 4 * bs, seed + 2);
    fill(b3.data(), bs, seed + 3);
    std::array<io_vec, 3> gather{to_io_vec(wb, 0, bs), to_io_vec(b2, bs, 2 * bs), to_io_vec(b3, 0, bs)};
    EXPECT_EQ(co_await ch->write(base + 4, 4, gather), io_status::success);
    std::memset(rb.data(), 0xEE, 4 * bs);
    EXPECT_EQ(co_await ch->read(base + 4, 4, {&r1, 1}), io_status::success);
    if (opt.stores_data) {
        EXPECT_EQ(std::memcmp(rb.data(), wb.data(), bs), 0) << "gathered block 0";
        EXPECT_EQ(std::memcmp(rb.data() + bs, b2.data() + bs, 2 * bs), 0) << "gathered blocks 1-2";
        EXPECT_EQ(std::memcmp(rb.data() + 3 * bs, b3.data(), bs), 0) << "gathered block 3";
    }
    // Scatter: the same 4 blocks into rb in reverse block order.
    std::memset(rb.data(), 0xEE, 4 * bs);
    std::array<io_vec, 4> scatter{to_io_vec(rb, 3 * bs, bs), to_io_vec(rb, 2 * bs, bs), to_io_vec(rb, bs, bs),
                                  to_io_vec(rb, 0, bs)};
    EXPECT_EQ(co_await ch->read(base + 4, 4, scatter), io_status::success);
    if (opt.stores_data) {
        EXPECT_EQ(std::memcmp(rb.data() + 3 * bs, wb.data(), bs), 0) << "scattered block 0";
        EXPECT_EQ(std::memcmp(rb.data() + 2 * bs, b2.data() + bs, bs), 0) << "scattered block 1";
        EXPECT_EQ(std::memcmp(rb.data() + bs, b2.data() + 2 * bs, bs), 0) << "scattered block 2";
        EXPECT_EQ(std::memcmp(rb.data(), b3.data(), bs), 0) << "scattered block 3";
    } else {
        EXPECT_TRUE(all_bytes(rb.data(), 4 * bs, 0xEE));
    }

    // Range and length checks (io_channel, before the backend).
    io_vec two = to_io_vec(rb, 0, 2 * bs), one = to_io_vec(rb, 0, bs);
    EXPECT_EQ(co_await ch->read(count - 1, 2, {&two, 1}), io_status::lba_out_of_range);
    EXPECT_EQ(co_await ch->write(count, 1, {&one, 1}), io_status::lba_out_of_range);
    EXPECT_EQ(co_await ch->write_zeroes(count - 1, 2), io_status::lba_out_of_range);
    EXPECT_EQ(co_await ch->unmap(count, 1), io_status::lba_out_of_range);
    EXPECT_EQ(co_await ch->read(base, 2, {&one, 1}), io_status::invalid_field);
    EXPECT_EQ(co_await ch->write(base, 1, {&two, 1}), io_status::invalid_field);

    if (opt.max_iovecs) {
        std::array<io_vec, 65> many;
        many.fill(one);
        EXPECT_EQ(co_await ch->read(base, 65, many), io_status::invalid_field) << "65 io_vecs";
        EXPECT_EQ(co_await ch->read(base, 64, {many.data(), 64}), io_status::success) << "64 io_vecs";
    }

    // write_zeroes and unmap in the middle of 8 written blocks: zeros there,
    // the neighbours untouched.
    for (int op = 0; op < 2; ++op) {
        const std::uint64_t lba = base + 8 + op * 8;
        fill(wb.data(), 8 * bs, seed + 10 + op);
        io_vec w8 = to_io_vec(wb, 0, 8 * bs), r8 = to_io_vec(rb, 0, 8 * bs);
        EXPECT_EQ(co_await ch->write(lba, 8, {&w8, 1}), io_status::success);
        EXPECT_EQ(op == 0 ? co_await ch->write_zeroes(lba + 2, 4) : co_await ch->unmap(lba + 2, 4),
                  io_status::success);
        std::memset(rb.data(), 0xEE, 8 * bs);
        EXPECT_EQ(co_await ch->read(lba, 8, {&r8, 1}), io_status::success);
        const char* what = op == 0 ? "write_zeroes" : "unmap";
        if (opt.stores_data) {
            EXPECT_EQ(std::memcmp(rb.data(), wb.data(), 2 * bs), 0) << what << ": blocks before";
            EXPECT_TRUE(all_bytes(rb.data() + 2 * bs, 4 * bs, 0)) << what << ": the range reads zeros";
            EXPECT_EQ(std::memcmp(rb.data() + 6 * bs, wb.data() + 6 * bs, 2 * bs), 0) << what << ": blocks after";
        } else {
            EXPECT_TRUE(all_bytes(rb.data(), 8 * bs, 0xEE)) << what;
        }
    }
    EXPECT_EQ(co_await ch->flush(), io_status::success);
}

// Writes 4 blocks of `seed` at `lba` (or checks they read back so).
future<> write_blocks(engine* e, block_device* dev, std::uint64_t lba, std::uint8_t seed) {
    dma_buffer b = dma(e);
    fill(b.data(), 4 * dev->block_size(), seed);
    io_vec v = to_io_vec(b, 0, 4 * dev->block_size());
    EXPECT_EQ(co_await dev->channel()->write(lba, 4, {&v, 1}), io_status::success);
}
future<> check_blocks(engine* e, block_device* dev, std::uint64_t lba, std::uint8_t seed) {
    dma_buffer b = dma(e), expect = dma(e);
    const std::size_t n = 4 * dev->block_size();
    fill(expect.data(), n, seed);
    io_vec v = to_io_vec(b, 0, n);
    EXPECT_EQ(co_await dev->channel()->read(lba, 4, {&v, 1}), io_status::success);
    EXPECT_EQ(std::memcmp(b.data(), expect.data(), n), 0) << "shard " << this_shard_id() << " reads lba " << lba;
}

// The data path on both shards, then data written on one shard read on the other.
future<> both_shards(engine* e, block_device* dev, data_path_options opt) {
    co_await exercise(e, dev, 0, 1, opt);
    co_await submit_to(1, [e, dev, opt] { return exercise(e, dev, 32, 2, opt); });
    if (!opt.stores_data) co_return;
    co_await write_blocks(e, dev, 64, 0x5A);
    co_await submit_to(1, [e, dev] { return check_blocks(e, dev, 64, 0x5A); });
    co_await submit_to(1, [e, dev] { return write_blocks(e, dev, 72, 0xA5); });
    co_await check_blocks(e, dev, 72, 0xA5);
}

}  // namespace

TEST(storage_devices, malloc_data_path_on_two_shards) {
    IOE_NEED_CORES(2);
    int rc = with_registry([](engine* e, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create("malloc:///m0?size_mb=4");
        EXPECT_EQ(dev->name(), "m0");
        EXPECT_EQ(dev->product(), "malloc");
        EXPECT_EQ(dev->block_size(), 512u);  // Mayastor's default
        EXPECT_EQ(dev->block_count(), 4u * 2048);
        EXPECT_FALSE(dev->id().is_nil());
        co_await both_shards(e, dev, data_path_options{});
        auto list = co_await reg->list();
        EXPECT_EQ(list.size(), 1u);
        if (!list.empty()) {
            EXPECT_EQ(list[0].uri, "malloc:///m0?size_mb=4");
        }
        EXPECT_EQ((co_await reg->create("bdev:///m0")), dev);

        block_device* big = co_await reg->create("malloc:///m4k?size_mb=2&blk_size=4096");
        EXPECT_EQ(big->block_size(), 4096u);
        EXPECT_EQ(big->block_count(), 512u);
        co_await both_shards(e, big, data_path_options{});
        co_await reg->destroy("m0");
        co_await reg->destroy("m4k");
    });
    EXPECT_EQ(rc, 0);
}

TEST(storage_devices, null_device_succeeds_without_touching_data) {
    IOE_NEED_CORES(2);
    int rc = with_registry([](engine* e, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create("null:///n0?size_mb=1024&blk_size=4096");
        EXPECT_EQ(dev->name(), "n0");
        EXPECT_EQ(dev->product(), "null");
        EXPECT_EQ(dev->block_count(), 1024u * 256);
        co_await both_shards(e, dev, data_path_options{.stores_data = false});
        co_await reg->destroy("n0");
    });
    EXPECT_EQ(rc, 0);
}

TEST(storage_devices, uring_file_data_path_on_two_shards) {
    IOE_NEED_CORES(2);
    scratch_file f4k("u4k", 4 << 20), f512("u512", 1 << 20);
    int rc = with_registry([&f4k, &f512](engine* e, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create(f4k.uri());
        EXPECT_EQ(dev->name(), f4k.path);
        EXPECT_EQ(dev->product(), "uring");
        EXPECT_EQ(dev->block_size(), 4096u);  // default for files
        EXPECT_EQ(dev->block_count(), 1024u);
        co_await both_shards(e, dev, data_path_options{.max_iovecs = true});

        block_device* small = co_await reg->create(f512.uri("?blk_size=512"));
        EXPECT_EQ(small->block_size(), 512u);
        EXPECT_EQ(small->block_count(), 2048u);
        co_await both_shards(e, small, data_path_options{.max_iovecs = true});
        co_await reg->destroy(f4k.path);
        co_await reg->destroy(f512.path);
    });
    EXPECT_EQ(rc, 0);
}

namespace {

// Reads started on shard 1 and left pending there; touched only on shard 1.
struct remote_reads {
    std::vector<dma_buffer> bufs;
    std::vector<io_vec> vecs;
    std::vector<future<io_status>> reads;
};

constexpr unsigned reads_per_shard = 16;

// Starts reads of 4 blocks each at lba 4*i (shard 1 reads from lba 128 on).
void start_reads(engine* e, block_device* dev, remote_reads* st, std::uint64_t first_lba) {
    io_channel* ch = dev->channel();
    st->vecs.reserve(reads_per_shard);  // no reallocation: reads point into it
    for (unsigned i = 0; i < reads_per_shard; ++i) {
        st->bufs.push_back(dma(e));
        st->vecs.push_back(to_io_vec(st->bufs.back(), 0, 4 * 4096));
        st->reads.push_back(ch->read(first_lba + 4 * i, 4, {&st->vecs.back(), 1}));
    }
}

// How many of the reads were complete, successful and correct.
unsigned finished_reads(remote_reads* st, std::uint64_t first_lba) {
    unsigned good = 0;
    for (unsigned i = 0; i < st->reads.size(); ++i) {
        if (!st->reads[i].available() || st->reads[i].get() != io_status::success) continue;
        std::vector<std::byte> expect(4 * 4096);
        fill(expect.data(), expect.size(), static_cast<std::uint8_t>(first_lba / 4 + i));
        if (std::memcmp(expect.data(), st->bufs[i].data(), expect.size()) == 0) ++good;
    }
    return good;
}

}  // namespace

TEST(storage_devices, close_waits_for_io_in_flight_on_every_shard) {
    IOE_NEED_CORES(2);
    scratch_file f("close", 4 << 20);
    {  // 4 blocks of pattern (lba / 4) at every lba multiple of 4
        int fd = ::open(f.path.c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        std::vector<std::byte> chunk(4 * 4096);
        for (unsigned i = 0; i < 64; ++i) {
            fill(chunk.data(), chunk.size(), static_cast<std::uint8_t>(i));
            ASSERT_EQ(::pwrite(fd, chunk.data(), chunk.size(), off_t(i) * chunk.size()), ssize_t(chunk.size()));
        }
        ::close(fd);
    }
    int rc = with_registry([&f](engine* e, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create(f.uri());
        auto* remote = new remote_reads;
        co_await submit_to(1, [e, dev, remote] { start_reads(e, dev, remote, 128); });
        remote_reads local;
        start_reads(e, dev, &local, 0);
        EXPECT_EQ(dev->channel()->in_flight(), reads_per_shard) << "the reads are queued, not done";

        future<> destroyed = reg->destroy(f.path);
        EXPECT_FALSE(destroyed.available()) << "destroy did not wait for the reads";
        co_await std::move(destroyed);
        // Every read finished before the device went away, on both shards.
        EXPECT_EQ(finished_reads(&local, 0), reads_per_shard);
        unsigned remote_good = co_await submit_to(1, [remote] {
            unsigned n = finished_reads(remote, 128);
            remote->reads.clear();  // shard 1's futures and buffers die on shard 1
            remote->bufs.clear();
            return n;
        });
        EXPECT_EQ(remote_good, reads_per_shard);
        delete remote;
    });
    EXPECT_EQ(rc, 0);
}

TEST(storage_devices, channel_is_null_after_close) {
    IOE_NEED_CORES(2);
    int rc = with_registry([](engine*, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create("malloc:///closing?size_mb=1");
        EXPECT_NE(dev->channel(), nullptr);
        EXPECT_TRUE(co_await submit_to(1, [dev] { return dev->channel() != nullptr; }));
        co_await dev->close();
        EXPECT_TRUE(dev->closing());
        EXPECT_EQ(dev->channel(), nullptr);
        EXPECT_TRUE(co_await submit_to(1, [dev] { return dev->channel() == nullptr; }));
        co_await dev->close();  // idempotent
        co_await reg->destroy("closing");
        EXPECT_TRUE((co_await reg->list()).empty());
    });
    EXPECT_EQ(rc, 0);
}

namespace {

// Expects reg->create(uri) to fail with `code` and a message holding `part`
// and `also`. (Two strings rather than a braced list: GCC 12 cannot keep an
// initializer_list's array across co_await.)
future<> expect_refused(device_registry* reg, std::string uri, storage_errc code, std::string part,
                        std::string also = "") {
    std::string msg;
    storage_errc got = storage_errc::internal;
    try {
        block_device* dev = co_await reg->create(uri);
        ADD_FAILURE() << uri << " was accepted";
        co_await reg->destroy(dev->name());
        co_return;
    } catch (const storage_error& e) {
        got = e.code;
        msg = e.what();
    }
    EXPECT_EQ(to_string(got), to_string(code)) << uri << ": " << msg;
    // Every refusal names the URI, except the registry's own "no device
    // named X" for bdev:///X, which names the device instead.
    if (uri.rfind("bdev:", 0) != 0) {
        EXPECT_NE(msg.find("device URI '" + uri + "'"), std::string::npos) << "the message names the URI: " << msg;
    }
    EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
    EXPECT_NE(msg.find(also), std::string::npos) << "'" << also << "' not in: " << msg;
}

}  // namespace

TEST(storage_devices, bad_uris_are_refused_with_a_clear_message) {
    scratch_file odd("odd", 4096 * 3 + 100), empty("empty", 0), good("good", 1 << 20);
    int rc = with_registry([&odd, &empty, &good](engine*, device_registry* reg) -> future<> {
        using E = storage_errc;
        const std::string dir = cwd();
        co_await expect_refused(reg, "uring://" + dir + "/no_such_dir/x", E::not_found,
                                "open " + dir + "/no_such_dir/x: No such file or directory");
        co_await expect_refused(reg, "uring://" + dir, E::invalid_argument,
                                dir + " is a directory, not a regular file or block device");
        co_await expect_refused(reg, "uring:///dev/null", E::invalid_argument, "character device");
        co_await expect_refused(reg, odd.uri(), E::invalid_argument,
                                "size 12388 bytes is not a multiple of the block size 4096");
        co_await expect_refused(reg, odd.uri("?blk_size=512"), E::invalid_argument,
                                "not a multiple of the block size 512");
        co_await expect_refused(reg, empty.uri(), E::invalid_argument, "has size 0");
        co_await expect_refused(reg, good.uri("?blk_size=1000"), E::invalid_argument,
                                "blk_size 1000 is not supported");
        co_await expect_refused(reg, good.uri("?size_mb=1"), E::invalid_argument,
                                "unknown parameter 'size_mb' for uring://", "known: blk_size");
        co_await expect_refused(reg, "uring://relative/x.img", E::invalid_argument, "takes no host ('relative')");
        co_await expect_refused(reg, "uring:///", E::invalid_argument, "missing path");

        co_await expect_refused(reg, "foo:///x", E::invalid_argument,
                                "unknown scheme 'foo'", "malloc, null, uring, bdev, nvmf, pcie");
        co_await expect_refused(reg, "m0", E::invalid_argument, "no scheme");
        co_await expect_refused(reg, "bdev:///missing", E::not_found, "no device named \"missing\"");
        // Schemes implemented above storage are refused until registered
        // (another test in this binary may have registered nvmf://).
        if (!find_backend_scheme("nvmf")) {
            co_await expect_refused(reg, "nvmf://127.0.0.1:4420/nqn.x", E::invalid_argument,
                                    "nvmf:// devices are not available in this program");
        }
        if (!find_backend_scheme("pcie")) {
            co_await expect_refused(reg, "pcie:///0000:00:04.0", E::invalid_argument,
                                    "pcie:// devices are not available in this program");
        }
        // A registered scheme is opened by its opener, on the calling shard.
        register_backend_scheme("testscheme", [](device_uri u) -> future<std::unique_ptr<block_device>> {
            co_return std::make_unique<malloc_device>(u, "from-opener", uuid::random(), 512, 2048);
        });
        block_device* opened = co_await reg->create("testscheme:///from-opener");
        EXPECT_EQ(opened->name(), "from-opener");
        EXPECT_EQ(opened->block_count(), 2048u);
        const auto schemes = registered_backend_schemes();
        EXPECT_NE(std::find(schemes.begin(), schemes.end(), "testscheme"), schemes.end());
        co_await reg->destroy("from-opener");

        co_await expect_refused(reg, "malloc:///m0", E::invalid_argument, "parameter 'size_mb' is required");
        co_await expect_refused(reg, "malloc:///m0?size_mb=0", E::invalid_argument, "size_mb must be greater than 0");
        co_await expect_refused(reg, "malloc:///m0?size_mb=lots", E::invalid_argument,
                                "parameter 'size_mb': 'lots' is not a whole number");
        co_await expect_refused(reg, "malloc:///m0?size_mb=1&blk_size=1000", E::invalid_argument,
                                "blk_size 1000 is not supported");
        co_await expect_refused(reg, "null:///n0?size_mb=1&colour=red", E::invalid_argument,
                                "unknown parameter 'colour' for null://");
        co_await expect_refused(reg, "malloc:///?size_mb=1", E::invalid_argument, "missing device name");
        co_await expect_refused(reg, "malloc:///a/b?size_mb=1", E::invalid_argument,
                                "device name 'a/b' contains '/'");
        co_await expect_refused(reg, "malloc://host/m0?size_mb=1", E::invalid_argument, "takes no host ('host')");
        co_await expect_refused(reg, "malloc:///m0?size_mb=1&size_mb=2", E::invalid_argument,
                                "parameter 'size_mb' given twice");

        // Two devices of one name.
        block_device* dup = co_await reg->create("malloc:///dup?size_mb=1");
        co_await expect_refused(reg, "null:///dup?size_mb=1", E::already_exists, "\"dup\" already exists");
        co_await reg->destroy(dup->name());

        // A file system without O_DIRECT (tmpfs before Linux 6.6): only where
        // /dev/shm really refuses it.
        std::string shm = "/dev/shm/storage_devices_" + std::to_string(::getpid()) + ".img";
        int fd = ::open(shm.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            (void)!::ftruncate(fd, 1 << 20);
            ::close(fd);
            int probe = ::open(shm.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
            if (probe < 0 && errno == EINVAL) {
                co_await expect_refused(reg, "uring://" + shm, E::invalid_argument, "does not support O_DIRECT");
            } else if (probe >= 0) {
                ::close(probe);
            }
            ::unlink(shm.c_str());
        }
    });
    EXPECT_EQ(rc, 0);
}

namespace {

// "losetup --find --show ARGS FILE": the loop device, or "" (and why in `out`).
std::string attach_loop(const std::string& args, const std::string& file, std::string& out) {
    std::string cmd = "losetup --find --show --direct-io=on " + args + " " + file + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return "";
    char line[256] = {};
    bool got = std::fgets(line, sizeof line, p) != nullptr;
    int st = ::pclose(p);
    out = got ? std::string(line, std::strcspn(line, "\n")) : "";
    return st == 0 && out.rfind("/dev/loop", 0) == 0 ? out : "";
}

}  // namespace

TEST(storage_devices, uring_loop_device) {
    IOE_NEED_CORES(2);
    if (::geteuid() != 0) GTEST_SKIP() << "loop devices need root";
    scratch_file f512("loop512", 16 << 20), f4k("loop4k", 16 << 20);
    std::string why;
    std::string dev512 = attach_loop("", f512.path, why);
    if (dev512.empty()) GTEST_SKIP() << "cannot create a loop device here: " << why;
    std::string dev4k = attach_loop("--sector-size 4096", f4k.path, why);
    int rc = with_registry([&dev512, &dev4k](engine* e, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create("uring://" + dev512);
        EXPECT_EQ(dev->name(), dev512);
        EXPECT_EQ(dev->block_size(), 512u) << "the logical block size of the loop device";
        EXPECT_EQ(dev->block_count(), (16u << 20) / 512);
        co_await both_shards(e, dev, data_path_options{.max_iovecs = true});
        co_await reg->destroy(dev512);

        block_device* raised = co_await reg->create("uring://" + dev512 + "?blk_size=4096");
        EXPECT_EQ(raised->block_size(), 4096u);
        co_await both_shards(e, raised, data_path_options{});
        co_await reg->destroy(dev512);

        if (!dev4k.empty()) {
            co_await expect_refused(reg, "uring://" + dev4k + "?blk_size=512", storage_errc::invalid_argument,
                                    "blk_size 512 is smaller than the logical block size 4096 of " + dev4k);
            block_device* d4k = co_await reg->create("uring://" + dev4k);
            EXPECT_EQ(d4k->block_size(), 4096u);
            co_await reg->destroy(dev4k);
        }
    });
    EXPECT_EQ(std::system(("losetup -d " + dev512).c_str()), 0);
    if (!dev4k.empty()) {
        EXPECT_EQ(std::system(("losetup -d " + dev4k).c_str()), 0);
    }
    EXPECT_EQ(rc, 0);
}

TEST(storage_devices, uring_short_transfers_continue_where_they_stopped) {
    // The bookkeeping of a short readv/writev, case by case.
    char a[8], b[16], c[4];
    auto vecs = [&] { return std::array<iovec, 4>{iovec{a, 8}, iovec{b, 16}, iovec{nullptr, 0}, iovec{c, 4}}; };
    auto v = vecs();
    EXPECT_EQ(internal::advance_iovecs(v.data(), 0, 4, 0), 0u);
    EXPECT_EQ(internal::advance_iovecs(v.data(), 0, 4, 5), 0u);  // inside the first
    EXPECT_EQ(v[0].iov_base, a + 5);
    EXPECT_EQ(v[0].iov_len, 3u);
    EXPECT_EQ(internal::advance_iovecs(v.data(), 0, 4, 3 + 10), 1u);  // the rest of a, 10 of b
    EXPECT_EQ(v[1].iov_base, b + 10);
    EXPECT_EQ(v[1].iov_len, 6u);
    EXPECT_EQ(internal::advance_iovecs(v.data(), 1, 4, 6), 3u) << "b done, the empty iovec skipped";
    EXPECT_EQ(internal::advance_iovecs(v.data(), 3, 4, 4), 4u);
    v = vecs();
    EXPECT_EQ(internal::advance_iovecs(v.data(), 0, 4, 28), 4u) << "all at once";
}

TEST(storage_devices, uring_file_that_shrinks_or_grows_under_the_device) {
    // A file that shrinks under the device makes O_DIRECT reads short at the
    // new end: the channel keeps what it got, asks for the rest, gets 0
    // bytes and reports lba_out_of_range rather than success.
    scratch_file f("shrink", 16 * 4096);
    {
        int fd = ::open(f.path.c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        std::vector<std::byte> block(4096);
        for (unsigned i = 0; i < 16; ++i) {
            fill(block.data(), block.size(), static_cast<std::uint8_t>(i));
            ASSERT_EQ(::pwrite(fd, block.data(), block.size(), off_t(i) * 4096), 4096);
        }
        ::close(fd);
    }
    int rc = with_registry([&f](engine* e, device_registry* reg) -> future<> {
        block_device* dev = co_await reg->create(f.uri());
        EXPECT_EQ(::truncate(f.path.c_str(), 13 * 4096), 0);
        io_channel* ch = dev->channel();
        dma_buffer b = dma(e), expect = dma(e);
        std::memset(b.data(), 0xEE, 4 * 4096);
        io_vec one = to_io_vec(b, 0, 2 * 4096);  // blocks 12 and 13; 13 is gone
        EXPECT_EQ(co_await ch->read(12, 2, {&one, 1}), io_status::lba_out_of_range);
        fill(expect.data(), 4096, 12);
        EXPECT_EQ(std::memcmp(b.data(), expect.data(), 4096), 0) << "block 12 arrived before the end";

        std::memset(b.data(), 0xEE, 4 * 4096);
        std::array<io_vec, 2> two{to_io_vec(b, 0, 4096), to_io_vec(b, 4096, 3 * 4096)};  // blocks 11..14
        EXPECT_EQ(co_await ch->read(11, 4, two), io_status::lba_out_of_range);
        fill(expect.data(), 4096, 11);
        EXPECT_EQ(std::memcmp(b.data(), expect.data(), 4096), 0) << "block 11";
        fill(expect.data(), 4096, 12);
        EXPECT_EQ(std::memcmp(b.data() + 4096, expect.data(), 4096), 0) << "block 12, half of the second io_vec";

        // Grown back: the blocks past the old end read as zeros again.
        EXPECT_EQ(::truncate(f.path.c_str(), 16 * 4096), 0);
        EXPECT_EQ(co_await ch->read(11, 4, two), io_status::success);
        EXPECT_TRUE(all_bytes(b.data() + 2 * 4096, 2 * 4096, 0));

        // Grown past the old size: rescan() makes the new blocks usable (a
        // partial last block is not).
        EXPECT_EQ(::truncate(f.path.c_str(), 32 * 4096 + 100), 0);
        EXPECT_EQ(co_await ch->read(20, 4, two), io_status::lba_out_of_range) << "before rescan";
        co_await dev->rescan();
        EXPECT_EQ(dev->block_count(), 32u);
        EXPECT_EQ(co_await ch->read(28, 4, two), io_status::success) << "after rescan";
        co_await reg->destroy(f.path);
    });
    EXPECT_EQ(rc, 0);
}
