// A pool and a thick replica on the PCIe driver (over the controller model)
// exactly as on any other device: data written through the replica survives
// export, a controller shutdown and a fresh bring-up, and import.
#include <gtest/gtest.h>

#include "storage/device_registry.hh"
#include "storage/pool.hh"
#include "tests/pcie/pcie_test_util.hh"
#include "tests/unit/pool_test_util.hh"

using namespace ioe;
using namespace ioe::nvme;

namespace {

constexpr std::uint64_t MiB = 1 << 20;

TEST(PciePool, ReplicaDataSurvivesRestartAndImport) {
    int bad = -2;
    bool clean = false;
    int rc = test::run_engine(test::small_config(2), [&](engine* e) -> future<int> {
        model_config cfg;
        cfg.block_count = (64 * MiB) / 512;
        test::model_rig rig(e, cfg);
        {
            auto dev = co_await rig.open(e);
            device_registry reg;
            pool_create_options o;
            o.name = "p0";
            o.cluster_size = MiB;
            auto p = co_await pool::create(dev.get(), o, &reg);
            replica* r = co_await p->create_replica("r0", uuid::random(), 8 * MiB, false);
            if (co_await test::write_stamped_range(r, 0, 8 * MiB / r->block_size(), 11) != io_status::success) {
                co_return 1;
            }
            co_await p->export_pool();
            p.reset();
            co_await reg.close_all();
            co_await dev->close();
        }
        EXPECT_EQ(rig.model->stats().shutdowns, 1u);
        // "Restart": a new driver instance brings the same controller up again.
        auto dev = co_await rig.open(e);
        device_registry reg;
        auto q = co_await pool::import(dev.get(), &reg);
        clean = q->info().was_exported;
        block_device* r = co_await reg.find("r0");
        bad = co_await test::count_bad(r, 0, 8 * MiB / r->block_size(), 11);
        co_await q->export_pool();
        q.reset();
        co_await reg.close_all();
        co_await dev->close();
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(clean);
    EXPECT_EQ(bad, 0);
}

}  // namespace
