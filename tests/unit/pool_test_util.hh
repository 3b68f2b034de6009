// Helpers for pool and replica tests: stamped block patterns written and
// checked through a device's channel on the calling shard.
#pragma once

#include <cstring>

#include "runtime/engine.hh"
#include "storage/block_device.hh"

namespace ioe::test {

// Every 8-byte word of block `lba` holds (lba << 16 | seed), so a block read
// from the wrong place or with the wrong generation is noticed.
inline void stamp(std::byte* p, std::uint32_t bs, std::uint64_t lba, std::uint16_t seed) {
    const std::uint64_t word = lba << 16 | seed;
    for (std::uint32_t i = 0; i < bs; i += 8) std::memcpy(p + i, &word, 8);
}

// At most 1 MiB per call (the largest DMA buffer); see write_stamped_range.
inline future<io_status> write_stamped(block_device* dev, std::uint64_t lba, std::uint32_t blocks,
                                       std::uint16_t seed) {
    const std::uint32_t bs = dev->block_size();
    auto buf = engine::current()->dma().allocate(std::uint64_t(blocks) * bs);
    if (!buf) co_return io_status::internal_error;
    for (std::uint32_t b = 0; b < blocks; ++b) stamp(buf->data() + std::uint64_t(b) * bs, bs, lba + b, seed);
    io_vec v = to_io_vec(*buf);
    io_channel* ch = dev->channel();
    if (!ch) co_return io_status::namespace_not_ready;
    co_return co_await ch->write(lba, blocks, io_vecs(&v, 1));
}

// Reads blocks (at most 1 MiB) and counts those that do not carry (lba,
// seed); seed < 0 expects zeros. Returns -1 when the read itself fails.
inline future<int> count_bad_chunk(block_device* dev, std::uint64_t lba, std::uint32_t blocks, int seed) {
    const std::uint32_t bs = dev->block_size();
    auto buf = engine::current()->dma().allocate(std::uint64_t(blocks) * bs);
    if (!buf) co_return -1;
    std::memset(buf->data(), 0x5a, buf->size());
    io_vec v = to_io_vec(*buf);
    io_channel* ch = dev->channel();
    if (!ch) co_return -1;
    io_status st = co_await ch->read(lba, blocks, io_vecs(&v, 1));
    if (!ok(st)) co_return -1;
    std::vector<std::byte> expect(bs);
    int bad = 0;
    for (std::uint32_t b = 0; b < blocks; ++b) {
        if (seed < 0) {
            std::memset(expect.data(), 0, bs);
        } else {
            stamp(expect.data(), bs, lba + b, static_cast<std::uint16_t>(seed));
        }
        if (std::memcmp(buf->data() + std::uint64_t(b) * bs, expect.data(), bs) != 0) ++bad;
    }
    co_return bad;
}

// Any length, in 1 MiB pieces.
inline future<io_status> write_stamped_range(block_device* dev, std::uint64_t lba, std::uint64_t blocks,
                                             std::uint16_t seed) {
    const std::uint32_t per = (1u << 20) / dev->block_size();
    for (std::uint64_t done = 0; done < blocks; done += per) {
        auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(per, blocks - done));
        io_status st = co_await write_stamped(dev, lba + done, n, seed);
        if (!ok(st)) co_return st;
    }
    co_return io_status::success;
}

inline future<int> count_bad(block_device* dev, std::uint64_t lba, std::uint64_t blocks, int seed) {
    const std::uint32_t per = (1u << 20) / dev->block_size();
    int bad = 0;
    for (std::uint64_t done = 0; done < blocks; done += per) {
        auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(per, blocks - done));
        int b = co_await count_bad_chunk(dev, lba + done, n, seed);
        if (b < 0) co_return -1;
        bad += b;
    }
    co_return bad;
}

}  // namespace ioe::test
