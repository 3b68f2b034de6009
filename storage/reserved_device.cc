// A local device under a reservation port (see reserved_device.hh).
#include "storage/reserved_device.hh"

namespace ioe {

namespace {

class reserved_channel final : public device_channel {
public:
    explicit reserved_channel(reserved_device& dev) noexcept : _dev(dev) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        if (!_dev.port().admit(false)) return conflict();
        io_channel* ch = inner();
        return ch ? ch->read(lba, blocks, iov) : not_ready();
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        if (!_dev.port().admit(true)) return conflict();
        io_channel* ch = inner();
        return counted(ch ? ch->write(lba, blocks, iov) : not_ready());
    }
    future<io_status> flush() override {
        if (!_dev.port().admit(true)) return conflict();
        io_channel* ch = inner();
        return counted(ch ? ch->flush() : not_ready());
    }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        if (!_dev.port().admit(true)) return conflict();
        io_channel* ch = inner();
        return counted(ch ? ch->write_zeroes(lba, blocks) : not_ready());
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        if (!_dev.port().admit(true)) return conflict();
        io_channel* ch = inner();
        return counted(ch ? ch->unmap(lba, blocks) : not_ready());
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
    // An admitted write stays counted until the device completed it.
    future<io_status> counted(future<io_status> f) {
        reservation_port& port = _dev.port();
        io_status st = io_status::internal_error;
        std::exception_ptr failed;
        try {
            st = co_await std::move(f);
        } catch (...) {
            failed = std::current_exception();
        }
        port.finished();
        if (failed) std::rethrow_exception(failed);
        co_return st;
    }

    reserved_device& _dev;
};

}  // namespace

reserved_device::reserved_device(block_device& inner, std::unique_ptr<reservation_port> port)
    : block_device(inner.name(), inner.product(), inner.id(), inner.block_size(), inner.block_count()),
      _inner(inner),
      _port(std::move(port)) {}

reserved_device::~reserved_device() = default;

std::unique_ptr<device_channel> reserved_device::open_channel() { return std::make_unique<reserved_channel>(*this); }

future<> reserved_device::rescan() {
    co_await _inner.rescan();
    set_block_count(_inner.block_count());
}

}  // namespace ioe
