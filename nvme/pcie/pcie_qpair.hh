// pcie_qpair: one NVMe submission/completion queue pair of the PCIe driver
// in the DMA pool (the admin queue, or one shard's I/O queue), used only on
// one shard.
//
// * Memory: the SQ, the CQ and one list page per command slot (a PRP list,
//   or an SGL segment when the queue uses SGLs, see use_sgl) come from
//   the DMA pool when the queue pair is made (control path); the I/O path
//   allocates nothing: a command takes a free slot (cid = slot index), its
//   coroutine frame comes from the shard's slab.
// * Submission writes the SQE and marks the SQ tail dirty; the tail doorbell
//   is written once per reactor loop by poll(), for every command submitted
//   since (doorbell batching). poll() then reaps the CQ by its phase tag
//   (interrupts are off) and writes the CQ head doorbell once per batch.
//   The queue registers itself as a reactor poller when a command is
//   submitted and unregisters (from a task, never inside poll) when nothing
//   is in flight, so an idle engine can still sleep.
// * At most depth - 1 commands are in flight; more wait in FIFO order for a
//   slot (an intrusive list in the waiters' frames).
// * Timeouts: a periodic tick (a quarter of the timeout) ages the commands in
//   flight; a command older than the timeout is reported once (the device
//   sends an Abort), older than twice the timeout once more (the device
//   resets the controller).
// * Reset: suspend() holds new commands back (they wait, unsent, and no
//   doorbell is written) while the controller is being reset; once the
//   controller is disabled (it no longer touches memory), fail_all()
//   completes every command submitted before with Command Abort Requested
//   and reinit() rewinds the rings; resume() lets the waiting commands go.
//   kill() fails everything, waiting or submitted, with Namespace Not Ready
//   for good.
// Completions are delivered as a cqe whose status is the controller's or one
// made here (the phase bit is meaningless in either).
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nvme/pcie/controller_bus.hh"
#include "nvme/pcie/prp.hh"
#include "nvme/pcie/sgl.hh"
#include "nvme/spec/nvme_spec.hh"
#include "runtime/dma.hh"
#include "runtime/future.hh"
#include "runtime/reactor.hh"
#include "runtime/task.hh"
#include "runtime/timer.hh"

namespace ioe::nvme {

struct qp_result {
    cqe cq{};
    std::uint32_t bytes = 0;  // data bytes the command covered (execute_rw)
    bool ok() const noexcept { return status_ok(cq.status); }
};

class pcie_qpair final : public poller {
public:
    static constexpr unsigned max_depth = 256;  // one 1 MiB buffer of PRP list pages
    static constexpr unsigned ticks_per_timeout = 4;

    // (qid, cid, escalate): a command outlived the timeout (escalate=false)
    // or twice the timeout (escalate=true). Called on the queue's shard.
    using timeout_handler = std::function<void(std::uint16_t qid, std::uint16_t cid, bool escalate)>;

    // Allocates the queue memory; throws std::runtime_error when the DMA
    // pool cannot provide it. depth in [2, max_depth].
    pcie_qpair(controller_bus& bus, dma_pool& pool, std::uint16_t qid, unsigned depth, unsigned dstrd,
               std::chrono::milliseconds timeout, timeout_handler on_timeout);
    ~pcie_qpair() override;
    pcie_qpair(const pcie_qpair&) = delete;
    pcie_qpair& operator=(const pcie_qpair&) = delete;

    std::uint16_t qid() const noexcept { return _qid; }
    unsigned depth() const noexcept { return _depth; }
    std::uint64_t sq_bus() const noexcept { return _sq_bus; }
    std::uint64_t cq_bus() const noexcept { return _cq_bus; }
    unsigned in_flight() const noexcept { return _in_flight; }
    std::uint64_t doorbells() const noexcept { return _doorbells; }

    // A command whose data pointer the caller filled (or none).
    future<qp_result> execute(sqe cmd);
    // A command over `page`, one 4 KiB page of DMA memory (Identify).
    future<qp_result> execute_page(sqe cmd, std::byte* page);
    // A read or write: describes up to max_bytes of iov from `offset` with
    // PRPs, or with an SGL once use_sgl() chose one (fewer bytes where the
    // buffers force a split, see prp.hh and sgl.hh), sets NLB
    // (CDW12 bits 15:0) from what it covered, and reports that in .bytes.
    future<qp_result> execute_rw(sqe cmd, io_vecs iov, std::uint64_t offset, std::uint32_t max_bytes,
                                 std::uint32_t block_bytes);
    // Dataset Management with one range (kept in the slot's list page).
    future<qp_result> execute_dsm(sqe cmd, dsm_range range);

    // Reads and writes describe their data with SGLs (support != none; set
    // on the control path, before I/O) or PRPs (none, the default).
    void use_sgl(sgl_support support) noexcept { _sgl = support; }
    sgl_support sgl() const noexcept { return _sgl; }
    // Reads and writes sent with each kind of data pointer.
    std::uint64_t sgl_commands() const noexcept { return _sgl_commands; }
    std::uint64_t prp_commands() const noexcept { return _prp_commands; }

    bool poll() noexcept override;

    // Reset support (see the header comment); on the queue's shard.
    void suspend() noexcept { if (_state == state::live) _state = state::suspended; }
    void resume() noexcept;
    void kill() noexcept;
    void fail_all(std::uint16_t status) noexcept;
    void reinit() noexcept;
    // Completes one command here (its CID stays unused until reinit()).
    void fail_one(std::uint16_t cid, std::uint16_t status) noexcept;
    // Stops the tick and leaves the reactor (on close; nothing in flight).
    void detach() noexcept;

private:
    enum class state { live, suspended, dead };

    struct slot final : task {
        std::coroutine_handle<> waiter;
        cqe result{};
        std::uint64_t* list = nullptr;       // the list page as a PRP list
        sgl_descriptor* segment = nullptr;   // the same page as an SGL segment
        std::uint64_t list_bus = 0;
        std::uint32_t submitted_tick = 0;
        bool busy = false;       // taken from the free list
        bool submitted = false;  // its SQE is in the ring: the controller may own it
        bool done = false, reported = false, escalated = false, quarantined = false;
        void run() noexcept override { std::exchange(waiter, {}).resume(); }
    };
    struct slot_waiter final : task {
        std::coroutine_handle<> h;
        slot_waiter* next = nullptr;
        int granted = -1;  // the slot release() handed over
        void run() noexcept override { h.resume(); }
    };
    struct idle_check final : task {
        pcie_qpair* q = nullptr;
        void run() noexcept override { q->leave_if_idle(); }
    };
    struct slot_awaiter;
    struct completion_awaiter;
    struct live_awaiter;

    future<slot*> acquire();
    // A slot once the queue is live (waiting out a reset); nullptr when the
    // queue is dead.
    future<slot*> admit();
    future<qp_result> submit_and_wait(slot* s, sqe cmd);
    void release(slot* s) noexcept;
    void finish(slot* s, const cqe& c) noexcept;
    void ensure_polled() noexcept;
    void leave_if_idle() noexcept;
    void tick() noexcept;
    std::uint16_t refused_status() const noexcept;

    controller_bus& _bus;
    const std::uint16_t _qid;
    const unsigned _depth;
    const std::uint32_t _sq_doorbell, _cq_doorbell;
    const std::uint32_t _timeout_ticks = ticks_per_timeout;
    const std::chrono::milliseconds _tick_period;
    timeout_handler _on_timeout;

    dma_buffer _sq_mem, _cq_mem, _list_mem;
    sqe* _sq = nullptr;
    cqe* _cq = nullptr;
    std::uint64_t _sq_bus = 0, _cq_bus = 0;
    std::vector<slot> _slots;
    std::vector<std::uint16_t> _free;  // a stack of slot indices (capacity depth - 1)

    state _state = state::live;
    std::uint32_t _sq_tail = 0, _cq_head = 0;
    bool _phase = true;
    bool _sq_dirty = false;
    unsigned _in_flight = 0;
    std::uint64_t _doorbells = 0;
    sgl_support _sgl = sgl_support::none;
    std::uint64_t _sgl_commands = 0, _prp_commands = 0;
    slot_waiter* _waiters_head = nullptr;
    slot_waiter* _waiters_tail = nullptr;
    slot_waiter* _resume_head = nullptr;  // commands waiting for a reset to end (LIFO is fine:
                                          // they are all woken at once)

    reactor* _reactor = nullptr;
    bool _polled = false;
    bool _idle_check_queued = false;
    idle_check _idle_check;
    std::uint32_t _ticks = 0;
    timer _tick;
};

}  // namespace ioe::nvme
