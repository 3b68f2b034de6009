// The null:// device (see null_device.hh).
#include "storage/null_device.hh"

namespace ioe {
namespace {

class null_channel final : public device_channel {
public:
    future<io_status> read(std::uint64_t, std::uint32_t, io_vecs) override { return done(); }
    future<io_status> write(std::uint64_t, std::uint32_t, io_vecs) override { return done(); }
    future<io_status> flush() override { return done(); }
    future<io_status> write_zeroes(std::uint64_t, std::uint64_t) override { return done(); }
    future<io_status> unmap(std::uint64_t, std::uint64_t) override { return done(); }

private:
    static future<io_status> done() noexcept { return make_ready_future<io_status>(io_status::success); }
};

}  // namespace

null_device::null_device(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count)
    : block_device(std::move(name), "null", id, block_size, block_count) {}

std::unique_ptr<device_channel> null_device::open_channel() { return std::make_unique<null_channel>(); }

}  // namespace ioe
