// Control-plane tests of the vhost-user-blk exports, through both faces
// (RPC client and embedded handle): create / list / destroy, every refusal
// with its code (unknown device, duplicate name, device exported twice,
// bad queue count, socket path taken, device / replica / pool destroy while
// exported, destroy while a front-end is connected without --force), a
// front-end's I/O counted by list, and the export started again from the
// state file after a restart. The front-end is vhost-perf's driver
// (vhost/frontend_device.hh).
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "tests/rpc/rpc_fixture.hh"
#include "vhost/frontend_device.hh"

namespace ioe::test {

namespace {

bool is_socket(const std::string& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

vhost::frontend_config frontend_for(const std::string& sock) {
    vhost::frontend_config c;
    c.socket_path = sock;
    c.queues = 1;
    c.queue_size = 32;
    c.depth = 4;
    c.max_io_bytes = 4096;
    c.hugepages = false;
    return c;
}

// One request through queue 0, waited for (10 s at most); its status.
std::uint8_t one_io(vhost::frontend_device& fe, vhost::driver_op op, std::uint64_t offset) {
    auto& q = fe.queue(0);
    q.prepare(0, op, offset, 4096);
    q.submit();
    std::array<vhost::blk_completion, 4> done{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (q.reap(done) == 1) return done[0].status;
    }
    return 0xee;
}

// After a front-end closed its socket the export notices on its next poll:
// wait (10 s at most) until it no longer counts as connected.
void wait_disconnected(node_api& api, const std::string& name) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (api.list_vhost(name).at(0).connected && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

}  // namespace

TEST_P(control, vhost_export_lifecycle_and_refusals) {
    api->create_device("malloc:///d1?size_mb=16");
    api->create_device("malloc:///d2?size_mb=16");
    const std::string sock = dir.path + "/x1.sock";
    auto e = api->create_vhost({"x1", sock, "d1", 2, false, true});
    EXPECT_EQ(e.spec.name, "x1");
    EXPECT_EQ(e.spec.device, "d1");
    EXPECT_EQ(e.spec.queues, 2u);
    EXPECT_FALSE(e.connected);
    EXPECT_TRUE(is_socket(sock));

    auto l = api->list_vhost();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].spec.socket_path, sock);
    EXPECT_EQ(api->list_vhost("x1").size(), 1u);
    EXPECT_CODE(api->list_vhost("nope"), storage_errc::not_found);

    EXPECT_CODE(api->create_vhost({"x2", dir.path + "/x2.sock", "missing", 1, false, true}), storage_errc::not_found);
    EXPECT_CODE(api->create_vhost({"x1", dir.path + "/x3.sock", "d2", 1, false, true}), storage_errc::already_exists);
    EXPECT_CODE(api->create_vhost({"x2", dir.path + "/x2.sock", "d1", 1, false, true}), storage_errc::busy);
    EXPECT_CODE(api->create_vhost({"x2", dir.path + "/x2.sock", "d2", 99, false, true}),
                storage_errc::invalid_argument);
    EXPECT_CODE(api->create_vhost({"x2", sock, "d2", 1, false, true}), storage_errc::already_exists);
    EXPECT_FALSE(is_socket(dir.path + "/x2.sock"));

    // The exported device cannot go away under the export.
    EXPECT_CODE(api->destroy_device("d1"), storage_errc::busy);
    EXPECT_EQ(api->list_devices().size(), 2u);

    api->destroy_vhost("x1");
    EXPECT_FALSE(is_socket(sock));
    EXPECT_TRUE(api->list_vhost().empty());
    EXPECT_CODE(api->destroy_vhost("x1"), storage_errc::not_found);
    api->destroy_device("d1");
}

TEST_P(control, vhost_connected_front_end_is_busy_and_its_io_is_counted) {
    api->create_device("malloc:///d1?size_mb=16");
    const std::string sock = dir.path + "/x1.sock";
    api->create_vhost({"x1", sock, "d1", 1, false, true});
    {
        vhost::frontend_device fe(frontend_for(sock));
        EXPECT_EQ(fe.capacity_bytes(), 16u << 20);
        // A pattern written, then read back into a cleared buffer.
        for (std::uint32_t i = 0; i < 4096; ++i) fe.queue(0).buffer(0)[i] = std::byte(i * 7 + 1);
        ASSERT_EQ(one_io(fe, vhost::driver_op::write, 8192), 0);
        std::memset(fe.queue(0).buffer(0), 0, 4096);
        ASSERT_EQ(one_io(fe, vhost::driver_op::read, 8192), 0);
        for (std::uint32_t i = 0; i < 4096; ++i) ASSERT_EQ(fe.queue(0).buffer(0)[i], std::byte(i * 7 + 1)) << i;

        auto l = api->list_vhost("x1");
        ASSERT_EQ(l.size(), 1u);
        EXPECT_TRUE(l[0].connected);
        EXPECT_EQ(l[0].reads, 1u);
        EXPECT_EQ(l[0].writes, 1u);
        EXPECT_EQ(l[0].read_bytes, 4096u);
        EXPECT_EQ(l[0].write_bytes, 4096u);
        EXPECT_CODE(api->destroy_vhost("x1"), storage_errc::busy);
        fe.stop();
    }
    // Without a front-end it goes; with --force it would have gone anyway.
    wait_disconnected(*api, "x1");
    api->create_device("malloc:///d2?size_mb=16");
    api->create_vhost({"x2", dir.path + "/x2.sock", "d2", 1, false, true});
    {
        vhost::frontend_device fe(frontend_for(dir.path + "/x2.sock"));
        api->destroy_vhost("x2", true);
        EXPECT_FALSE(is_socket(dir.path + "/x2.sock"));
    }
    api->destroy_vhost("x1");
}

TEST(rpc, vhost_export_comes_back_after_a_restart_and_guards_its_replica) {
    temp_dir dir;
    const std::string img = dir.path + "/p.img";
    make_file(img, 64 << 20);
    const std::string sock = dir.path + "/x1.sock";
    {
        embedded eng(options_for(dir.path));
        eng.create_pool("p1", "uring://" + img);
        eng.create_replica("p1", "r1", 8 << 20, false);
        eng.create_vhost({"x1", sock, "r1", 1, true, true});
        EXPECT_CODE(eng.destroy_replica("r1"), storage_errc::busy);
        EXPECT_CODE(eng.destroy_pool("p1"), storage_errc::busy);
    }
    EXPECT_FALSE(is_socket(sock));  // removed at stop
    embedded eng(options_for(dir.path));
    auto l = eng.list_vhost();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].spec.name, "x1");
    EXPECT_EQ(l[0].spec.device, "r1");
    EXPECT_TRUE(l[0].spec.read_only);
    EXPECT_TRUE(is_socket(sock));
    {
        vhost::frontend_device fe(frontend_for(sock));
        EXPECT_TRUE(fe.read_only());
        EXPECT_EQ(fe.capacity_bytes(), 8u << 20);
    }
    wait_disconnected(eng, "x1");
    eng.destroy_vhost("x1");
    eng.destroy_replica("r1");
}

}  // namespace ioe::test
