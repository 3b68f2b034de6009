// Block I/O through the embedded engine for the control-plane tests: write
// a pattern to, and read bytes back from, any device in the node's registry
// (a replica, a snapshot, a clone, a nexus).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "rpc/embedded.hh"
#include "rpc/node_service.hh"
#include "runtime/engine.hh"
#include "storage/block_device.hh"

namespace ioe::test {

// Writes `blocks` blocks of `fill` at `lba` through device `name` (any device
// in the registry: a nexus or a replica); the write's status.
inline io_status write_status(embedded& eng, const std::string& name, std::uint64_t lba, std::uint32_t blocks,
                              std::uint8_t fill) {
    io_status st = io_status::internal_error;
    eng.run([&](rpc::node_service& svc) -> future<> {
        block_device* dev = co_await svc.devices().find(name);
        auto buf = engine::current()->dma().allocate(std::size_t{blocks} * dev->block_size());
        EXPECT_TRUE(buf.ok());
        std::memset(buf.value().data(), fill, buf.value().size());
        io_vec v = to_io_vec(buf.value());
        st = co_await dev->channel()->write(lba, blocks, {&v, 1});
    });
    return st;
}

// The same, expecting success.
inline void write_blocks(embedded& eng, const std::string& name, std::uint64_t lba, std::uint32_t blocks, std::uint8_t fill) {
    EXPECT_EQ(write_status(eng, name, lba, blocks, fill), io_status::success);
}

// The bytes of [lba, lba + blocks) of device `name`.
inline std::string read_blocks(embedded& eng, const std::string& name, std::uint64_t lba, std::uint32_t blocks) {
    std::string out;
    eng.run([&](rpc::node_service& svc) -> future<> {
        block_device* dev = co_await svc.devices().find(name);
        auto buf = engine::current()->dma().allocate(std::size_t{blocks} * dev->block_size());
        EXPECT_TRUE(buf.ok());
        io_vec v = to_io_vec(buf.value());
        EXPECT_EQ(co_await dev->channel()->read(lba, blocks, {&v, 1}), io_status::success);
        out.assign(reinterpret_cast<const char*>(buf.value().data()), buf.value().size());
    });
    return out;
}

}  // namespace ioe::test
