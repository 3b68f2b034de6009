// The malloc:// RAM disk (see malloc_device.hh).
#include "storage/malloc_device.hh"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <system_error>

#include "storage/errors.hh"

namespace ioe {
namespace {

// One shard's channel: plain memcpy against the shared mapping. The
// io_channel front has already checked the range and the buffer lengths.
class malloc_channel final : public device_channel {
public:
    malloc_channel(std::byte* memory, std::uint32_t block_size) noexcept
        : _memory(memory), _block_size(block_size) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t, io_vecs iov) override {
        const std::byte* src = _memory + lba * _block_size;
        for (const io_vec& v : iov) {
            if (v.len) std::memcpy(v.data, src, v.len);  // data may be null when len is 0
            src += v.len;
        }
        return make_ready_future<io_status>(io_status::success);
    }

    future<io_status> write(std::uint64_t lba, std::uint32_t, io_vecs iov) override {
        std::byte* dst = _memory + lba * _block_size;
        for (const io_vec& v : iov) {
            if (v.len) std::memcpy(dst, v.data, v.len);
            dst += v.len;
        }
        return make_ready_future<io_status>(io_status::success);
    }

    future<io_status> flush() override { return make_ready_future<io_status>(io_status::success); }

    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        std::memset(_memory + lba * _block_size, 0, blocks * _block_size);
        return make_ready_future<io_status>(io_status::success);
    }

    // Zeroes too (see the header): a read after unmap returns zeros.
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        return write_zeroes(lba, blocks);
    }

private:
    std::byte* _memory;
    std::uint32_t _block_size;
};

}  // namespace

malloc_device::malloc_device(const device_uri& uri, std::string name, uuid id, std::uint32_t block_size,
                             std::uint64_t block_count)
    : block_device(std::move(name), "malloc", id, block_size, block_count),
      _size_bytes(static_cast<std::size_t>(block_count * block_size)) {
    // Control path: mmap at creation only. Anonymous memory is zero-filled.
    void* p = ::mmap(nullptr, _size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        throw storage_error(storage_errc::no_space,
                            uri.error(fmt::format("mmap of {} MiB: {}", _size_bytes >> 20,
                                                  std::generic_category().message(err))));
    }
    _memory = static_cast<std::byte*>(p);
}

malloc_device::~malloc_device() {
    if (_memory) ::munmap(_memory, _size_bytes);
}

std::unique_ptr<device_channel> malloc_device::open_channel() {
    return std::make_unique<malloc_channel>(_memory, block_size());
}

}  // namespace ioe
