// The INFLIGHT_SHMFD area: shared memory the back-end allocates
// (GET_INFLIGHT_FD), the front-end keeps across back-end restarts and hands
// back (SET_INFLIGHT_FD), in which every queue records which chains it is
// serving, so that a restarted back-end resubmits them.
//
// Layout (ours: QEMU treats the area as opaque bytes): queue i's region
// starts at i * queue_stride(queue size); a region is
// user::inflight_queue_split then one user::inflight_desc_split per
// descriptor head (docs/vhost.md, "Inflight shared memory"), padded to 64
// bytes.
//
// The protocol of one queue (inflight_log, owned by the queue's shard):
//  * begin(head): desc[head].counter = next counter, inflight = 1, before
//    the request is issued;
//  * a batch of completions: each head linked through desc[].next from
//    last_batch_head, the used ring published (used.idx), then every head
//    of the batch cleared, then used_idx = used.idx;
//  * recover(used.idx) at queue start: a region used_idx behind the ring's
//    used.idx means the last batch was published but not cleared: clear it
//    (walk used.idx - used_idx heads from last_batch_head); then every head
//    still inflight is to be resubmitted, in counter order, and the next
//    available index is used.idx + their number (each chain the back-end
//    took is either used or still inflight).
// A crash (kill -9) leaves the stores made so far in the shared pages; the
// order of the stores (compiler barriers; one writer) is what recovery
// relies on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vhost/spec/vhost_user.hh"

namespace ioe::vhost {

inline constexpr std::uint64_t inflight_queue_stride(std::uint32_t queue_size) {
    return (sizeof(user::inflight_queue_split) + std::uint64_t{16} * queue_size + 63) & ~std::uint64_t{63};
}

// A fresh zeroed area for num_queues queues of queue_size (memfd); returns
// the fd (caller closes) or -errno. *size gets its bytes.
int create_inflight_fd(unsigned num_queues, std::uint32_t queue_size, std::uint64_t* size) noexcept;

// A mapping of an area handed to us by SET_INFLIGHT_FD (the fd is not kept).
class inflight_area {
public:
    inflight_area() = default;
    ~inflight_area() { unmap(); }
    inflight_area(const inflight_area&) = delete;
    inflight_area& operator=(const inflight_area&) = delete;

    // Maps [offset, offset + size) of fd; 0 or -errno. The area must hold
    // num_queues regions of queue_size.
    int map(int fd, std::uint64_t size, std::uint64_t offset, unsigned num_queues, std::uint32_t queue_size) noexcept;
    void unmap() noexcept;
    bool mapped() const noexcept { return _base != nullptr; }
    std::uint32_t queue_size() const noexcept { return _queue_size; }
    unsigned num_queues() const noexcept { return _num_queues; }
    // Queue i's region, or nullptr (not mapped, i out of range).
    user::inflight_queue_split* queue(unsigned i) const noexcept;

private:
    std::byte* _map = nullptr;
    std::size_t _map_len = 0;
    std::byte* _base = nullptr;
    unsigned _num_queues = 0;
    std::uint32_t _queue_size = 0;
};

// One queue's record keeping (its shard only). Inactive (no region) when
// INFLIGHT_SHMFD was not negotiated: every call is then a no-op.
class inflight_log {
public:
    // Attaches a region for a ring of ring_size. A region of another size,
    // or not initialised, is reset (nothing to resubmit).
    void attach(user::inflight_queue_split* region, std::uint32_t ring_size) noexcept;
    bool active() const noexcept { return _q != nullptr; }

    // Queue start: repairs a half-recorded last batch and fills `heads`
    // with the chains to resubmit, oldest first (allocates: control path).
    void recover(std::uint16_t ring_used_idx, std::vector<std::uint16_t>& heads);

    void begin(std::uint16_t head) noexcept;
    // A completed head joins the batch being built.
    void batch_add(std::uint16_t head) noexcept;
    // After used.idx = used_idx was published: clears the batch.
    void batch_published(std::uint16_t used_idx) noexcept;

private:
    user::inflight_desc_split* desc() const noexcept {
        return reinterpret_cast<user::inflight_desc_split*>(reinterpret_cast<std::byte*>(_q) + sizeof(*_q));
    }
    user::inflight_queue_split* _q = nullptr;
    std::uint32_t _size = 0;
    std::uint64_t _counter = 0;
    std::uint16_t _batch_head = 0;
    std::uint32_t _batch_len = 0;
};

}  // namespace ioe::vhost
