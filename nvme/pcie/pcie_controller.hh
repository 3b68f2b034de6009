// pcie_controller: the life of one NVMe controller driven from user space
// over a controller_bus (VFIO in production, the controller model in tests):
// bring-up, the admin queue, one I/O queue pair per shard, recovery and the
// orderly shutdown. pcie_device (the block_device) sits on top of it.
//
// * start() (owner shard, control path): CAP and VS; CC.EN = 0 and wait for
//   CSTS.RDY = 0 (bounded by CAP.TO); the admin queue in the DMA pool
//   (AQA/ASQ/ACQ); CC.EN = 1 with 4 KiB pages and 64/16-byte entries, wait
//   for CSTS.RDY (CSTS.CFS fails the start); Identify Controller (MDTS, ONCS,
//   VWC, SGLS: with pcie_options::sgl, SGL or PRP data pointers), Identify Namespace 1 (block size, size) and its descriptors (uuid);
//   Set Features Number of Queues (one per shard); then one I/O CQ + SQ per
//   granted queue (physically contiguous, interrupts off). Queue i (qid i+1)
//   is used on shard i only.
// * Recovery, on the owner shard: a command that outlives the I/O timeout is
//   aborted (admin Abort); one that outlives twice the timeout, a timed-out
//   admin command, or CSTS.CFS (read every health_interval) resets the
//   controller: every queue is suspended (new commands wait, unsent),
//   CC.EN = 0 and wait for RDY = 0 (the controller no longer touches
//   memory), then every command in flight fails with "aborted" (its caller
//   sees the error: nothing is lost silently), the admin and I/O queues are
//   re-created and I/O resumes. A reset that fails, or CSTS reading all ones
//   (the device is gone), leaves the controller failed: every command then
//   fails with Namespace Not Ready.
// * shutdown() (device close, engine stop): the I/O queues are deleted, then
//   CC.SHN = normal and wait for CSTS.SHST = complete (bounded), as the
//   specification asks before power goes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nvme/pcie/controller_bus.hh"
#include "nvme/pcie/identify_parse.hh"
#include "nvme/pcie/pcie_qpair.hh"
#include "runtime/dma.hh"
#include "runtime/timer.hh"
#include "storage/uuid.hh"

namespace ioe::nvme {

// How reads and writes describe their data (URI parameter sgl=): SGLs when
// the controller supports them, else PRPs (automatic); SGLs or the open
// fails (on); PRPs always (off). Admin commands always use PRPs (the PCIe
// transport requires it).
enum class sgl_mode : std::uint8_t { automatic, on, off };
const char* to_string(sgl_mode m) noexcept;

struct pcie_options {
    std::chrono::milliseconds io_timeout{10000};      // per command (admin commands too)
    std::chrono::milliseconds health_interval{1000};  // how often CSTS is read for CFS
    unsigned io_depth = 256;                          // capped by CAP.MQES + 1 and pcie_qpair::max_depth
    unsigned admin_depth = 32;
    sgl_mode sgl = sgl_mode::automatic;
};

enum class controller_state {
    starting,
    live,       // I/O flows
    resetting,  // a reset is in progress; new commands wait for its end
    failed,     // gone or could not be brought back; commands fail "namespace not ready"
    shut_down,  // orderly shutdown done
};
const char* to_string(controller_state s) noexcept;

struct pcie_counters {
    std::uint64_t timeouts = 0;      // commands past the timeout
    std::uint64_t aborts_sent = 0;
    std::uint64_t resets = 0;
    std::uint64_t fatal_status = 0;  // CSTS.CFS seen
};


class pcie_controller {
public:
    // `where`: "pcie:///0000:00:04.0", the prefix of every message.
    pcie_controller(std::string where, std::unique_ptr<controller_bus> bus, dma_pool& pool, pcie_options opts);
    ~pcie_controller();

    // Owner shard. Throws storage_error naming the device, the step and the
    // NVMe status or register value.
    future<> start();
    future<> reset(std::string reason);
    future<> shutdown();

    const std::string& where() const noexcept { return _where; }
    controller_bus& bus() noexcept { return *_bus; }
    controller_state state() const noexcept { return _state; }
    const pcie_counters& counters() const noexcept { return _counters; }
    const namespace_info& info() const noexcept { return _info; }
    unsigned io_queues() const noexcept { return static_cast<unsigned>(_io.size()); }
    unsigned io_depth() const noexcept { return _io_depth; }
    // The data pointers of reads and writes: none = PRPs, else SGLs.
    sgl_support data_pointers() const noexcept { return _sgl; }
    pcie_qpair& io_qpair(unsigned i) noexcept { return *_io[i]; }
    pcie_qpair& admin_qpair() noexcept { return *_admin; }
    unsigned owner_shard() const noexcept { return _owner; }

private:
    future<> disable();
    future<> enable_admin();
    future<> wait_ready(bool ready, const char* step);
    future<> identify();
    future<> set_queue_count();
    future<> create_io_queues();
    future<qp_result> admin(sqe cmd, const char* step);
    future<> abort_command(std::uint16_t qid, std::uint16_t cid);
    future<> recover(std::string reason);
    future<> each_io_queue(void (*fn)(pcie_qpair&));
    void on_timeout(std::uint16_t qid, std::uint16_t cid, bool escalate);
    void health_check();
    void fail(const std::string& why);

    const std::string _where;
    std::unique_ptr<controller_bus> _bus;
    dma_pool& _pool;
    const pcie_options _opts;
    const unsigned _owner;
    std::uint64_t _cap = 0;
    unsigned _dstrd = 0;
    std::chrono::milliseconds _ready_timeout{500};
    unsigned _io_depth = 0;
    sgl_support _sgl = sgl_support::none;
    std::uint16_t _granted = 0;
    namespace_info _info;
    controller_state _state = controller_state::starting;
    pcie_counters _counters;
    std::unique_ptr<pcie_qpair> _admin;
    std::vector<std::unique_ptr<pcie_qpair>> _io;  // index = qid - 1 = home shard
    dma_buffer _page;                              // 4 KiB for Identify data
    timer _health;
    bool _health_busy = false;
    std::vector<promise<>> _reset_waiters;
};

}  // namespace ioe::nvme
