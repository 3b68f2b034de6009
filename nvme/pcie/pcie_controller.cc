// pcie_controller: bring-up, recovery and shutdown of a user-space NVMe PCIe
// controller (see pcie_controller.hh).
#include "nvme/pcie/pcie_controller.hh"

#include <algorithm>
#include <cstring>
#include <utility>
#include <fmt/format.h>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/pcie/identify_parse.hh"
#include "nvme/spec/nvme_identify.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "storage/errors.hh"

namespace ioe::nvme {
namespace {

constexpr std::uint32_t nsid_1 = 1;
constexpr std::uint32_t all_ones = 0xffffffffu;
// CC: enabled, NVM command set, 4 KiB pages, round robin, 64-byte SQEs, 16-byte CQEs.
constexpr std::uint32_t cc_value = cc::en | (6u << 16) | (4u << 20);

sqe make_cmd(std::uint8_t opcode, std::uint32_t nsid = 0) {
    sqe s{};
    s.opcode = opcode;
    s.nsid = nsid;
    return s;
}

std::string status_text(std::uint16_t status) {
    return fmt::format("NVMe status SCT {:#x} SC {:#04x}", status_code_type(status), status_code(status));
}

}  // namespace

const char* to_string(controller_state s) noexcept {
    switch (s) {
        case controller_state::starting: return "starting";
        case controller_state::live: return "live";
        case controller_state::resetting: return "resetting";
        case controller_state::failed: return "failed";
        case controller_state::shut_down: return "shut down";
    }
    return "?";
}

const char* to_string(sgl_mode m) noexcept {
    switch (m) {
        case sgl_mode::automatic: return "auto";
        case sgl_mode::on: return "on";
        case sgl_mode::off: return "off";
    }
    return "?";
}

pcie_controller::pcie_controller(std::string where, std::unique_ptr<controller_bus> bus, dma_pool& pool,
                                 pcie_options opts)
    : _where(std::move(where)),
      _bus(std::move(bus)),
      _pool(pool),
      _opts(opts),
      _owner(this_shard_id() == no_shard ? 0 : this_shard_id()),
      _health([this] { health_check(); }) {}

pcie_controller::~pcie_controller() = default;

future<qp_result> pcie_controller::admin(sqe cmd, const char* step) {
    qp_result r = co_await _admin->execute(cmd);
    if (!r.ok()) {
        throw storage_error(storage_errc::io_error, fmt::format("{}: {} failed: {}", _where, step, status_text(r.cq.status)));
    }
    co_return r;
}

future<> pcie_controller::wait_ready(bool ready, const char* step) {
    const auto deadline = steady_clock::now() + _ready_timeout;
    for (;;) {
        const std::uint32_t v = _bus->read32(reg::csts);
        if (v == all_ones) {
            throw storage_error(storage_errc::unavailable,
                                fmt::format("{}: {}: CSTS reads all ones: the device does not respond (was it "
                                            "removed, or reset by someone else?)",
                                            _where, step));
        }
        if (ready && (v & csts::cfs)) {
            throw storage_error(storage_errc::io_error,
                                fmt::format("{}: {}: controller fatal status (CSTS {:#x})", _where, step, v));
        }
        if (csts::ready(v) == ready) co_return;
        if (steady_clock::now() > deadline) {
            throw storage_error(storage_errc::unavailable,
                                fmt::format("{}: {}: CSTS.RDY did not become {} within {} ms (CAP.TO); CSTS {:#x}",
                                            _where, step, ready ? 1 : 0, _ready_timeout.count(), v));
        }
        co_await sleep(std::chrono::milliseconds(1));
    }
}

future<> pcie_controller::disable() {
    const std::uint32_t cc_now = _bus->read32(reg::cc);
    if (cc::enabled(cc_now)) _bus->write32(reg::cc, cc_now & ~cc::en);
    co_await wait_ready(false, "disable (CC.EN=0)");
}

future<> pcie_controller::enable_admin() {
    const unsigned d = _admin->depth();
    _bus->write32(reg::aqa, (d - 1) | ((d - 1) << 16));
    _bus->write64(reg::asq, _admin->sq_bus());
    _bus->write64(reg::acq, _admin->cq_bus());
    _bus->write32(reg::cc, cc_value);
    co_await wait_ready(true, "enable (CC.EN=1)");
}

future<> pcie_controller::identify() {
    sqe c = make_cmd(admin_opcode::identify);
    c.cdw10 = cns::controller;
    qp_result r = co_await _admin->execute_page(c, _page.data());
    if (!r.ok()) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("{}: Identify Controller failed: {}", _where, status_text(r.cq.status)));
    }
    parse_identify_controller(_page.data(), _info);
    if (_opts.sgl == sgl_mode::on && _info.sgl == sgl_support::none) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("{}: sgl=on, but the controller does not support SGLs (Identify Controller "
                                        "SGLS {:#x}); use sgl=auto or sgl=off",
                                        _where, _info.sgls));
    }
    _sgl = _opts.sgl == sgl_mode::off ? sgl_support::none : _info.sgl;

    c = make_cmd(admin_opcode::identify, nsid_1);
    c.cdw10 = cns::namespace_data;
    r = co_await _admin->execute_page(c, _page.data());
    if (!r.ok()) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("{}: Identify Namespace 1 failed: {}", _where, status_text(r.cq.status)));
    }
    // The namespace's identity: its UUID descriptor, else its NGUID, else a
    // random one (a pool on it carries its own identity anyway).
    _info.id = uuid::random();
    const std::string unusable = parse_identify_namespace(_page.data(), _info);
    if (!unusable.empty()) {
        throw storage_error(_info.block_count == 0 && unusable.find("not active") != std::string::npos
                                ? storage_errc::not_found
                                : storage_errc::invalid_argument,
                            fmt::format("{}: {}", _where, unusable));
    }
    c = make_cmd(admin_opcode::identify, nsid_1);
    c.cdw10 = cns::namespace_id_descriptors;
    r = co_await _admin->execute_page(c, _page.data());
    if (r.ok()) parse_namespace_descriptors(_page.data(), _info);
}

future<> pcie_controller::set_queue_count() {
    const auto want = static_cast<std::uint16_t>(std::max(1u, shard_count()));
    sqe f = make_cmd(admin_opcode::set_features);
    f.cdw10 = feature::number_of_queues;
    f.cdw11 = std::uint32_t(want - 1) | (std::uint32_t(want - 1) << 16);
    qp_result r = co_await admin(f, "Set Features Number of Queues");
    const auto granted = static_cast<std::uint16_t>(std::min(r.cq.dw0 & 0xffff, r.cq.dw0 >> 16) + 1);
    _granted = std::min(want, granted);
}

future<> pcie_controller::create_io_queues() {
    for (auto& q : _io) {
        const std::uint32_t size_qid = q->qid() | ((q->depth() - 1) << 16);
        sqe c = make_cmd(admin_opcode::create_io_cq);
        c.dptr.prp.prp1 = q->cq_bus();
        c.cdw10 = size_qid;
        c.cdw11 = 1;  // physically contiguous, interrupts off
        co_await admin(c, "Create I/O Completion Queue");
        c = make_cmd(admin_opcode::create_io_sq);
        c.dptr.prp.prp1 = q->sq_bus();
        c.cdw10 = size_qid;
        c.cdw11 = 1 | (std::uint32_t{q->qid()} << 16);  // physically contiguous, on the CQ of the same id
        co_await admin(c, "Create I/O Submission Queue");
    }
}

future<> pcie_controller::start() {
    _cap = _bus->read64(reg::cap);
    if (_cap == ~0ull) {
        throw storage_error(storage_errc::unavailable,
                            fmt::format("{}: the controller registers read all ones: the device does not respond "
                                        "(is it powered, bound to vfio-pci, with memory space enabled?)",
                                        _where));
    }
    const std::uint32_t vs = _bus->read32(reg::vs);
    if (!(cap::css(_cap) & cap::css_nvm)) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("{}: the controller does not support the NVM command set (CAP {:#x})", _where,
                                        _cap));
    }
    if (cap::mpsmin(_cap) != 0) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("{}: the controller needs memory pages of at least {} bytes; this driver uses "
                                        "4 KiB pages",
                                        _where, 4096u << cap::mpsmin(_cap)));
    }
    _dstrd = reg::dstrd(_cap);
    _ready_timeout = std::chrono::milliseconds(500) * std::max<unsigned>(cap::timeout(_cap), 1);
    _io_depth = std::min<unsigned>({_opts.io_depth, unsigned{cap::mqes(_cap)} + 1, pcie_qpair::max_depth});
    const unsigned admin_depth = std::min<unsigned>({_opts.admin_depth, unsigned{cap::mqes(_cap)} + 1, 4096});

    auto timeout_cb = [this](std::uint16_t qid, std::uint16_t cid, bool escalate) {
        if (this_shard_id() == _owner) {
            on_timeout(qid, cid, escalate);
        } else {
            submit_to(_owner, [this, qid, cid, escalate] { on_timeout(qid, cid, escalate); }).ignore();
        }
    };
    try {
        _admin = std::make_unique<pcie_qpair>(*_bus, _pool, 0, admin_depth, _dstrd, _opts.io_timeout, timeout_cb);
        auto p = _pool.allocate(identify_bytes);
        if (!p) throw std::runtime_error("no DMA memory for the Identify page");
        _page = std::move(p.value());
    } catch (const std::runtime_error& e) {
        throw storage_error(storage_errc::no_space, fmt::format("{}: {}", _where, e.what()));
    }

    co_await disable();
    co_await enable_admin();
    co_await identify();
    co_await set_queue_count();
    try {
        for (std::uint16_t i = 0; i < _granted; ++i) {
            _io.push_back(std::make_unique<pcie_qpair>(*_bus, _pool, static_cast<std::uint16_t>(i + 1), _io_depth,
                                                       _dstrd, _opts.io_timeout, timeout_cb));
            _io.back()->use_sgl(_sgl);
        }
    } catch (const std::runtime_error& e) {
        throw storage_error(storage_errc::no_space, fmt::format("{}: {}", _where, e.what()));
    }
    co_await create_io_queues();
    _state = controller_state::live;
    if (_opts.health_interval.count() > 0) _health.arm_periodic(_opts.health_interval);
    log::info("{}: NVMe {}.{} controller \"{}\" (serial {}): {} blocks of {} B, {} I/O queues of {} entries, "
              "max transfer {} KiB, data pointers: {}{}{}{}",
              _where, vs >> 16, (vs >> 8) & 0xff, _info.model_number, _info.serial_number, _info.block_count,
              _info.block_size, _io.size(), _io_depth, _info.max_transfer >> 10,
              _sgl == sgl_support::none ? std::string("PRP") : fmt::format("SGL ({})", to_string(_sgl)),
              _info.write_zeroes ? ", write zeroes" : "", _info.deallocate ? ", deallocate" : "",
              _info.write_cache ? ", volatile write cache" : "");
}

future<> pcie_controller::each_io_queue(void (*fn)(pcie_qpair&)) {
    for (unsigned i = 0; i < _io.size(); ++i) {
        pcie_qpair* q = _io[i].get();
        co_await submit_to(i, [q, fn] { fn(*q); });
    }
}

void pcie_controller::on_timeout(std::uint16_t qid, std::uint16_t cid, bool escalate) {
    if (_state == controller_state::failed || _state == controller_state::shut_down) return;
    if (qid == 0) {
        // An admin command (maybe an Abort, maybe one of a reset): fail it
        // here; outside a reset, the controller is reset as well.
        log::warn("{}: admin command {} timed out", _where, cid);
        ++_counters.timeouts;
        _admin->fail_one(cid, make_status(sct::generic, sc::abort_requested));
        if (_state == controller_state::live) reset("an admin command timed out").ignore();
        return;
    }
    if (!escalate) {
        ++_counters.timeouts;
        log::warn("{}: command {} on I/O queue {} timed out after {} ms: aborting it", _where, cid, qid,
                  _opts.io_timeout.count());
        abort_command(qid, cid).ignore();
    } else if (_state == controller_state::live) {
        reset(fmt::format("command {} on I/O queue {} was not completed after an abort", cid, qid)).ignore();
    }
}

future<> pcie_controller::abort_command(std::uint16_t qid, std::uint16_t cid) {
    sqe a = make_cmd(admin_opcode::abort);
    a.cdw10 = qid | (std::uint32_t{cid} << 16);
    ++_counters.aborts_sent;
    qp_result r = co_await _admin->execute(a);
    if (!r.ok() || (r.cq.dw0 & 1)) {
        log::warn("{}: the controller did not abort command {} on queue {} ({}); a reset follows if it stays stuck",
                  _where, cid, qid, r.ok() ? "it declined" : status_text(r.cq.status));
    }
}

void pcie_controller::health_check() {
    if (_state != controller_state::live || _health_busy) return;
    const std::uint32_t v = _bus->read32(reg::csts);
    if (v == all_ones) {
        fail("CSTS reads all ones: the device stopped responding (removed, or reset under us)");
        return;
    }
    if (v & csts::cfs) {
        ++_counters.fatal_status;
        reset(fmt::format("controller fatal status (CSTS {:#x})", v)).ignore();
    }
}

void pcie_controller::fail(const std::string& why) {
    if (_state == controller_state::failed) return;
    log::error("{}: controller failed: {}; its I/O now fails with namespace not ready", _where, why);
    _state = controller_state::failed;
    _health.cancel();
    _admin->kill();
    for (unsigned i = 0; i < _io.size(); ++i) {
        pcie_qpair* q = _io[i].get();
        submit_to(i, [q] { q->kill(); }).ignore();
    }
}

future<> pcie_controller::reset(std::string reason) {
    if (_state == controller_state::resetting) {
        _reset_waiters.emplace_back();
        co_await _reset_waiters.back().get_future();
        co_return;
    }
    if (_state != controller_state::live) co_return;
    _state = controller_state::resetting;
    _health_busy = true;
    ++_counters.resets;
    log::warn("{}: resetting the controller: {}", _where, reason);
    co_await recover(std::move(reason));
    _health_busy = false;
    auto waiters = std::move(_reset_waiters);
    for (auto& w : waiters) w.set_value();
}

future<> pcie_controller::recover(std::string reason) {
    std::string error;
    try {
        // New commands fail from here on; what is in flight stays until the
        // controller is disabled and can no longer write into its buffers.
        _admin->suspend();
        co_await each_io_queue([](pcie_qpair& q) { q.suspend(); });
        co_await disable();
        constexpr std::uint16_t aborted = make_status(sct::generic, sc::abort_requested);
        _admin->fail_all(aborted);
        _admin->reinit();
        for (unsigned i = 0; i < _io.size(); ++i) {
            pcie_qpair* q = _io[i].get();
            co_await submit_to(i, [q] {
                q->fail_all(aborted);
                q->reinit();
            });
        }
        _admin->resume();
        co_await enable_admin();
        const std::uint16_t had = _granted;
        co_await set_queue_count();
        if (_granted < had) {
            throw storage_error(storage_errc::io_error,
                                fmt::format("{}: after the reset the controller grants {} I/O queues instead of {}",
                                            _where, _granted, had));
        }
        co_await create_io_queues();
        co_await each_io_queue([](pcie_qpair& q) { q.resume(); });
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        fail(fmt::format("reset after \"{}\" failed: {}", reason, error));
        co_return;
    }
    _state = controller_state::live;
    log::info("{}: controller reset done; I/O resumes", _where);
}

future<> pcie_controller::shutdown() {
    _health.cancel();
    if (_state == controller_state::resetting) {
        _reset_waiters.emplace_back();
        co_await _reset_waiters.back().get_future();
    }
    std::uint64_t sgl_ios = 0, prp_ios = 0;
    for (unsigned i = 0; i < _io.size(); ++i) {
        pcie_qpair* q = _io[i].get();
        auto counts = co_await submit_to(i, [q] {
            q->detach();
            return std::pair{q->sgl_commands(), q->prp_commands()};
        });
        sgl_ios += counts.first;
        prp_ios += counts.second;
    }
    if (_state == controller_state::live) {
        // Delete the I/O queues (SQ before its CQ), then the shutdown notification.
        for (auto& q : _io) {
            sqe c = make_cmd(admin_opcode::delete_io_sq);
            c.cdw10 = q->qid();
            qp_result r = co_await _admin->execute(c);
            c = make_cmd(admin_opcode::delete_io_cq);
            c.cdw10 = q->qid();
            if (r.ok()) r = co_await _admin->execute(c);
            if (!r.ok()) {
                log::warn("{}: deleting I/O queue {} failed: {}", _where, q->qid(), status_text(r.cq.status));
                break;
            }
        }
        _bus->write32(reg::cc, cc::with_shn(_bus->read32(reg::cc), cc::shn_normal));
        const auto deadline = steady_clock::now() + std::max<std::chrono::milliseconds>(_ready_timeout,
                                                                                       std::chrono::seconds(5));
        std::uint32_t v = 0;
        for (;;) {
            v = _bus->read32(reg::csts);
            if (v == all_ones || csts::shst(v) == csts::shst_complete || steady_clock::now() > deadline) break;
            co_await sleep(std::chrono::milliseconds(1));
        }
        if (v != all_ones && csts::shst(v) == csts::shst_complete) {
            log::info("{}: shutdown complete; reads and writes sent: {} with SGL, {} with PRP", _where, sgl_ios,
                      prp_ios);
        } else {
            log::warn("{}: shutdown did not complete (CSTS {:#x}); the device may run a recovery on next start",
                      _where, v);
        }
    }
    if (_admin) _admin->detach();
    _state = controller_state::shut_down;
}

}  // namespace ioe::nvme
