// The block device contract: what every backend (malloc, null, uring, and
// later nvme-pcie and nvmf), every replica and the nexus provide.
//
// A device is an actor on the shard that created it. I/O does not go through
// the actor: each shard that does I/O opens its own *channel* to the device
// (an io_uring of its own, a queue pair of its own), so the data path never
// hops between cores and takes no lock. channel() returns the calling shard's
// channel, opening it on first use.
//
// io_channel is the checked front of a backend's device_channel: it refuses
// I/O past the end (LBA out of range), buffers that do not add up to the
// length (invalid field) and I/O on a closing device (namespace not ready),
// and counts I/O in flight so that close() can wait for it on every shard.
// The io_vec array passed to an operation must stay valid until its future
// completes (the caller owns it, usually inside its own coroutine frame).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "actors/actor.hh"
#include "runtime/dma.hh"
#include "runtime/future.hh"
#include "storage/io_status.hh"
#include "storage/io_vec.hh"
#include "storage/reservation.hh"
#include "storage/snapshot_op.hh"
#include "storage/uuid.hh"

namespace ioe {

inline io_vec to_io_vec(const dma_buffer& b) noexcept {
    return io_vec{b.data(), static_cast<std::uint32_t>(b.size()), b.buf_index()};
}
inline io_vec to_io_vec(const dma_buffer& b, std::size_t offset, std::size_t len) noexcept {
    return io_vec{b.data() + offset, static_cast<std::uint32_t>(len), b.buf_index()};
}

// A backend's per-shard channel. Called only through io_channel (checked).
class device_channel {
public:
    virtual ~device_channel() = default;
    virtual future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) = 0;
    virtual future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) = 0;
    virtual future<io_status> flush() = 0;
    virtual future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) = 0;
    virtual future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) = 0;
    // Reservations (storage/reservation.hh); the default: not supported.
    virtual future<io_status> reservation_register(const reservation_register_request&) {
        return make_ready_future<io_status>(io_status::invalid_opcode);
    }
    virtual future<io_status> reservation_acquire(const reservation_acquire_request&) {
        return make_ready_future<io_status>(io_status::invalid_opcode);
    }
    // Fills `out` on success.
    virtual future<io_status> read_reservation(reservation_report& out) {
        (void)out;
        return make_ready_future<io_status>(io_status::invalid_opcode);
    }
    // A snapshot of what is behind the device (storage/snapshot_op.hh);
    // fills `out` on success. The default: not supported.
    virtual future<io_status> snapshot(const device_snapshot_request& r, device_snapshot_reply& out) {
        (void)r, (void)out;
        return make_ready_future<io_status>(io_status::invalid_opcode);
    }
    // On the channel's shard, with nothing in flight, before destruction.
    virtual future<> close() { return make_ready_future<>(); }
};

// Per channel, written only by its shard (plain increments; read by hopping
// there). Latency: from the call to the completion of every operation that
// reached the backend; bucket b of the histogram counts latencies below
// 1024 << b ns (about 1 us .. 4.3 s), the last one everything above.
struct channel_stats {
    static constexpr unsigned latency_buckets = 24;
    std::uint64_t read_ops = 0, write_ops = 0, flush_ops = 0, zeroes_ops = 0, unmap_ops = 0;
    std::uint64_t read_bytes = 0, write_bytes = 0;
    std::uint64_t errors = 0;
    std::uint64_t latency_ns_sum = 0, latency_ns_min = 0, latency_ns_max = 0;  // min 0: none yet
    std::array<std::uint64_t, latency_buckets> latency_histogram{};

    void record_latency(std::uint64_t ns) noexcept {
        latency_ns_sum += ns;
        if (ns < latency_ns_min || latency_ns_min == 0) latency_ns_min = ns ? ns : 1;
        if (ns > latency_ns_max) latency_ns_max = ns;
        unsigned b = static_cast<unsigned>(std::bit_width(ns >> 10));
        ++latency_histogram[b < latency_buckets ? b : latency_buckets - 1];
    }
    // Adds another channel's counters (min and max taken over both).
    void merge(const channel_stats& o) noexcept;
};

class block_device;

class io_channel {
public:
    io_channel(block_device& dev, std::unique_ptr<device_channel> impl) noexcept
        : _dev(dev), _impl(std::move(impl)) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov);
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov);
    future<io_status> flush();
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks);
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks);
    // Control path (the nexus's fencing): passed to the backend, counted in
    // flight like I/O so that close() waits for them.
    future<io_status> reservation_register(const reservation_register_request& r);
    future<io_status> reservation_acquire(const reservation_acquire_request& r);
    future<io_status> read_reservation(reservation_report& out);
    // Control path (the nexus's snapshot), counted in flight likewise.
    future<io_status> snapshot(const device_snapshot_request& r, device_snapshot_reply& out);

    unsigned in_flight() const noexcept { return _in_flight; }
    const channel_stats& stats() const noexcept { return _stats; }
    device_channel& backend() const noexcept { return *_impl; }
    block_device& device() const noexcept { return _dev; }

    // Refuses new I/O, waits for what is in flight, closes the backend.
    future<> close();

private:
    io_status check_range(std::uint64_t lba, std::uint64_t blocks) const noexcept;
    io_status check_transfer(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) const noexcept;
    future<io_status> track(future<io_status> f, std::uint64_t start_ns);
    static future<io_status> finish(future<io_status> f, io_channel* ch, std::uint64_t start_ns);

    block_device& _dev;
    std::unique_ptr<device_channel> _impl;
    unsigned _in_flight = 0;
    bool _closing = false;
    std::optional<promise<>> _drained;
    channel_stats _stats;
};

class block_device : public actor {
public:
    // `product` names the backend ("malloc", "uring", "replica", ...).
    block_device(std::string name, std::string product, uuid id, std::uint32_t block_size,
                 std::uint64_t block_count);
    ~block_device() override;

    const std::string& product() const noexcept { return _product; }
    const uuid& id() const noexcept { return _uuid; }
    std::uint32_t block_size() const noexcept { return _block_size; }
    std::uint64_t block_count() const noexcept { return _block_count.load(std::memory_order_relaxed); }
    std::uint64_t size_bytes() const noexcept { return block_count() * _block_size; }
    bool closing() const noexcept { return _closed.load(std::memory_order_relaxed); }

    // The calling shard's channel, opened on first use; nullptr once closing.
    io_channel* channel();

    // Owner shard: refuse new I/O on every shard, wait for I/O in flight,
    // close every channel on its own shard, then the backend. Idempotent.
    future<> close();

    // The sum of every shard's channel counters (owner shard; hops).
    future<channel_stats> stats();

    // The calling shard's channel if it is open (does not open one).
    io_channel* open_channel_here() const noexcept;

    // Whether this device no longer serves as a path to its volume (a nexus
    // fenced by a newer incarnation): a target reports its namespace ANA
    // inaccessible (docs/ana.md). Any shard.
    virtual bool path_inaccessible() const noexcept { return false; }

    // Re-reads the backend's size (after the device grew); owner shard.
    virtual future<> rescan() { return make_ready_future<>(); }

    // Owner shard: resolves once the device can take I/O (a remote one is
    // connected) and no write it gave up on (timed out here but perhaps
    // still executing at the far end) can still land; throws storage_error
    // (busy, or unavailable when it will not connect again) when that is
    // not so within `limit`. A nexus awaits it before it rebuilds a child:
    // a late write could overwrite a segment already copied, and a rebuild
    // that starts before the child is reachable fails and loses its partial
    // log. Local devices resolve at once.
    virtual future<> settle(std::chrono::milliseconds limit) {
        (void)limit;
        return make_ready_future<>();
    }

protected:
    virtual std::unique_ptr<device_channel> open_channel() = 0;
    virtual future<> close_backend() { return make_ready_future<>(); }
    void set_block_count(std::uint64_t n) noexcept { _block_count.store(n, std::memory_order_relaxed); }

private:
    std::string _product;
    uuid _uuid;
    std::uint32_t _block_size;
    std::atomic<std::uint64_t> _block_count;
    std::atomic<bool> _closed{false};
    bool _close_done = false;
    // One slot per shard, each touched only by its shard.
    std::vector<std::unique_ptr<io_channel>> _channels;
};

}  // namespace ioe
