// controller_model: an NVMe controller in the test process, behind the same
// controller_bus as a real device, for the driver's unit tests and for
// bench/pcie_bench.
//
// It has the registers of a PCIe controller (CAP, VS, CC, CSTS, AQA, ASQ,
// ACQ, doorbells with DSTRD 0) and reads and writes queues and data in the
// engine's DMA pool through bus addresses, exactly as a device does: queues
// are fetched from memory, completions are posted with the phase tag, PRP1 /
// PRP2 / PRP lists (chained) and SGLs (Data Block, Segment and Last Segment
// descriptors, chained segments; PSDT 01b, I/O commands only) are walked per
// the specification (its own code, independent of the driver's builders).
// SGL support is advertised in Identify Controller SGLS (model_config::sgls;
// 0 turns it off: a command with PSDT != 00b then fails Invalid Field). A bad
// SGL fails the command with the specification's status: SGL Descriptor Type
// Invalid (an unknown, unsupported or rejected type or sub type, Bit Bucket
// included), Invalid SGL Segment Descriptor (a segment descriptor that is not
// last in its segment, inside a last segment, of a length that is not a
// non-zero multiple of 16, not Qword aligned, or too many segments), Data SGL
// Length Invalid (data blocks shorter or longer than the transfer, or a
// length that breaks dword granularity), Invalid Field (an address that
// breaks dword alignment). Bus addresses are NOT the virtual
// addresses (a fixed IOVA base of 4 GiB + offset into the pool), so a driver
// that forgets to translate is caught; an address outside the pool fails the
// command with Data Transfer Error, as an IOMMU fault would.
//
// Commands are processed when their SQ tail doorbell is written, on the
// writing thread (under the model's mutex): Identify (controller, namespace,
// active list, descriptors), Set Features Number of Queues, Create/Delete I/O
// SQ/CQ, Abort; Read, Write, Flush, Write Zeroes, Dataset Management
// (deallocate: reads back zeroes) over a RAM backing store. CC.EN 1->0 is a
// controller reset (every queue is gone, stalled commands dropped, CSTS.CFS
// cleared); CC.SHN completes the shutdown at once (SHST = complete).
//
// Fault injection, from any thread: fail the next N commands of an opcode
// with a given status; stall I/O (commands are fetched and never completed
// until released or aborted); make Abort ineffective (forcing the driver to
// reset); set CSTS.CFS (the controller stops processing until reset); never
// set CSTS.RDY (bring-up timeout); treat one SGL descriptor type as
// unsupported (a controller that advertises SGLs but refuses, say, Last
// Segment descriptors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nvme/pcie/controller_bus.hh"
#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

struct model_config {
    std::uint32_t block_size = 512;
    std::uint64_t block_count = 16384;  // 8 MiB
    std::uint16_t mqes = 1023;          // CAP.MQES (0's based)
    std::uint8_t mdts = 5;              // 2^5 pages: 128 KiB per command
    std::uint16_t max_io_queues = 64;
    std::uint8_t timeout_500ms = 2;     // CAP.TO
    std::uint32_t sgls = 1;             // Identify Controller SGLS: 1 SGLs (byte aligned), 2 dword aligned, 0 none
};

struct model_stats {
    std::uint64_t admin_commands = 0;
    std::uint64_t io_commands = 0;
    std::uint64_t reads = 0, writes = 0, flushes = 0, write_zeroes = 0, dsm = 0;
    std::uint64_t aborts = 0;          // Abort commands received
    std::uint64_t aborted = 0;         // commands completed by an Abort
    std::uint64_t resets = 0;          // CC.EN 1 -> 0
    std::uint64_t enables = 0;         // CC.EN 0 -> 1
    std::uint64_t shutdowns = 0;       // CC.SHN normal or abrupt
    std::uint64_t sq_doorbells = 0, cq_doorbells = 0;
    std::uint64_t doorbells_while_disabled = 0;  // a host bug: CC.EN = 0
    std::uint64_t io_queues_created = 0;
    std::uint64_t max_prp_entries = 0; // the longest PRP description seen
    std::uint64_t list_prps = 0;       // commands that used a PRP list
    std::uint64_t prp_commands = 0;    // I/O commands with data described by PRPs
    std::uint64_t sgl_commands = 0;    // ... by an SGL
    std::uint64_t sgl_segments = 0;    // SGL segments fetched (descriptor lists in host memory)
    std::uint64_t max_sgl_descriptors = 0;  // the most Data Block descriptors of one command
    std::uint64_t busy_ns = 0;         // time spent processing doorbell writes (the "device" side)
};

class controller_model {
public:
    static constexpr std::uint64_t iova_base = std::uint64_t(1) << 32;

    // dma: the memory the model may reach (the engine's DMA pool).
    controller_model(model_config cfg, const void* dma_base, std::size_t dma_size);
    ~controller_model();

    std::uint32_t read32(std::uint32_t offset);
    void write32(std::uint32_t offset, std::uint32_t value);

    // Fault injection.
    void fail_next(std::uint8_t io_opcode, std::uint8_t type, std::uint8_t code, unsigned count = 1);
    void stall_io(bool on);
    void release_stalled();  // executes and completes the stalled commands
    void ignore_aborts(bool on);
    void set_fatal();        // CSTS.CFS = 1
    void never_ready(bool on);
    // Answers SGL Descriptor Type Invalid to any SGL holding a descriptor of
    // `type` (sgl_type::...); no_rejected_type turns it off.
    static constexpr std::uint8_t no_rejected_type = 0xff;
    void reject_sgl_type(std::uint8_t type);
    // Surprise removal: registers read all ones, writes and doorbells are
    // lost, nothing completes any more.
    void remove();

    model_stats stats() const;
    unsigned stalled() const;
    unsigned live_io_queues() const;
    // The backing store (tests check the bytes; not while I/O runs).
    std::byte* media() noexcept { return _media.data(); }
    std::size_t media_bytes() const noexcept { return _media.size(); }
    const model_config& config() const noexcept { return _cfg; }

private:
    struct queue {
        bool live = false;
        std::uint64_t base = 0;  // bus address
        std::uint32_t size = 0;
        std::uint32_t head = 0, tail = 0;
        bool phase = true;        // CQ only
        std::uint16_t cqid = 0;   // SQ only
    };
    struct held {
        std::uint16_t sqid;
        sqe cmd;
    };
    struct pending {
        std::uint16_t cqid;
        cqe c;
    };

    void* to_host(std::uint64_t bus, std::size_t len) const noexcept;
    void set_cc(std::uint32_t v);
    void doorbell(std::uint32_t offset, std::uint32_t value);
    void reset_queues();
    void process_sq(std::uint16_t sqid);
    void post(std::uint16_t cqid, cqe c);
    void drain_backlog();
    void complete(std::uint16_t sqid, const sqe& cmd, std::uint16_t status, std::uint32_t dw0 = 0);
    std::uint16_t admin(const sqe& cmd, std::uint32_t& dw0);
    std::uint16_t io(const sqe& cmd);
    // Walks PRP1/PRP2 for `len` bytes; fn(host pointer, bytes). Returns a
    // status (success or the reason the description is bad).
    template <typename F>
    std::uint16_t walk_prps(const sqe& cmd, std::size_t len, F&& fn);
    // Walks the SGL in DPTR for exactly `len` bytes; same contract.
    template <typename F>
    std::uint16_t walk_sgl(const sqe& cmd, std::size_t len, F&& fn);
    // An I/O command's data: PRPs or SGL, per PSDT.
    template <typename F>
    std::uint16_t walk_data(const sqe& cmd, std::size_t len, F&& fn);
    std::uint16_t copy_out(const sqe& cmd, const void* src, std::size_t len);

    const model_config _cfg;
    const std::uintptr_t _dma_base;
    const std::size_t _dma_size;
    mutable std::mutex _lock;
    std::vector<std::byte> _media;
    std::uint32_t _cc = 0, _csts = 0, _aqa = 0;
    std::uint64_t _asq = 0, _acq = 0;
    std::uint16_t _granted = 0;
    std::vector<queue> _sq, _cq;  // index = qid
    std::deque<pending> _backlog;  // completions waiting for CQ space
    std::vector<held> _stalled;
    bool _stall_io = false, _ignore_aborts = false, _never_ready = false, _removed = false;
    std::uint8_t _rejected_sgl_type = no_rejected_type;
    std::uint8_t _fail_opcode = 0;
    std::uint16_t _fail_status = 0;
    unsigned _fail_count = 0;
    model_stats _stats;
};

// The controller_bus over a controller_model (bus address = 4 GiB + offset).
class model_bus final : public controller_bus {
public:
    model_bus(controller_model& m, const void* dma_base, std::size_t dma_size);
    std::uint32_t read32(std::uint32_t offset) noexcept override { return _model.read32(offset); }
    void write32(std::uint32_t offset, std::uint32_t value) noexcept override { _model.write32(offset, value); }
    std::string describe() const override { return "model"; }

private:
    controller_model& _model;
};

}  // namespace ioe::nvme
