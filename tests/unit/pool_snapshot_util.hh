// Helpers for the snapshot and clone tests: a pool device on a test
// engine, a per-block content model and its comparison with what a volume
// reads, error codes of refused calls.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "storage/device_registry.hh"
#include "storage/pool.hh"
#include "tests/unit/pool_test_util.hh"
#include "tests/unit/test_engine.hh"

namespace ioe::test::snapshots {

constexpr std::uint32_t MiB = 1 << 20;
constexpr std::uint64_t blocks_per_cluster = 256;  // 4 KiB blocks

inline pool_create_options opts(std::string name) {
    pool_create_options o;
    o.name = std::move(name);
    o.cluster_size = MiB;
    return o;
}

inline int with_device(std::function<future<int>(device_registry*, block_device*)> body,
                const char* uri = "malloc:///d0?size_mb=64&blk_size=4096", unsigned shards = 1) {
    return test::run_engine(test::small_config(shards), [&](engine*) -> future<int> {
        device_registry reg;
        block_device* dev = co_await reg.create(uri);
        int rc = co_await body(&reg, dev);
        co_await reg.close_all();
        co_return rc;
    });
}

// What each block of a volume must hold: a stamp seed, or -1 for zeros.
using content = std::vector<int>;

// Reads the whole volume and counts the blocks that differ from `expect`
// (runs of one seed are read together); -1 when a read fails.
inline future<int> mismatches(block_device* dev, const content& expect) {
    int bad = 0;
    for (std::uint64_t b = 0; b < expect.size();) {
        std::uint64_t e = b + 1;
        while (e < expect.size() && expect[e] == expect[b] && e - b < 256) ++e;
        int n = co_await test::count_bad(dev, b, e - b, expect[b]);
        if (n < 0) co_return -1;
        bad += n;
        b = e;
    }
    co_return bad;
}

inline future<io_status> write_model(block_device* dev, content& model, std::uint64_t lba, std::uint32_t blocks,
                              std::uint16_t seed) {
    io_status st = co_await test::write_stamped_range(dev, lba, blocks, seed);
    if (st == io_status::success) {
        for (std::uint32_t i = 0; i < blocks; ++i) model[lba + i] = seed;
    }
    co_return st;
}

inline storage_errc code_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const storage_error& s) {
        return s.code;
    } catch (...) {
        return storage_errc::internal;
    }
}

inline snapshot_options snap(std::string name, std::string txid = "") {
    snapshot_options o;
    o.name = std::move(name);
    o.txid = std::move(txid);
    return o;
}


}  // namespace ioe::test::snapshots
