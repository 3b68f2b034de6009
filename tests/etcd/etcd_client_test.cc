// The etcd client against a real etcd 3.4: get/put/compare-and-put/delete,
// results on the calling shard, endpoint failover, timeouts while etcd is
// frozen (SIGSTOP), data kept across a restart, and clear errors.
#include <gtest/gtest.h>

#include "runtime/etcd_client.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "tests/etcd/etcd_fixture.hh"
#include "tests/etcd/etcd_test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

TEST(etcd_client, put_get_and_delete) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        EXPECT_FALSE((co_await c.get("/ioe/test/absent")).has_value());
        static constexpr char raw[] = "bytes \0\x01\xff and \"quotes\"";
        const std::string value(raw, sizeof raw - 1);  // the NUL inside included
        std::int64_t rev = co_await c.put("/ioe/test/k", value);
        EXPECT_GT(rev, 0);
        auto got = co_await c.get("/ioe/test/k");
        EXPECT_TRUE(got.has_value());
        if (got) {
            EXPECT_EQ(got->value, value);
            EXPECT_EQ(got->mod_revision, rev);
        }
        std::int64_t rev2 = co_await c.put("/ioe/test/k", "second");
        EXPECT_GT(rev2, rev);
        EXPECT_EQ((co_await c.get("/ioe/test/k"))->value, "second");
        EXPECT_TRUE(co_await c.remove("/ioe/test/k"));
        EXPECT_FALSE((co_await c.get("/ioe/test/k")).has_value());
        EXPECT_FALSE(co_await c.remove("/ioe/test/k"));
    });
}

TEST(etcd_client, compare_and_put_never_overwrites_a_newer_value) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        // Create-only (expected 0) succeeds on an absent key ...
        etcd_cas_result a = co_await c.compare_and_put("/ioe/cas", "a", 0);
        EXPECT_TRUE(a.succeeded);
        EXPECT_GT(a.mod_revision, 0);
        // ... and fails once it exists, showing what is there.
        etcd_cas_result again = co_await c.compare_and_put("/ioe/cas", "b", 0);
        EXPECT_FALSE(again.succeeded);
        EXPECT_TRUE(again.current.has_value());
        if (again.current) {
            EXPECT_EQ(again.current->value, "a");
            EXPECT_EQ(again.current->mod_revision, a.mod_revision);
        }
        // Someone else writes: the old revision no longer matches.
        std::int64_t other = co_await c.put("/ioe/cas", "other");
        etcd_cas_result stale = co_await c.compare_and_put("/ioe/cas", "b", a.mod_revision);
        EXPECT_FALSE(stale.succeeded);
        EXPECT_EQ(stale.current ? stale.current->value : "", "other");
        EXPECT_EQ((co_await c.get("/ioe/cas"))->value, "other");
        // With the current revision it goes through.
        etcd_cas_result ok = co_await c.compare_and_put("/ioe/cas", "b", other);
        EXPECT_TRUE(ok.succeeded);
        EXPECT_GT(ok.mod_revision, other);
        auto now = co_await c.get("/ioe/cas");
        EXPECT_EQ(now->value, "b");
        EXPECT_EQ(now->mod_revision, ok.mod_revision);
        // A key deleted since: the failure says it is absent.
        co_await c.remove("/ioe/cas");
        etcd_cas_result gone = co_await c.compare_and_put("/ioe/cas", "c", ok.mod_revision);
        EXPECT_FALSE(gone.succeeded);
        EXPECT_FALSE(gone.current.has_value());
    });
}

TEST(etcd_client, the_result_comes_back_on_the_calling_shard) {
    IOE_NEED_CORES(2);
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(2, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        unsigned shard_after = co_await submit_to(1, [&c]() -> future<unsigned> {
            co_await c.put("/ioe/shard", "from shard 1");
            auto v = co_await c.get("/ioe/shard");
            if (!v || v->value != "from shard 1") throw std::runtime_error("wrong value on shard 1");
            co_return this_shard_id();
        });
        EXPECT_EQ(shard_after, 1u);
        EXPECT_EQ(this_shard_id(), 0u);
    });
}

TEST(etcd_client, moves_on_to_the_next_endpoint_when_one_is_down) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    std::string dead = "127.0.0.1:" + std::to_string(test::free_loopback_port());
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({dead, "http://" + etcd.endpoint()}));
        std::int64_t rev = co_await c.put("/ioe/failover", "v");
        EXPECT_GT(rev, 0);
        auto v = co_await c.get("/ioe/failover");
        EXPECT_EQ(v ? v->value : "", "v");
        // Compare-and-put fails over too while nothing was sent.
        etcd_cas_result r = co_await c.compare_and_put("/ioe/failover", "w", rev);
        EXPECT_TRUE(r.succeeded);

        // Every endpoint down: unavailable, naming the endpoints and the key.
        std::string dead2 = "127.0.0.1:" + std::to_string(test::free_loopback_port());
        etcd_client none(e, ctl, test::etcd_config_for({dead, dead2}));
        auto err = co_await test::expect_etcd_error(none.get("/ioe/failover"));
        EXPECT_TRUE(err.has_value());
        if (err) {
            EXPECT_EQ(err->error_kind(), etcd_error::kind::unavailable);
            EXPECT_EQ(err->key(), "/ioe/failover");
            std::string msg = err->what();
            EXPECT_NE(msg.find(dead), std::string::npos) << msg;
            EXPECT_NE(msg.find(dead2), std::string::npos) << msg;
            EXPECT_NE(msg.find("/ioe/failover"), std::string::npos) << msg;
            EXPECT_NE(msg.find("refused"), std::string::npos) << msg;
        }
    });
}

TEST(etcd_client, times_out_while_etcd_is_frozen_and_recovers_after) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}, 700));
        co_await c.put("/ioe/frozen", "before");
        etcd.pause();
        auto t0 = std::chrono::steady_clock::now();
        auto err = co_await test::expect_etcd_error(c.compare_and_put("/ioe/frozen", "during", 1));
        auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_TRUE(err.has_value());
        if (err) {
            EXPECT_EQ(err->error_kind(), etcd_error::kind::timeout) << err->what();
            EXPECT_EQ(err->endpoint(), etcd.endpoint());
            std::string msg = err->what();
            EXPECT_NE(msg.find("/ioe/frozen"), std::string::npos) << msg;
            EXPECT_NE(msg.find("timed out after 700 ms"), std::string::npos) << msg;
        }
        EXPECT_GE(took, 650ms);
        EXPECT_LT(took, 3s);
        auto err2 = co_await test::expect_etcd_error(c.get("/ioe/frozen"));
        EXPECT_TRUE(err2 && err2->error_kind() == etcd_error::kind::timeout);
        etcd.resume();
        auto v = co_await c.get("/ioe/frozen");
        EXPECT_TRUE(v.has_value());
        EXPECT_EQ(v ? v->value : "", "before");  // the frozen compare-and-put did not match revision 1
    });
}

TEST(etcd_client, a_restart_with_the_same_data_dir_keeps_the_data) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    std::int64_t rev = 0;
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        rev = co_await c.put("/ioe/durable", "kept");
    });
    etcd.restart();
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        auto v = co_await c.get("/ioe/durable");
        EXPECT_TRUE(v.has_value());
        if (v) {
            EXPECT_EQ(v->value, "kept");
            EXPECT_EQ(v->mod_revision, rev);
        }
    });
}

TEST(etcd_client, stopped_etcd_is_unavailable_and_bad_endpoints_are_refused) {
    EXPECT_THROW(etcd_config::parse_endpoints(""), std::invalid_argument);
    EXPECT_THROW(etcd_config::parse_endpoints("a:1,,b:2"), std::invalid_argument);
    EXPECT_EQ(etcd_config::parse_endpoints("h1:2379,http://h2:2380"),
              (std::vector<std::string>{"h1:2379", "http://h2:2380"}));
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        EXPECT_THROW(etcd_client(e, ctl, test::etcd_config_for({"https://h:2379"})), std::invalid_argument);
        EXPECT_THROW(etcd_client(e, ctl, test::etcd_config_for({"nohostport"})), std::invalid_argument);
        EXPECT_THROW(etcd_client(e, ctl, test::etcd_config_for({"h:99999"})), std::invalid_argument);
        EXPECT_THROW(etcd_client(e, ctl, test::etcd_config_for({})), std::invalid_argument);
        co_return;
    });
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    etcd.stop();
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        auto err = co_await test::expect_etcd_error(c.put("/ioe/x", "y"));
        EXPECT_TRUE(err && err->error_kind() == etcd_error::kind::unavailable);
    });
}
