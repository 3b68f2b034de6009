// The complete example of docs/embedding.md, compiled and run as a test so
// that the page never drifts from the code: an engine in this process with
// two shards (one when the machine has one core), an in-memory pool, a
// replica written and read back on shard 0, shared over NVMe/TCP, reached
// over the RPC as well, stopped cleanly.
#include <gtest/gtest.h>

#include <cstring>

#include "rpc/client.hh"
#include "rpc/embedded.hh"
#include "runtime/cores.hh"
#include "storage/block_device.hh"

TEST(embedding, the_documented_example) {
    ioe::embedded_options opts;
    opts.shards = ioe::allowed_cores().size() >= 2 ? 2 : 1;
    opts.dma_mb = 32;                     // DMA pool of ordinary memory
    opts.nvmf_listen = "127.0.0.1:0";     // an NVMe/TCP target on any free port
    opts.rpc = {"127.0.0.1:0"};           // and the RPC, for ioengine-ctl or rpc_client
    ioe::embedded eng(opts);              // returns once everything listens

    // The same operations as the RPC, synchronous.
    eng.create_pool("p0", "malloc:///m0?size_mb=64");
    auto r = eng.create_replica("p0", "r1", 16 << 20, /*thin=*/true);
    EXPECT_EQ(r.replica.size_bytes, 16u << 20);

    // I/O runs on a shard: run() takes a coroutine to run on shard 0.
    eng.run([](ioe::rpc::node_service& svc) -> ioe::future<> {
        ioe::block_device* dev = co_await svc.devices().find("r1");
        auto buf = ioe::engine::current()->dma().allocate(4096);
        std::memset(buf.value().data(), 0xab, 4096);
        ioe::io_vec v = ioe::to_io_vec(buf.value());
        std::uint32_t blocks = 4096 / dev->block_size();
        EXPECT_EQ(co_await dev->channel()->write(0, blocks, {&v, 1}), ioe::io_status::success);
        std::memset(buf.value().data(), 0, 4096);
        EXPECT_EQ(co_await dev->channel()->read(0, blocks, {&v, 1}), ioe::io_status::success);
        EXPECT_EQ(static_cast<unsigned char>(buf.value().data()[4095]), 0xab);
    });

    auto share = eng.share_replica("r1", {"nqn.2014-08.org.nvmexpress:uuid:5555"});
    EXPECT_EQ(share.nqn, "nqn.2019-05.io.ioengine:r1");
    EXPECT_EQ(share.port, eng.nvmf_port());

    ioe::rpc::rpc_client client(eng.rpc_addresses().at(0));
    EXPECT_EQ(client.stats(ioe::rpc::stats_kind::replica, "r1").at(0).counters.write_ops, 1u);

    eng.stop();  // unshares, exports the pool, closes devices, joins the shards
    EXPECT_THROW(eng.list_pools(), ioe::storage_error);
}
