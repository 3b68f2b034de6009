// One namespace's NVMe reservation: the registrants (host identifier, key,
// the controller that registered), the reservation type and its holder, the
// generation, and what each operation of Reservation Register / Acquire /
// Release does to them (NVM Express Base 2.0, "Reservations"). Plain data
// and pure functions, no I/O: the target's owner shard applies commands to
// a reservation_state and sends copies (reservation_view is the same data)
// to every shard, whose I/O path asks the copy allows(host, write).
//
// Identity is the host, not the controller: every controller of a host
// (same 128-bit HOSTID from the Fabrics Connect data) shares its
// registration. The registrant table has a fixed capacity
// (max_registrants); a Register beyond it is refused with Internal Error.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace ioe::nvme {

using host_id = std::array<std::uint8_t, 16>;

struct registrant {
    host_id host{};
    std::uint64_t key = 0;
    std::uint16_t cntlid = 0xffff;  // the controller that registered last (the report's CNTLID)
};

// The whole state; copied to every shard (no pointers inside, fixed size).
struct reservation_view {
    static constexpr std::size_t max_registrants = 64;

    std::uint64_t version = 0;     // orders copies sent to shards
    std::uint32_t generation = 0;  // PRGEN: bumped by registration changes
    std::uint8_t type = 0;         // rtype::none when nobody holds it
    host_id holder{};              // for the types with one holder
    bool ptpl = false;             // Persist Through Power Loss state
    std::uint32_t count = 0;
    std::array<registrant, max_registrants> regs{};

    const registrant* find(const host_id& h) const noexcept;
    bool registered(const host_id& h) const noexcept { return find(h) != nullptr; }
    // The host holds the reservation (every registrant does under the
    // all-registrants types).
    bool holds(const host_id& h) const noexcept;
    // May this host read (write = false) or write (write = true) now?
    // Writes are Write, Write Zeroes, Dataset Management and Flush.
    bool allows(const host_id& h, bool write) const noexcept;
};

bool all_registrants_type(std::uint8_t type) noexcept;

// What a command did: its NVMe status and, for preemption, which hosts lost
// their registration (preempt-and-abort waits for their commands).
struct reservation_outcome {
    std::uint16_t status = 0;
    bool changed = false;  // the view changed: publish it
    std::vector<host_id> preempted;
    // Reservation notifications to send (log page 80h): to whom, which type.
    std::vector<std::pair<host_id, std::uint8_t>> notices;
};

class reservation_state {
public:
    // CPTPL = 11b (persist) is refused with Invalid Field unless set.
    bool ptpl_capable = false;

    const reservation_view& view() const noexcept { return _v; }
    void load(const reservation_view& v) { _v = v; }

    // cdw10 and the command's data as received (already length-checked).
    reservation_outcome do_register(const host_id& h, std::uint16_t cntlid, std::uint32_t cdw10, std::uint64_t crkey,
                                    std::uint64_t nrkey);
    reservation_outcome acquire(const host_id& h, std::uint32_t cdw10, std::uint64_t crkey, std::uint64_t prkey);
    reservation_outcome release(const host_id& h, std::uint32_t cdw10, std::uint64_t crkey);
    // Set Features Reservation Persistence.
    void set_ptpl(bool on) noexcept;
    // A state loaded from a PTPL file joins the live one (local users that
    // registered before the device was shared): its registrants this one
    // lacks are added (while there is room), its reservation is taken when
    // nobody holds one here, and its PTPL state is kept.
    void merge(const reservation_view& loaded);
    // A new version for the copies sent to shards.
    void stamp() noexcept { ++_v.version; }

private:
    registrant* find(const host_id& h) noexcept;
    void remove(const host_id& h) noexcept;
    void bump() noexcept;
    reservation_view _v;
};

// Reservation Report data (extended form: 64-byte header, 64-byte entries)
// into out (numd dwords); bytes past out.size() are dropped.
void build_reservation_report(const reservation_view& v, std::span<std::byte> out);

}  // namespace ioe::nvme
