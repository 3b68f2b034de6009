// Reservations on a block device, as the nexus uses them to fence older
// incarnations of itself (docs/nexus.md, Fencing): the NVMe model
// (NVM Express Base, "Reservations") expressed in storage terms, so that a
// device that speaks NVMe (nvmf://) maps each call to one command and the
// nexus needs nothing from nvme/. A device without reservations answers
// invalid_opcode to every call (the default in device_channel).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace ioe {

enum class reservation_type : std::uint8_t {
    none = 0,
    write_exclusive = 1,
    exclusive_access = 2,
    write_exclusive_registrants_only = 3,
    exclusive_access_registrants_only = 4,
    write_exclusive_all_registrants = 5,
    exclusive_access_all_registrants = 6,
};

enum class reservation_register_action : std::uint8_t { register_key = 0, unregister_key = 1, replace_key = 2 };
enum class reservation_acquire_action : std::uint8_t { acquire = 0, preempt = 1, preempt_and_abort = 2 };

struct reservation_register_request {
    reservation_register_action action = reservation_register_action::register_key;
    std::uint64_t current_key = 0;
    std::uint64_t new_key = 0;
    bool ignore_existing_key = false;  // IEKEY: register/replace whatever key this host had
};

struct reservation_acquire_request {
    reservation_acquire_action action = reservation_acquire_action::acquire;
    reservation_type type = reservation_type::exclusive_access;
    std::uint64_t current_key = 0;
    std::uint64_t preempt_key = 0;  // preempt / preempt-and-abort: the registrants to remove
};

struct reservation_registrant {
    std::array<std::uint8_t, 16> host_id{};
    std::uint64_t key = 0;
    bool holder = false;
};

struct reservation_report {
    std::uint32_t generation = 0;
    reservation_type type = reservation_type::none;
    std::vector<reservation_registrant> registrants;

    // The holder's key (under the single-holder types), if anybody holds it.
    const reservation_registrant* holder() const noexcept {
        for (const auto& r : registrants)
            if (r.holder) return &r;
        return nullptr;
    }
};

}  // namespace ioe
