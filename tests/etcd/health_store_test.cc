// The nexus health record: its JSON (round trip, malformed records refused),
// the in-memory store, and the etcd store against a real etcd (round trip,
// survives an etcd restart, never overwrites another writer's record, a
// retry after a lost answer, refuses a malformed record).
#include <gtest/gtest.h>

#include "storage/nexus/etcd_health_store.hh"
#include "storage/nexus/memory_health_store.hh"
#include "tests/etcd/etcd_fixture.hh"
#include "tests/etcd/etcd_test_engine.hh"

using namespace ioe;

namespace {

nexus_health_record sample(bool clean) {
    nexus_health_record r;
    r.clean_shutdown = clean;
    r.children = {{"0b3c7a52-9d1e-4f5a-8a43-1b2c3d4e5f60", true},
                  {"5f1d2e3c-4b5a-6978-8a9b-0c1d2e3f4a5b", false},
                  {"uuid with \"quotes\" and \\ and \x01", true}};
    return r;
}

std::string refusal(std::string_view text) {
    try {
        decode_health_record(text, "/k");
    } catch (const health_record_error& e) {
        return e.what();
    }
    return "accepted";
}

}  // namespace

TEST(health_record, json_round_trip) {
    for (bool clean : {false, true}) {
        nexus_health_record r = sample(clean);
        std::string text = encode_health_record(r);
        EXPECT_EQ(decode_health_record(text, "/k"), r);
    }
    nexus_health_record empty;
    EXPECT_EQ(encode_health_record(empty), R"({"version":2,"epoch":0,"owner":"","clean_shutdown":false,"children":[]})");
    EXPECT_EQ(decode_health_record(encode_health_record(empty), "/k"), empty);
    // With nexus snapshot history: version 3, read back the same.
    nexus_health_record h = sample(false);
    h.snapshots = 7;
    h.history_missing = {h.children[1].first};
    const std::string text = encode_health_record(h);
    EXPECT_EQ(text.rfind(R"({"version":3,)", 0), 0u) << text;
    EXPECT_NE(text.find(R"(,"snapshots":7,"history_missing":["5f1d2e3c-4b5a-6978-8a9b-0c1d2e3f4a5b"]})"),
              std::string::npos)
        << text;
    EXPECT_EQ(decode_health_record(text, "/k"), h);
}

TEST(health_record, malformed_records_are_refused_with_the_reason) {
    auto ok = R"({"version":1,"clean_shutdown":true,"children":[{"uuid":"a","healthy":true}]})";
    EXPECT_EQ(refusal(ok), "accepted");
    EXPECT_NE(refusal("{not json").find("malformed"), std::string::npos);
    EXPECT_NE(refusal("[]").find("not a JSON object"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":4,"clean_shutdown":true,"children":[]})").find("version 4"), std::string::npos);
    const std::string v3 = R"({"version":3,"epoch":1,"owner":"","clean_shutdown":true,"children":[{"uuid":"a","healthy":true}])";
    EXPECT_EQ(refusal(v3 + R"(,"snapshots":2,"history_missing":["a"]})"), "accepted");
    EXPECT_NE(refusal(v3 + "}").find("snapshots"), std::string::npos);
    EXPECT_NE(refusal(v3 + R"(,"snapshots":-1,"history_missing":[]})").find("snapshots"), std::string::npos);
    EXPECT_NE(refusal(v3 + R"(,"snapshots":2})").find("history_missing"), std::string::npos);
    EXPECT_NE(refusal(v3 + R"(,"snapshots":2,"history_missing":["b"]})").find("not a child"), std::string::npos);
    EXPECT_NE(refusal(v3 + R"(,"snapshots":2,"history_missing":["a","a"]})").find("twice"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":2,"epoch":1,"owner":"","clean_shutdown":true,"children":[],"snapshots":1})")
                  .find("version 2 record"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"clean_shutdown":true,"children":[]})").find("version"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":"1","clean_shutdown":true,"children":[]})").find("version"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"children":[]})").find("clean_shutdown"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":1,"children":[]})").find("clean_shutdown"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true})").find("children"), std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true,"children":[],"extra":0})").find("extra"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"version":1,"clean_shutdown":true,"children":[]})").find("twice"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true,"children":[{"uuid":"a"}]})").find("healthy"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true,"children":[{"uuid":"","healthy":true}]})").find("uuid"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true,"children":[{"uuid":"a","healthy":true},)"
                      R"({"uuid":"a","healthy":false}]})")
                  .find("listed twice"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true,"children":[{"uuid":"a","healthy":true,"x":1}]})")
                  .find("unknown child field"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"version":1,"clean_shutdown":true,"children":[]} x)").find("trailing"), std::string::npos);
}

TEST(memory_health_store, round_trip_unavailable_and_malformed) {
    test::run_with_control(1, [](engine&, control_thread&) -> future<> {
        memory_health_store s;
        EXPECT_FALSE((co_await s.load("/n1")).has_value());
        co_await s.store("/n1", sample(false));
        EXPECT_EQ(s.stores(), 1u);
        EXPECT_EQ(co_await s.load("/n1"), sample(false));
        EXPECT_EQ(s.raw("/n1"), encode_health_record(sample(false)));
        s.set_available(false);
        bool failed = false;
        try {
            co_await s.store("/n1", sample(true));
        } catch (const health_store_unavailable&) {
            failed = true;
        }
        EXPECT_TRUE(failed);
        s.set_available(true);
        EXPECT_EQ(co_await s.load("/n1"), sample(false));  // the failed store changed nothing
        s.put_raw("/n1", R"({"version":1})");
        failed = false;
        try {
            co_await s.load("/n1");
        } catch (const health_record_error&) {
            failed = true;
        }
        EXPECT_TRUE(failed);
        co_await s.remove("/n1");
        EXPECT_FALSE((co_await s.load("/n1")).has_value());
    });
}

TEST(etcd_health_store, round_trip_and_survives_an_etcd_restart) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    const std::string key = "/ioengine/nexus/7c9e6679-7425-40de-944b-e07fc1f90ae7/health";
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        etcd_health_store s(c);
        EXPECT_FALSE((co_await s.load(key)).has_value());
        co_await s.store(key, sample(false));
        nexus_health_record later = sample(false);
        later.children[0].second = false;  // a child faulted
        co_await s.store(key, later);
        EXPECT_EQ(co_await s.load(key), later);
        // What etcd holds is the documented JSON.
        auto raw = co_await c.get(key);
        EXPECT_EQ(raw ? raw->value : "", encode_health_record(later));
        later.clean_shutdown = true;
        co_await s.store(key, later);
    });
    etcd.restart();
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        etcd_health_store s(c);
        auto r = co_await s.load(key);
        EXPECT_TRUE(r.has_value());
        if (r) {
            EXPECT_TRUE(r->clean_shutdown);
            EXPECT_EQ(r->children.size(), 3u);
            EXPECT_FALSE(r->children[0].second);
            EXPECT_FALSE(r->children[1].second);
            EXPECT_TRUE(r->children[2].second);
        }
        co_await s.remove(key);
        EXPECT_FALSE((co_await s.load(key)).has_value());
        co_await s.remove(key);  // removing nothing is fine
    });
}

TEST(etcd_health_store, never_overwrites_another_writers_record) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    const std::string key = "/ioengine/nexus/n2/health";
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        etcd_health_store mine(c), theirs(c);
        EXPECT_FALSE((co_await mine.load(key)).has_value());
        EXPECT_FALSE((co_await theirs.load(key)).has_value());
        co_await theirs.store(key, sample(true));
        // Mine read "absent": creating over their record is refused.
        std::string error;
        try {
            co_await mine.store(key, sample(false));
        } catch (const health_record_conflict& ex) {
            error = ex.what();
        }
        EXPECT_NE(error.find("changed by another writer"), std::string::npos) << error;
        EXPECT_EQ(co_await theirs.load(key), sample(true));
        // After reading theirs, mine may write; now theirs is the stale one.
        EXPECT_EQ(co_await mine.load(key), sample(true));
        co_await mine.store(key, sample(false));
        error.clear();
        try {
            co_await theirs.store(key, sample(true));
        } catch (const health_record_conflict& ex) {
            error = ex.what();
        }
        EXPECT_FALSE(error.empty());
        EXPECT_EQ(co_await theirs.load(key), sample(false));
        // A store that never read the key may only create it.
        etcd_health_store fresh(c);
        error.clear();
        try {
            co_await fresh.store(key, sample(true));
        } catch (const health_record_conflict& ex) {
            error = ex.what();
        }
        EXPECT_FALSE(error.empty());
    });
}

TEST(etcd_health_store, a_retry_after_a_lost_answer_succeeds) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    const std::string key = "/ioengine/nexus/n3/health";
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        etcd_health_store s(c);
        EXPECT_FALSE((co_await s.load(key)).has_value());
        // The first attempt landed but its answer never came back: etcd holds
        // exactly the bytes the retry writes, at a revision the store never saw.
        co_await c.put(key, encode_health_record(sample(false)));
        co_await s.store(key, sample(false));  // adopts it
        nexus_health_record next = sample(false);
        next.clean_shutdown = true;
        co_await s.store(key, next);  // and carries on from its revision
        EXPECT_EQ(co_await s.load(key), next);
    });
}

TEST(etcd_health_store, a_malformed_record_is_refused) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    const std::string key = "/ioengine/nexus/n4/health";
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}));
        etcd_health_store s(c);
        for (std::string bad : {std::string("{\"version\":1,\"clean_shutdown\":tru"),
                                std::string(R"({"version":9,"clean_shutdown":true,"children":[]})"),
                                std::string("\xff\xfe binary")}) {
            co_await c.put(key, bad);
            std::string error;
            try {
                co_await s.load(key);
            } catch (const health_record_error& ex) {
                error = ex.what();
            }
            EXPECT_NE(error.find(key), std::string::npos) << bad;
            EXPECT_NE(error.find("refusing to guess"), std::string::npos) << error;
        }
        // And the store did not learn a revision from it: it may not overwrite.
        bool refused = false;
        try {
            co_await s.store(key, sample(true));
        } catch (const health_record_conflict&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
    });
}

TEST(etcd_health_store, fails_clearly_when_etcd_is_frozen) {
    test::etcd_server etcd;
    IOE_NEED_ETCD(etcd);
    const std::string key = "/ioengine/nexus/n5/health";
    test::run_with_control(1, [&](engine& e, control_thread& ctl) -> future<> {
        etcd_client c(e, ctl, test::etcd_config_for({etcd.endpoint()}, 500));
        etcd_health_store s(c);
        EXPECT_FALSE((co_await s.load(key)).has_value());
        etcd.pause();
        auto err = co_await test::expect_etcd_error(s.store(key, sample(false)));
        EXPECT_TRUE(err && err->error_kind() == etcd_error::kind::timeout);
        etcd.resume();
        // The retry after the timeout: whether or not the first landed, it succeeds.
        co_await s.store(key, sample(false));
        EXPECT_EQ(co_await s.load(key), sample(false));
    });
}
