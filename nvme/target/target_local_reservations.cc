// Local users of a shared device's reservation (storage/reservation_port.hh,
// docs/nexus.md "Fencing local children"): the port the target hands to a
// nexus that opens the device as a bdev:/// child. Its requests are applied
// to the device's table on the home shard exactly as a host's Reservation
// Register / Acquire (the same persistence, notices and preempt-and-abort
// drain), under the user's host identifier and with no controller (CNTLID
// FFFFh in a report). Its I/O is admitted by this shard's copy of the table;
// another host's preempt-and-abort waits, on every shard, until the user has
// nothing in flight there (the user counts: its device's channel).
#include <cstring>
#include <fmt/format.h>

#include "nvme/spec/nvme_reservation.hh"
#include "nvme/target/target.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"

namespace ioe::nvme {

namespace {

// Our NVMe status (phase, DNR and more bits aside) as a storage status.
io_status as_io_status(std::uint16_t st) noexcept {
    return static_cast<io_status>((unsigned{status_code_type(st)} << 8) | status_code(st));
}

class local_port final : public reservation_port {
public:
    local_port(nvmf_target& target, std::shared_ptr<namespace_reservations> table, host_id host,
               std::function<unsigned()> in_flight_here)
        : _target(target), _table(std::move(table)), _user{host, std::move(in_flight_here)} {
        std::lock_guard lk(_table->users_mutex);
        _table->users.push_back(&_user);
    }

    ~local_port() override {
        std::lock_guard lk(_table->users_mutex);
        std::erase(_table->users, &_user);
    }

    future<io_status> reservation_register(const reservation_register_request& r) override {
        reservation_request rq = request(nvm_opcode::reservation_register);
        rq.cdw10 = static_cast<std::uint32_t>(r.action) | (r.ignore_existing_key ? resv_iekey : 0u);
        rq.key1 = r.current_key;
        rq.key2 = r.new_key;
        co_return as_io_status(co_await _target.change_device_reservation(_table, rq));
    }

    future<io_status> reservation_acquire(const reservation_acquire_request& r) override {
        reservation_request rq = request(nvm_opcode::reservation_acquire);
        rq.cdw10 = static_cast<std::uint32_t>(r.action) | (std::uint32_t{static_cast<std::uint8_t>(r.type)} << 8);
        rq.key1 = r.current_key;
        rq.key2 = r.preempt_key;
        co_return as_io_status(co_await _target.change_device_reservation(_table, rq));
    }

    // This shard's copy: every change that completed is in it.
    future<io_status> read_reservation(reservation_report& out) override {
        const reservation_view& v = _table->local();
        out.generation = v.generation;
        out.type = static_cast<reservation_type>(v.type);
        out.registrants.clear();
        for (std::uint32_t i = 0; i < v.count; ++i) {
            reservation_registrant e;
            e.host_id = v.regs[i].host;
            e.key = v.regs[i].key;
            e.holder = v.holds(v.regs[i].host);
            out.registrants.push_back(e);
        }
        return make_ready_future<io_status>(io_status::success);
    }

    bool admits(bool write) const noexcept override {
        const reservation_view& v = _table->local();
        return v.type == rtype::none || v.allows(_user.host, write);
    }

private:
    reservation_request request(std::uint8_t opcode) const {
        reservation_request rq;
        rq.host = _user.host;
        rq.cntlid = 0xffff;
        rq.opcode = opcode;
        return rq;
    }

    nvmf_target& _target;
    std::shared_ptr<namespace_reservations> _table;
    namespace_reservations::local_user _user;
};

}  // namespace

std::unique_ptr<reservation_port> nvmf_target::attach(block_device& dev, const std::array<std::uint8_t, 16>& host,
                                                      std::function<unsigned()> in_flight_here) {
    std::shared_ptr<namespace_reservations> table;
    bool created = false;
    {
        std::lock_guard lk(_mutex);
        // A new table's copies are empty, like its state.
        table = device_table_locked(&dev, created);
    }
    return std::make_unique<local_port>(*this, std::move(table), host, std::move(in_flight_here));
}

future<std::uint16_t> nvmf_target::change_device_reservation(std::shared_ptr<namespace_reservations> r,
                                                             reservation_request rq) {
    nvmf_target* self = this;
    co_return co_await submit_to(_home, [self, r, rq] {
        return self->apply_to_table(r, rq, fmt::format("local user {:02x}{:02x}{:02x}{:02x}...", rq.host[0],
                                                        rq.host[1], rq.host[2], rq.host[3]));
    });
}

}  // namespace ioe::nvme
