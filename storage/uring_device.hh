// uring:///PATH[?blk_size=512|4096]: a regular file or a block device, through
// each shard's own io_uring with O_DIRECT (no page cache, as Mayastor's uring
// bdev).
//
// * Opening (control path, at creation only: stat/open/fstat/ioctl block the
//   calling shard for a moment, which is accepted there): the path is opened
//   once, O_RDWR | O_DIRECT | O_CLOEXEC, and the fd is shared by every
//   shard's channel. A regular file's size is its st_size and its default
//   block size 4096 (512 on request, when the file system's direct-I/O
//   alignment from statx(STATX_DIOALIGN) allows it); a block device's size
//   comes from BLKGETSIZE64 and its default block size is its logical block
//   size (BLKSSZGET), which blk_size may raise but not lower.
// * Refused, with a storage_error naming the URI, the step and the OS error:
//   a missing path (not_found), a permission error (unavailable, with a hint
//   to run as root or join group disk), anything but a regular file or a
//   block device, a size of 0 or not a multiple of the block size, a file
//   system without O_DIRECT such as tmpfs (invalid_argument).
// * Data path (per shard, on the reactor's own ring, nothing allocated per
//   I/O): one io_vec is a read/write on the registered DMA buffer when the
//   ring has fixed buffers; several io_vecs are a readv/writev with the iovec
//   array inside the coroutine frame (at most max_iovecs, else invalid
//   field). Short transfers continue where they stopped. OS errors map
//   through status_from_errno.
// * flush is fdatasync. write_zeroes is fallocate(ZERO_RANGE); where that is
//   not supported (EOPNOTSUPP) the channel writes a zeroed DMA buffer in
//   chunks instead and remembers not to ask again. unmap is fallocate(
//   PUNCH_HOLE | KEEP_SIZE) and falls back to write_zeroes the same way, so
//   on every backend of ours a read after unmap returns zeros.
// * rescan() re-reads the size (pool grow); close_backend() closes the fd
//   once every channel has drained.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "storage/block_device.hh"
#include "storage/uri.hh"

namespace ioe {

class uring_device final : public block_device {
public:
    static constexpr unsigned max_iovecs = 64;               // io_vecs per read or write
    static constexpr std::size_t zero_chunk_bytes = 128 << 10;  // write_zeroes fallback

    // Opens uri.path (absolute); blk_size: the URI's blk_size parameter if
    // given (already checked to be 512 or 4096). Throws storage_error.
    static std::unique_ptr<uring_device> open(const device_uri& uri, std::optional<std::uint32_t> blk_size);
    ~uring_device() override;

    int fd() const noexcept { return _fd; }
    bool is_block_device() const noexcept { return _is_block_device; }

    // Re-reads the size (st_size or BLKGETSIZE64; a partial last block is
    // not used) after the file or device grew. Owner shard, control path:
    // one fstat or ioctl. Throws storage_error when that fails.
    future<> rescan() override;

protected:
    std::unique_ptr<device_channel> open_channel() override;
    future<> close_backend() override;

private:
    uring_device(std::string path, std::uint32_t block_size, std::uint64_t block_count, int fd,
                 bool is_block_device);

    int _fd = -1;
    bool _is_block_device = false;
};

namespace internal {
// After `done` more bytes of vec[first, n) were transferred (a short
// readv/writev): skips the iovecs now complete (an empty one counts as
// complete), trims a partly done one in place, and returns the new `first`
// (n when everything is done). Exposed for tests.
unsigned advance_iovecs(iovec* vec, unsigned first, unsigned n, std::size_t done) noexcept;
}  // namespace internal

}  // namespace ioe
