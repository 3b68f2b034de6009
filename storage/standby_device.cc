// The standby path's stand-in device (see standby_device.hh).
#include "storage/standby_device.hh"

namespace ioe {
namespace {

class standby_channel final : public device_channel {
public:
    future<io_status> read(std::uint64_t, std::uint32_t, io_vecs) override { return refused(); }
    future<io_status> write(std::uint64_t, std::uint32_t, io_vecs) override { return refused(); }
    future<io_status> flush() override { return refused(); }
    future<io_status> write_zeroes(std::uint64_t, std::uint64_t) override { return refused(); }
    future<io_status> unmap(std::uint64_t, std::uint64_t) override { return refused(); }

private:
    static future<io_status> refused() noexcept {
        return make_ready_future<io_status>(io_status::ana_inaccessible);
    }
};

}  // namespace

standby_device::standby_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count)
    : block_device(std::move(name), "standby", id, block_size, block_count) {}

std::unique_ptr<device_channel> standby_device::open_channel() { return std::make_unique<standby_channel>(); }

}  // namespace ioe
