// Actors: calls run on the owner shard, errors come back, close() refuses new
// calls and waits for those in flight; the registry maps names to refs.
#include <gtest/gtest.h>

#include <stdexcept>

#include "actors/actor.hh"
#include "actors/registry.hh"
#include "runtime/timer.hh"
#include "tests/unit/test_engine.hh"

using namespace ioe;
using namespace std::chrono_literals;

namespace {

class counter final : public actor {
public:
    explicit counter(std::string name) : actor(std::move(name)) {}
    unsigned add(unsigned n) {
        _value += n;
        _last_shard = this_shard_id();
        return _value;
    }
    unsigned last_shard() const { return _last_shard; }
    future<unsigned> slow_add(unsigned n, unsigned ms) {
        co_await sleep(std::chrono::milliseconds(ms));
        co_return add(n);
    }
    int fail(int code) { throw std::runtime_error("device error " + std::to_string(code)); }

private:
    unsigned _value = 0;
    unsigned _last_shard = 99;
};

}  // namespace

TEST(actor, calls_run_on_the_owner_shard) {
    IOE_NEED_CORES(2);
    unsigned value = 0, shard = 0, owner = 0;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        // Create the actor on shard 1: that is its owner for life.
        counter* c = co_await submit_to(1, [] { return new counter("c1"); });
        actor_ref<counter> ref(c);
        owner = ref.shard();
        co_await ref.call(&counter::add, 5u);
        value = co_await ref.call(&counter::slow_add, 10u, 1u);
        shard = co_await ref.call(&counter::last_shard);
        co_await submit_to(1, [c]() -> future<> {
            co_await c->close();
            delete c;
        });
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(owner, 1u);
    EXPECT_EQ(value, 15u);
    EXPECT_EQ(shard, 1u);
}

TEST(actor, errors_reach_the_caller) {
    IOE_NEED_CORES(2);
    std::string what;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        counter* c = co_await submit_to(1, [] { return new counter("c2"); });
        try {
            co_await actor_ref<counter>(c).call(&counter::fail, 5);
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        co_await submit_to(1, [c]() -> future<> {
            co_await c->close();
            delete c;
        });
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(what, "device error 5");
}

TEST(actor, close_waits_for_calls_in_flight_and_refuses_new_ones) {
    IOE_NEED_CORES(2);
    unsigned in_flight_at_close = 99, value_at_close = 0, slow_result = 0;
    bool refused = false;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        counter* c = co_await submit_to(1, [] { return new counter("c3"); });
        actor_ref<counter> ref(c);
        auto slow = ref.call(&counter::slow_add, 1u, 30u);
        co_await sleep(5ms);  // the slow call is running on shard 1
        auto closed = submit_to(1, [c, &in_flight_at_close, &value_at_close]() -> future<> {
            co_await c->close();
            in_flight_at_close = c->calls_in_flight();
            value_at_close = c->add(0);  // direct call on the owner: the slow add is in
            delete c;
        });
        co_await sleep(1ms);
        try {
            // c is closing (not yet deleted: the slow call still runs).
            co_await ref.call(&counter::add, 1u);
        } catch (const actor_closed_error&) {
            refused = true;
        }
        slow_result = co_await std::move(slow);
        co_await std::move(closed);
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(refused);
    EXPECT_EQ(slow_result, 1u);
    EXPECT_EQ(in_flight_at_close, 0u);
    EXPECT_EQ(value_at_close, 1u);  // close returned after the slow call finished
}

TEST(registry, finds_by_name_and_type_and_refuses_duplicates) {
    IOE_NEED_CORES(2);
    bool found = false, dup_refused = false, removed = false, gone = false;
    unsigned shard = 0;
    int rc = test::run_engine(test::small_config(), [&](engine*) -> future<int> {
        registry reg;  // owned by shard 0
        counter* c = co_await submit_to(1, [] { return new counter("pool-a"); });
        co_await reg.add("pool-a", actor_ref<counter>(c));
        // Look it up from shard 1.
        auto ref = co_await submit_to(1, [&reg] { return reg.find<counter>("pool-a"); });
        found = ref.has_value();
        if (ref) shard = ref->shard();
        try {
            co_await reg.add("pool-a", actor_ref<counter>(c));
        } catch (const already_registered_error&) {
            dup_refused = true;
        }
        removed = co_await reg.remove("pool-a");
        gone = !(co_await reg.find<counter>("pool-a")).has_value();
        co_await submit_to(1, [c]() -> future<> {
            co_await c->close();
            delete c;
        });
        co_return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(found);
    EXPECT_EQ(shard, 1u);
    EXPECT_TRUE(dup_refused);
    EXPECT_TRUE(removed);
    EXPECT_TRUE(gone);
}
