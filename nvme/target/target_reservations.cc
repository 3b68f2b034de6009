// Reservations in the NVMe/TCP target (docs/nvmf.md, "Reservations"): the
// four reservation commands of a queue pair, the I/O path's check against
// this shard's copy of the namespace's reservation, and the target's side:
// a change is applied on the home shard (the owner of every namespace's
// reservation_state), copied to every shard before the command completes,
// and preempt-and-abort then waits, bounded, until every data command of a
// host that is no longer registered has finished at the device, on every
// shard (queue pairs still draining after their connection dropped too).
#include <algorithm>
#include <cctype>
#include <cstring>
#include <tuple>
#include <fmt/format.h>

#include "nvme/spec/nvme_reservation.hh"
#include "nvme/target/reservation_file.hh"
#include "nvme/target/tcp_qpair.hh"
#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/errors.hh"

namespace ioe::nvme {

namespace {

using completion = tcp_qpair::completion;

completion with_status(std::uint16_t st) {
    completion c;
    c.status = st;
    return c;
}

// The preempted hosts' commands did not finish within the bound: the
// preemption has happened, the command reports that it could not confirm
// the abort (retryable: a retry waits again).
constexpr std::uint16_t drain_timed_out = make_status(sct::generic, sc::internal_error, false);

}  // namespace

bool tcp_qpair::is_reservation_command(std::uint8_t op) noexcept {
    return op == nvm_opcode::reservation_register || op == nvm_opcode::reservation_acquire ||
           op == nvm_opcode::reservation_release || op == nvm_opcode::reservation_report;
}

bool tcp_qpair::reservation_allows(const sqe& cmd) const noexcept {
    // Reads are reads; Write, Flush, Write Zeroes and Dataset Management
    // are writes; nothing else is checked here.
    const std::uint8_t op = cmd.opcode;
    const bool write = op == nvm_opcode::write || op == nvm_opcode::flush || op == nvm_opcode::write_zeroes ||
                       op == nvm_opcode::dataset_management;
    if (!write && op != nvm_opcode::read) return true;
    return reservation_allows(cmd.nsid, write);
}

bool tcp_qpair::reservation_allows(std::uint32_t nsid, bool write) const noexcept {
    const namespace_reservations* r = _ctrl->subsys->reservations_of(nsid);
    if (!r) return true;
    const reservation_view& v = r->local();
    return v.type == rtype::none || v.allows(_ctrl->hostid, write);
}

future<completion> tcp_qpair::reservation_command(command* c) {
    const sqe& cmd = c->cmd;
    const bool invalid_dnr = true;
    if (cmd.opcode == nvm_opcode::reservation_report) {
        const std::uint64_t bytes = (std::uint64_t{cmd.cdw10} + 1) * 4;
        if (bytes > c->length || bytes > (1u << 16)) {
            co_return with_status(make_status(sct::generic, sc::invalid_field, invalid_dnr));
        }
        // We identify hosts by 128-bit HOSTIDs: only the extended form.
        if (!(cmd.cdw11 & report_eds)) {
            co_return with_status(make_status(sct::generic, sc::host_id_inconsistent_format, true));
        }
        const namespace_reservations* r = _ctrl->subsys->reservations_of(cmd.nsid);
        auto buf = engine::current()->dma().allocate(bytes);
        if (!r || !buf) co_return with_status(make_status(sct::generic, sc::internal_error, false));
        c->data = std::move(*buf);
        build_reservation_report(r->local(), std::span<std::byte>(c->data.data(), bytes));
        completion out = with_status(0);
        out.data = std::span<const std::byte>(c->data.data(), bytes);
        co_return out;
    }
    // Register / Acquire: CRKEY and NRKEY / PRKEY (16 bytes); Release: CRKEY.
    const std::uint32_t need = cmd.opcode == nvm_opcode::reservation_release ? 8 : 16;
    if (c->length < need) co_return with_status(make_status(sct::generic, sc::data_sgl_length_invalid, true));
    if (!co_await fetch_data(c)) co_return with_status(make_status(sct::generic, sc::data_transfer_error, false));
    reservation_request rq;
    rq.host = _ctrl->hostid;
    rq.cntlid = _ctrl->cntlid;
    rq.opcode = cmd.opcode;
    rq.cdw10 = cmd.cdw10;
    std::memcpy(&rq.key1, c->data.data(), 8);
    if (need == 16) std::memcpy(&rq.key2, c->data.data() + 8, 8);
    co_return with_status(co_await _target.change_reservation(_ctrl->subsys, cmd.nsid, rq));
}

future<completion> tcp_qpair::reservation_persistence(command* c, bool set) {
    namespace_reservations* r = _ctrl->discovery() ? nullptr : _ctrl->subsys->reservations_of(c->cmd.nsid);
    if (!r) co_return with_status(make_status(sct::generic, sc::invalid_namespace_or_format, true));
    if (set) {
        reservation_request rq;
        rq.host = _ctrl->hostid;
        rq.cntlid = _ctrl->cntlid;
        rq.opcode = 0;
        rq.cdw10 = c->cmd.cdw11 & 1;
        const std::uint16_t st = co_await _target.change_reservation(_ctrl->subsys, c->cmd.nsid, rq);
        if (!status_ok(st)) co_return with_status(st);
    }
    completion out = with_status(0);
    out.dw0 = r->local().ptpl ? 1 : 0;
    co_return out;
}

completion tcp_qpair::reservation_feature(command* c, bool set) {
    if (_ctrl->discovery()) return with_status(make_status(sct::generic, sc::invalid_field, true));
    completion r = with_status(0);
    if ((c->cmd.cdw10 & 0xff) == feature_reservation_notification_mask) {
        if (set) _ctrl->resv_mask = c->cmd.cdw11 & 0xe;  // REGPRE, RESREL, RESPRE
        r.dw0 = _ctrl->resv_mask;
        return r;
    }
    // Host Identifier: get only (on fabrics it comes with Connect), and
    // only the 128-bit form (EXHID, CDW11 bit 0).
    if (set) return with_status(make_status(sct::command_specific, sc_specific::feature_not_changeable, true));
    if (!(c->cmd.cdw11 & 1)) return with_status(make_status(sct::generic, sc::invalid_field, true));
    auto buf = engine::current()->dma().allocate(16);
    if (!buf) return with_status(make_status(sct::generic, sc::internal_error, false));
    c->data = std::move(*buf);
    std::memcpy(c->data.data(), _ctrl->hostid.data(), 16);
    r.data = std::span<const std::byte>(c->data.data(), std::min<std::uint32_t>(16, c->length));
    return r;
}

bool tcp_qpair::report_reservation_event() {
    if (!_ctrl->resv_event_pending || _ctrl->resv_event_masked || _held_aers.empty()) return false;
    // Reservation Log Page Available: type 110b (I/O command specific
    // status), information 00h, log page 80h. Not gated by Asynchronous
    // Event Configuration; feature 82h masks the notices themselves.
    command* c = _held_aers.front();
    _held_aers.erase(_held_aers.begin());
    _ctrl->resv_event_pending = false;
    _ctrl->resv_event_masked = true;  // until the host reads log page 80h
    completion r = with_status(0);
    r.dw0 = 0x6u | (std::uint32_t{log_reservation_notification} << 16);
    complete_held(c, r);
    return true;
}

// ---- notifications (a controller's admin shard) ------------------------------------

void controller::reservation_notice(std::uint8_t type, std::uint32_t nsid) {
    // Feature 82h: bit n masks notices of type n.
    if (resv_mask & (1u << type)) return;
    if (resv_notices.size() >= 255) resv_notices.erase(resv_notices.begin());  // the oldest is lost
    resv_log_count = resv_log_count == UINT64_MAX ? 1 : resv_log_count + 1;
    resv_notices.push_back({resv_log_count, type, nsid});
    resv_event_pending = true;
    if (admin) admin->report_async_events();
}

void controller::take_reservation_notice(bool retain, std::span<std::byte, 64> out) {
    resv_notification_log page{};
    if (!resv_notices.empty()) {
        const resv_log_entry n = resv_notices.front();
        page.log_page_count = n.count;
        page.type = n.type;
        page.available = static_cast<std::uint8_t>(std::min<std::size_t>(resv_notices.size() - 1, 255));
        page.nsid = n.nsid;
        if (!retain) resv_notices.erase(resv_notices.begin());
    }
    std::memcpy(out.data(), &page, sizeof page);
    if (!retain) {
        // Read: the event is unmasked; more entries report again.
        resv_event_masked = false;
        resv_event_pending = !resv_notices.empty();
        if (resv_event_pending && admin) admin->report_async_events();
    }
}

// ---- the target's side -------------------------------------------------------------

std::vector<std::pair<std::shared_ptr<subsystem>, std::uint32_t>> nvmf_target::namespaces_of(
    const namespace_reservations* r) const {
    std::vector<std::pair<std::shared_ptr<subsystem>, std::uint32_t>> out;
    std::lock_guard lk(_mutex);
    for (const auto& s : _subsystems)
        for (std::size_t i = 0; i < s->_reservations.size(); ++i)
            if (s->_reservations[i].get() == r) out.emplace_back(s, static_cast<std::uint32_t>(i + 1));
    return out;
}

void nvmf_target::send_reservation_notices(const namespace_reservations* r,
                                           const std::vector<std::pair<host_id, std::uint8_t>>& notices) {
    const auto over = namespaces_of(r);
    std::vector<std::tuple<std::shared_ptr<controller>, std::uint8_t, std::uint32_t>> to;
    {
        std::lock_guard lk(_mutex);
        for (const auto& [id, c] : _controllers) {
            if (c->dead.load()) continue;
            for (const auto& [s, nsid] : over) {
                if (c->subsys != s) continue;
                for (const auto& [h, type] : notices)
                    if (c->hostid == h) to.emplace_back(c, type, nsid);
            }
        }
    }
    for (auto& [c, type, nsid] : to) {
        submit_to(c->admin_shard, [c = c, type = type, nsid = nsid] { c->reservation_notice(type, nsid); }).ignore();
    }
}

std::shared_ptr<namespace_reservations> nvmf_target::device_table_locked(const block_device* dev, bool& created) {
    created = false;
    auto it = _device_tables.find(dev);
    if (it != _device_tables.end() && it->second.id == dev->id()) {
        if (auto live = it->second.table.lock()) return live;
    }
    std::erase_if(_device_tables, [](const auto& e) { return e.second.table.expired(); });
    auto r = std::make_shared<namespace_reservations>(shard_count());
    r->state.ptpl_capable = persists_reservations();
    _device_tables[dev] = device_table{dev->id(), r};
    created = true;
    return r;
}

future<std::shared_ptr<namespace_reservations>> nvmf_target::make_reservations(std::string subnqn,
                                                                              std::uint32_t nsid, block_device* dev) {
    bool created = false;
    std::shared_ptr<namespace_reservations> r;
    {
        std::lock_guard lk(_mutex);
        r = device_table_locked(dev, created);
    }
    // Another namespace over the device named the table's file already:
    // the table is live, and the file (if any) is its own.
    if (!r->ptpl_name.empty()) co_return r;
    // Named by what the host sees (subsystem NQN and NSID: stable across
    // restarts, unlike a raw device's UUID); bytes outside [A-Za-z0-9.:-]
    // become '_'.
    std::string file = subnqn;
    for (char& ch : file)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == ':' || ch == '-')) ch = '_';
    r->ptpl_name = fmt::format("{}.ns{}.resv", file, nsid);
    if (persists_reservations() && _store.load) {
        auto bytes = co_await _store.load(r->ptpl_name);
        if (bytes) {
            std::string err;
            auto v = decode_reservation_file(*bytes, err);
            if (!v) {
                const std::string name = std::move(r->ptpl_name);
                r->ptpl_name.clear();
                if (created) {
                    std::lock_guard lk(_mutex);
                    _device_tables.erase(dev);
                }
                throw storage_error(storage_errc::io_error,
                                    fmt::format("nvmf subsystem {}: device {}: its reservation file {} is unusable: {} "
                                                "(remove it to serve the device without its reservations)",
                                                subnqn, dev->name(), name, err));
            }
            if (v->ptpl) {
                if (created) {
                    r->state.load(*v);
                } else {
                    // Local users registered before the share: they keep
                    // their registrations; the file adds its registrants
                    // (and its holder when nobody holds it now).
                    r->state.merge(*v);
                    r->state.stamp();
                    co_await publish_reservation(r);
                }
                log::info("nvmf subsystem {}: device {}: reservation restored (type {}, {} registrant(s))", subnqn,
                          dev->name(), int(r->state.view().type), r->state.view().count);
            }
        }
    }
    // A new table is not visible to any shard yet: every copy is set here.
    if (created)
        for (auto& slot : r->views) slot.v = r->state.view();
    co_return r;
}

future<bool> nvmf_target::wait_host_drained(const subsystem* s, host_id h) {
    const auto deadline = steady_clock::now() + std::chrono::milliseconds(_limits.drain_timeout_ms);
    while (host_draining(s, h)) {
        // Stopping: every connection is being closed, nothing is admitted;
        // do not keep this one open past stop() (which waits for them).
        if (steady_clock::now() >= deadline || _stopping.load(std::memory_order_relaxed)) co_return false;
        co_await sleep(std::chrono::milliseconds(2));
    }
    co_return true;
}

void nvmf_target::qpair_opened(tcp_qpair* q) { _qpairs[this_shard_id()].list.push_back(q); }

void nvmf_target::qpair_closed(tcp_qpair* q) { std::erase(_qpairs[this_shard_id()].list, q); }

future<std::uint16_t> nvmf_target::change_reservation(std::shared_ptr<subsystem> s, std::uint32_t nsid,
                                                      reservation_request rq) {
    nvmf_target* self = this;
    co_return co_await submit_to(_home, [self, s, nsid, rq] { return self->apply_reservation(s, nsid, rq); });
}

future<std::uint16_t> nvmf_target::apply_reservation(std::shared_ptr<subsystem> s, std::uint32_t nsid,
                                                     reservation_request rq) {
    if (nsid == 0 || nsid > s->_reservations.size() || !s->_reservations[nsid - 1]) {
        co_return make_status(sct::path, 0x02, false);  // the namespace went away meanwhile
    }
    co_return co_await apply_to_table(s->_reservations[nsid - 1], rq,
                                      fmt::format("nvmf subsystem {} namespace {}", s->nqn, nsid));
}

future<std::uint16_t> nvmf_target::apply_to_table(std::shared_ptr<namespace_reservations> r, reservation_request rq,
                                                  std::string where) {
    reservation_outcome o;
    const bool ptpl_before = r->state.view().ptpl;
    switch (rq.opcode) {
        case 0:  // Set Features Reservation Persistence
            if ((rq.cdw10 & 1) && !persists_reservations()) {
                co_return make_status(sct::generic, sc::invalid_field, true);
            }
            r->state.set_ptpl((rq.cdw10 & 1) != 0);
            o.changed = true;
            break;
        case nvm_opcode::reservation_register:
            o = r->state.do_register(rq.host, rq.cntlid, rq.cdw10, rq.key1, rq.key2);
            break;
        case nvm_opcode::reservation_acquire: o = r->state.acquire(rq.host, rq.cdw10, rq.key1, rq.key2); break;
        case nvm_opcode::reservation_release: o = r->state.release(rq.host, rq.cdw10, rq.key1); break;
        default: co_return make_status(sct::generic, sc::invalid_opcode, true);
    }
    if (o.changed && persists_reservations() && !r->ptpl_name.empty() && (ptpl_before || r->state.view().ptpl)) {
        // Durable before the command completes (a file with PTPL 0 when
        // the host turned it off: ignored at load).
        std::exception_ptr failed;
        try {
            co_await _store.save(r->ptpl_name, encode_reservation_file(r->state.view()));
        } catch (...) {
            failed = std::current_exception();
        }
        if (failed) {
            try {
                std::rethrow_exception(failed);
            } catch (const std::exception& e) {
                log::error("{}: reservation state not persisted: {}", where, e.what());
            }
            r->state.stamp();
            co_await publish_reservation(r);  // in effect, but not durable: the host is told it failed
            co_return make_status(sct::generic, sc::internal_error, false);
        }
    }
    if (o.changed) {
        r->state.stamp();
        co_await publish_reservation(r);
    }
    if (!o.notices.empty()) send_reservation_notices(r.get(), o.notices);
    // Preempt-and-abort waits for the preempted hosts' commands. When that
    // timed out, the preemption is in effect anyway, so a retry (the same
    // key, now the holder) would succeed at once without the drain: every
    // later successful Acquire waits for it first, until it is done.
    const bool acquired = rq.opcode == nvm_opcode::reservation_acquire && status_ok(o.status);
    const bool abort = acquired && resv_action(rq.cdw10) == racqa::preempt_and_abort;
    if (abort || (acquired && r->drain_owed)) {
        if (!co_await drain_unregistered(r)) {
            r->drain_owed = true;
            log::warn("{}: {}: commands of preempted hosts still run after {} ms: failed", where, abort ? "preempt-and-abort" : "acquire after a preempt-and-abort that timed out",
                      _limits.drain_timeout_ms);
            co_return drain_timed_out;
        }
        r->drain_owed = false;
    }
    co_return o.status;
}

future<> nvmf_target::publish_reservation(std::shared_ptr<namespace_reservations> r) {
    const reservation_view v = r->state.view();
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        co_await submit_to(shard, [r, v] {
            auto& mine = r->views[this_shard_id()].v;
            if (v.version > mine.version) mine = v;  // a newer copy may have overtaken this one
        });
    }
}

future<bool> nvmf_target::drain_unregistered(std::shared_ptr<namespace_reservations> r) {
    const auto deadline = steady_clock::now() + std::chrono::milliseconds(_limits.drain_timeout_ms);
    std::vector<std::shared_ptr<subsystem>> subs;
    for (auto& [s, nsid] : namespaces_of(r.get())) subs.push_back(s);
    bool all = true;
    nvmf_target* self = this;
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        const bool ok =
            co_await submit_to(shard, [self, subs, r, deadline] { return self->drain_on_shard(subs, r, deadline); });
        all = all && ok;
    }
    co_return all;
}

future<bool> nvmf_target::drain_on_shard(std::vector<std::shared_ptr<subsystem>> subs,
                                         std::shared_ptr<namespace_reservations> r, steady_clock::time_point deadline) {
    // Every I/O queue pair on this shard of a subsystem with a namespace
    // over the device whose host is not registered now (the preempted ones,
    // and anyone preempted earlier whose drain timed out): the data
    // commands it started so far. Local users likewise: what they have in
    // flight (new writes are refused by this shard's copy, already updated).
    struct waiting {
        std::uint64_t serial;
        unsigned token;
    };
    std::vector<waiting> wait;
    const reservation_view& v = r->local();
    for (tcp_qpair* q : _qpairs[this_shard_id()].list) {
        if (v.registered(q->host())) continue;
        for (const auto& s : subs) {
            if (q->io_queue_of(s.get())) {
                wait.push_back({q->serial(), q->begin_drain()});
                break;
            }
        }
    }
    const unsigned me = this_shard_id();
    for (;;) {
        bool busy = false;
        auto& list = _qpairs[me].list;
        for (const waiting& w : wait) {
            // Looked up by serial each time: a queue pair that closed is gone.
            auto it = std::find_if(list.begin(), list.end(), [&](tcp_qpair* q) { return q->serial() == w.serial; });
            if (it != list.end() && !(*it)->drained(w.token)) busy = true;
        }
        {
            // A user that left (its device closed) has nothing in flight.
            std::lock_guard lk(r->users_mutex);
            for (const auto* u : r->users)
                if (!v.registered(u->host) && u->in_flight_here() > 0) busy = true;
        }
        if (!busy) co_return true;
        if (steady_clock::now() >= deadline || _stopping.load(std::memory_order_relaxed)) co_return false;
        co_await sleep(std::chrono::milliseconds(1));
    }
}

}  // namespace ioe::nvme
