// vhost/blk_export: the vhost-user-blk server end to end inside one
// process. An engine of two shards serves a malloc device; a test
// front-end (tests/unit/vhost_test_frontend.hh, on a thread of its own, in
// QEMU's role) connects to the unix socket, shares a memfd as guest memory
// and puts virtio-blk requests on split rings. Outcomes checked: bytes read
// back, status bytes, used elements, GET_VRING_BASE, the offered features
// and config space, read-only, reconnection, two queues on two shards,
// memory slots, the resubmission of requests marked in the inflight area,
// and the export's counters. Bad input: vhost_server_errors_test.cc.
#include <gtest/gtest.h>

#include "tests/unit/vhost_server_harness.hh"

using namespace ioe;
using namespace ioe::vhost;
using namespace ioe::vhost::test;

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
            // A misaligned guest buffer goes through a bounce buffer.
            auto odd = pattern(4096, 9);
            EXPECT_EQ(fe.request(0, blk::req_type::out, 40, odd, nullptr, 3), blk::status::ok);
            std::vector<std::byte> back(4096);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 40, back, nullptr, 5), blk::status::ok);
            EXPECT_EQ(back, odd);
            // Unknown type: UNSUPP; past the capacity: IOERR.
            std::vector<std::byte> small(512);
            EXPECT_EQ(fe.request(0, 99, 0, small), blk::status::unsupp);
            EXPECT_EQ(fe.request(0, blk::req_type::in, 8192, small), blk::status::ioerr);
            // The driver's used_event (0, never moved: EVENT_IDX) asked for
            // one interrupt; the call eventfd got it.
            EXPECT_GE(fe.interrupts(0), 1u);
            fe.disconnect();
        },
        [](const blk_export_stats& s) {
            EXPECT_FALSE(s.connected);
            EXPECT_EQ(s.connections, 1u);
            EXPECT_EQ(s.io.writes, 2u);
            EXPECT_EQ(s.io.reads, 3u);
            EXPECT_EQ(s.io.write_bytes, 8192u + 4096u);
            EXPECT_EQ(s.io.bounced, 2u);
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

TEST(vhost_server, memory_slots_added_and_removed) {
    with_export({}, [](const std::string& path) {
        test_frontend fe;
        ASSERT_TRUE(fe.connect(path));
        ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol | bit(user::protocol_feature::configure_mem_slots), true));
        ASSERT_TRUE(fe.send(user::request::get_max_mem_slots, {}));
        EXPECT_EQ(fe.receive_u64(user::request::get_max_mem_slots), 32u);
        ASSERT_TRUE(fe.start_queue(0));
        auto data = pattern(4096, 11);
        EXPECT_EQ(fe.request(0, blk::req_type::out, 0, data), blk::status::ok);
        // Removing a region that is not there fails; the real one goes,
        // and with it the queue's memory: the queue stops serving.
        user::single_region wrong{0, {0x40000000, 4096, 0x1000, 0}};
        ASSERT_TRUE(fe.send_value(user::request::rem_mem_reg, wrong, {}, true));
        EXPECT_EQ(fe.receive_u64(user::request::rem_mem_reg), 1u);
        EXPECT_EQ(fe.mem_region(user::request::rem_mem_reg), 0u);
        EXPECT_EQ(fe.get_vring_base(0), 1u);
        // Added again, the ring restarts where it was.
        EXPECT_EQ(fe.mem_region(user::request::add_mem_reg), 0u);
        ASSERT_TRUE(fe.start_queue(0, 1));
        fe.queue(0).next_desc = 4;
        std::vector<std::byte> in(4096);
        EXPECT_EQ(fe.request(0, blk::req_type::in, 0, in), blk::status::ok);
        EXPECT_EQ(in, data);
    });
}


TEST(vhost_server, stats_while_connected_and_stop_drops_the_front_end) {
    IOE_NEED_CORES(2);
    const std::string path = socket_path();
    std::atomic<int> phase{0};  // 1: front-end served, waiting; 2: export stopped
    blk_export_stats live;
    int rc = ::ioe::test::run_engine(::ioe::test::small_config(2), [&](engine*) -> future<int> {
        device_registry reg;
        block_device* dev = co_await reg.create("malloc:///vs?size_mb=4");
        auto exp = co_await blk_export::create({"s", path, 2, false}, *dev);
        EXPECT_TRUE(exp->uses(*dev));
        std::thread t([&] {
            test_frontend fe;
            ASSERT_TRUE(fe.connect(path));
            ASSERT_TRUE(fe.negotiate(guest_features, guest_protocol));
            ASSERT_TRUE(fe.start_queue(0));
            ASSERT_TRUE(fe.start_queue(1));
            std::vector<std::byte> in(4096);
            EXPECT_EQ(fe.request(1, blk::req_type::in, 0, in), blk::status::ok);
            EXPECT_EQ(fe.request(0, blk::req_type::flush, 0, {}), blk::status::ok);
            phase = 1;
            // stop() drops us.
            EXPECT_TRUE(fe.closed_by_server());
            while (phase != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        const auto deadline = steady_clock::now() + std::chrono::seconds(20);
        while (phase != 1 && steady_clock::now() < deadline) co_await sleep(std::chrono::milliseconds(2));
        live = co_await exp->stats();
        EXPECT_TRUE(exp->busy());
        co_await exp->stop();
        EXPECT_FALSE(exp->connected());
        phase = 2;
        t.join();
        co_await reg.close_all();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(live.connected);
    EXPECT_EQ(live.device, "vs");
    EXPECT_EQ(live.queues_active, 2u);
    EXPECT_EQ(live.features, guest_features);
    EXPECT_EQ(live.mapped_bytes, test_frontend::mem_bytes);
    EXPECT_EQ(live.io.reads, 1u);  // live counters, from the queues' shards
    EXPECT_EQ(live.io.flushes, 1u);
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket was not removed";
}
