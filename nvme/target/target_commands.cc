// Commands of the NVMe/TCP target: Fabrics (Connect, Property Get/Set,
// Disconnect), admin (Identify, Get Log Page, Get/Set Features, Keep Alive,
// Async Event Request) and I/O (Read, Write, Flush, Write Zeroes, Dataset
// Management) on the namespace's block device channel of this shard, after
// the reservation check; the reservation commands, features 81h-83h and log
// page 80h are in target_reservations.cc.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "nvme/spec/nvme_fabrics.hh"
#include "nvme/spec/nvme_identify.hh"
#include "nvme/spec/nvme_log.hh"
#include "nvme/spec/nvme_reservation.hh"
#include "nvme/spec/nvme_vendor.hh"
#include "nvme/target/identify_data.hh"
#include "nvme/target/tcp_qpair.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "storage/io_status.hh"

namespace ioe::nvme {

namespace {

using completion = tcp_qpair::completion;

completion status(std::uint8_t type, std::uint8_t code, bool dnr = true) {
    completion c;
    c.status = make_status(type, code, dnr && !(type == sct::generic && code == sc::success));
    return c;
}
completion ok_status() { return status(sct::generic, sc::success); }
completion invalid_field() { return status(sct::generic, sc::invalid_field); }

// What a data command gets when its namespace or controller went away under
// it: Asymmetric Access Inaccessible (path status, no DNR), which a host
// retries or fails over to another path; never Invalid Namespace with DNR.
completion path_gone() { return status(sct::path, 0x02, false); }

// The path status for a namespace in a state that serves no I/O.
completion ana_refusal(ana_state a) {
    const std::uint8_t code = a == ana_state::persistent_loss ? sc_path::ana_persistent_loss
                              : a == ana_state::change        ? sc_path::ana_transition
                                                              : sc_path::ana_inaccessible;
    return status(sct::path, code, false);
}

completion from_io_status(io_status st) {
    const auto v = static_cast<std::uint16_t>(st);
    // Path related statuses are for the host to retry on another path.
    const auto type = static_cast<std::uint8_t>(v >> 8);
    return status(type, static_cast<std::uint8_t>(v & 0xff), type != sct::path);
}

std::string field(const char* p, std::size_t n) {
    const void* end = std::memchr(p, 0, n);
    return std::string(p, end ? static_cast<const char*>(end) - p : n);
}

template <typename T>
T as(const sqe& s) {
    T v;
    std::memcpy(&v, &s, sizeof v);
    return v;
}

}  // namespace

block_device* tcp_qpair::namespace_device(std::uint32_t nsid) const noexcept {
    if (!_ctrl || _ctrl->discovery()) return nullptr;
    return _ctrl->subsys->namespace_of(nsid);
}

void tcp_qpair::shut_down_connection() noexcept {
    if (_state == state::closing) return;
    _state = state::closing;
    ::shutdown(_fd, SHUT_RDWR);
}

// Asynchronous Event Configuration bit 8, the completion's DW0 for a
// Namespace Attribute Changed notice (type 2h, information 00h, log page
// 04h), and Get Log Page's Retain Asynchronous Event bit (CDW10 bit 15).
namespace {
constexpr std::uint32_t aec_namespace_attribute_notices = 1u << 8;
constexpr std::uint32_t aen_namespace_attribute_changed = 0x2u | (0x00u << 8) | (std::uint32_t{log_page::changed_namespace_list} << 16);
constexpr std::uint32_t get_log_rae = 1u << 15;
// Asynchronous Event Configuration bit 31 and the completion's DW0 for a
// Discovery Log Page Change notice (type 2h, information F0h, log page 70h).
constexpr std::uint32_t aec_discovery_log_change_notices = 1u << 31;
constexpr std::uint32_t aen_discovery_log_changed = 0x2u | (0xf0u << 8) | (std::uint32_t{log_page::discovery} << 16);
}  // namespace

void tcp_qpair::report_async_events() {
    if (!_ctrl || _qid != 0 || _state == state::closing || _held_aers.empty()) return;
    // One kind of event: reported when it is pending, not masked (it was
    // reported and its log page not read since) and enabled by the host's
    // Asynchronous Event Configuration; then masked until that log is read.
    auto report = [this](bool& pending, bool& masked, std::uint32_t enable_bit, std::uint32_t dw0) {
        if (_held_aers.empty() || !pending || masked || !(_ctrl->aec & enable_bit)) return;
        command* c = _held_aers.front();
        _held_aers.erase(_held_aers.begin());
        pending = false;
        masked = true;
        completion r = ok_status();
        r.dw0 = dw0;
        complete_held(c, r);
    };
    if (_ctrl->discovery()) {
        report(_ctrl->discovery_event_pending, _ctrl->discovery_event_masked, aec_discovery_log_change_notices,
               aen_discovery_log_changed);
        return;
    }
    report_reservation_event();
    report(_ctrl->ana_event_pending, _ctrl->ana_event_masked, aec_ana_change_notices, aen_ana_change);
    // Disabled: the Changed Namespace List still records it.
    report(_ctrl->ns_event_pending, _ctrl->ns_event_masked, aec_namespace_attribute_notices,
           aen_namespace_attribute_changed);
}

void tcp_qpair::complete_held(command* c, completion r) { finish_command(c, r); }

void tcp_qpair::finish_command(command* c, completion r) {
    // The host may reuse the CID once it has the answer: free it now.
    _slot_cid[static_cast<std::size_t>(c - _commands.data())] = 0;
    if (_state != state::closing && !_tx.failed()) {
        if (queue_response(c, r)) return;  // the slot is freed once it is sent
        log::error("NVMe/TCP connection fd {}: send queue full: closing", _fd);
        shut_down_connection();
    }
    release_slot(c);
}

future<> tcp_qpair::execute(command* c) {
    completion r;
    try {
        if (c->cmd.opcode == admin_opcode::fabrics) {
            r = co_await fabrics_command(c);
        } else if (_state != state::ready) {
            r = status(sct::generic, sc::command_sequence_error);
        } else if (_qid == 0) {
            r = co_await admin_command(c);
        } else {
            r = co_await io_command(c);
        }
    } catch (const std::exception& e) {
        log::error("NVMe/TCP command {:#x} failed: {}", c->cmd.opcode, e.what());
        r = status(sct::generic, sc::internal_error);
    }
    if (!r.hold) {
        finish_command(c, r);
    } else {
        report_async_events();  // an event may be waiting for this request
    }
    if (r.close_after && _state != state::closing) {
        // Answered (queued) first; the receive loop ends and the queue pair
        // closes once the answer has gone.
        _state = state::closing;
        ::shutdown(_fd, SHUT_RD);
    }
    if (--_running == 0 && _drained) _drained->set_value();
}

// ---- Fabrics --------------------------------------------------------------------

future<completion> tcp_qpair::fabrics_command(command* c) {
    const auto f = as<nvme::fabrics_command>(c->cmd);
    switch (f.fctype) {
        case fctype::connect: co_return co_await connect(c);
        case fctype::property_get: {
            if (_state != state::ready || _qid != 0) co_return status(sct::generic, sc::command_sequence_error);
            const auto p = as<property_get_command>(c->cmd);
            completion r = ok_status();
            std::uint64_t v = 0;
            switch (p.ofst) {
                case property::cap: v = cap_property(_target.limits().max_queue_entries); break;
                case property::vs: v = vs_property; break;
                case property::cc: v = _ctrl->cc; break;
                case property::csts: v = _ctrl->csts; break;
                default: co_return invalid_field();
            }
            r.dw0 = static_cast<std::uint32_t>(v);
            r.dw1 = static_cast<std::uint32_t>(v >> 32);
            co_return r;
        }
        case fctype::property_set: {
            if (_state != state::ready || _qid != 0) co_return status(sct::generic, sc::command_sequence_error);
            const auto p = as<property_set_command>(c->cmd);
            if (p.ofst != property::cc) co_return invalid_field();
            const auto cc_new = static_cast<std::uint32_t>(p.value);
            _ctrl->cc = cc_new;
            _ctrl->csts = csts::with_ready(_ctrl->csts, cc::enabled(cc_new));
            if (cc::shn(cc_new) != cc::shn_none) {
                _ctrl->csts = csts::with_shst(_ctrl->csts, csts::shst_complete);
            } else {
                _ctrl->csts = csts::with_shst(_ctrl->csts, csts::shst_normal);
            }
            co_return ok_status();
        }
        case fctype::disconnect: {
            completion r = ok_status();
            r.close_after = true;  // answered first, then closed
            co_return r;
        }
        default: co_return invalid_field();
    }
}

future<completion> tcp_qpair::connect(command* c) {
    const auto cmd = as<connect_command>(c->cmd);
    auto invalid_param = [](std::uint16_t offset, bool in_data) {
        completion r = status(sct::command_specific, sc_specific::connect_invalid_parameters);
        r.dw0 = offset | (in_data ? 1u << 16 : 0u);
        return r;
    };
    if (_state != state::awaiting_connect) co_return status(sct::generic, sc::command_sequence_error);
    if (c->received < sizeof(connect_data)) co_return invalid_param(offsetof(connect_command, sgl1), false);
    connect_data data;
    std::memcpy(&data, c->data.data(), sizeof data);
    const std::string subnqn = field(data.subnqn, sizeof data.subnqn);
    const std::string hostnqn = field(data.hostnqn, sizeof data.hostnqn);
    if (cmd.recfmt != 0) co_return status(sct::command_specific, sc_specific::connect_incompatible_format);
    if (cmd.sqsize == 0 || cmd.sqsize >= _target.limits().max_queue_entries) {
        co_return invalid_param(offsetof(connect_command, sqsize), false);
    }
    const bool discovery = subnqn == discovery_nqn;
    std::shared_ptr<subsystem> subsys = discovery ? nullptr : _target.find_subsystem(subnqn);
    if (!discovery && !subsys) {
        log::warn("NVMe/TCP connect from {}: no subsystem {}", hostnqn, subnqn);
        co_return invalid_param(offsetof(connect_data, subnqn), true);
    }
    if (subsys && !subsys->allows(hostnqn)) {
        log::warn("NVMe/TCP connect refused: host {} is not allowed on {}", hostnqn, subnqn);
        co_return status(sct::command_specific, sc_specific::connect_invalid_host);
    }
    host_id hostid;
    std::memcpy(hostid.data(), data.hostid, hostid.size());
    completion r = ok_status();
    if (cmd.qid == 0) {
        // The same host's torn-down controller still has commands at the
        // device: the new one waits for them (bounded), docs/nvmf.md.
        if (subsys && !co_await _target.wait_host_drained(subsys.get(), hostid)) {
            log::warn("NVMe/TCP connect from {}: its previous controller on {} still drains: busy", hostnqn, subnqn);
            co_return status(sct::command_specific, sc_specific::connect_controller_busy, false);
        }
        _ctrl = _target.create_controller(subsys, hostnqn, this_shard_id());
        if (!_ctrl) co_return status(sct::command_specific, sc_specific::connect_controller_busy);
        _ctrl->hostid = hostid;
        _ctrl->admin = this;
        _ctrl->kato_ms = cmd.kato;
        _ctrl->last_keep_alive = steady_clock::now();
        ++_running;
        keep_alive_watch().ignore();
        log::info("NVMe/TCP host {} connected to {} as controller {}", hostnqn, discovery ? discovery_nqn : subnqn,
                  _ctrl->cntlid);
    } else {
        auto ctrl = _target.find_controller(data.cntlid);
        if (!ctrl || ctrl->dead.load() || ctrl->hostnqn != hostnqn || ctrl->subsys != subsys || ctrl->hostid != hostid) {
            co_return invalid_param(offsetof(connect_data, cntlid), true);
        }
        if (cmd.qid > std::uint32_t{ctrl->io_queues} + 1 || ctrl->discovery()) {
            co_return invalid_param(offsetof(connect_command, qid), false);
        }
        ctrl->add_io_queue(_fd);
        if (ctrl->dead.load()) {  // torn down while we joined: do not linger
            ctrl->remove_io_queue(_fd);
            co_return invalid_param(offsetof(connect_data, cntlid), true);
        }
        _ctrl = std::move(ctrl);
    }
    _ctrl->live_qpairs.fetch_add(1);
    _counted_live = true;
    _qid = cmd.qid;
    _sqsize = cmd.sqsize;
    _sq_flow_disabled = (cmd.cattr & cattr_disable_sq_flow_control) != 0;
    _state = state::ready;
    r.dw0 = _ctrl->cntlid;
    co_return r;
}

// ---- admin -----------------------------------------------------------------------

future<> tcp_qpair::keep_alive_watch() {
    while (_state != state::closing) {
        const std::uint32_t kato = _ctrl->kato_ms;
        const auto step = std::chrono::milliseconds(kato ? std::clamp<std::uint32_t>(kato / 4, 10, 1000) : 1000);
        co_await sleep(step);
        if (_state == state::closing) continue;
        if (!_ctrl->discovery()) _target.check_lost_paths(_ctrl->subsys);
        if (kato == 0) continue;
        if (steady_clock::now() - _ctrl->last_keep_alive > std::chrono::milliseconds(kato)) {
            log::warn("NVMe/TCP controller {} of host {}: no Keep Alive for {} ms: tearing it down", _ctrl->cntlid,
                      _ctrl->hostnqn, kato);
            _ctrl->tear_down();
            ::shutdown(_fd, SHUT_RDWR);  // the receive loop ends, the queue pair closes
            break;
        }
    }
    if (--_running == 0 && _drained) _drained->set_value();
}

future<completion> tcp_qpair::admin_command(command* c) {
    _ctrl->last_keep_alive = steady_clock::now();
    switch (c->cmd.opcode) {
        case admin_opcode::identify: co_return identify(c);
        case admin_opcode::get_log_page: co_return get_log_page(c);
        case admin_opcode::set_features:
        case admin_opcode::get_features: {
            const bool set = c->cmd.opcode == admin_opcode::set_features;
            if ((c->cmd.cdw10 & 0xff) == feature_reservation_persistence) co_return co_await reservation_persistence(c, set);
            co_return features(c, set);
        }
        case admin_opcode::keep_alive: co_return ok_status();
        case admin_opcode::vendor_snapshot_namespace: co_return co_await vendor_snapshot(c);
        case admin_opcode::async_event_request: {
            // Held, on the discovery controller too (a Discovery Log Page
            // Change notice; SPDK's host resubmits a refused request at once).
            if (_held_aers.size() >= max_held_aers) {
                co_return status(sct::command_specific, sc_specific::async_event_request_limit_exceeded);
            }
            _held_aers.push_back(c);
            completion r;
            r.hold = true;  // answered on a namespace change, or dropped at disconnect
            co_return r;
        }
        default: co_return status(sct::generic, sc::invalid_opcode);
    }
}

completion tcp_qpair::identify(command* c) {
    const std::uint8_t cns_value = c->cmd.cdw10 & 0xff;
    auto buf = engine::current()->dma().allocate(4096);
    if (!buf) return status(sct::generic, sc::internal_error);
    c->data = std::move(*buf);
    std::span<std::byte, 4096> page(c->data.data(), 4096);
    std::memset(page.data(), 0, 4096);
    const bool disc = _ctrl->discovery();
    switch (cns_value) {
        case cns::controller: {
            controller_profile p;
            p.cntlid = _ctrl->cntlid;
            p.subnqn = disc ? discovery_nqn : _ctrl->subsys->nqn;
            p.serial = disc ? "ioengine-discovery" : _ctrl->subsys->serial;
            p.model = disc ? "ioengine discovery" : _ctrl->subsys->model;
            p.firmware = "0.1.0";
            // NN: the highest namespace ID there may be (namespaces come and go).
            p.namespace_count = disc ? 0 : subsystem::max_namespaces;
            p.mdts = _target.limits().mdts;
            p.maxcmd = _target.limits().max_queue_entries;
            p.in_capsule_bytes = _target.limits().in_capsule_bytes;
            p.discovery = disc;
            build_identify_controller(p, page);
            break;
        }
        case cns::namespace_data: {
            block_device* dev = namespace_device(c->cmd.nsid);
            if (dev) {
                namespace_profile ns;
                ns.block_size = dev->block_size();
                ns.block_count = dev->block_count();
                ns.id = dev->id();
                ns.ptpl = _target.persists_reservations();
                ns.ana_group = c->cmd.nsid;  // one ANA group per namespace
                build_identify_namespace(ns, page);
            }  // an inactive nsid: all zeros
            break;
        }
        case cns::active_namespace_list: {
            std::vector<std::uint32_t> ids;
            if (!disc) {
                ids = _ctrl->subsys->active_nsids();
            }
            build_active_namespace_list(ids, c->cmd.nsid, page);
            break;
        }
        case cns::namespace_id_descriptors: {
            block_device* dev = namespace_device(c->cmd.nsid);
            if (!dev) return status(sct::generic, sc::invalid_namespace_or_format);
            build_namespace_descriptors(dev->id(), page);
            break;
        }
        default: return invalid_field();
    }
    completion r = ok_status();
    r.data = std::span<const std::byte>(c->data.data(), std::min<std::uint32_t>(4096, c->length));
    return r;
}

completion tcp_qpair::get_log_page(command* c) {
    const std::uint8_t lid = c->cmd.cdw10 & 0xff;
    const std::uint32_t numd = ((c->cmd.cdw11 & 0xffff) << 16 | (c->cmd.cdw10 >> 16)) + 1;
    const std::uint64_t offset = (std::uint64_t{c->cmd.cdw13} << 32) | c->cmd.cdw12;
    const std::uint64_t len = std::uint64_t{numd} * 4;
    if (len > c->length || len > (1u << 20)) return invalid_field();
    std::vector<std::byte> whole;
    switch (lid) {
        case log_page::error_information: whole.assign(64, std::byte{0}); break;
        case log_page::firmware_slot: whole.assign(512, std::byte{0}); break;  // FRMW says slot 1, read-only
        case log_page::changed_namespace_list: {
            if (_ctrl->discovery()) return invalid_field();
            whole.assign(4096, std::byte{0});
            const auto& ids = _ctrl->changed_nsids;
            if (!ids.empty()) std::memcpy(whole.data(), ids.data(), std::min<std::size_t>(ids.size(), 1024) * 4);
            if (!(c->cmd.cdw10 & get_log_rae)) {
                // Read: the host has seen every change so far; the list
                // starts over and the event is unmasked for the next one.
                _ctrl->changed_nsids.clear();
                _ctrl->ns_event_pending = false;
                _ctrl->ns_event_masked = false;
            }
            break;
        }
        case log_reservation_notification: {
            if (_ctrl->discovery()) return invalid_field();
            whole.assign(64, std::byte{0});
            _ctrl->take_reservation_notice((c->cmd.cdw10 & get_log_rae) != 0,
                                           std::span<std::byte, 64>(whole.data(), 64));
            break;
        }
        case log_page_id::ana: {
            if (_ctrl->discovery()) return invalid_field();
            // One group per active namespace (its ID the NSID), in the state
            // this engine serves it in now.
            ana_log log;
            log.change_count = _ctrl->subsys->ana_change_count();
            for (const std::uint32_t nsid : _ctrl->subsys->active_nsids()) {
                log.groups.push_back({nsid, _ctrl->subsys->effective_ana_of(nsid), log.change_count, {nsid}});
            }
            whole = build_ana_log(log, (c->cmd.cdw10 & get_log_ana_rgo) != 0);
            if (!(c->cmd.cdw10 & get_log_rae)) {
                _ctrl->ana_event_pending = false;
                _ctrl->ana_event_masked = false;
            }
            break;
        }
        case log_page::smart_health: {
            whole.assign(512, std::byte{0});
            build_smart_log(std::span<std::byte, 512>(whole.data(), 512));
            break;
        }
        case log_page::discovery: {
            if (!_ctrl->discovery()) return invalid_field();
            auto entries = _target.discovery_entries();
            whole = build_discovery_log(_target.discovery_generation(), entries);
            if (!(c->cmd.cdw10 & get_log_rae)) {
                _ctrl->discovery_event_pending = false;
                _ctrl->discovery_event_masked = false;
            }
            break;
        }
        default: return status(sct::command_specific, sc_specific::invalid_log_page);
    }
    auto buf = engine::current()->dma().allocate(std::max<std::uint64_t>(len, 4));
    if (!buf) return status(sct::generic, sc::internal_error);
    c->data = std::move(*buf);
    std::memset(c->data.data(), 0, len);
    if (offset < whole.size()) {
        std::memcpy(c->data.data(), whole.data() + offset, std::min<std::uint64_t>(len, whole.size() - offset));
    }
    completion r = ok_status();
    r.data = std::span<const std::byte>(c->data.data(), len);
    return r;
}

completion tcp_qpair::features(command* c, bool set) {
    const std::uint8_t fid = c->cmd.cdw10 & 0xff;
    completion r = ok_status();
    switch (fid) {
        case feature::number_of_queues: {
            if (set) {
                const std::uint16_t want_sq = c->cmd.cdw11 & 0xffff, want_cq = c->cmd.cdw11 >> 16;
                const std::uint16_t most = static_cast<std::uint16_t>(_target.limits().max_io_queues - 1);
                _ctrl->io_queues = std::min<std::uint16_t>(std::min(want_sq, want_cq), most);
            }
            r.dw0 = std::uint32_t{_ctrl->io_queues} | (std::uint32_t{_ctrl->io_queues} << 16);
            return r;
        }
        case feature::keep_alive_timer:
            if (set) _ctrl->kato_ms = c->cmd.cdw11;
            r.dw0 = _ctrl->kato_ms;
            return r;
        case feature::async_event_configuration:
            if (set) _ctrl->aec = c->cmd.cdw11;
            r.dw0 = _ctrl->aec;
            return r;
        case feature::volatile_write_cache:
            r.dw0 = 1;  // enabled: the target honours Flush
            return r;
        case feature_reservation_notification_mask:
        case feature_host_identifier: return reservation_feature(c, set);
        case feature::error_recovery:
            if (set && (c->cmd.cdw11 >> 16) != 0) return invalid_field();  // DULBE (bit 16): not supported
            if (set) _ctrl->error_recovery = c->cmd.cdw11 & 0xffff;       // TLER: stored
            r.dw0 = _ctrl->error_recovery;
            return r;
        case feature::arbitration:
            if (set) _ctrl->arbitration = c->cmd.cdw11;
            r.dw0 = _ctrl->arbitration;
            return r;
        case feature::power_management:
            // One power state (NPSS 0): PS 0 is the only one there is.
            if (set && (c->cmd.cdw11 & 0x1f) != 0) return invalid_field();
            r.dw0 = 0;
            return r;
        case feature::temperature_threshold: {
            // TMPSEL (bits 19:16) 0 is the composite temperature, the only
            // sensor; THSEL (bits 21:20) 0 over, 1 under.
            const std::uint32_t tmpsel = (c->cmd.cdw11 >> 16) & 0xf;
            const std::uint32_t thsel = (c->cmd.cdw11 >> 20) & 0x3;
            if (thsel > 1 || (tmpsel != 0 && tmpsel != 0xf)) return invalid_field();
            std::uint16_t& threshold = thsel == 0 ? _ctrl->temperature_over : _ctrl->temperature_under;
            if (set) threshold = static_cast<std::uint16_t>(c->cmd.cdw11 & 0xffff);
            r.dw0 = threshold;
            return r;
        }
        default: return invalid_field();
    }
}

// ---- I/O -------------------------------------------------------------------------

future<completion> tcp_qpair::io_command(command* c) {
    if (_ctrl->dead.load()) co_return path_gone();
    block_device* dev = namespace_device(c->cmd.nsid);
    if (!dev) {
        // A namespace this controller once had (it went away): path status.
        if (c->cmd.nsid != 0 && c->cmd.nsid <= subsystem::max_namespaces && _ctrl->subsys->highest_nsid() == 0)
            co_return path_gone();
        co_return status(sct::generic, sc::invalid_namespace_or_format);
    }
    // A path that does not serve the namespace now (a standby, or one taken
    // over): the host retries on another path (docs/ana.md).
    if (const ana_state a = _ctrl->subsys->ana_of(c->cmd.nsid); !ana_serves_io(a)) co_return ana_refusal(a);
    // A device that just lost its path (a fenced nexus) answers the command
    // with the path status itself; the hosts hear of the change now.
    if (dev->path_inaccessible()) _target.check_lost_paths(_ctrl->subsys, c->cmd.nsid);
    if (is_reservation_command(c->cmd.opcode)) co_return co_await reservation_command(c);
    const drain_counted counted(_io_inflight[_io_epoch]);  // for preempt-and-abort's drain
    if (!reservation_allows(c->cmd)) co_return status(sct::generic, sc::reservation_conflict);
    io_channel* ch = dev->channel();
    if (!ch) co_return status(sct::generic, sc::namespace_not_ready, false);
    const std::uint32_t bs = dev->block_size();
    const std::uint64_t max_bytes = std::uint64_t{4096} << _target.limits().mdts;
    switch (c->cmd.opcode) {
        case nvm_opcode::read:
        case nvm_opcode::write: {
            const std::uint64_t lba = rw_slba(c->cmd);
            const std::uint32_t blocks = rw_block_count(c->cmd);
            const std::uint64_t bytes = std::uint64_t{blocks} * bs;
            if (bytes > max_bytes) co_return invalid_field();
            if (bytes != c->length) co_return status(sct::generic, sc::data_sgl_length_invalid);
            if (c->cmd.opcode == nvm_opcode::write) {
                if (!co_await fetch_data(c)) co_return status(sct::generic, sc::data_transfer_error);
                // Checked again: the reservation may have changed while the data came.
                if (!reservation_allows(c->cmd)) co_return status(sct::generic, sc::reservation_conflict);
                io_vec v = to_io_vec(c->data, 0, bytes);
                co_return from_io_status(co_await ch->write(lba, blocks, io_vecs(&v, 1)));
            }
            auto buf = engine::current()->dma().allocate(bytes);
            if (!buf) co_return status(sct::generic, sc::internal_error, false);
            c->data = std::move(*buf);
            io_vec v = to_io_vec(c->data, 0, bytes);
            io_status st = co_await ch->read(lba, blocks, io_vecs(&v, 1));
            completion r = from_io_status(st);
            if (ok(st)) r.data = std::span<const std::byte>(c->data.data(), bytes);
            co_return r;
        }
        case nvm_opcode::flush: co_return from_io_status(co_await ch->flush());
        case nvm_opcode::write_zeroes:
            co_return from_io_status(co_await ch->write_zeroes(rw_slba(c->cmd), rw_block_count(c->cmd)));
        case nvm_opcode::dataset_management: {
            const std::uint32_t ranges = (c->cmd.cdw10 & 0xff) + 1;
            if (c->length < ranges * sizeof(dsm_range)) co_return status(sct::generic, sc::data_sgl_length_invalid);
            if (!co_await fetch_data(c)) co_return status(sct::generic, sc::data_transfer_error);
            if (!(c->cmd.cdw11 & dsm_attribute_deallocate)) co_return ok_status();  // hints only
            for (std::uint32_t i = 0; i < ranges; ++i) {
                dsm_range rg;
                std::memcpy(&rg, c->data.data() + i * sizeof rg, sizeof rg);
                if (rg.length == 0) continue;
                io_status st = co_await ch->unmap(rg.starting_lba, rg.length);
                if (!ok(st)) co_return from_io_status(st);
            }
            co_return ok_status();
        }
        default: co_return status(sct::generic, sc::invalid_opcode);
    }
}

}  // namespace ioe::nvme
