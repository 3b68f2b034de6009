// A nexus mirrored over two PCIe driver devices (two controller models),
// unchanged from any other children: writes land on both controllers' media;
// one controller vanishing (surprise removal) faults that child while the
// writes go on to the other.
#include <gtest/gtest.h>

#include <cstring>

#include "storage/device_registry.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "tests/pcie/pcie_test_util.hh"

using namespace ioe;
using namespace ioe::nvme;
using namespace std::chrono_literals;

namespace {

TEST(PcieNexus, MirrorsOverTwoControllersAndSurvivesOneVanishing) {
    int rc = test::run_engine(test::small_config(2), [](engine* e) -> future<int> {
        test::model_rig a(e), b(e);
        pcie_options opts;
        opts.health_interval = 5ms;
        auto da = co_await a.open(e, opts, "pcieA");
        auto db = co_await b.open(e, opts, "pcieB");
        device_registry devices;
        co_await devices.add(da.get());
        co_await devices.add(db.get());
        memory_health_store store;
        nexus_options no;
        no.health_key = "/ioengine/nexus/pcie-test";
        no.health = &store;
        no.registry = &devices;
        no.health_retries = 1;
        no.health_retry_delay = 10ms;
        auto n = co_await nexus::create("nx", uuid::random(), {"bdev:///pcieA", "bdev:///pcieB"}, no);
        EXPECT_EQ(n->state(), nexus_state::online);

        auto buf = e->dma().allocate(64 << 10);
        test::fill(buf->data(), buf->size(), 21);
        io_vec v = to_io_vec(*buf);
        io_channel* ch = n->channel();
        EXPECT_EQ(co_await ch->write(0, 128, io_vecs(&v, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(a.model->media(), buf->data(), buf->size()), 0);
        EXPECT_EQ(std::memcmp(b.model->media(), buf->data(), buf->size()), 0);

        b.model->remove();  // controller B is gone
        test::fill(buf->data(), buf->size(), 22);
        EXPECT_EQ(co_await ch->write(256, 128, io_vecs(&v, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(a.model->media() + 256 * 512, buf->data(), buf->size()), 0);
        EXPECT_EQ(db->controller().state(), controller_state::failed);
        const nexus_info info = n->info();
        EXPECT_EQ(info.children.size(), 2u);
        if (info.children.size() == 2) {
            EXPECT_EQ(info.children[0].state, child_state::online);
            EXPECT_EQ(info.children[1].state, child_state::faulted);
        }
        // Reads now come from A only, and are right.
        auto r = e->dma().allocate(64 << 10);
        io_vec rv = to_io_vec(*r);
        EXPECT_EQ(co_await ch->read(256, 128, io_vecs(&rv, 1)), io_status::success);
        EXPECT_EQ(std::memcmp(r->data(), buf->data(), buf->size()), 0);

        co_await n->shutdown();
        co_await n->close();
        n.reset();
        co_await devices.remove("pcieA");
        co_await devices.remove("pcieB");
        co_await da->close();
        co_await db->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
}

}  // namespace
