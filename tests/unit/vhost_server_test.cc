// vhost/blk_export: the vhost-user-blk server end to end inside one
// process. An engine of two shards serves a malloc device; a test
// front-end (tests/unit/vhost_test_frontend.hh, on a thread of its own, in
// QEMU's role) connects to the unix socket, shares a memfd as guest memory
// and puts virtio-blk requests on split rings. Outcomes checked: bytes read
// back, status bytes, used elements, GET_VRING_BASE, the offered features
// and config space, the answers to bad messages (error replies, dropped
// connections, nothing crashes, the next front-end is served),
// reconnection, two queues on two shards, the resubmission of requests
// marked in the inflight area, and the export's counters.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "tests/unit/test_engine.hh"
#include "tests/unit/vhost_test_frontend.hh"
#include "vhost/blk_export.hh"

using namespace ioe;
using namespace ioe::vhost;
using ioe::vhost::test::test_frontend;
using virtio::bit;

namespace {

struct export_options {
    unsigned queues = 1;
    bool read_only = false;
};

std::string socket_path() {
    static std::atomic<unsigned> n{0};
    return fmt::format("/tmp/ioe-vhost-test-{}-{}.sock", ::getpid(), n++);
}

// Serves a 4 MiB malloc device "vt" over a fresh socket, runs
// frontend(path) on a thread (bounded: 30 s), then hands the export's
// stats to `check` and stops it (the socket must be gone afterwards).
void with_export(export_options opt, std::function<void(const std::string&)> frontend,
                 std::function<void(const blk_export_stats&)> check = {}) {
    const std::string path = socket_path();
    std::string failure;
    int rc = ioe::test::run_engine(ioe::test::small_config(2), [&](engine*) -> future<int> {
        device_registry reg;
        try {
            block_device* dev = co_await reg.create("malloc:///vt?size_mb=4");
            auto exp = co_await blk_export::create({"t", path, opt.queues, opt.read_only}, *dev);
            std::atomic<bool> done{false};
            std::thread t([&] {
                frontend(path);
                done = true;
            });
            const auto deadline = steady_clock::now() + std::chrono::seconds(30);
            while (!done && steady_clock::now() < deadline) co_await sleep(std::chrono::milliseconds(2));
            if (!done) {
                failure = "the front-end did not finish within 30 s";
                co_await exp->stop();  // its socket waits end: it finishes
            }
            while (!done) co_await sleep(std::chrono::milliseconds(2));
            t.join();
            // Let the server notice a front-end that just left.
            for (int i = 0; i < 500 && exp->connected(); ++i) co_await sleep(std::chrono::milliseconds(2));
            auto st = co_await exp->stats();
            if (check) check(st);
            co_await exp->stop();
        } catch (const std::exception& ex) {
            failure = ex.what();
        }
        co_await reg.close_all();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(failure, "");
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket was not removed";
}

constexpr std::uint64_t guest_features =
    bit(virtio::feature::version_1) | bit(user::f_protocol_features) | bit(blk::feature::flush) |
    bit(blk::feature::discard) | bit(blk::feature::write_zeroes) | bit(blk::feature::blk_size) |
    bit(blk::feature::seg_max) | bit(virtio::feature::event_idx) | bit(blk::feature::mq);
constexpr std::uint64_t guest_protocol = bit(user::protocol_feature::mq) | bit(user::protocol_feature::reply_ack) |
                                         bit(user::protocol_feature::config) |
                                         bit(user::protocol_feature::inflight_shmfd);

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + seed * 31 + (i >> 9)) & 0xff);
    return v;
}

bool all_zero(std::span<const std::byte> v) {
    for (auto b : v)
        if (b != std::byte{0}) return false;
    return true;
}

// A DISCARD / WRITE_ZEROES request with one segment.
std::uint8_t dwz(test_frontend& fe, std::uint32_t type, std::uint64_t sector, std::uint32_t sectors, std::uint32_t flags) {
    blk::dwz_segment seg{sector, sectors, flags};
    std::vector<std::byte> b(sizeof seg);
    std::memcpy(b.data(), &seg, sizeof seg);
    return fe.request(0, type, 0, b);
}

}  // namespace

TEST(vhost_server, serves_io_from_guest_memory) {
    with_export(
        {},
        [](const std::string& path) {
            test_frontend fe;
            ASSERT_TRUE(fe.connect(path));
            ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
            EXPECT_EQ(fe.offered() & guest_features, guest_features);
            EXPECT_EQ(fe.offered() & bit(blk::feature::ro), 0u);
            // The configuration space: capacity in sectors, blk_size, queues.
            ASSERT_TRUE(fe.send_value(user::request::get_config,
                                      std::array<std::uint32_t, 3 + 18>{0, sizeof(blk::config), 0}));
            std::vector<std::byte> cfg;
            ASSERT_TRUE(fe.receive(user::request::get_config, cfg));
            ASSERT_EQ(cfg.size(), 12 + sizeof(blk::config));
            blk::config c{};
            std::memcpy(&c, cfg.data() + 12, sizeof c);
            EXPECT_EQ(c.capacity, 8192u);
            EXPECT_EQ(c.blk_size, 512u);
            EXPECT_EQ(c.num_queues, 1u);
            EXPECT_GT(c.max_discard_sectors, 0u);
            ASSERT_TRUE(fe.start_queue(0));

            auto out = pattern(8192, 1);
            std::uint32_t len = 0;
            EXPECT_EQ(fe.request(0, blk::req_type::out, 16, out, &len), blk::status::ok);
            EXPECT_EQ(len, 1u);
            std::vector<std::byte> in(8192);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 16, in, &len), blk::status::ok);
            EXPECT_EQ(len, 8193u);
            EXPECT_EQ(in, out);
            EXPECT_EQ(fe.request(0, blk::req_type::flush, 0, {}), blk::status::ok);
            std::vector<std::byte> id(20);
            EXPECT_EQ(fe.request(0, blk::req_type::get_id, 0, id, &len), blk::status::ok);
            EXPECT_EQ(std::string(reinterpret_cast<const char*>(id.data()), 2), "vt");
            EXPECT_EQ(id[2], std::byte{0});
            // Discard and write-zeroes (with UNMAP) read back as zeros.
            EXPECT_EQ(dwz(fe, blk::req_type::discard, 16, 8, 0), blk::status::ok);
            EXPECT_EQ(dwz(fe, blk::req_type::write_zeroes, 24, 8, blk::dwz_flag_unmap), blk::status::ok);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 16, in), blk::status::ok);
            EXPECT_TRUE(all_zero(in));
            // Unknown type: UNSUPP; past the capacity: IOERR.
            std::vector<std::byte> small(512);
            EXPECT_EQ(fe.request(0, 99, 0, small), blk::status::unsupp);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 8192, small), blk::status::ioerr);
            fe.disconnect();
        },
        [](const blk_export_stats& s) {
            EXPECT_FALSE(s.connected);
            EXPECT_EQ(s.connections, 1u);
            EXPECT_EQ(s.io.writes, 1u);
            EXPECT_EQ(s.io.reads, 2u);
            EXPECT_EQ(s.io.write_bytes, 8192u);
            EXPECT_EQ(s.io.flushes, 1u);
            EXPECT_EQ(s.io.get_ids, 1u);
            EXPECT_EQ(s.io.discards, 1u);
            EXPECT_EQ(s.io.write_zeroes, 1u);
            EXPECT_EQ(s.io.unsupported, 1u);
            EXPECT_EQ(s.io.ioerr, 1u);
        });
}

TEST(vhost_server, read_only_export_refuses_writes) {
    with_export({1, true}, [](const std::string& path) {
        test_frontend fe;
        ASSERT_TRUE(fe.connect(path));
        ASSERT_TRUE(fe.negotiate(guest_features | bit(blk::feature::ro), guest_protocol));
        EXPECT_NE(fe.offered() & bit(blk::feature::ro), 0u);
        ASSERT_TRUE(fe.start_queue(0));
        auto out = pattern(4096, 2);
        EXPECT_EQ(fe.request(0, blk::req_type::out, 0, out), blk::status::ioerr);
        std::vector<std::byte> in(4096);
        EXPECT_EQ(fe.request(0, blk::req_type::in, 0, in), blk::status::ok);
        EXPECT_TRUE(all_zero(in));
    });
}

TEST(vhost_server, two_queues_on_two_shards) {
    IOE_NEED_CORES(2);
    with_export(
        {2, false},
        [](const std::string& path) {
            test_frontend fe;
            ASSERT_TRUE(fe.connect(path));
            ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
            ASSERT_TRUE(fe.send(user::request::get_queue_num, {}));
            EXPECT_EQ(fe.receive_u64(user::request::get_queue_num), 2u);
            ASSERT_TRUE(fe.start_queue(0));
            ASSERT_TRUE(fe.start_queue(1));
            auto a = pattern(4096, 3), b = pattern(4096, 4);
            EXPECT_EQ(fe.request(1, blk::req_type::out, 100, a), blk::status::ok);
            EXPECT_EQ(fe.request(0, blk::req_type::out, 200, b), blk::status::ok);
            std::vector<std::byte> in(4096);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 100, in), blk::status::ok);
            EXPECT_EQ(in, a);
            EXPECT_EQ(fe.request(1, blk::req_type::in, 200, in), blk::status::ok);
            EXPECT_EQ(in, b);
        },
        [](const blk_export_stats& s) {
            EXPECT_EQ(s.io.writes, 2u);
            EXPECT_EQ(s.io.reads, 2u);
        });
}

TEST(vhost_server, get_vring_base_then_a_new_front_end) {
    with_export(
        {},
        [](const std::string& path) {
            auto data = pattern(4096, 5);
            {
                test_frontend fe;
                ASSERT_TRUE(fe.connect(path));
                ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
                ASSERT_TRUE(fe.start_queue(0));
                EXPECT_EQ(fe.request(0, blk::req_type::out, 8, data), blk::status::ok);
                EXPECT_EQ(fe.request(0, blk::req_type::flush, 0, {}), blk::status::ok);
                EXPECT_EQ(fe.request(0, blk::req_type::flush, 0, {}), blk::status::ok);
                EXPECT_EQ(fe.get_vring_base(0), 3u);
                // Stopped: a head made available now is not served.
                fe.write_chain(0, 40, std::vector<test_frontend::piece>{{test_frontend::data_base, 16, false},
                                                                        {test_frontend::data_base + 0x800, 1, true}});
                blk::req_header h{blk::req_type::flush, 0, 0};
                std::memcpy(fe.mem() + test_frontend::data_base, &h, sizeof h);
                fe.make_available(0, 40);
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                EXPECT_EQ(fe.used_idx(0), 3u);
                // QEMU exits.
            }
            test_frontend fe;
            ASSERT_TRUE(fe.connect(path));
            ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
            ASSERT_TRUE(fe.start_queue(0));
            std::vector<std::byte> in(4096);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 8, in), blk::status::ok);
            EXPECT_EQ(in, data);
        },
        [](const blk_export_stats& s) {
            EXPECT_EQ(s.connections, 2u);
            EXPECT_EQ(s.io.writes, 1u);
            EXPECT_EQ(s.io.reads, 1u);
            EXPECT_EQ(s.io.flushes, 2u);
        });
}

TEST(vhost_server, bad_messages_get_an_error_or_drop_the_connection) {
    with_export(
        {},
        [](const std::string& path) {
            {
                test_frontend fe;
                ASSERT_TRUE(fe.connect(path));
                ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
                // A kick without its fd (and without the no-fd flag).
                ASSERT_TRUE(fe.send_value(user::request::set_vring_kick, std::uint64_t{0}, {}, true));
                EXPECT_EQ(fe.receive_u64(user::request::set_vring_kick), 1u);
                // A queue index out of range.
                ASSERT_TRUE(fe.send_value(user::request::set_vring_num, user::vring_state{5, 64}, {}, true));
                EXPECT_EQ(fe.receive_u64(user::request::set_vring_num), 1u);
                // A memory table whose fd cannot be mapped (a pipe).
                int p[2];
                ASSERT_EQ(::pipe(p), 0);
                EXPECT_NE(fe.set_mem_table(p[0]), 0u);
                ::close(p[0]);
                ::close(p[1]);
                // The connection still answers.
                ASSERT_TRUE(fe.send(user::request::get_queue_num, {}));
                EXPECT_EQ(fe.receive_u64(user::request::get_queue_num), 1u);
                // A second front-end is turned away while this one is served.
                test_frontend second;
                ASSERT_TRUE(second.connect(path));
                EXPECT_TRUE(second.closed_by_server());
                // Without REPLY_ACK a broken request drops the connection.
                ASSERT_TRUE(fe.send_value(user::request::set_vring_num, user::vring_state{0, 100}));
                EXPECT_TRUE(fe.closed_by_server());
            }
            {
                // A short message, then the front-end leaves.
                test_frontend fe;
                ASSERT_TRUE(fe.connect(path));
                user::msg_header h{static_cast<std::uint32_t>(user::request::set_features), 1, 8};
                std::array<std::byte, 16> b{};
                std::memcpy(b.data(), &h, sizeof h);
                ASSERT_TRUE(fe.send_raw(b));  // 4 of 8 payload bytes
            }
            {
                // A bad header version: dropped.
                test_frontend fe;
                for (int i = 0; i < 100 && !fe.connect(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                user::msg_header h{static_cast<std::uint32_t>(user::request::get_features), 2, 0};
                ASSERT_TRUE(fe.send_raw({reinterpret_cast<const std::byte*>(&h), sizeof h}));
                EXPECT_TRUE(fe.closed_by_server());
            }
            {
                // The next front-end is served.
                test_frontend fe;
                bool up = false;
                for (int i = 0; i < 100 && !up; ++i) {
                    ASSERT_TRUE(fe.connect(path));
                    up = fe.negotiate(guest_features, guest_protocol) && fe.start_queue(0);
                    if (!up) {
                        fe.disconnect();
                        std::this_thread::sleep_for(std::chrono::milliseconds(10));
                    }
                }
                ASSERT_TRUE(up);
                EXPECT_EQ(fe.request(0, blk::req_type::flush, 0, {}), blk::status::ok);
            }
        },
        [](const blk_export_stats& s) {
            EXPECT_GE(s.refused, 1u);
            EXPECT_GE(s.protocol_errors, 5u);
            EXPECT_EQ(s.io.flushes, 1u);
        });
}

TEST(vhost_server, resubmits_requests_marked_in_flight) {
    with_export(
        {},
        [](const std::string& path) {
            test_frontend fe;
            ASSERT_TRUE(fe.connect(path));
            ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
            user::inflight want{0, 0, 1, test_frontend::ring_size, {}};
            ASSERT_TRUE(fe.send_value(user::request::get_inflight_fd, want));
            std::vector<std::byte> p;
            int fd = -1;
            ASSERT_TRUE(fe.receive(user::request::get_inflight_fd, p, &fd));
            ASSERT_EQ(p.size(), sizeof(user::inflight));
            ASSERT_GE(fd, 0);
            user::inflight got{};
            std::memcpy(&got, p.data(), sizeof got);
            ASSERT_GE(got.mmap_size, inflight_queue_stride(test_frontend::ring_size));
            auto* area = static_cast<std::byte*>(
                ::mmap(nullptr, got.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, got.mmap_offset));
            ASSERT_NE(area, MAP_FAILED);
            // What a killed back-end leaves: head 0 (a 4 KiB write) taken
            // from the available ring and marked in flight, never used.
            auto data = pattern(4096, 6);
            const std::uint64_t hdr = test_frontend::data_base, buf = hdr + 0x1000, st = hdr + 0x800;
            blk::req_header h{blk::req_type::out, 0, 64};
            std::memcpy(fe.mem() + hdr, &h, sizeof h);
            std::memcpy(fe.mem() + buf, data.data(), data.size());
            fe.mem()[st] = std::byte{0xee};
            fe.write_chain(0, 0, std::vector<test_frontend::piece>{{hdr, 16, false}, {buf, 4096, false}, {st, 1, true}});
            const std::uint16_t head = 0, one = 1;
            std::memcpy(fe.avail(0) + 4, &head, 2);
            std::memcpy(fe.avail(0) + 2, &one, 2);
            auto* q = reinterpret_cast<user::inflight_queue_split*>(area);
            auto* d = reinterpret_cast<user::inflight_desc_split*>(area + sizeof *q);
            q->version = user::inflight_version;
            q->desc_num = test_frontend::ring_size;
            q->used_idx = 0;
            d[0].counter = 7;
            d[0].inflight = 1;
            int fds[1] = {fd};
            ASSERT_TRUE(fe.send_value(user::request::set_inflight_fd, got, fds, true));
            EXPECT_EQ(fe.receive_u64(user::request::set_inflight_fd), 0u);
            ::close(fd);
            // QEMU's base after a back-end crash: the used index (0).
            ASSERT_TRUE(fe.start_queue(0, 0));
            fe.queue(0).avail_idx = 1;
            fe.queue(0).next_desc = 4;
            virtio::used_elem e{};
            ASSERT_TRUE(fe.wait_used(0, e));
            EXPECT_EQ(e.id, 0u);
            EXPECT_EQ(fe.mem()[st], std::byte{0});
            EXPECT_EQ(d[0].inflight, 0u);
            EXPECT_EQ(q->used_idx, 1u);
            // Taken once: the next request is head 4, and the data landed.
            std::vector<std::byte> in(4096);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 64, in), blk::status::ok);
            EXPECT_EQ(in, data);
            EXPECT_EQ(fe.get_vring_base(0), 2u);
            ::munmap(area, got.mmap_size);
        },
        [](const blk_export_stats& s) {
            EXPECT_EQ(s.io.resubmitted, 1u);
            EXPECT_EQ(s.io.writes, 1u);
        });
}

TEST(vhost_server, create_refuses_bad_configurations) {
    const std::string path = socket_path();
    int rc = ioe::test::run_engine(ioe::test::small_config(1), [&](engine*) -> future<int> {
        device_registry reg;
        block_device* dev = co_await reg.create("malloc:///vc?size_mb=1");
        auto expect_refused = [&](blk_export_config cfg, std::string_view words) -> future<> {
            std::string what;
            try {
                auto e = co_await blk_export::create(cfg, *dev);
                co_await e->stop();
            } catch (const storage_error& ex) {
                what = ex.what();
            }
            EXPECT_NE(what.find(words), std::string::npos) << "got: '" << what << "', wanted: " << words;
        };
        co_await expect_refused({"q0", path, 0, false}, "0 queues");
        co_await expect_refused({"q17", path, 17, false}, "17 queues");
        co_await expect_refused({"long", "/tmp/" + std::string(120, 'x'), 1, false}, "at most 107");
        // An existing file that is not a socket.
        const std::string file = path + ".file";
        ::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600));
        co_await expect_refused({"file", file, 1, false}, "not a socket");
        ::unlink(file.c_str());
        // A socket someone listens on.
        auto first = co_await blk_export::create({"first", path, 1, false}, *dev);
        co_await expect_refused({"second", path, 1, false}, "someone listens on");
        co_await first->stop();
        co_await reg.close_all();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}
