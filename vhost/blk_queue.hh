// One virtqueue of a vhost-user-blk export, served on one shard: the data
// path. It takes the heads the guest made available, walks each chain
// (split_queue), reads it as a virtio-blk request (parse_blk_request),
// issues the I/O through this shard's io_channel of the device straight
// from guest memory (zero copy: the io_vecs point into the mapped guest
// RAM; a read or write with a piece not 512-byte aligned in address or
// length, which an O_DIRECT backend refuses, is copied through one
// DMA-pool buffer instead), writes the status byte, puts the used element and, once per
// reactor loop, publishes the used ring and signals the call eventfd when
// the driver asked for it (EVENT_IDX / NO_INTERRUPT).
//
// Nothing here allocates per request: a request slot per descriptor head
// (the ring size of them) is allocated when the queue starts, with room
// for max_pieces io_vecs; a request that needs I/O runs in a coroutine
// whose frame comes from the shard's slab. No lock: the queue's state is
// touched only by its shard; guest memory and the inflight region are
// shared memory written by the guest and by us.
//
// Polling (docs/runtime.md, "Sleeping and waking"): while requests come
// the queue is a reactor poller with guest kicks suppressed. When it has
// found nothing for the reactor's idle time (adaptive; at once in event
// mode; never in busy mode) it leaves the poller list, re-enables kicks and
// waits for the kick eventfd through io_uring, so an idle engine sleeps.
// A queue without a kick fd (the no-fd flag) is polled always.
//
// A ring fault (ring_error: a hostile or broken driver) logs one line and
// marks the queue broken: it takes no more heads until it is set up again
// (what QEMU's own device model does).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/future.hh"
#include "runtime/reactor.hh"
#include "storage/block_device.hh"
#include "vhost/blk_request.hh"
#include "vhost/inflight_area.hh"
#include "vhost/virtqueue.hh"

namespace ioe::vhost {

// Per queue, written by its shard only.
struct blk_queue_counters {
    std::uint64_t reads = 0, writes = 0, flushes = 0, get_ids = 0, discards = 0, write_zeroes = 0;
    std::uint64_t read_bytes = 0, write_bytes = 0;
    std::uint64_t ioerr = 0;        // answered IOERR (refused or failed)
    std::uint64_t unsupported = 0;  // answered UNSUPP
    std::uint64_t interrupts = 0;   // call eventfd writes
    std::uint64_t resubmitted = 0;  // inflight requests resubmitted at start
    std::uint64_t ring_faults = 0;  // the queue was marked broken
    std::uint64_t bounced = 0;      // reads / writes copied through a DMA buffer (misaligned guest buffers)

    void add(const blk_queue_counters& o) noexcept;
};

struct blk_queue_setup {
    unsigned index = 0;
    const guest_memory* memory = nullptr;  // stays unchanged while the queue runs
    queue_config ring;
    ring_addresses addr;
    std::uint16_t base = 0;                // SET_VRING_BASE
    int kick_fd = -1;                      // -1: poll (the no-fd flag); not owned
    int call_fd = -1;                      // -1: the front-end polls; not owned
    user::inflight_queue_split* inflight = nullptr;  // INFLIGHT_SHMFD region, or null
    blk_params params;
    block_device* device = nullptr;
    std::array<char, 20> id{};             // GET_ID answer
    std::string log_name;                  // "vhost-blk \"e0\" queue 1", for log lines
};

class blk_queue final : public poller, public end_of_loop_work {
public:
    // A request carries at most this many host pieces (seg_max data
    // segments, header, status, and pieces split at region boundaries).
    static constexpr std::uint32_t max_pieces = 160;

    // On the queue's shard.
    explicit blk_queue(blk_queue_setup s);
    ~blk_queue() override;
    blk_queue(const blk_queue&) = delete;
    blk_queue& operator=(const blk_queue&) = delete;

    // Sets up the ring, resubmits what the inflight region says was in
    // flight, and starts polling. "" or why the ring cannot be used.
    std::string start();
    // Takes no more heads, waits for every request in flight, publishes
    // their used elements and stops waiting for kicks. Resolves with the
    // next available index (GET_VRING_BASE).
    future<std::uint16_t> stop();
    // SET_VRING_CALL while the queue runs (the caller closes the old fd
    // after this returns).
    void set_call_fd(int fd) noexcept { _s.call_fd = fd; }

    bool broken() const noexcept { return _broken; }
    unsigned in_flight() const noexcept { return _in_flight; }
    const blk_queue_counters& counters() const noexcept { return _counters; }

    bool poll() noexcept override;
    void run_end_of_loop() noexcept override;

private:
    struct slot {
        bool busy = false;
        blk_request req;
        std::array<io_vec, max_pieces> iov;
    };

    void take(std::uint16_t head) noexcept;
    void complete(std::uint16_t head, std::uint8_t status, std::uint32_t written) noexcept;
    void fault(std::string_view what, std::uint16_t where, std::string_view kind = "head") noexcept;
    void count(const blk_request& req, std::uint8_t status) noexcept;
    void publish() noexcept;
    void go_idle() noexcept;
    void resume_polling() noexcept;
    static future<> serve(blk_queue* q, std::uint16_t head);
    static future<io_status> bounce(blk_queue* q, blk_request& req);
    static future<> wait_kick(blk_queue* q);

    blk_queue_setup _s;
    split_queue _ring;
    inflight_log _inflight;
    io_channel* _channel = nullptr;
    std::vector<slot> _slots;
    unsigned _in_flight = 0;
    bool _started = false;
    bool _stopping = false;
    bool _broken = false;
    bool _polling = false;         // in the reactor's poller list
    bool _want_idle = false;
    bool _used_pending = false;    // used elements put, not yet published
    std::optional<future<>> _kick_wait;
    std::uint64_t _kick_op = 0;
    std::uint64_t _kick_value = 0;
    unsigned _empty_polls = 0;
    steady_clock::time_point _last_work{};
    std::optional<promise<>> _drained;
    blk_queue_counters _counters;
};

}  // namespace ioe::vhost
