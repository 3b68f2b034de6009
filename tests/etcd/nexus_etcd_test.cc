// The nexus with its child health in a real etcd (etcd_health_store), on 2
// shards, children malloc devices behind fault devices: a child that fails
// a write is unhealthy in etcd before the write is acknowledged; a nexus
// re-created after an unclean stop opens only the healthy child, rebuilds
// the other and records it healthy; a clean shutdown is recorded; with etcd
// frozen, a child failure is not acknowledged: the nexus faults once the
// bounded retries run out.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <vector>

#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/fault_device.hh"
#include "storage/nexus/etcd_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "tests/etcd/etcd_fixture.hh"
#include "tests/etcd/etcd_test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

constexpr char k_key[] = "/ioengine/nexus/etcd-test/health";

future<io_status> write_on(unsigned shard, block_device* dev, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(30s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        co_return co_await ch->write(lba, static_cast<std::uint32_t>(buf.size() / dev->block_size()), io_vecs(&v, 1));
    }));
}

struct children {
    device_registry devices;
    std::vector<block_device*> inner;
    std::vector<std::unique_ptr<fault_device>> faults;

    future<> make() {
        for (unsigned i = 0; i < 2; ++i) {
            inner.push_back(co_await devices.create(fmt::format("malloc:///e{}?size_mb=4&blk_size=512", i)));
            faults.push_back(std::make_unique<fault_device>(fmt::format("ec{}", i), inner.back()));
            co_await devices.add(faults.back().get());
        }
    }
    std::vector<std::string> uris() const { return {"bdev:///ec0", "bdev:///ec1"}; }
    future<> close() {
        for (auto& f : faults) {
            co_await devices.remove(f->name());
            co_await f->close();
        }
        co_await devices.close_all();
    }
};

nexus_options options(child_health_store& store, device_registry& reg) {
    nexus_options o;
    o.health_key = k_key;
    o.health = &store;
    o.registry = &reg;
    o.segment_bytes = 64 * 1024;
    o.health_retries = 3;
    o.health_retry_delay = 100ms;
    return o;
}

bool healthy(const std::optional<nexus_health_record>& r, const uuid& id) {
    if (!r) return false;
    for (auto& [u, h] : r->children)
        if (u == id.to_string()) return h;
    return false;
}

}  // namespace

TEST(nexus_etcd, child_health_recorded_in_etcd_before_the_ack) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(2, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client client(e, ctl, test::etcd_config_for({etcd.endpoint()}, 2000));
        etcd_health_store store(client);
        children kids;
        co_await kids.make();
        {
            auto n = co_await nexus::create("nx", uuid::random(), kids.uris(), options(store, kids.devices));
            auto rec = co_await store.load(k_key);
            EXPECT_TRUE(rec && !rec->clean_shutdown);
            EXPECT_TRUE(healthy(rec, kids.inner[0]->id()) && healthy(rec, kids.inner[1]->id()));
            // Child 1 fails one write: when the write returns, etcd already
            // says child 1 is unhealthy (read by a second client).
            co_await kids.faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault).at_most(1));
            std::vector<std::byte> w(4096, std::byte{0x5a});
            EXPECT_EQ(co_await write_on(1, n.get(), 10, w), io_status::success);
            etcd_client other(e, ctl, test::etcd_config_for({etcd.endpoint()}, 2000));
            etcd_health_store reader(other);
            auto after = co_await reader.load(k_key);
            EXPECT_FALSE(healthy(after, kids.inner[1]->id()));
            EXPECT_TRUE(healthy(after, kids.inner[0]->id()));
            co_await kids.faults[1]->clear_rules();
            co_await n->close();  // no shutdown(): as if the engine died
        }
        {
            // Unclean: child 1 opens faulted and is rebuilt, then healthy in etcd.
            etcd_health_store fresh(client);
            auto n = co_await nexus::create("nx", uuid::random(), kids.uris(), options(fresh, kids.devices));
            EXPECT_NE(n->state(), nexus_state::online);
            co_await with_timeout(30s, n->rebuilds_idle());
            EXPECT_EQ(n->state(), nexus_state::online);
            EXPECT_TRUE(healthy(co_await fresh.load(k_key), kids.inner[1]->id()));
            co_await n->shutdown();
            auto rec = co_await fresh.load(k_key);
            EXPECT_TRUE(rec && rec->clean_shutdown);
            co_await n->close();
        }
        co_await kids.close();
    });
}

TEST(nexus_etcd, etcd_frozen_means_not_acknowledged) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(2, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client client(e, ctl, test::etcd_config_for({etcd.endpoint()}, 300));
        etcd_health_store store(client);
        children kids;
        co_await kids.make();
        auto n = co_await nexus::create("nx", uuid::random(), kids.uris(), options(store, kids.devices));
        etcd.pause();
        co_await kids.faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault));
        std::vector<std::byte> w(4096, std::byte{0x33});
        const auto t0 = steady_clock::now();
        io_status st = co_await write_on(0, n.get(), 20, w);
        EXPECT_NE(st, io_status::success) << "acknowledged a write whose child failure etcd never recorded";
        EXPECT_GE(steady_clock::now() - t0, 300ms) << "it gave up without retrying";
        EXPECT_EQ(n->state(), nexus_state::faulted);
        etcd.resume();
        co_await n->close();
        co_await kids.close();
    });
}
