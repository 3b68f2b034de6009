// The checked channel front and the device's channel table (see block_device.hh).
#include "storage/block_device.hh"

#include <chrono>

#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"

namespace ioe {

std::uint64_t total_bytes(io_vecs iov) noexcept {
    std::uint64_t n = 0;
    for (const auto& v : iov) n += v.len;
    return n;
}

// ---- io_channel -------------------------------------------------------------

io_status io_channel::check_range(std::uint64_t lba, std::uint64_t blocks) const noexcept {
    if (_closing || _dev.closing()) return io_status::namespace_not_ready;
    const std::uint64_t count = _dev.block_count();
    if (lba >= count || blocks > count - lba) return io_status::lba_out_of_range;
    return io_status::success;
}

namespace {
std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}
}  // namespace

void channel_stats::merge(const channel_stats& o) noexcept {
    read_ops += o.read_ops;
    write_ops += o.write_ops;
    flush_ops += o.flush_ops;
    zeroes_ops += o.zeroes_ops;
    unmap_ops += o.unmap_ops;
    read_bytes += o.read_bytes;
    write_bytes += o.write_bytes;
    errors += o.errors;
    latency_ns_sum += o.latency_ns_sum;
    if (o.latency_ns_min && (!latency_ns_min || o.latency_ns_min < latency_ns_min)) latency_ns_min = o.latency_ns_min;
    if (o.latency_ns_max > latency_ns_max) latency_ns_max = o.latency_ns_max;
    for (unsigned b = 0; b < latency_buckets; ++b) latency_histogram[b] += o.latency_histogram[b];
}

future<io_status> io_channel::finish(future<io_status> f, io_channel* ch, std::uint64_t start_ns) {
    io_status st = co_await std::move(f);
    ch->_stats.record_latency(now_ns() - start_ns);
    if (!ok(st)) ++ch->_stats.errors;
    if (--ch->_in_flight == 0 && ch->_drained) ch->_drained->set_value();
    co_return st;
}

future<io_status> io_channel::track(future<io_status> f, std::uint64_t start_ns) {
    if (f.available()) {
        if (f.failed()) return f;
        io_status st = f.get();
        _stats.record_latency(now_ns() - start_ns);
        if (!ok(st)) ++_stats.errors;
        return make_ready_future<io_status>(st);
    }
    ++_in_flight;
    return finish(std::move(f), this, start_ns);
}

io_status io_channel::check_transfer(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) const noexcept {
    io_status st = check_range(lba, blocks);
    if (ok(st) && total_bytes(iov) != std::uint64_t(blocks) * _dev.block_size()) st = io_status::invalid_field;
    return st;
}

future<io_status> io_channel::read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) {
    if (io_status st = check_transfer(lba, blocks, iov); !ok(st)) return make_ready_future<io_status>(st);
    ++_stats.read_ops;
    _stats.read_bytes += std::uint64_t(blocks) * _dev.block_size();
    std::uint64_t t0 = now_ns();
    return track(_impl->read(lba, blocks, iov), t0);
}

future<io_status> io_channel::write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) {
    if (io_status st = check_transfer(lba, blocks, iov); !ok(st)) return make_ready_future<io_status>(st);
    ++_stats.write_ops;
    _stats.write_bytes += std::uint64_t(blocks) * _dev.block_size();
    std::uint64_t t0 = now_ns();
    return track(_impl->write(lba, blocks, iov), t0);
}

future<io_status> io_channel::flush() {
    if (_closing || _dev.closing()) return make_ready_future<io_status>(io_status::namespace_not_ready);
    ++_stats.flush_ops;
    std::uint64_t t0 = now_ns();
    return track(_impl->flush(), t0);
}

future<io_status> io_channel::write_zeroes(std::uint64_t lba, std::uint64_t blocks) {
    io_status st = check_range(lba, blocks);
    if (!ok(st)) return make_ready_future<io_status>(st);
    ++_stats.zeroes_ops;
    std::uint64_t t0 = now_ns();
    return track(_impl->write_zeroes(lba, blocks), t0);
}

future<io_status> io_channel::unmap(std::uint64_t lba, std::uint64_t blocks) {
    io_status st = check_range(lba, blocks);
    if (!ok(st)) return make_ready_future<io_status>(st);
    ++_stats.unmap_ops;
    std::uint64_t t0 = now_ns();
    return track(_impl->unmap(lba, blocks), t0);
}

future<io_status> io_channel::reservation_register(const reservation_register_request& r) {
    if (_closing || _dev.closing()) return make_ready_future<io_status>(io_status::namespace_not_ready);
    return track(_impl->reservation_register(r), now_ns());
}

future<io_status> io_channel::reservation_acquire(const reservation_acquire_request& r) {
    if (_closing || _dev.closing()) return make_ready_future<io_status>(io_status::namespace_not_ready);
    return track(_impl->reservation_acquire(r), now_ns());
}

future<io_status> io_channel::read_reservation(reservation_report& out) {
    if (_closing || _dev.closing()) return make_ready_future<io_status>(io_status::namespace_not_ready);
    return track(_impl->read_reservation(out), now_ns());
}

future<io_status> io_channel::snapshot(const device_snapshot_request& r, device_snapshot_reply& out) {
    if (_closing || _dev.closing()) return make_ready_future<io_status>(io_status::namespace_not_ready);
    return track(_impl->snapshot(r, out), now_ns());
}

future<> io_channel::close() {
    _closing = true;
    if (_in_flight > 0) {
        _drained.emplace();
        co_await _drained->get_future();
        _drained.reset();
    }
    co_await _impl->close();
}

// ---- block_device -----------------------------------------------------------

block_device::block_device(std::string name, std::string product, uuid id, std::uint32_t block_size,
                           std::uint64_t block_count)
    : actor(std::move(name)),
      _product(std::move(product)),
      _uuid(id),
      _block_size(block_size),
      _block_count(block_count),
      _channels(std::max(1u, shard_count())) {}

block_device::~block_device() = default;

io_channel* block_device::channel() {
    if (closing()) return nullptr;
    unsigned s = this_shard_id();
    if (s >= _channels.size()) return nullptr;
    auto& slot = _channels[s];
    if (!slot) slot = std::make_unique<io_channel>(*this, open_channel());
    return slot.get();
}

io_channel* block_device::open_channel_here() const noexcept {
    unsigned s = this_shard_id();
    return s < _channels.size() ? _channels[s].get() : nullptr;
}

future<> block_device::close() {
    if (_close_done) co_return;
    _closed.store(true, std::memory_order_relaxed);
    for (unsigned s = 0; s < _channels.size(); ++s) {
        co_await submit_to(s, [this, s]() -> future<> {
            if (auto ch = std::move(_channels[s])) {
                co_await ch->close();
            }
        });
    }
    co_await actor::close();
    co_await close_backend();
    _close_done = true;
}

future<channel_stats> block_device::stats() {
    channel_stats sum;
    for (unsigned s = 0; s < _channels.size(); ++s) {
        channel_stats one = co_await submit_to(s, [this, s] {
            return _channels[s] ? _channels[s]->stats() : channel_stats{};
        });
        sum.merge(one);
    }
    co_return sum;
}

}  // namespace ioe
