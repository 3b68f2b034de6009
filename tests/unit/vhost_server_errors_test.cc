// vhost/blk_export against bad input: messages that break the protocol
// (wrong fd count, queue index out of range, an unmappable memory table, a
// short message, a bad header, a second front-end) get an error reply or
// drop the connection and the next front-end is served; ring faults (a
// head outside the ring, a descriptor loop) stop the queue, not the
// engine; create() refuses bad configurations with a message naming what
// was wrong. The harness: vhost_server_harness.hh.
#include <gtest/gtest.h>

#include "tests/unit/vhost_server_harness.hh"

using namespace ioe;
using namespace ioe::vhost;
using namespace ioe::vhost::test;

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


TEST(vhost_server, ring_fault_stops_the_queue_not_the_engine) {
    with_export(
        {},
        [](const std::string& path) {
            test_frontend fe;
            ASSERT_TRUE(fe.connect(path));
            ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
            ASSERT_TRUE(fe.start_queue(0));
            EXPECT_EQ(fe.request(0, blk::req_type::flush, 0, {}), blk::status::ok);
            // A head outside the ring: the queue is marked broken and serves
            // nothing more, the connection still answers.
            fe.make_available(0, 200);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            EXPECT_EQ(fe.used_idx(0), 1u);
            ASSERT_TRUE(fe.send(user::request::get_queue_num, {}));
            EXPECT_EQ(fe.receive_u64(user::request::get_queue_num), 1u);
            EXPECT_EQ(fe.get_vring_base(0), 1u);
            // A descriptor loop on a fresh connection: broken again, no hang.
            fe.disconnect();
            test_frontend fe2;
            ASSERT_TRUE(fe2.connect(path));
            ASSERT_TRUE(fe2.negotiate(guest_features, guest_protocol));
            ASSERT_TRUE(fe2.start_queue(0));
            virtio::desc d{test_frontend::data_base, 16, virtio::desc_flags::next, 0};  // next: itself
            std::memcpy(fe2.desc_table(0), &d, sizeof d);
            fe2.make_available(0, 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            EXPECT_EQ(fe2.used_idx(0), 0u);
            EXPECT_EQ(fe2.get_vring_base(0), 1u);  // the looping head was taken
        },
        [](const blk_export_stats& s) {
            EXPECT_EQ(s.io.ring_faults, 2u);
            EXPECT_EQ(s.io.flushes, 1u);
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
