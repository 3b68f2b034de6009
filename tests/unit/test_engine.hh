// Helpers for unit tests that need a running engine: a small configuration
// on the first two allowed cores, and run_engine() which runs a coroutine on
// shard 0 and returns its exit code.
#pragma once

#include <gtest/gtest.h>

#include <functional>

#include "runtime/cores.hh"
#include "runtime/engine.hh"

namespace ioe::test {

inline engine_config small_config(unsigned shards = 2, poll_mode mode = poll_mode::adaptive) {
    engine_config cfg;
    auto allowed = allowed_cores();
    for (unsigned i = 0; i < shards && i < allowed.size(); ++i) cfg.cores.push_back(allowed[i]);
    cfg.reactor.mode = mode;
    cfg.memory.size_mb = 64;  // chunks stay in their size class: room for all nine
    return cfg;
}

inline bool have_cores(unsigned n) { return allowed_cores().size() >= n; }

#define IOE_NEED_CORES(n)                                                              \
    do {                                                                               \
        if (!::ioe::test::have_cores(n)) GTEST_SKIP() << "needs " << (n) << " cores";  \
    } while (0)

// Runs body(engine*) on shard 0; returns its value.
inline int run_engine(engine_config cfg, std::function<future<int>(engine*)> body) {
    engine e(std::move(cfg));
    return e.run([&e, &body] { return body(&e); });
}

}  // namespace ioe::test
