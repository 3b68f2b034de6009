// The pool's metadata I/O: reading and writing whole pages through the
// device's channel on the pool's shard, superblock updates, and the group
// commit that makes in-memory metadata changes durable (see pool.hh and
// docs/pool-format.md).
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <utility>

#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "storage/pool.hh"

namespace ioe {
namespace {

constexpr std::uint64_t chunk_bytes = 1 << 20;  // the largest DMA buffer
// Rounds of the task queue a commit waits for more changes to join it (it
// stops at the first round that brought none).
constexpr unsigned max_gather_rounds = 8;

io_channel& channel_of(block_device* dev) {
    io_channel* ch = dev->channel();
    if (!ch) throw storage_error(storage_errc::unavailable, fmt::format("device \"{}\" is closing", dev->name()));
    return *ch;
}

dma_buffer dma_for(std::uint64_t len) {
    engine* e = engine::current();
    if (!e) throw storage_error(storage_errc::internal, "pool metadata I/O needs a running engine");
    auto b = e->dma().allocate(len);
    if (!b) throw storage_error(storage_errc::no_space, "DMA pool exhausted while doing pool metadata I/O");
    return std::move(b.value());
}

void check(io_status st, block_device* dev, const char* what, std::uint64_t offset) {
    if (!ok(st)) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("device \"{}\": {} at byte {} failed: {}", dev->name(), what, offset, to_string(st)));
    }
}

}  // namespace

future<std::vector<std::byte>> pool::read_bytes(block_device* dev, std::uint64_t offset, std::uint64_t len) {
    std::vector<std::byte> out(len);
    const std::uint32_t bs = dev->block_size();
    for (std::uint64_t done = 0; done < len;) {
        std::uint64_t n = std::min(chunk_bytes, len - done);
        dma_buffer buf = dma_for(n);
        io_vec v = to_io_vec(buf);
        io_status st = co_await channel_of(dev).read((offset + done) / bs, static_cast<std::uint32_t>(n / bs),
                                                     io_vecs(&v, 1));
        check(st, dev, "metadata read", offset + done);
        std::memcpy(out.data() + done, buf.data(), n);
        done += n;
    }
    co_return out;
}

future<> pool::write_bytes(block_device* dev, std::uint64_t offset, std::span<const std::byte> data) {
    const std::uint32_t bs = dev->block_size();
    for (std::uint64_t done = 0; done < data.size();) {
        std::uint64_t n = std::min<std::uint64_t>(chunk_bytes, data.size() - done);
        dma_buffer buf = dma_for(n);
        std::memcpy(buf.data(), data.data() + done, n);
        io_vec v = to_io_vec(buf);
        io_status st = co_await channel_of(dev).write((offset + done) / bs, static_cast<std::uint32_t>(n / bs),
                                                      io_vecs(&v, 1));
        check(st, dev, "metadata write", offset + done);
        done += n;
    }
}

future<> pool::flush(block_device* dev) {
    io_status st = co_await channel_of(dev).flush();
    check(st, dev, "flush", 0);
}

// A flush costs what was written since the last one: on a disk with a
// volatile cache (here a virtio disk whose host writes back) one after a
// second of 4K random writes took 47 ms, one right after another 0.3 ms.
// A snapshot's metadata update flushes the data before it writes its
// image, and the volume's writes wait for it. Flushing first, while they
// still run, leaves that flush only what was written meanwhile; a second
// round when the first was slow. Errors are left to the update's own
// flush, which reports them.
future<> pool::preflush() {
    using clk = std::chrono::steady_clock;
    constexpr auto fast = std::chrono::milliseconds(2);
    for (unsigned round = 0; round < 3; ++round) {
        const clk::time_point t0 = clk::now();
        const io_status st = co_await channel_of(_dev).flush();
        if (!ok(st) || clk::now() - t0 < fast) break;
    }
}

future<> pool::write_superblock() {
    const std::uint64_t seq = _geo.sequence + 1;
    auto page = pool_format::encode_superblock(_geo, seq);
    co_await write_bytes(_dev, pool_format::superblock_offset[seq % 2], page);
    co_await flush(_dev);
    _geo.sequence = seq;
}

future<> pool::zero_clusters(const std::vector<std::uint32_t>& clusters) {
    const std::uint32_t bs = _dev->block_size();
    for (std::uint32_t c : clusters) {
        const std::uint64_t offset = _geo.data_offset + std::uint64_t(c) * _geo.cluster_size;
        io_status st = co_await channel_of(_dev).write_zeroes(offset / bs, _geo.cluster_size / bs);
        check(st, _dev, "zeroing a cluster", offset);
    }
    if (!clusters.empty()) co_await flush(_dev);
}

future<> pool::persist() {
    if (_failed) throw storage_error(storage_errc::io_error, *_failed);
    _image_needed = true;
    const std::uint64_t mine = ++_changes;
    co_await wait_durable(mine);
    if (_durable < mine) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("pool \"{}\": metadata update failed: {}", _geo.name, _failed.value_or("?")));
    }
}

future<> pool::persist_redirect(pool_format::delta_entry entry) {
    // Not a coroutine: one frame less per redirected write. The caller
    // checks _failed once it resolves.
    if (_failed) return make_ready_future<>();
    if (_delta.capacity() == 0) _delta.reserve(pool_format::max_delta_entries);
    _delta.push_back(entry);
    return wait_durable(++_changes);
}

future<> pool::wait_durable(std::uint64_t mine) {
    if (!_committing) commit_loop().ignore();
    if (_durable >= mine || _failed) return make_ready_future<>();
    _durable_waiters.push_back(durable_waiter{mine, promise<>()});
    return _durable_waiters.back().done.get_future();
}

future<> pool::commit_loop() {
    _committing = true;
    while (_durable < _changes && !_failed) {
        // Let the changes of the tasks already queued join this commit: on
        // a device that completes at once (a RAM disk) every redirected
        // write would otherwise get a commit of its own, and a commit
        // encodes the whole slot.
        for (unsigned round = 0; round < max_gather_rounds; ++round) {
            const std::uint64_t before = _changes;
            co_await yield();
            if (_changes == before) break;
        }
        const std::uint64_t target = _changes;
        // Copies the changes up to target reference are complete (each was
        // written before its change was made); one flush makes them all
        // durable before the metadata that names them.
        const bool flush_data = std::exchange(_data_before_commit, false);
        // Only redirected writes since the newest image, and room after it
        // in its slot: one delta page there. Else a new image in the other
        // slot (encoded from _meta itself: no copy of the whole state).
        const bool delta = !_image_needed && !_delta.empty() && _delta.size() <= pool_format::max_delta_entries &&
                           _meta.version >= 2 &&
                           _image_bytes + std::uint64_t(_delta_pages + 1) * pool_format::page_bytes <= _geo.slot_bytes;
        const std::uint64_t sequence = delta ? _meta.sequence : _meta.sequence + 1;
        std::vector<std::byte> bytes;
        std::uint64_t offset = pool_format::metadata_offset + (sequence % 2) * _geo.slot_bytes;
        if (delta) {
            bytes.swap(_delta_page);  // a kept buffer: no allocation per delta page
            pool_format::encode_delta(_geo, sequence, _delta_pages + 1, _delta, bytes);
            offset += _image_bytes + std::uint64_t(_delta_pages) * pool_format::page_bytes;
        } else {
            const std::uint64_t current = std::exchange(_meta.sequence, sequence);
            bytes = pool_format::encode_metadata(_geo, _meta);
            _meta.sequence = current;
        }
        _delta.clear();
        _image_needed = false;
        std::string error;
        try {
            if (bytes.size() > _geo.slot_bytes) {
                throw storage_error(storage_errc::internal,
                                    fmt::format("{} bytes of metadata do not fit a {}-byte slot", bytes.size(),
                                                _geo.slot_bytes));
            }
            // Before an image goes into the other slot, the current one (and
            // its delta pages) must be durable; before a delta page, the
            // data it names.
            if (flush_data || (!delta && _delta_unflushed)) co_await flush(_dev);
            co_await write_bytes(_dev, offset, bytes);
            // A delta page is not flushed: its redirected writes are
            // acknowledged once it is written (a kill -9 keeps it), and
            // the volume's next flush, or the next commit's leading
            // flush, makes it durable (the power-loss contract asks no
            // more of a write acknowledged without a flush after it).
            if (!delta) co_await flush(_dev);
            _delta_unflushed = delta;
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (delta) bytes.swap(_delta_page);
        if (error.empty()) {
            if (delta) {
                ++_delta_pages;
            } else {
                _image_bytes = bytes.size();
                _delta_pages = 0;
            }
        }
        if (!error.empty()) {
            fail("metadata write failed: " + error);
        } else {
            _meta.sequence = sequence;  // unchanged by a delta page
            _durable = target;
        }
        // Wake everyone whose change is now durable (or all, on failure).
        // (Through a kept scratch vector: no allocation per commit.)
        _waking.clear();
        std::size_t kept = 0;
        for (auto& w : _durable_waiters) {
            if (w.change <= _durable || _failed) {
                _waking.push_back(std::move(w));
            } else {
                if (&_durable_waiters[kept] != &w) _durable_waiters[kept] = std::move(w);
                ++kept;
            }
        }
        _durable_waiters.erase(_durable_waiters.begin() + static_cast<std::ptrdiff_t>(kept), _durable_waiters.end());
        for (auto& w : _waking) w.done.set_value();
        _waking.clear();
    }
    _committing = false;
}

}  // namespace ioe
