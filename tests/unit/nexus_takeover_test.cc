// Takeover rules of nexus::create (storage/nexus/nexus_takeover.hh):
// a takeover needs the record; a plain create over a record another node
// runs is refused while a clean shutdown (a planned move) lets it through;
// and a takeover that takes the epoch but can reserve no child (a foreign
// host holds both, over NVMe/TCP with our target's reservations) fails,
// leaves the children recorded as they were, and the next takeover, once
// the children are free, opens them all in sync with the next epoch.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <memory>
#include <vector>

#include "nvme/initiator/nvmf_backend.hh"
#include "nvme/target/target.hh"
#include "runtime/timer.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/nexus/memory_health_store.hh"
#include "storage/nexus/nexus.hh"
#include "storage/nexus/nexus_takeover.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

const uuid k_id = *uuid::parse("7a4e0000-1111-4222-8333-444455556666");
constexpr char k_key[] = "/nexus/takeover";

TEST(nexus_takeover, rule_for_a_new_incarnation) {
    auto code_of = [](bool takeover, std::optional<nexus_health_record> r) -> std::optional<storage_errc> {
        try {
            check_new_incarnation("nx", k_key, "node-b", takeover, r);
        } catch (const storage_error& e) {
            EXPECT_NE(std::string(e.what()).find(k_key), std::string::npos) << "the error names the record";
            return e.code;
        }
        return std::nullopt;
    };
    const std::optional<storage_errc> allowed;
    const nexus_health_record running{.epoch = 4, .owner = "node-a", .clean_shutdown = false, .children = {}};
    nexus_health_record clean = running;
    clean.clean_shutdown = true;
    nexus_health_record mine = running;
    mine.owner = "node-b";
    EXPECT_EQ(code_of(true, std::nullopt), storage_errc::not_found);
    EXPECT_EQ(code_of(true, running), allowed);
    EXPECT_EQ(code_of(false, std::nullopt), allowed);
    EXPECT_EQ(code_of(false, running), storage_errc::busy);
    EXPECT_EQ(code_of(false, clean), allowed);
    EXPECT_EQ(code_of(false, mine), allowed);

    const nexus_health_record before{.epoch = 4, .owner = "node-a", .clean_shutdown = true,
                                     .children = {{"c1", true}, {"c2", false}}};
    auto after = record_after_failed_claim(before, 5, "node-b", nexus_health_record{});
    EXPECT_EQ(after.epoch, 5u);
    EXPECT_EQ(after.owner, "node-b");
    EXPECT_FALSE(after.clean_shutdown);
    EXPECT_EQ(after.children, before.children);
}

std::string nqn(unsigned i) { return fmt::format("nqn.2026-12.io.ioengine:takeover-{}", i); }

future<io_status> hold_as_foreign(block_device* dev, std::uint64_t victim) {
    io_channel* ch = dev->channel();
    if (!ch) co_return io_status::namespace_not_ready;
    reservation_register_request reg;
    reg.new_key = 0x1234;
    io_status st = co_await ch->reservation_register(reg);
    if (!ok(st)) co_return st;
    reservation_acquire_request acq;
    acq.action = reservation_acquire_action::preempt;
    acq.current_key = 0x1234;
    acq.preempt_key = victim;
    acq.type = reservation_type::write_exclusive;
    co_return co_await ch->reservation_acquire(acq);
}

future<io_status> let_go(block_device* dev) {
    io_channel* ch = dev->channel();
    if (!ch) co_return io_status::namespace_not_ready;
    reservation_register_request reg;
    reg.action = reservation_register_action::unregister_key;
    reg.current_key = 0x1234;
    co_return co_await ch->reservation_register(reg);
}

future<int> failed_claim_body() {
    nvme::register_nvmf_backend();
    device_registry devices;
    auto target = std::make_unique<nvme::nvmf_target>("127.0.0.1", 0);
    for (unsigned i = 0; i < 2; ++i) {
        nvme::subsystem_config c;
        c.nqn = nqn(i);
        c.namespaces = {co_await devices.create(fmt::format("malloc:///t{}?size_mb=4&blk_size=512", i))};
        co_await target->add_subsystem(std::move(c));
    }
    co_await target->start();
    const std::uint16_t port = target->port();
    auto uri = [&](unsigned i) {
        return fmt::format("nvmf://127.0.0.1:{}/{}?fast_io_fail_ms=200&reconnect_delay_ms=50", port, nqn(i));
    };
    memory_health_store store;
    auto opts = [&](std::string owner, bool takeover) {
        nexus_options o;
        o.health_key = k_key;
        o.health = &store;
        o.registry = &devices;
        o.segment_bytes = 64 * 1024;
        o.health_retries = 1;
        o.health_retry_delay = 10ms;
        o.claim_attempts = 2;
        o.claim_retry_delay = 10ms;
        o.owner = std::move(owner);
        o.takeover = takeover;
        return o;
    };
    try {
        co_await nexus::create("nx", k_id, {uri(0), uri(1)}, opts("node-b", true));
        ADD_FAILURE() << "a takeover without a record succeeded";
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::not_found) << e.what();
    }
    EXPECT_FALSE(co_await store.load(k_key)) << "a refused takeover wrote a record";

    auto a = co_await nexus::create("nx-a", k_id, {uri(0), uri(1)}, opts("node-a", false));
    EXPECT_EQ(a->state(), nexus_state::online);
    const std::uint64_t a_key = a->epoch().reservation_key();
    co_await a->shutdown();  // a planned move: clean record
    co_await a->close();
    a.reset();

    // Somebody else grabs both children: the takeover takes epoch 2 but
    // cannot serve; the record keeps both children in sync.
    std::vector<block_device*> foreign;
    for (unsigned i = 0; i < 2; ++i) {
        foreign.push_back(
            co_await devices.create(fmt::format("nvmf://127.0.0.1:{}/{}?name=foreign{}", port, nqn(i), i)));
        EXPECT_EQ(co_await hold_as_foreign(foreign.back(), a_key), io_status::success);
    }
    try {
        auto b = co_await nexus::create("nx-b", k_id, {uri(0), uri(1)}, opts("node-b", true));
        ADD_FAILURE() << "a takeover served with no child reserved";
        co_await b->close();
    } catch (const storage_error& e) {
        EXPECT_EQ(e.code, storage_errc::unavailable) << e.what();
        EXPECT_NE(std::string(e.what()).find("epoch 2"), std::string::npos) << e.what();
    }
    auto rec = co_await store.load(k_key);
    EXPECT_TRUE(rec && rec->epoch == 2 && !rec->clean_shutdown && rec->children.size() == 2);
    if (rec)
        for (const auto& [id, healthy] : rec->children) EXPECT_TRUE(healthy) << "child " << id << " turned stale";

    // Free again: the retried takeover opens both children in sync.
    for (auto* f : foreign) EXPECT_EQ(co_await let_go(f), io_status::success);
    auto c = co_await nexus::create("nx-c", k_id, {uri(0), uri(1)}, opts("node-b", true));
    EXPECT_EQ(c->info().epoch, 3u);
    EXPECT_EQ(c->state(), nexus_state::online);
    co_await c->shutdown();
    co_await c->close();
    c.reset();
    co_await devices.close_all();
    co_await target->stop();
    co_return 0;
}

}  // namespace

TEST(nexus_takeover, a_takeover_that_reserves_no_child_leaves_the_record_as_it_was) {
    IOE_NEED_CORES(2);
    EXPECT_EQ(test::run_engine(test::small_config(2), [](engine*) { return failed_claim_body(); }), 0);
}
