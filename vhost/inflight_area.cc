// The INFLIGHT_SHMFD area and a queue's record keeping in it (see
// inflight_area.hh).
#include "vhost/inflight_area.hh"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ioe::vhost {

namespace {
inline void store_barrier() noexcept { asm volatile("" ::: "memory"); }
}  // namespace

int create_inflight_fd(unsigned num_queues, std::uint32_t queue_size, std::uint64_t* size) noexcept {
    const std::uint64_t bytes = inflight_queue_stride(queue_size) * num_queues;
    int fd = ::memfd_create("ioengine-vhost-inflight", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        int err = errno;
        ::close(fd);
        return -err;
    }
    *size = bytes;
    return fd;
}

int inflight_area::map(int fd, std::uint64_t size, std::uint64_t offset, unsigned num_queues,
                       std::uint32_t queue_size) noexcept {
    unmap();
    if (num_queues == 0 || queue_size == 0 || size < inflight_queue_stride(queue_size) * num_queues) return -EINVAL;
    const long page = ::sysconf(_SC_PAGESIZE);
    const std::uint64_t start = offset & ~static_cast<std::uint64_t>(page - 1);
    const std::uint64_t len = size + (offset - start);
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(start));
    if (p == MAP_FAILED) return -errno;
    _map = static_cast<std::byte*>(p);
    _map_len = len;
    _base = _map + (offset - start);
    _num_queues = num_queues;
    _queue_size = queue_size;
    return 0;
}

void inflight_area::unmap() noexcept {
    if (_map) ::munmap(_map, _map_len);
    _map = _base = nullptr;
    _map_len = 0;
    _num_queues = 0;
    _queue_size = 0;
}

user::inflight_queue_split* inflight_area::queue(unsigned i) const noexcept {
    if (!_base || i >= _num_queues) return nullptr;
    return reinterpret_cast<user::inflight_queue_split*>(_base + inflight_queue_stride(_queue_size) * i);
}

void inflight_log::attach(user::inflight_queue_split* region, std::uint32_t ring_size) noexcept {
    _q = region;
    _size = ring_size;
    _counter = 0;
    _batch_len = 0;
    if (!_q) return;
    if (_q->version != user::inflight_version || _q->desc_num != ring_size) {
        std::memset(desc(), 0, sizeof(user::inflight_desc_split) * ring_size);
        _q->features = 0;
        _q->desc_num = static_cast<std::uint16_t>(ring_size);
        _q->last_batch_head = 0;
        _q->used_idx = 0;
        store_barrier();
        _q->version = user::inflight_version;
    }
}

void inflight_log::recover(std::uint16_t ring_used_idx, std::vector<std::uint16_t>& heads) {
    heads.clear();
    if (!_q) return;
    auto* d = desc();
    // A batch published but not cleared: clear it now.
    std::uint16_t pending = static_cast<std::uint16_t>(ring_used_idx - _q->used_idx);
    std::uint16_t h = _q->last_batch_head;
    for (std::uint32_t i = 0; i < pending && i < _size && h < _size; ++i) {
        d[h].inflight = 0;
        h = d[h].next;
    }
    store_barrier();
    _q->used_idx = ring_used_idx;
    for (std::uint32_t i = 0; i < _size; ++i) {
        if (d[i].inflight) heads.push_back(static_cast<std::uint16_t>(i));
        _counter = std::max(_counter, d[i].counter);
    }
    std::sort(heads.begin(), heads.end(),
              [d](std::uint16_t a, std::uint16_t b) { return d[a].counter < d[b].counter; });
}

void inflight_log::begin(std::uint16_t head) noexcept {
    if (!_q) return;
    auto& e = desc()[head];
    e.counter = ++_counter;
    store_barrier();
    e.inflight = 1;
    store_barrier();
}

void inflight_log::batch_add(std::uint16_t head) noexcept {
    if (!_q) return;
    desc()[head].next = _batch_head;
    _batch_head = head;
    ++_batch_len;
    store_barrier();
    _q->last_batch_head = head;
    store_barrier();
}

void inflight_log::batch_published(std::uint16_t used_idx) noexcept {
    if (!_q) return;
    auto* d = desc();
    std::uint16_t h = _batch_head;
    for (std::uint32_t i = 0; i < _batch_len && h < _size; ++i) {
        d[h].inflight = 0;
        h = d[h].next;
    }
    store_barrier();
    _q->used_idx = used_idx;
    store_barrier();
    _batch_len = 0;
}

}  // namespace ioe::vhost
