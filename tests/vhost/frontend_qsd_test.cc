// The vhost-user-blk driver of vhost-perf (vhost/frontend_*) against QEMU's
// reference back-end: qemu-storage-daemon exporting a file over
// vhost-user-blk with 2 queues. For one second each queue's request slots
// write a block with a pattern of (block, generation), read it back and
// compare, on random blocks; then a FLUSH, the rings are taken back, and the
// file itself is read to check that every block holds the last pattern
// written to it (the bytes went where the driver said). Skipped when
// qemu-storage-daemon is not installed (Debian: qemu-system-common).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/unix_listener.hh"
#include "vhost/frontend_device.hh"
#include "vhost/spec/virtio_blk.hh"

namespace {

using namespace ioe::vhost;
using clock_type = std::chrono::steady_clock;

constexpr std::uint32_t block_bytes = 4096;
constexpr std::uint64_t file_blocks = 1024;  // 4 MiB
constexpr unsigned queues = 2;
constexpr std::uint32_t depth = 8;

std::string find_qsd() {
    for (const char* p : {"/usr/bin/qemu-storage-daemon", "/usr/local/bin/qemu-storage-daemon"}) {
        if (access(p, X_OK) == 0) return p;
    }
    return {};
}

// One 8-byte word per position: block, generation and word index.
void fill(std::byte* p, std::uint64_t block, std::uint32_t gen) {
    for (std::uint32_t w = 0; w < block_bytes / 8; ++w) {
        const std::uint64_t v = (block << 40) ^ (std::uint64_t{gen} << 12) ^ w ^ 0x5a5a000000000000ull;
        std::memcpy(p + 8 * w, &v, 8);
    }
}
bool matches(const std::byte* p, std::uint64_t block, std::uint32_t gen) {
    std::array<std::byte, block_bytes> want;
    fill(want.data(), block, gen);
    return std::memcmp(p, want.data(), block_bytes) == 0;
}

class qsd_export {
public:
    qsd_export(const std::string& bin, const std::string& file, const std::string& sock) : _sock(sock) {
        const std::string blockdev = "driver=file,node-name=f0,filename=" + file;
        const std::string exp = "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=" + sock +
                                ",writable=on,num-queues=" + std::to_string(queues);
        _pid = fork();
        if (_pid == 0) {
            execl(bin.c_str(), bin.c_str(), "--blockdev", blockdev.c_str(), "--export", exp.c_str(), nullptr);
            _exit(127);
        }
    }
    ~qsd_export() {
        if (_pid > 0) {
            kill(_pid, SIGKILL);
            waitpid(_pid, nullptr, 0);
        }
        unlink(_sock.c_str());
    }
    // Waits up to 10 s for the socket to listen (its file appears at bind(),
    // before listen(): a connect in that window is refused).
    bool wait_ready() const {
        const auto deadline = clock_type::now() + std::chrono::seconds(10);
        while (clock_type::now() < deadline) {
            if (ioe::unix_socket_listening(_sock)) return true;
            if (waitpid(_pid, nullptr, WNOHANG) == _pid) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

private:
    pid_t _pid = -1;
    std::string _sock;
};

struct slot_state {
    std::uint64_t block = 0;
    std::uint32_t gen = 0;
    bool reading = false;
};

class VhostFrontendQsd : public ::testing::Test {
protected:
    void SetUp() override {
        _bin = find_qsd();
        if (_bin.empty()) GTEST_SKIP() << "qemu-storage-daemon not installed (Debian: qemu-system-common)";
        _dir = std::filesystem::temp_directory_path() / ("vhost-fe-" + std::to_string(getpid()));
        std::filesystem::create_directories(_dir);
        _file = (_dir / "disk.img").string();
        const int fd = open(_file.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(ftruncate(fd, file_blocks * block_bytes), 0);
        close(fd);
        _sock = (_dir / "vhost.sock").string();
    }
    void TearDown() override {
        if (!_dir.empty()) std::filesystem::remove_all(_dir);
    }

    std::string _bin, _file, _sock;
    std::filesystem::path _dir;
};

TEST_F(VhostFrontendQsd, WritesThenReadsReturnTheWrittenBytes) {
    qsd_export qsd(_bin, _file, _sock);
    ASSERT_TRUE(qsd.wait_ready()) << "qemu-storage-daemon did not create " << _sock;

    frontend_config cfg;
    cfg.socket_path = _sock;
    cfg.queues = queues;
    cfg.queue_size = 32;
    cfg.depth = depth;
    cfg.max_io_bytes = block_bytes;
    cfg.hugepages = false;
    frontend_device dev(cfg);
    ASSERT_EQ(dev.capacity_bytes(), file_blocks * block_bytes);
    ASSERT_EQ(dev.queue_count(), queues);
    EXPECT_FALSE(dev.read_only());

    // Block b belongs to slot (b % (queues * depth)): no two requests in
    // flight touch one block.
    constexpr std::uint32_t owners = queues * depth;
    std::vector<std::uint32_t> last_gen(file_blocks, 0);  // 0: never written (zeros)
    std::vector<slot_state> slots(owners);
    std::mt19937_64 rng(42);
    std::uint64_t verified = 0;

    auto start_write = [&](unsigned q, std::uint32_t s) {
        slot_state& st = slots[q * depth + s];
        st.block = (rng() % (file_blocks / owners)) * owners + q * depth + s;
        st.gen = last_gen[st.block] + 1;
        st.reading = false;
        fill(dev.queue(q).buffer(s), st.block, st.gen);
        dev.queue(q).prepare(s, driver_op::write, st.block * block_bytes, block_bytes);
    };
    for (unsigned q = 0; q < queues; ++q) {
        for (std::uint32_t s = 0; s < depth; ++s) start_write(q, s);
        dev.queue(q).submit();
    }
    std::array<blk_completion, 64> done{};
    const auto end = clock_type::now() + std::chrono::seconds(1);
    const auto give_up = end + std::chrono::seconds(10);
    std::uint32_t in_flight = owners;
    while (in_flight && clock_type::now() < give_up) {
        const bool more = clock_type::now() < end;
        for (unsigned q = 0; q < queues; ++q) {
            frontend_queue& fq = dev.queue(q);
            const std::uint32_t n = fq.reap(done);
            for (std::uint32_t i = 0; i < n; ++i) {
                const auto& c = done[i];
                ASSERT_EQ(c.status, blk::status::ok) << "queue " << q << " slot " << c.slot;
                slot_state& st = slots[q * depth + c.slot];
                if (!st.reading) {
                    EXPECT_EQ(c.written, 1u);  // the status byte only
                    last_gen[st.block] = st.gen;
                    std::memset(fq.buffer(c.slot), 0xee, block_bytes);
                    st.reading = true;
                    fq.prepare(c.slot, driver_op::read, st.block * block_bytes, block_bytes);
                    continue;
                }
                EXPECT_EQ(c.written, block_bytes + 1);
                ASSERT_TRUE(matches(fq.buffer(c.slot), st.block, st.gen))
                    << "block " << st.block << " generation " << st.gen << " read back different bytes";
                ++verified;
                if (more) {
                    start_write(q, c.slot);
                } else {
                    --in_flight;
                }
            }
            if (n) fq.submit();
        }
    }
    ASSERT_EQ(in_flight, 0u) << "requests still in flight 10 s after the end";
    EXPECT_GT(verified, 100u);

    // A FLUSH on each queue.
    for (unsigned q = 0; q < queues; ++q) {
        dev.queue(q).prepare(0, driver_op::flush, 0, 0);
        dev.queue(q).submit();
        std::uint32_t n = 0;
        const auto deadline = clock_type::now() + std::chrono::seconds(10);
        while (n == 0 && clock_type::now() < deadline) n = dev.queue(q).reap(done);
        ASSERT_EQ(n, 1u);
        EXPECT_EQ(done[0].status, blk::status::ok);
        EXPECT_EQ(done[0].slot, 0u);
    }
    dev.stop();

    // The file, read directly: every block holds its last pattern or zeros.
    const int fd = open(_file.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    std::vector<std::byte> buf(block_bytes);
    const std::vector<std::byte> zeros(block_bytes);
    std::uint64_t written_blocks = 0;
    for (std::uint64_t b = 0; b < file_blocks; ++b) {
        ASSERT_EQ(pread(fd, buf.data(), block_bytes, static_cast<off_t>(b * block_bytes)), block_bytes);
        if (last_gen[b] == 0) {
            EXPECT_EQ(std::memcmp(buf.data(), zeros.data(), block_bytes), 0) << "block " << b << " never written";
        } else {
            ++written_blocks;
            EXPECT_TRUE(matches(buf.data(), b, last_gen[b])) << "block " << b << " in the file";
        }
    }
    close(fd);
    EXPECT_GT(written_blocks, 10u);
}

TEST_F(VhostFrontendQsd, TooManyQueuesIsRefusedByName) {
    qsd_export qsd(_bin, _file, _sock);
    ASSERT_TRUE(qsd.wait_ready());
    frontend_config cfg;
    cfg.socket_path = _sock;
    cfg.queues = queues + 1;
    cfg.queue_size = 32;
    cfg.depth = 4;
    cfg.hugepages = false;
    try {
        frontend_device dev(cfg);
        FAIL() << "3 queues against a 2-queue export were accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("3 queues asked for, the back-end serves 2"), std::string::npos)
            << e.what();
    }
}

TEST(VhostFrontend, NoListenerIsAClearError) {
    frontend_config cfg;
    cfg.socket_path = "/nonexistent-dir/vhost.sock";
    try {
        frontend_device dev(cfg);
        FAIL() << "connected to nothing";
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("/nonexistent-dir/vhost.sock"), std::string::npos) << msg;
        EXPECT_NE(msg.find("connect"), std::string::npos) << msg;
    }
}

}  // namespace
