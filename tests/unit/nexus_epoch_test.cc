// Nexus incarnations and their epochs (storage/nexus/nexus_epoch.hh and the
// epoch in the health record): each create takes the record's epoch + 1;
// the reservation key and host identifier derived from (uuid, epoch); a
// second incarnation over the same record fences the first, which then
// acknowledges nothing more (its next record write is refused), while the
// new one serves; the memory store refuses to replace a higher epoch; a
// version 1 record (no epoch) is read as epoch 0 and rewritten as version 2;
// remote children are connected with the epoch's host identifier
// (nvmf:// hostid=), which a child URI may not set itself.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/fault_device.hh"
#include "storage/nexus/etcd_health_store.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "storage/nexus/nexus_fence.hh"
#include "storage/uri.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

constexpr char k_key[] = "/ioengine/nexus/epoch-test";
const uuid k_id = *uuid::parse("0a1b2c3d-4e5f-4a6b-8c7d-8e9f00112233");

future<io_status> write_on(unsigned shard, block_device* dev, std::uint64_t lba, std::vector<std::byte>& buf) {
    return with_timeout(20s, submit_to(shard, [=, &buf]() -> future<io_status> {
        io_channel* ch = dev->channel();
        if (!ch) co_return io_status::namespace_not_ready;
        io_vec v{buf.data(), static_cast<std::uint32_t>(buf.size()), -1};
        co_return co_await ch->write(lba, static_cast<std::uint32_t>(buf.size() / dev->block_size()),
                                     io_vecs(&v, 1));
    }));
}

future<int> second_incarnation_fences_the_first() {
    device_registry devices;
    memory_health_store store;
    std::vector<std::unique_ptr<fault_device>> faults;
    for (unsigned i = 0; i < 2; ++i) {
        block_device* inner = co_await devices.create("malloc:///e" + std::to_string(i) + "?size_mb=4&blk_size=512");
        faults.push_back(std::make_unique<fault_device>("f" + std::to_string(i), inner));
        co_await devices.add(faults.back().get());
    }
    auto opts = [&](std::string owner) {
        nexus_options o;
        o.health_key = k_key;
        o.health = &store;
        o.registry = &devices;
        o.health_retries = 1;
        o.health_retry_delay = 10ms;
        o.owner = std::move(owner);
        return o;
    };
    const std::vector<std::string> kids{"bdev:///f0", "bdev:///f1"};
    auto a = co_await nexus::create("nx-a", k_id, kids, opts("node-a"));
    EXPECT_EQ(a->info().epoch, 1u);
    EXPECT_EQ(a->epoch().reservation_key(), 0x0a1b000000000001ull);
    std::vector<std::byte> buf(4096, std::byte{0x5a});
    EXPECT_EQ(co_await write_on(1, a.get(), 8, buf), io_status::success);

    // Without --takeover, node-b may not start over a record node-a runs.
    bool refused = false;
    try {
        co_await nexus::create("nx-b", k_id, kids, opts("node-b"));
    } catch (const storage_error& e) {
        refused = e.code == storage_errc::busy && std::string(e.what()).find("node-a") != std::string::npos;
    }
    EXPECT_TRUE(refused) << "a plain create over a record another node runs must be refused (busy, naming it)";
    EXPECT_EQ((co_await store.load(k_key))->epoch, 1u);

    // B takes over the same record while A is alive.
    auto takeover = opts("node-b");
    takeover.takeover = true;
    auto b = co_await nexus::create("nx-b", k_id, kids, std::move(takeover));
    EXPECT_EQ(b->info().epoch, 2u);
    EXPECT_EQ(b->epoch().previous().reservation_key(), a->epoch().reservation_key());
    EXPECT_NE(b->epoch().host_id(), a->epoch().host_id());
    {
        auto rec = co_await store.load(k_key);
        EXPECT_TRUE(rec && rec->epoch == 2 && rec->owner == "node-b");
    }

    // A's next record write (a child fault) is refused: A is fenced and the
    // write that faulted the child is not acknowledged, nor anything after.
    co_await faults[1]->add_rule(fault_rule::fail(op_mask::write, io_status::write_fault).at_most(1));
    EXPECT_NE(co_await write_on(0, a.get(), 16, buf), io_status::success);
    EXPECT_EQ(a->state(), nexus_state::fenced);
    EXPECT_NE(co_await write_on(1, a.get(), 24, buf), io_status::success);
    {
        auto rec = co_await store.load(k_key);
        EXPECT_TRUE(rec && rec->epoch == 2) << "the fenced incarnation must not overwrite the record";
    }
    // A fenced nexus starts no rebuild and its shutdown leaves the record alone.
    co_await a->shutdown();
    EXPECT_EQ((co_await store.load(k_key))->epoch, 2u);
    co_await a->close();

    // B serves.
    EXPECT_EQ(co_await write_on(0, b.get(), 32, buf), io_status::success);
    EXPECT_NE(b->state(), nexus_state::fenced);
    co_await b->shutdown();
    co_await b->close();
    for (auto& f : faults) {
        co_await devices.remove(f->name());
        co_await f->close();
    }
    co_await devices.close_all();
    co_return 0;
}

future<int> store_refuses_a_lower_epoch() {
    memory_health_store store;
    nexus_health_record r{.epoch = 5, .owner = "x", .clean_shutdown = false, .children = {{"c", true}}};
    co_await store.store(k_key, r);
    r.epoch = 4;
    bool refused = false;
    try {
        co_await store.store(k_key, r);
    } catch (const health_record_conflict&) {
        refused = true;
    }
    EXPECT_TRUE(refused);
    r.epoch = 5;
    co_await store.store(k_key, r);  // the same epoch writes on
    // A version 1 record has epoch 0: any incarnation replaces it.
    store.put_raw(k_key, R"({"version":1,"clean_shutdown":true,"children":[]})");
    EXPECT_EQ((co_await store.load(k_key))->epoch, 0u);
    co_await store.store(k_key, r);
    EXPECT_NE(store.raw(k_key)->find(R"("version":2,"epoch":5,"owner":"x")"), std::string::npos);
    co_return 0;
}

int run(future<int> (*body)()) {
    return test::run_engine(test::small_config(2), [body](engine*) { return body(); });
}

}  // namespace

TEST(nexus_epoch, key_and_host_id_derive_from_uuid_and_epoch) {
    nexus_epoch e{k_id, 7};
    EXPECT_EQ(e.reservation_key(), 0x0a1b000000000007ull);
    EXPECT_EQ(host_id_hex(e.host_id()), "0a1b2c3d4e5f4a6b0000000000000007");
    EXPECT_TRUE(e.has_previous());
    EXPECT_EQ(e.previous().epoch, 6u);
    EXPECT_FALSE((nexus_epoch{k_id, 1}).has_previous());
}

TEST(nexus_epoch, record_versions_and_epoch_bounds) {
    auto text = encode_health_record({.epoch = 9, .owner = "n\"1", .clean_shutdown = true, .children = {}});
    EXPECT_EQ(text, R"({"version":2,"epoch":9,"owner":"n\"1","clean_shutdown":true,"children":[]})");
    EXPECT_EQ(decode_health_record(text, "/k").epoch, 9u);
    auto refused = [](std::string_view t) {
        try {
            decode_health_record(t, "/k");
        } catch (const health_record_error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(refused(R"({"version":2,"owner":"","clean_shutdown":true,"children":[]})").find("epoch"),
              std::string::npos);
    EXPECT_NE(refused(R"({"version":2,"epoch":-1,"owner":"","clean_shutdown":true,"children":[]})").find("epoch"),
              std::string::npos);
    EXPECT_NE(refused(R"({"version":2,"epoch":4294967296,"owner":"","clean_shutdown":true,"children":[]})")
                  .find("epoch"),
              std::string::npos);
    EXPECT_NE(refused(R"({"version":2,"epoch":1,"clean_shutdown":true,"children":[]})").find("owner"),
              std::string::npos);
    EXPECT_NE(refused(R"({"version":1,"epoch":1,"clean_shutdown":true,"children":[]})").find("version 1"),
              std::string::npos);
    EXPECT_NE(refused(R"({"version":4,"epoch":1,"owner":"","clean_shutdown":true,"children":[]})")
                  .find("version 4"),
              std::string::npos);
}

TEST(nexus_epoch, memory_store_refuses_a_lower_epoch) { EXPECT_EQ(run(store_refuses_a_lower_epoch), 0); }

TEST(nexus_epoch, a_second_incarnation_fences_the_first) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(run(second_incarnation_fences_the_first), 0);
}

TEST(nexus_epoch, nvmf_uri_hostid) {
    std::string err;
    auto uri = parse_device_uri("nvmf://127.0.0.1:4420/nqn.2019-05.io.test:a?hostid=0a1b2c3d-4e5f-4a6b-0000-000000000007", err);
    ASSERT_TRUE(uri) << err;
    auto a = nvme::parse_nvmf_uri(*uri);
    EXPECT_EQ(a.opts.host_id, (nexus_epoch{k_id, 7}).host_id());
    auto plain = parse_device_uri("nvmf://127.0.0.1/nqn.2019-05.io.test:a", err);
    EXPECT_EQ(nvme::parse_nvmf_uri(*plain).opts.host_id, (std::array<std::uint8_t, 16>{}));
    for (const char* bad : {"nvmf://127.0.0.1/nqn.2019-05.io.test:a?hostid=xyz",
                            "nvmf://127.0.0.1/nqn.2019-05.io.test:a?hostid=00000000-0000-0000-0000-000000000000"}) {
        auto u = parse_device_uri(bad, err);
        ASSERT_TRUE(u) << err;
        try {
            nvme::parse_nvmf_uri(*u);
            ADD_FAILURE() << bad << " accepted";
        } catch (const storage_error& e) {
            EXPECT_NE(std::string(e.what()).find("hostid"), std::string::npos) << e.what();
        }
    }
}

TEST(nexus_epoch, a_child_uri_may_not_carry_a_hostid) {
    EXPECT_EQ(run([]() -> future<int> {
                  memory_health_store store;
                  nexus_options o;
                  o.health_key = k_key;
                  o.health = &store;
                  try {
                      auto n = co_await nexus::create(
                          "nx", k_id, {"nvmf://127.0.0.1:1/nqn.2019-05.io.test:a?hostid=" + k_id.to_string()}, o);
                      ADD_FAILURE() << "created";
                      co_await n->close();
                  } catch (const storage_error& e) {
                      EXPECT_EQ(e.code, storage_errc::invalid_argument);
                      EXPECT_NE(std::string(e.what()).find("hostid"), std::string::npos) << e.what();
                  }
                  co_return 0;
              }),
              0);
}

TEST(nexus_epoch, older_incarnation_keys_are_only_this_nexus_lower_epochs) {
    const nexus_epoch me{k_id, 5};
    EXPECT_TRUE(older_incarnation_key((nexus_epoch{k_id, 4}).reservation_key(), me));
    EXPECT_TRUE(older_incarnation_key((nexus_epoch{k_id, 1}).reservation_key(), me));
    EXPECT_FALSE(older_incarnation_key(me.reservation_key(), me));
    EXPECT_FALSE(older_incarnation_key((nexus_epoch{k_id, 6}).reservation_key(), me)) << "a newer one is never preempted";
    EXPECT_FALSE(older_incarnation_key(0x0a1b2c3d00000000ull, me)) << "epoch 0 is no incarnation";
    EXPECT_FALSE(older_incarnation_key(0x0a1b000000000000ull, me)) << "epoch 0 is no incarnation";
    const nexus_epoch other{*uuid::parse("ffffffff-4e5f-4a6b-8c7d-8e9f00112233"), 1};
    EXPECT_FALSE(older_incarnation_key(other.reservation_key(), me)) << "another nexus's key";
    EXPECT_FALSE(older_incarnation_key(0x1234, me)) << "a foreign key";
}

TEST(nexus_epoch, devices_without_reservations_answer_invalid_opcode) {
    EXPECT_EQ(run([]() -> future<int> {
                  device_registry devices;
                  block_device* m = co_await devices.create("malloc:///r0?size_mb=1&blk_size=512");
                  std::string why;
                  EXPECT_EQ(co_await claim_reservation(*m, nexus_epoch{k_id, 1}, why), io_status::invalid_opcode);
                  co_await devices.close_all();
                  co_return 0;
              }),
              0);
}
