// pcie_device: the block_device over a pcie_controller and its per-shard
// channel (see pcie_device.hh).
#include "nvme/pcie/pcie_device.hh"

#include <algorithm>

#include "runtime/engine.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "storage/errors.hh"

namespace ioe::nvme {
namespace {

constexpr std::uint32_t nsid_1 = 1;
constexpr std::uint64_t max_zeroes_blocks = 0x10000;     // NLB is 16 bits
constexpr std::uint64_t max_dsm_blocks = 0xffffffffull;  // a range's length is 32 bits

io_status to_io_status(const qp_result& r) noexcept {
    if (r.ok()) return io_status::success;
    return static_cast<io_status>((unsigned{status_code_type(r.cq.status)} << 8) | status_code(r.cq.status));
}

sqe make_cmd(std::uint8_t opcode, std::uint64_t lba = 0) {
    sqe s{};
    s.opcode = opcode;
    s.nsid = nsid_1;
    s.cdw10 = static_cast<std::uint32_t>(lba);
    s.cdw11 = static_cast<std::uint32_t>(lba >> 32);
    return s;
}

// The I/O itself, on the shard that owns queue pair `q`.
future<io_status> do_rw(pcie_qpair& q, std::uint8_t opcode, std::uint64_t lba, std::uint64_t bytes, io_vecs iov,
                        std::uint32_t block_size, std::uint32_t max_transfer) {
    std::uint64_t offset = 0;
    while (bytes > 0) {
        const auto want = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes, max_transfer));
        qp_result r = co_await q.execute_rw(make_cmd(opcode, lba), iov, offset, want, block_size);
        if (!r.ok()) co_return to_io_status(r);
        lba += r.bytes / block_size;
        offset += r.bytes;
        bytes -= r.bytes;
    }
    co_return io_status::success;
}

future<io_status> do_flush(pcie_qpair& q) {
    co_return to_io_status(co_await q.execute(make_cmd(nvm_opcode::flush)));
}

future<io_status> do_zeroes(pcie_qpair& q, std::uint64_t lba, std::uint64_t blocks) {
    while (blocks > 0) {
        const std::uint64_t n = std::min(blocks, max_zeroes_blocks);
        sqe c = make_cmd(nvm_opcode::write_zeroes, lba);
        c.cdw12 = static_cast<std::uint32_t>(n - 1);
        io_status st = to_io_status(co_await q.execute(c));
        if (!ok(st)) co_return st;
        lba += n;
        blocks -= n;
    }
    co_return io_status::success;
}

future<io_status> do_unmap(pcie_qpair& q, std::uint64_t lba, std::uint64_t blocks) {
    while (blocks > 0) {
        const std::uint64_t n = std::min(blocks, max_dsm_blocks);
        sqe c = make_cmd(nvm_opcode::dataset_management);
        c.cdw10 = 0;  // one range (0's based)
        c.cdw11 = dsm_attribute_deallocate;
        dsm_range r{};
        r.length = static_cast<std::uint32_t>(n);
        r.starting_lba = lba;
        io_status st = to_io_status(co_await q.execute_dsm(c, r));
        if (!ok(st)) co_return st;
        lba += n;
        blocks -= n;
    }
    co_return io_status::success;
}

// One shard's channel: its own queue pair, or the home shard's (a hop).
class pcie_channel final : public device_channel {
public:
    pcie_channel(pcie_controller& c, unsigned shard) noexcept
        : _c(c), _home(shard % std::max(1u, c.io_queues())), _local(_home == shard) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return rw(nvm_opcode::read, lba, blocks, iov);
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return rw(nvm_opcode::write, lba, blocks, iov);
    }
    future<io_status> flush() override {
        if (!_c.info().write_cache) return make_ready_future<io_status>(io_status::success);
        if (_local) return do_flush(_c.io_qpair(_home));
        pcie_qpair* q = &_c.io_qpair(_home);
        return submit_to(_home, [q] { return do_flush(*q); });
    }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        if (!_c.info().write_zeroes) return make_ready_future<io_status>(io_status::invalid_opcode);
        if (_local) return do_zeroes(_c.io_qpair(_home), lba, blocks);
        pcie_qpair* q = &_c.io_qpair(_home);
        return submit_to(_home, [q, lba, blocks] { return do_zeroes(*q, lba, blocks); });
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        if (!_c.info().deallocate) return make_ready_future<io_status>(io_status::invalid_opcode);
        if (_local) return do_unmap(_c.io_qpair(_home), lba, blocks);
        pcie_qpair* q = &_c.io_qpair(_home);
        return submit_to(_home, [q, lba, blocks] { return do_unmap(*q, lba, blocks); });
    }
    future<> close() override {
        if (_local) _c.io_qpair(_home).detach();
        return make_ready_future<>();
    }

private:
    future<io_status> rw(std::uint8_t opcode, std::uint64_t lba, std::uint32_t blocks, io_vecs iov) {
        const std::uint32_t bs = _c.info().block_size;
        const std::uint64_t bytes = std::uint64_t{blocks} * bs;
        const std::uint32_t mt = _c.info().max_transfer;
        if (_local) return do_rw(_c.io_qpair(_home), opcode, lba, bytes, iov, bs, mt);
        pcie_qpair* q = &_c.io_qpair(_home);
        return submit_to(_home, [q, opcode, lba, bytes, iov, bs, mt] { return do_rw(*q, opcode, lba, bytes, iov, bs, mt); });
    }

    pcie_controller& _c;
    const unsigned _home;
    const bool _local;
};

}  // namespace

pcie_device::pcie_device(std::string name, std::unique_ptr<pcie_controller> ctrl)
    : block_device(std::move(name), "pcie", ctrl->info().id, ctrl->info().block_size, ctrl->info().block_count),
      _ctrl(std::move(ctrl)) {}

pcie_device::~pcie_device() = default;

future<std::unique_ptr<pcie_device>> pcie_device::open(std::string name, std::string where,
                                                       std::unique_ptr<controller_bus> bus, pcie_options opts) {
    engine* e = engine::current();
    if (!e) throw storage_error(storage_errc::internal, where + ": no running engine (the DMA pool comes from it)");
    auto ctrl = std::make_unique<pcie_controller>(std::move(where), std::move(bus), e->dma(), opts);
    std::exception_ptr error;
    try {
        co_await ctrl->start();
    } catch (...) {
        error = std::current_exception();
    }
    if (error) {
        // Leave the controller disabled-or-shut-down and the reactors clean.
        try {
            co_await ctrl->shutdown();
        } catch (...) {
        }
        std::rethrow_exception(error);
    }
    co_return std::unique_ptr<pcie_device>(new pcie_device(std::move(name), std::move(ctrl)));
}

std::unique_ptr<device_channel> pcie_device::open_channel() {
    return std::make_unique<pcie_channel>(*_ctrl, this_shard_id());
}

future<> pcie_device::close_backend() { return _ctrl->shutdown(); }

}  // namespace ioe::nvme
