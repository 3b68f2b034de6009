// One namespace's reservation state and what each reservation command does
// to it (see reservation_state.hh; the rules are from NVM Express Base 2.0,
// "Reservations", and are summarised in docs/nvmf.md, "Reservations").
#include "nvme/target/reservation_state.hh"

#include <algorithm>
#include <cstring>

#include "nvme/spec/nvme_reservation.hh"
#include "nvme/spec/nvme_spec.hh"

namespace ioe::nvme {

namespace {

constexpr std::uint16_t ok_status = 0;
constexpr std::uint16_t conflict = make_status(sct::generic, sc::reservation_conflict, true);
constexpr std::uint16_t invalid_field = make_status(sct::generic, sc::invalid_field, true);
constexpr std::uint16_t table_full = make_status(sct::generic, sc::internal_error, true);

reservation_outcome done(std::uint16_t status, bool changed = false) {
    reservation_outcome o;
    o.status = status;
    o.changed = changed;
    return o;
}

}  // namespace

namespace {
bool registrants_only_type(std::uint8_t type) {
    return type == rtype::write_exclusive_registrants_only || type == rtype::exclusive_access_registrants_only;
}
// Every registrant but `except` gets a notice of this type.
void notify_others(const reservation_view& v, const host_id& except, std::uint8_t type, reservation_outcome& o) {
    for (std::uint32_t i = 0; i < v.count; ++i)
        if (v.regs[i].host != except) o.notices.emplace_back(v.regs[i].host, type);
}
}  // namespace

bool all_registrants_type(std::uint8_t type) noexcept {
    return type == rtype::write_exclusive_all_registrants || type == rtype::exclusive_access_all_registrants;
}

const registrant* reservation_view::find(const host_id& h) const noexcept {
    for (std::uint32_t i = 0; i < count; ++i)
        if (regs[i].host == h) return &regs[i];
    return nullptr;
}

bool reservation_view::holds(const host_id& h) const noexcept {
    if (type == rtype::none) return false;
    if (all_registrants_type(type)) return registered(h);
    return holder == h;
}

bool reservation_view::allows(const host_id& h, bool write) const noexcept {
    if (type == rtype::none || holds(h)) return true;
    switch (type) {
        case rtype::write_exclusive: return !write;
        case rtype::exclusive_access: return false;
        case rtype::write_exclusive_registrants_only:
        case rtype::write_exclusive_all_registrants: return !write || registered(h);
        case rtype::exclusive_access_registrants_only:
        case rtype::exclusive_access_all_registrants: return registered(h);
        default: return false;
    }
}

registrant* reservation_state::find(const host_id& h) noexcept {
    return const_cast<registrant*>(_v.find(h));
}

void reservation_state::bump() noexcept { ++_v.generation; }

void reservation_state::remove(const host_id& h) noexcept {
    registrant* r = find(h);
    if (!r) return;
    const auto i = static_cast<std::uint32_t>(r - _v.regs.data());
    for (std::uint32_t j = i + 1; j < _v.count; ++j) _v.regs[j - 1] = _v.regs[j];
    _v.regs[--_v.count] = registrant{};
    // A holder that goes releases the reservation; under the all-registrants
    // types it ends with the last registrant.
    if (_v.type != rtype::none) {
        if (all_registrants_type(_v.type) ? _v.count == 0 : _v.holder == h) {
            _v.type = rtype::none;
            _v.holder = host_id{};
        }
    }
}

void reservation_state::set_ptpl(bool on) noexcept { _v.ptpl = on; }

void reservation_state::merge(const reservation_view& loaded) {
    for (std::uint32_t i = 0; i < loaded.count && _v.count < reservation_view::max_registrants; ++i)
        if (!find(loaded.regs[i].host)) _v.regs[_v.count++] = loaded.regs[i];
    if (_v.type == rtype::none && loaded.type != rtype::none &&
        (all_registrants_type(loaded.type) || _v.registered(loaded.holder))) {
        _v.type = loaded.type;
        _v.holder = loaded.holder;
    }
    _v.ptpl = _v.ptpl || loaded.ptpl;
    _v.generation = std::max(_v.generation, loaded.generation);
    bump();
}

reservation_outcome reservation_state::do_register(const host_id& h, std::uint16_t cntlid, std::uint32_t cdw10,
                                                   std::uint64_t crkey, std::uint64_t nrkey) {
    const bool iekey = (cdw10 & resv_iekey) != 0;
    const std::uint8_t cpt = resv_cptpl(cdw10);
    if (cpt == 1 || (cpt == cptpl::set && !ptpl_capable)) return done(invalid_field);
    registrant* r = find(h);
    reservation_outcome o;
    switch (resv_action(cdw10)) {
        case rrega::register_key:
            if (r) {
                if (r->key != nrkey) return done(conflict);
                r->cntlid = cntlid;
                break;  // registering again with the same key: success
            }
            if (_v.count >= reservation_view::max_registrants) return done(table_full);
            _v.regs[_v.count++] = registrant{h, nrkey, cntlid};
            bump();
            o.changed = true;
            break;
        case rrega::unregister_key: {
            if (!r || (!iekey && r->key != crkey)) return done(conflict);
            const std::uint8_t before = _v.type;
            remove(h);
            // A registrants-only reservation its holder left is released.
            if (before != rtype::none && _v.type == rtype::none && registrants_only_type(before))
                notify_others(_v, h, resv_notice_type::reservation_released, o);
            bump();
            o.changed = true;
            break;
        }
        case rrega::replace_key:
            if (!r || (!iekey && r->key != crkey)) return done(conflict);
            r->key = nrkey;
            r->cntlid = cntlid;
            bump();
            o.changed = true;
            break;
        default: return done(invalid_field);
    }
    if (cpt == cptpl::set || cpt == cptpl::clear) {
        _v.ptpl = cpt == cptpl::set;
        o.changed = true;
    }
    o.status = ok_status;
    return o;
}

reservation_outcome reservation_state::acquire(const host_id& h, std::uint32_t cdw10, std::uint64_t crkey,
                                               std::uint64_t prkey) {
    const registrant* r = find(h);
    if (!r || r->key != crkey) return done(conflict);
    const std::uint8_t t = resv_type_field(cdw10);
    if (t < rtype::write_exclusive || t > rtype::exclusive_access_all_registrants) return done(invalid_field);
    const std::uint8_t action = resv_action(cdw10);
    if (action == racqa::acquire) {
        if (_v.type == rtype::none) {
            _v.type = t;
            _v.holder = h;
            return done(ok_status, true);
        }
        return done(_v.holds(h) && _v.type == t ? ok_status : conflict);
    }
    if (action != racqa::preempt && action != racqa::preempt_and_abort) return done(invalid_field);

    // Preempt: unregister every other host whose key is `prkey` (or, with
    // PRKEY 0 under an all-registrants type, every other host), and take
    // the reservation when the holder was among them.
    reservation_outcome o;
    auto remove_matching = [&](bool everyone) {
        std::vector<host_id> gone;
        for (std::uint32_t i = 0; i < _v.count; ++i) {
            const registrant& x = _v.regs[i];
            if (x.host != h && (everyone || x.key == prkey)) gone.push_back(x.host);
        }
        for (const host_id& g : gone) remove(g);
        return gone;
    };
    if (_v.type != rtype::none && all_registrants_type(_v.type)) {
        if (prkey == 0) {
            o.preempted = remove_matching(true);
            _v.type = t;
            _v.holder = h;
        } else {
            o.preempted = remove_matching(false);
            if (o.preempted.empty()) return done(conflict);
        }
    } else if (_v.type != rtype::none) {
        const registrant* holder = _v.find(_v.holder);
        if (holder && holder->key == prkey) {
            o.preempted = remove_matching(false);
            _v.type = t;
            _v.holder = h;
        } else {
            if (prkey == 0) return done(invalid_field);
            o.preempted = remove_matching(false);
            if (o.preempted.empty()) return done(conflict);
        }
    } else {
        if (prkey == 0) return done(invalid_field);
        o.preempted = remove_matching(false);
        if (o.preempted.empty()) return done(conflict);
    }
    if (!o.preempted.empty()) bump();
    for (const host_id& g : o.preempted) o.notices.emplace_back(g, resv_notice_type::registration_preempted);
    if (_v.holder == h && _v.type == t) notify_others(_v, h, resv_notice_type::reservation_preempted, o);
    o.changed = true;
    o.status = ok_status;
    return o;
}

reservation_outcome reservation_state::release(const host_id& h, std::uint32_t cdw10, std::uint64_t crkey) {
    const registrant* r = find(h);
    if (!r || r->key != crkey) return done(conflict);
    switch (resv_action(cdw10)) {
        case rrela::release:
            if (!_v.holds(h)) return done(ok_status);  // nothing held by this host: success, no change
            if (resv_type_field(cdw10) != _v.type) return done(invalid_field);
            {
                reservation_outcome o = done(ok_status, true);
                if (registrants_only_type(_v.type) || all_registrants_type(_v.type))
                    notify_others(_v, h, resv_notice_type::reservation_released, o);
                _v.type = rtype::none;
                _v.holder = host_id{};
                return o;
            }
        case rrela::clear: {
            reservation_outcome o;
            for (std::uint32_t i = 0; i < _v.count; ++i)
                if (_v.regs[i].host != h) o.preempted.push_back(_v.regs[i].host);
            notify_others(_v, h, resv_notice_type::reservation_preempted, o);
            _v.count = 0;
            _v.regs.fill(registrant{});
            _v.type = rtype::none;
            _v.holder = host_id{};
            bump();
            o.changed = true;
            o.status = ok_status;
            return o;
        }
        default: return done(invalid_field);
    }
}

void build_reservation_report(const reservation_view& v, std::span<std::byte> out) {
    std::memset(out.data(), 0, out.size());
    auto put = [&](std::size_t at, const void* p, std::size_t n) {
        if (at >= out.size()) return;
        std::memcpy(out.data() + at, p, std::min(n, out.size() - at));
    };
    resv_status_ext_header hdr{};
    hdr.h.gen = v.generation;
    hdr.h.rtype = v.type;
    set_regctl(hdr.h, static_cast<std::uint16_t>(v.count));
    hdr.h.ptpls = v.ptpl ? 1 : 0;
    put(0, &hdr, sizeof hdr);
    for (std::uint32_t i = 0; i < v.count; ++i) {
        registered_controller_ext e{};
        e.cntlid = v.regs[i].cntlid;
        e.rcsts = v.holds(v.regs[i].host) ? 1 : 0;
        e.rkey = v.regs[i].key;
        std::memcpy(e.hostid, v.regs[i].host.data(), sizeof e.hostid);
        put(sizeof hdr + i * sizeof e, &e, sizeof e);
    }
}

}  // namespace ioe::nvme
