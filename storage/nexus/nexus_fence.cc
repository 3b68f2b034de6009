// Claiming a child's reservation for a nexus incarnation (see nexus_fence.hh).
#include "storage/nexus/nexus_fence.hh"

#include <fmt/format.h>

#include "runtime/log.hh"

namespace ioe {

bool older_incarnation_key(std::uint64_t key, const nexus_epoch& me) noexcept {
    // The uuid prefix is the key's top 16 bits. A key of the layout before
    // generations (32-bit prefix << 32 | epoch) has the same top 16 bits
    // and a lower epoch than any incarnation of this layout: older too.
    if (key >> 48 != me.reservation_key() >> 48) return false;
    const std::uint64_t epoch = key_epoch(key);
    if (epoch == 0) return false;
    return epoch < me.epoch || (epoch == me.epoch && key_generation(key) < me.generation);
}

bool older_incarnation(const reservation_registrant& r, const nexus_epoch& me) noexcept {
    if (!older_incarnation_key(r.key, me)) return false;
    for (std::size_t i = 0; i < 8; ++i)
        if (r.host_id[i] != me.nexus.bytes[i]) return false;
    return true;
}

future<io_status> claim_reservation(block_device& dev, const nexus_epoch& me, std::string& why) {
    io_channel* ch = dev.channel();
    if (!ch) {
        why = "the device is closing";
        co_return io_status::namespace_not_ready;
    }
    const std::uint64_t key = me.reservation_key();
    reservation_register_request reg;
    reg.action = reservation_register_action::register_key;
    reg.new_key = key;
    reg.ignore_existing_key = true;  // whatever this host identifier had, it is ours now
    io_status st = co_await ch->reservation_register(reg);
    if (st == io_status::invalid_opcode) co_return st;
    if (!ok(st)) {
        why = fmt::format("registering key {:#x}: {}", key, to_string(st));
        co_return st;
    }
    reservation_report report;
    st = co_await ch->read_reservation(report);
    if (!ok(st)) {
        why = fmt::format("reading the reservation: {}", to_string(st));
        co_return st;
    }
    const reservation_registrant* holder = report.holder();
    reservation_acquire_request acq;
    acq.type = reservation_type::write_exclusive;
    acq.current_key = key;
    if (report.type == reservation_type::none || !holder) {
        acq.action = reservation_acquire_action::acquire;
    } else if (holder->key == key) {
        if (report.type == reservation_type::write_exclusive) co_return io_status::success;
        acq.action = reservation_acquire_action::preempt;  // ours, another type: change it
        acq.preempt_key = key;
    } else if (older_incarnation(*holder, me)) {
        // Its commands still executing at the target finish (or are
        // aborted) before this completes: no write of it lands afterwards.
        acq.action = reservation_acquire_action::preempt_and_abort;
        acq.preempt_key = holder->key;
        log::info("{}: preempting and aborting epoch {} generation {} (key {:#x}) for epoch {} generation {}",
                  dev.name(), key_epoch(holder->key), key_generation(holder->key), holder->key, me.epoch,
                  me.generation);
    } else {
        why = fmt::format("reserved by key {:#x} (host {}), not an older incarnation of this nexus", holder->key,
                          host_id_hex(holder->host_id));
        co_return io_status::reservation_conflict;
    }
    st = co_await ch->reservation_acquire(acq);
    if (!ok(st)) {
        why = fmt::format("acquiring Write Exclusive with key {:#x}: {}", key, to_string(st));
        co_return st;
    }
    // Older incarnations still registered without holding: removed too (a
    // registrant that does not hold Write Exclusive cannot write, but it has
    // no reason to stay).
    for (const auto& r : report.registrants) {
        if (r.holder || r.key == key || !older_incarnation(r, me)) continue;
        reservation_acquire_request drop;
        drop.action = reservation_acquire_action::preempt_and_abort;
        drop.type = reservation_type::write_exclusive;
        drop.current_key = key;
        drop.preempt_key = r.key;
        st = co_await ch->reservation_acquire(drop);
        if (!ok(st)) log::warn("{}: removing the registration of key {:#x}: {}", dev.name(), r.key, to_string(st));
    }
    co_return io_status::success;
}

}  // namespace ioe
