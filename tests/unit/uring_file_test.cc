// io_uring on files and block devices: O_DIRECT round trips with registered
// buffers on a regular file and on a loop device, fsync, a full SQ that must
// not lose requests, and error results.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;

namespace {

std::string scratch_path(const char* tag) {
    // The build directory: a real file system (tmpfs has no O_DIRECT).
    return std::string("./uring_test_") + tag + "_" + std::to_string(::getpid()) + ".img";
}

// Writes a pattern block by block through `fd` and reads it back into other
// buffers; returns the number of mismatching blocks (or -errno).
future<int> round_trip(engine* e, int fd, unsigned blocks, std::uint8_t seed) {
    uring& io = local_reactor()->io();
    const bool fixed = io.features().fixed_buffers;
    int bad = 0;
    for (unsigned b = 0; b < blocks; ++b) {
        auto wb = e->dma().allocate(4096);
        auto rb = e->dma().allocate(4096);
        if (!wb || !rb) co_return -ENOMEM;
        std::memset(wb->data(), seed + b, 4096);
        std::memset(rb->data(), 0, 4096);
        auto w = co_await io.write(fd, wb->data(), 4096, b * 4096ull, fixed ? wb->buf_index() : -1);
        if (!w) co_return -w.error().value();
        if (w.value() != 4096) co_return -EIO;
        auto s = co_await io.fsync(fd);
        if (!s) co_return -s.error().value();
        auto r = co_await io.read(fd, rb->data(), 4096, b * 4096ull, fixed ? rb->buf_index() : -1);
        if (!r) co_return -r.error().value();
        if (r.value() != 4096 || std::memcmp(wb->data(), rb->data(), 4096) != 0) ++bad;
    }
    co_return bad;
}

}  // namespace

TEST(uring_file, odirect_round_trip_with_registered_buffers) {
    std::string path = scratch_path("file");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL) GTEST_SKIP() << "file system without O_DIRECT";
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    bool fixed = false;
    int rc = test::run_engine(test::small_config(1), [&](engine* e) -> future<int> {
        fixed = local_reactor()->io().features().fixed_buffers;
        co_return co_await round_trip(e, fd, 64, 7);
    });
    ::close(fd);
    ::unlink(path.c_str());
    EXPECT_TRUE(fixed) << "the DMA pool was not registered with the ring";
    EXPECT_EQ(rc, 0) << "blocks that did not read back (or -errno)";
}

TEST(uring_file, odirect_round_trip_on_a_loop_device) {
    if (::geteuid() != 0) GTEST_SKIP() << "loop devices need root";
    std::string path = scratch_path("loop");
    {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, 16 << 20), 0);
        ::close(fd);
    }
    std::string cmd = "losetup --find --show --direct-io=on " + path + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char line[256] = {};
    bool got = std::fgets(line, sizeof line, p) != nullptr;
    int st = ::pclose(p);
    std::string dev = got ? std::string(line, std::strcspn(line, "\n")) : "";
    if (st != 0 || dev.rfind("/dev/loop", 0) != 0) {
        ::unlink(path.c_str());
        GTEST_SKIP() << "cannot create a loop device here: " << dev;
    }
    int fd = ::open(dev.c_str(), O_RDWR | O_DIRECT);
    int rc = -1;
    if (fd >= 0) {
        rc = test::run_engine(test::small_config(1), [&](engine* e) -> future<int> {
            co_return co_await round_trip(e, fd, 256, 3);
        });
        ::close(fd);
    }
    std::string detach = "losetup -d " + dev;
    EXPECT_EQ(std::system(detach.c_str()), 0);
    ::unlink(path.c_str());
    ASSERT_GE(fd, 0) << "open " << dev << ": " << std::strerror(errno);
    EXPECT_EQ(rc, 0);
}

TEST(uring_file, more_requests_than_sq_entries_all_complete) {
    std::string path = scratch_path("sqfull");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    std::vector<std::uint8_t> content(512 * 64);
    for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<std::uint8_t>(i / 512);
    ASSERT_EQ(::pwrite(fd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
    auto cfg = test::small_config(1);
    cfg.reactor.uring_entries = 8;  // 64 reads go through an 8-entry SQ
    int rc = test::run_engine(cfg, [&](engine*) -> future<int> {
        uring& io = local_reactor()->io();
        std::vector<std::array<std::uint8_t, 512>> bufs(64);
        std::vector<future<io_result>> reads;
        for (unsigned i = 0; i < 64; ++i) reads.push_back(io.read(fd, bufs[i].data(), 512, i * 512ull));
        int bad = 0;
        for (unsigned i = 0; i < 64; ++i) {
            auto r = co_await std::move(reads[i]);
            if (!r || r.value() != 512 || bufs[i][0] != i || bufs[i][511] != i) ++bad;
        }
        co_return bad;
    });
    ::close(fd);
    ::unlink(path.c_str());
    EXPECT_EQ(rc, 0);
}

TEST(uring_file, errors_come_back_as_error_codes) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        char buf[16];
        auto r = co_await local_reactor()->io().read(-1, buf, sizeof buf, 0);
        co_return r.ok() ? -1 : r.error().value();
    });
    EXPECT_EQ(rc, EBADF);
}

TEST(uring_file, timeout_operation_expires) {
    int rc = test::run_engine(test::small_config(1), [](engine*) -> future<int> {
        auto t0 = steady_clock::now();
        auto r = co_await local_reactor()->io().timeout(std::chrono::milliseconds(5));
        bool long_enough = steady_clock::now() - t0 >= std::chrono::milliseconds(5);
        co_return (!r.ok() && r.error().value() == ETIME && long_enough) ? 0 : 1;
    });
    EXPECT_EQ(rc, 0);
}
