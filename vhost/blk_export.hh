// A vhost-user-blk export: one block device served to one local front-end
// (QEMU's vhost-user-blk-pci, so a VM, Kata or KubeVirt) through a unix
// socket the engine listens on, with the guest's memory shared: the public
// API of vhost/ that the daemon and the RPC layer call.
//
//   auto e = co_await blk_export::create({"vm1-disk", "/run/vm1.sock", 2, false}, dev);
//   ... e->stats(), e->connected() ...
//   co_await e->stop();   // then destroy e (same shard)
//
// Threading: an export belongs to the shard that created it (its owner
// shard; every method is called there). The control path (the socket,
// the front-end's requests) runs on it; the virtqueues run on the shards
// (queue i on shard (owner + i) % shards), see blk_connection.hh.
//
// One front-end at a time: a connection that arrives while one is served
// waits up to 1 s for it to end (a restarting QEMU reconnects at once),
// then is closed (logged, counted as refused). When the front-end leaves (QEMU
// exits or crashes) the queues are drained, guest memory is unmapped and
// the export listens again; QEMU with `reconnect=1` comes back by itself.
//
// The device must outlive the export: the caller refuses to destroy a
// device while an export uses it (uses()), and calls stop() first.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "vhost/blk_connection.hh"

namespace ioe::vhost {

struct blk_export_config {
    std::string name;         // for logs, stats and the RPC layer
    std::string socket_path;  // the unix socket to create (must not exist)
    unsigned num_queues = 1;  // 1..max_export_queues
    bool read_only = false;   // offer VIRTIO_BLK_F_RO, refuse writes
};

struct blk_export_stats {
    std::string name;
    std::string socket_path;
    std::string device;
    unsigned num_queues = 0;
    bool read_only = false;
    bool connected = false;             // a front-end is connected now
    std::uint64_t connections = 0;      // front-ends accepted so far
    std::uint64_t refused = 0;          // second front-ends turned away
    std::uint64_t protocol_errors = 0;  // refused requests and queue set-up failures (ring faults: io.ring_faults)
    std::uint64_t features = 0;         // virtio features the front-end set (connected only)
    std::uint64_t protocol_features = 0;
    unsigned queues_active = 0;         // queues running now
    std::uint64_t mapped_bytes = 0;     // guest memory mapped now
    bool inflight = false;              // an INFLIGHT_SHMFD area is in use
    blk_queue_counters io;              // requests by type, bytes, IOERR / UNSUPP answers
};

class blk_export {
public:
    // Validates the configuration (name not empty; socket path not empty,
    // shorter than sun_path, no file there; queues 1..max_export_queues;
    // device block size a power of two in 512..65536 and a capacity of at
    // least one block), creates the socket and starts listening. Throws
    // storage_error(invalid_argument / already_exists) with a message
    // naming the export and what was wrong; std::system_error when the
    // socket cannot be created.
    static future<std::unique_ptr<blk_export>> create(blk_export_config cfg, block_device& dev);

    ~blk_export();
    blk_export(const blk_export&) = delete;
    blk_export& operator=(const blk_export&) = delete;

    // Stops listening, drops the front-end (draining the I/O in flight,
    // unmapping its memory, closing its fds), closes and removes the
    // socket. Idempotent; must resolve before the export is destroyed.
    future<> stop();

    // Counters and state (hops to the queues' shards for live counters).
    future<blk_export_stats> stats();

    const blk_export_config& config() const noexcept { return _cfg; }
    block_device& device() const noexcept { return _dev; }
    unsigned owner_shard() const noexcept { return _owner; }
    bool connected() const noexcept { return _conn != nullptr; }
    // A front-end is connected (an RPC may refuse to destroy the export
    // without --force then).
    bool busy() const noexcept { return connected(); }
    // Whether this export serves `dev` (a device is refused for destroy
    // while any export uses it).
    bool uses(const block_device& dev) const noexcept { return &dev == &_dev; }

private:
    blk_export(blk_export_config cfg, block_device& dev, int listen_fd);
    future<> accept_loop();
    future<> serve(int fd);

    blk_export_config _cfg;
    block_device& _dev;
    int _listen_fd;
    unsigned _owner;
    bool _stopping = false;
    bool _stopped = false;
    std::uint64_t _accept_op = 0;
    std::optional<future<>> _accepting;
    std::unique_ptr<blk_connection> _conn;
    std::optional<future<>> _serving;
    std::uint64_t _connections = 0;
    std::uint64_t _refused = 0;
    std::uint64_t _protocol_errors = 0;
    blk_queue_counters _totals;
};

}  // namespace ioe::vhost
