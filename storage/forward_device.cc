// A forwarding path to a volume served elsewhere (see forward_device.hh).
#include "storage/forward_device.hh"

#include <fmt/format.h>

#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/timer.hh"
#include "storage/errors.hh"

namespace ioe {

namespace {

// The far side did not answer or the connection is gone: not the command's
// fault, and another path may serve it.
bool transport_failure(io_status st) noexcept {
    return st == io_status::namespace_not_ready || st == io_status::aborted || st == io_status::internal_error ||
           st == io_status::data_transfer_error || st == io_status::ana_inaccessible;
}

class forward_channel final : public device_channel {
public:
    explicit forward_channel(forward_device& dev) noexcept : _dev(dev) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        io_channel* ch = inner();
        co_return _dev.forwarded(ch ? co_await ch->read(lba, blocks, iov) : io_status::namespace_not_ready);
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        io_channel* ch = inner();
        co_return _dev.forwarded(ch ? co_await ch->write(lba, blocks, iov) : io_status::namespace_not_ready);
    }
    future<io_status> flush() override {
        io_channel* ch = inner();
        co_return _dev.forwarded(ch ? co_await ch->flush() : io_status::namespace_not_ready);
    }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        io_channel* ch = inner();
        co_return _dev.forwarded(ch ? co_await ch->write_zeroes(lba, blocks) : io_status::namespace_not_ready);
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        io_channel* ch = inner();
        co_return _dev.forwarded(ch ? co_await ch->unmap(lba, blocks) : io_status::namespace_not_ready);
    }
    // Reservations and snapshots are not forwarded: this path is not the
    // volume's owner (docs/ana.md, "Forwarding paths").

private:
    io_channel* inner() const { return _dev.inner().channel(); }
    forward_device& _dev;
};

}  // namespace

void forward_device::check_identity(const std::string& name, uuid id, std::uint32_t block_size,
                                    std::uint64_t block_count, const block_device& inner) {
    if (inner.id() != id || inner.block_size() != block_size || inner.block_count() != block_count) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("forwarding path {}: {} is volume {} ({} x {} B), not {} ({} x {} B)", name,
                                        inner.name(), inner.id().to_string(), inner.block_count(),
                                        inner.block_size(), id.to_string(), block_count, block_size));
    }
}

forward_device::forward_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count,
                               std::unique_ptr<block_device> inner, std::chrono::milliseconds probe_interval)
    : block_device(std::move(name), "forward", id, block_size, block_count),
      _inner(std::move(inner)),
      _probe_interval(probe_interval) {
    _probe.emplace(probe_loop());
}

forward_device::~forward_device() = default;

std::unique_ptr<device_channel> forward_device::open_channel() { return std::make_unique<forward_channel>(*this); }

io_status forward_device::forwarded(io_status st) noexcept {
    if (!transport_failure(st)) return st;
    if (!_lost.exchange(true, std::memory_order_relaxed)) {
        log::warn("forwarding path {}: {} failed ({}): this path is inaccessible until it answers again", name(),
                  _inner->name(), to_string(st));
    }
    return io_status::ana_inaccessible;
}

future<> forward_device::probe_loop() {
    while (!_stopping.load(std::memory_order_relaxed)) {
        co_await sleep(_probe_interval);
        if (_stopping.load(std::memory_order_relaxed) || !_lost.load(std::memory_order_relaxed)) continue;
        io_channel* ch = _inner->channel();
        auto buf = engine::current()->dma().allocate(block_size());
        if (!ch || !buf) continue;
        io_vec v = to_io_vec(*buf);
        if (ok(co_await ch->read(0, 1, io_vecs(&v, 1))) && !_stopping.load(std::memory_order_relaxed)) {
            _lost.store(false, std::memory_order_relaxed);
            log::info("forwarding path {}: {} answers again: this path serves", name(), _inner->name());
        }
    }
}

future<> forward_device::close_backend() {
    _stopping.store(true, std::memory_order_relaxed);
    if (_probe) {
        co_await std::move(*_probe);
        _probe.reset();
    }
    co_await _inner->close();
}

}  // namespace ioe
