// The uring:// device: opening a file or block device, and the per-shard
// io_uring channel (see uring_device.hh).
#include "storage/uring_device.hh"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <system_error>
#include <utility>

#include "runtime/engine.hh"
#include "runtime/reactor.hh"
#include "storage/errors.hh"

namespace ioe {
namespace {

std::string os_message(int err) { return std::generic_category().message(err); }

storage_errc errc_from_errno(int err) noexcept {
    switch (err) {
        case ENOENT:
        case ENOTDIR: return storage_errc::not_found;
        case EACCES:
        case EPERM:
        case EROFS: return storage_errc::unavailable;
        case EBUSY: return storage_errc::busy;
        case ENOMEM: return storage_errc::no_space;
        case EINVAL: return storage_errc::invalid_argument;
        default: return storage_errc::io_error;
    }
}

// "device URI '...': <step>: <OS error>[ (hint)]"
storage_error os_error(const device_uri& uri, const std::string& step, int err) {
    std::string msg = fmt::format("{}: {}", step, os_message(err));
    if (err == EACCES || err == EPERM) msg += " (run as root or add the user to group disk)";
    return storage_error(errc_from_errno(err), uri.error(msg));
}

storage_error bad(const device_uri& uri, const std::string& what) {
    return storage_error(storage_errc::invalid_argument, uri.error(what));
}

const char* file_kind(mode_t mode) noexcept {
    if (S_ISDIR(mode)) return "directory";
    if (S_ISCHR(mode)) return "character device";
    if (S_ISFIFO(mode)) return "FIFO";
    if (S_ISSOCK(mode)) return "socket";
    if (S_ISLNK(mode)) return "symbolic link";
    return "special file";
}

// Closes the fd unless released (error paths while opening).
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
    int release() noexcept { return std::exchange(fd, -1); }
};

// The direct-I/O offset alignment of an open file: 0 when the file system
// says it has no O_DIRECT for it, 512 when the kernel does not tell.
std::uint32_t file_dio_alignment(int fd) noexcept {
#ifdef STATX_DIOALIGN
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
        return stx.stx_dio_offset_align;
    }
#else
    (void)fd;
#endif
    return 512;
}

}  // namespace

unsigned internal::advance_iovecs(iovec* vec, unsigned first, unsigned n, std::size_t done) noexcept {
    while (first < n && done >= vec[first].iov_len) {
        done -= vec[first].iov_len;
        ++first;
    }
    if (first < n && done > 0) {  // partly done: trim in place
        vec[first].iov_base = static_cast<std::byte*>(vec[first].iov_base) + done;
        vec[first].iov_len -= done;
    }
    return first;
}

namespace {

future<io_status> ready(io_status st) { return make_ready_future<io_status>(st); }

// One shard's channel: the reactor's ring and the device's shared fd.
class uring_channel final : public device_channel {
public:
    uring_channel(uring& io, int fd, std::uint32_t block_size) noexcept
        : _io(io), _fd(fd), _block_size(block_size), _fixed(io.features().fixed_buffers) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t, io_vecs iov) override {
        return transfer(true, lba * _block_size, iov);
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t, io_vecs iov) override {
        return transfer(false, lba * _block_size, iov);
    }
    future<io_status> flush() override { return sync(); }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        return zero_range(lba * _block_size, blocks * _block_size);
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        return punch_hole(lba * _block_size, blocks * _block_size);
    }

private:
    future<io_status> transfer(bool is_read, std::uint64_t offset, io_vecs iov) {
        if (iov.size() == 1) return transfer_one(is_read, iov[0], offset);
        if (iov.empty()) return ready(io_status::success);  // zero blocks
        if (iov.size() > uring_device::max_iovecs) return ready(io_status::invalid_field);
        return transfer_vec(is_read, iov, offset);
    }

    // One buffer: read/write (fixed when registered), continued until done.
    future<io_status> transfer_one(bool is_read, io_vec v, std::uint64_t offset) {
        const int buf_index = _fixed && v.buf_index >= 0 ? v.buf_index : -1;
        std::size_t done = 0;
        while (done < v.len) {
            io_result r = is_read ? co_await _io.read(_fd, v.data + done, v.len - done, offset + done, buf_index)
                                  : co_await _io.write(_fd, v.data + done, v.len - done, offset + done, buf_index);
            if (!r) co_return status_from_errno(r.error().value(), is_read);
            // Nothing transferred: a read at the end of a file that shrank
            // under us, or a device that refuses the write.
            if (r.value() == 0) co_return is_read ? io_status::lba_out_of_range : io_status::write_fault;
            done += r.value();
        }
        co_return io_status::success;
    }

    // Several buffers: readv/writev; the iovec array lives in this frame.
    future<io_status> transfer_vec(bool is_read, io_vecs iov, std::uint64_t offset) {
        std::array<iovec, uring_device::max_iovecs> vec;
        const unsigned n = static_cast<unsigned>(iov.size());
        for (unsigned i = 0; i < n; ++i) vec[i] = iovec{iov[i].data, iov[i].len};
        unsigned first = internal::advance_iovecs(vec.data(), 0, n, 0);  // the first not yet done
        while (first < n) {
            io_result r = is_read ? co_await _io.readv(_fd, &vec[first], n - first, offset)
                                  : co_await _io.writev(_fd, &vec[first], n - first, offset);
            if (!r) co_return status_from_errno(r.error().value(), is_read);
            if (r.value() == 0) co_return is_read ? io_status::lba_out_of_range : io_status::write_fault;
            offset += r.value();
            first = internal::advance_iovecs(vec.data(), first, n, r.value());
        }
        co_return io_status::success;
    }

    future<io_status> sync() {
        io_result r = co_await _io.fsync(_fd, true);
        co_return r ? io_status::success : status_from_errno(r.error().value(), false);
    }

    future<io_status> zero_range(std::uint64_t offset, std::uint64_t len) {
        if (_zero_range_supported) {
            io_result r = co_await _io.fallocate(_fd, FALLOC_FL_ZERO_RANGE, offset, len);
            if (r) co_return io_status::success;
            if (r.error().value() != EOPNOTSUPP) co_return status_from_errno(r.error().value(), false);
            _zero_range_supported = false;  // do not ask again
        }
        co_return co_await write_zero_chunks(offset, len);
    }

    future<io_status> punch_hole(std::uint64_t offset, std::uint64_t len) {
        if (_punch_hole_supported) {
            io_result r = co_await _io.fallocate(_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
            if (r) co_return io_status::success;
            if (r.error().value() != EOPNOTSUPP) co_return status_from_errno(r.error().value(), false);
            _punch_hole_supported = false;
        }
        // Reads after unmap return zeros on every backend of ours.
        co_return co_await zero_range(offset, len);
    }

    // The write_zeroes fallback: writes one zeroed DMA buffer (allocated on
    // first need and kept by the channel, shared by concurrent callers since
    // nobody writes into it) over the range, chunk by chunk.
    future<io_status> write_zero_chunks(std::uint64_t offset, std::uint64_t len) {
        if (!_zeroes) {
            engine* e = engine::current();
            if (!e) co_return io_status::internal_error;
            auto b = e->dma().allocate(uring_device::zero_chunk_bytes);
            if (!b) co_return io_status::internal_error;  // DMA pool exhausted
            std::memset(b->data(), 0, b->size());
            _zeroes = std::move(b.value());
        }
        while (len > 0) {
            const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(len, _zeroes.size()));
            io_status st = co_await transfer_one(false, to_io_vec(_zeroes, 0, n), offset);
            if (!ok(st)) co_return st;
            offset += n;
            len -= n;
        }
        co_return io_status::success;
    }

    uring& _io;
    const int _fd;
    const std::uint32_t _block_size;
    const bool _fixed;
    bool _zero_range_supported = true;
    bool _punch_hole_supported = true;
    dma_buffer _zeroes;  // freed with the channel, on its shard
};

}  // namespace

uring_device::uring_device(std::string path, std::uint32_t block_size, std::uint64_t block_count, int fd,
                           bool is_block_device)
    : block_device(std::move(path), "uring", uuid::random(), block_size, block_count),
      _fd(fd),
      _is_block_device(is_block_device) {}

uring_device::~uring_device() {
    if (_fd >= 0) ::close(_fd);
}

std::unique_ptr<uring_device> uring_device::open(const device_uri& uri, std::optional<std::uint32_t> blk_size) {
    // Control path: these syscalls block the calling shard briefly, once.
    const std::string& path = uri.path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw os_error(uri, "open " + path, errno);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        throw bad(uri, fmt::format("{} is a {}, not a regular file or block device", path, file_kind(st.st_mode)));
    }
    fd_guard fd{::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC)};
    if (fd.fd < 0) {
        int err = errno;
        if (err == EINVAL) {
            throw bad(uri, fmt::format("open {}: {} (its file system does not support O_DIRECT, as tmpfs does not: "
                                       "put the file on ext4 or xfs)",
                                       path, os_message(err)));
        }
        throw os_error(uri, "open " + path, err);
    }
    if (::fstat(fd.fd, &st) != 0) throw os_error(uri, "fstat " + path, errno);
    const bool is_blk = S_ISBLK(st.st_mode);
    if (!is_blk && !S_ISREG(st.st_mode)) {
        throw bad(uri, fmt::format("{} is a {}, not a regular file or block device", path, file_kind(st.st_mode)));
    }

    std::uint64_t size = 0;
    std::uint32_t min_block = 0;  // the smallest block O_DIRECT accepts
    std::string min_what;
    if (is_blk) {
        if (::ioctl(fd.fd, BLKGETSIZE64, &size) != 0) throw os_error(uri, "ioctl BLKGETSIZE64 on " + path, errno);
        int logical = 0;
        if (::ioctl(fd.fd, BLKSSZGET, &logical) != 0) throw os_error(uri, "ioctl BLKSSZGET on " + path, errno);
        min_block = static_cast<std::uint32_t>(logical);
        min_what = fmt::format("the logical block size {} of {}", min_block, path);
    } else {
        size = static_cast<std::uint64_t>(st.st_size);
        min_block = file_dio_alignment(fd.fd);
        if (min_block == 0) {
            throw bad(uri, fmt::format("{}: its file system does not support O_DIRECT for it (statx reports no "
                                       "direct-I/O alignment)",
                                       path));
        }
        min_what = fmt::format("the direct-I/O alignment {} of the file system under {}", min_block, path);
    }
    if (min_block > 4096 || 4096 % min_block != 0) {
        throw bad(uri, fmt::format("{} is not supported (block sizes are 512 or 4096)", min_what));
    }
    // Default: 4096 for files, the logical block size for block devices.
    const std::uint32_t block_size = blk_size.value_or(is_blk ? std::max<std::uint32_t>(min_block, 512) : 4096);
    if (block_size < min_block) {
        throw bad(uri, fmt::format("blk_size {} is smaller than {}", block_size, min_what));
    }
    if (size == 0) {
        throw bad(uri, fmt::format("{} has size 0 (give it a size first, e.g. truncate -s 1G {})", path, path));
    }
    if (size % block_size != 0) {
        throw bad(uri, fmt::format("{}: size {} bytes is not a multiple of the block size {}", path, size, block_size));
    }
    return std::unique_ptr<uring_device>(new uring_device(path, block_size, size / block_size, fd.release(), is_blk));
}

future<> uring_device::rescan() {
    auto fail = [this](const char* step, int err) {
        return make_exception_future<>(storage_error(
            errc_from_errno(err), fmt::format("device \"{}\": rescan: {}: {}", name(), step, os_message(err))));
    };
    if (_fd < 0) return fail("the device is closed", EBADF);
    std::uint64_t size = 0;
    if (_is_block_device) {
        if (::ioctl(_fd, BLKGETSIZE64, &size) != 0) return fail("ioctl BLKGETSIZE64", errno);
    } else {
        struct stat st {};
        if (::fstat(_fd, &st) != 0) return fail("fstat", errno);
        size = static_cast<std::uint64_t>(st.st_size);
    }
    set_block_count(size / block_size());
    return make_ready_future<>();
}

std::unique_ptr<device_channel> uring_device::open_channel() {
    // Called on the shard that will use the channel: its reactor's ring.
    return std::make_unique<uring_channel>(local_reactor()->io(), _fd, block_size());
}

future<> uring_device::close_backend() {
    // Every channel has drained and closed by now (block_device::close).
    if (_fd >= 0) ::close(std::exchange(_fd, -1));
    return make_ready_future<>();
}

}  // namespace ioe
