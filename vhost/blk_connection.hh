// One front-end (QEMU) connected to a vhost-user-blk export: the control
// path's state machine, on the export's shard. It reads each request
// (message_socket), answers it, and starts and stops the export's queues
// on their shards (blk_queue).
//
// Per queue (vring) the states are:
//   unset    -> configured   SET_VRING_NUM / ADDR / BASE (any order)
//   configured -> started    SET_VRING_KICK (an fd, or the no-fd flag)
//   started  -> running      enabled: SET_VRING_ENABLE 1, or at once when
//                            VHOST_USER_F_PROTOCOL_FEATURES was not
//                            negotiated; guest memory mapped
//   running  -> stopped      GET_VRING_BASE (drained; the reply is the next
//                            available index), SET_VRING_ENABLE 0 (drained,
//                            base kept), RESET_OWNER / RESET_DEVICE, the
//                            front-end's end
// A request that changes what a running queue reads (SET_MEM_TABLE,
// ADD/REM_MEM_REG, SET_INFLIGHT_FD, SET_VRING_KICK / ADDR / NUM / BASE,
// SET_FEATURES) first stops the queues it touches (draining their I/O),
// applies the change and starts them again: a queue never sees guest
// memory change under it. SET_VRING_CALL while running swaps the fd on the
// queue's shard.
//
// Queue i runs on shard (first_shard + i) % shards: queues spread over the
// engine's cores as NVMe/TCP queue pairs do.
//
// Bad requests: a header that breaks the framing drops the connection; a
// request that breaks a rule (payload size, fd count, queue index, values;
// a mem table whose fd cannot be mapped) is logged and answered with a
// failure when the front-end asked for a reply (REPLY_ACK), otherwise the
// connection is dropped (the front-end then sees the device broken). The
// end of the connection stops every queue, drains their I/O, unmaps guest
// memory and the inflight area and closes every fd.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/future.hh"
#include "storage/block_device.hh"
#include "vhost/blk_features.hh"
#include "vhost/blk_queue.hh"
#include "vhost/inflight_area.hh"
#include "vhost/mapped_memory.hh"
#include "vhost/message_socket.hh"

namespace ioe::vhost {

inline constexpr unsigned max_export_queues = 16;

// What the connection needs from its export (fixed for its life).
struct connection_context {
    std::string name;
    block_device* device = nullptr;
    blk_geometry geometry;
    unsigned first_shard = 0;
    blk_queue_counters* totals = nullptr;  // counters of stopped queues are added here
    std::uint64_t* protocol_errors = nullptr;
};

// What stats() reports of a connection.
struct connection_state {
    std::uint64_t features = 0;           // negotiated virtio features
    std::uint64_t protocol_features = 0;  // negotiated protocol features
    unsigned queues_running = 0;
    std::uint64_t mapped_bytes = 0;
    bool inflight = false;                // an inflight area is mapped
};

class blk_connection {
public:
    blk_connection(connection_context ctx, int fd);
    ~blk_connection();
    blk_connection(const blk_connection&) = delete;
    blk_connection& operator=(const blk_connection&) = delete;

    // Serves requests until the front-end leaves (or close()), then tears
    // everything down. The socket is closed when it resolves.
    future<> run();
    // Ends run() (shuts the socket down).
    void close() noexcept;

    connection_state state() const noexcept;
    // The sum of every running queue's counters (hops to their shards;
    // does not touch the connection after the call returns).
    future<blk_queue_counters> live_counters() const;

private:
    struct vring {
        std::uint32_t num = 0;
        bool num_set = false;
        user::vring_addr addr{};
        bool addr_set = false;
        std::uint16_t base = 0;
        int kick_fd = -1;
        bool kick_set = false;  // started (an fd or the no-fd flag)
        int call_fd = -1;
        int err_fd = -1;
        bool enabled = false;
        blk_queue* queue = nullptr;  // running: lives on `shard`
        unsigned shard = 0;
    };

    // Handles one request; false: drop the connection.
    future<bool> handle(const message& m);
    future<bool> reply_u64(const message& m, std::uint64_t v);
    future<bool> ack(const message& m, bool ok);
    future<bool> refuse(const message& m, std::string_view why);
    future<bool> set_mem_table(const message& m);
    future<bool> get_config(const message& m);
    future<bool> get_inflight(const message& m);
    future<bool> set_inflight(const message& m);

    bool ready_to_run(const vring& v) const noexcept;
    // Starts queue q if it can run; logs and returns false when its ring is refused.
    future<bool> start_queue(unsigned q);
    // Stops a running queue (drains it), keeps its next available index.
    future<> stop_queue(unsigned q);
    future<> stop_all();
    future<bool> start_all();
    void reset_vring(unsigned q) noexcept;
    future<> teardown();

    connection_context _ctx;
    int _fd;
    bool _closing = false;
    bool _owner = false;
    std::uint64_t _features = 0;
    bool _features_set = false;
    std::uint64_t _protocol_features = 0;
    mapped_memory _memory;
    inflight_area _inflight;
    std::array<vring, max_export_queues> _vrings{};
};

}  // namespace ioe::vhost
