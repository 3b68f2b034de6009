// The driver side of vhost-user (vhost-perf and tests): a virtio-blk driver
// that sets up a vhost-user-blk back-end (ours, or qemu-storage-daemon's)
// from user space, the way QEMU's vhost-user-blk-pci does for a guest:
//
//   GET_FEATURES, GET/SET_PROTOCOL_FEATURES (CONFIG, MQ, REPLY_ACK as
//   offered), GET_QUEUE_NUM (MQ), SET_OWNER, GET_CONFIG (capacity, blk_size,
//   num_queues), SET_FEATURES (VERSION_1 required; EVENT_IDX, MQ, BLK_SIZE,
//   FLUSH, RO when offered), SET_MEM_TABLE (one shared_memory region), then
//   per queue SET_VRING_NUM / BASE / ADDR / KICK / CALL and SET_VRING_ENABLE.
//
// stop() takes every ring back (GET_VRING_BASE) and closes the socket. Set-up
// and stop throw std::runtime_error naming the socket, the request and what
// the back-end got wrong; the queues are then driven by one thread each
// (frontend_queue), without the socket.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vhost/frontend_channel.hh"
#include "vhost/frontend_memory.hh"
#include "vhost/frontend_queue.hh"

namespace ioe::vhost {

struct frontend_config {
    std::string socket_path;
    unsigned queues = 1;              // > 1 needs the back-end's MQ
    std::uint32_t queue_size = 256;   // descriptors per ring (power of two)
    std::uint32_t depth = 32;         // request slots per queue (3 * depth <= queue_size)
    std::uint32_t max_io_bytes = 128 * 1024;
    bool hugepages = true;            // try huge pages for the shared memory first
    bool event_idx = true;            // negotiate EVENT_IDX when offered
};

class frontend_device {
public:
    explicit frontend_device(const frontend_config& cfg);
    ~frontend_device();
    frontend_device(const frontend_device&) = delete;
    frontend_device& operator=(const frontend_device&) = delete;

    std::uint64_t capacity_bytes() const noexcept { return _capacity_sectors * 512; }
    std::uint32_t block_size() const noexcept { return _block_size; }
    bool read_only() const noexcept { return _read_only; }
    std::uint64_t features() const noexcept { return _features; }
    std::uint64_t protocol_features() const noexcept { return _protocol; }
    unsigned backend_queues() const noexcept { return _backend_queues; }
    const shared_memory& memory() const noexcept { return *_mem; }

    unsigned queue_count() const noexcept { return static_cast<unsigned>(_queues.size()); }
    frontend_queue& queue(unsigned i) noexcept { return *_queues[i]; }

    // Takes the rings back (GET_VRING_BASE each) and closes the connection.
    // No queue may be driven any more. Idempotent; the destructor calls it
    // and swallows its errors.
    void stop();

private:
    std::string fail(const std::string& what) const;

    frontend_config _cfg;
    std::unique_ptr<frontend_channel> _chan;
    std::unique_ptr<shared_memory> _mem;
    std::vector<std::unique_ptr<frontend_queue>> _queues;
    std::uint64_t _features = 0;
    std::uint64_t _protocol = 0;
    std::uint64_t _capacity_sectors = 0;
    std::uint32_t _block_size = 512;
    unsigned _backend_queues = 1;
    bool _read_only = false;
};

}  // namespace ioe::vhost
