// A local device under a reservation port (see reserved_device.hh).
#include "storage/reserved_device.hh"

namespace ioe {

namespace {

class reserved_channel final : public device_channel {
public:
    explicit reserved_channel(reserved_device& dev) noexcept : _dev(dev) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        if (!_dev.port().admits(false)) return conflict();
        io_channel* ch = inner();
        return ch ? ch->read(lba, blocks, iov) : not_ready();
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        if (!_dev.port().admits(true)) return conflict();
        io_channel* ch = inner();
        return ch ? ch->write(lba, blocks, iov) : not_ready();
    }
    future<io_status> flush() override {
        if (!_dev.port().admits(true)) return conflict();
        io_channel* ch = inner();
        return ch ? ch->flush() : not_ready();
    }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        if (!_dev.port().admits(true)) return conflict();
        io_channel* ch = inner();
        return ch ? ch->write_zeroes(lba, blocks) : not_ready();
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        if (!_dev.port().admits(true)) return conflict();
        io_channel* ch = inner();
        return ch ? ch->unmap(lba, blocks) : not_ready();
    }
    future<io_status> reservation_register(const reservation_register_request& r) override {
        return _dev.port().reservation_register(r);
    }
    future<io_status> reservation_acquire(const reservation_acquire_request& r) override {
        return _dev.port().reservation_acquire(r);
    }
    future<io_status> read_reservation(reservation_report& out) override { return _dev.port().read_reservation(out); }
    // A snapshot changes no data the reservation guards: passed through.
    future<io_status> snapshot(const device_snapshot_request& r, device_snapshot_reply& out) override {
        io_channel* ch = inner();
        return ch ? ch->snapshot(r, out) : not_ready();
    }

private:
    io_channel* inner() const { return _dev.inner().channel(); }
    static future<io_status> conflict() { return make_ready_future<io_status>(io_status::reservation_conflict); }
    static future<io_status> not_ready() { return make_ready_future<io_status>(io_status::namespace_not_ready); }

    reserved_device& _dev;
};

}  // namespace

reserved_device::reserved_device(block_device& inner, reservation_authority& authority,
                                 const std::array<std::uint8_t, 16>& host)
    : block_device(inner.name(), inner.product(), inner.id(), inner.block_size(), inner.block_count()),
      _inner(inner) {
    // The channels are the base's: they outlive `_port` (a member), whose
    // destruction ends the authority's calls of this function.
    _port = authority.attach(inner, host, [this] {
        const io_channel* ch = open_channel_here();
        return ch ? ch->in_flight() : 0u;
    });
}

reserved_device::~reserved_device() = default;

std::unique_ptr<device_channel> reserved_device::open_channel() { return std::make_unique<reserved_channel>(*this); }

future<> reserved_device::rescan() {
    co_await _inner.rescan();
    set_block_count(_inner.block_count());
}

}  // namespace ioe
