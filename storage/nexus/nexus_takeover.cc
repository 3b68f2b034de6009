// The rule for starting a nexus incarnation over its health record, and the
// record left by one that claimed no child (see nexus_takeover.hh).
#include "storage/nexus/nexus_takeover.hh"

#include <fmt/format.h>

#include "storage/errors.hh"

namespace ioe {

void check_new_incarnation(const std::string& name, const std::string& key, const std::string& owner, bool takeover,
                           const std::optional<nexus_health_record>& record) {
    if (takeover) {
        if (!record) {
            throw storage_error(storage_errc::not_found,
                                fmt::format("nexus '{}': takeover: no health record at {}: there is no incarnation to "
                                            "take over (check the uuid or --health-key; a new nexus is created "
                                            "without --takeover)",
                                            name, key));
        }
        return;
    }
    if (!record || record->clean_shutdown || record->owner.empty() || record->owner == owner) return;
    throw storage_error(storage_errc::busy,
                        fmt::format("nexus '{}': health record {} says epoch {} runs on node '{}' and was not "
                                    "shut down cleanly: it may still be serving; take it over (nexus create "
                                    "--takeover), or shut it down on '{}' first",
                                    name, key, record->epoch, record->owner, record->owner));
}

nexus_health_record record_after_failed_claim(const std::optional<nexus_health_record>& before, std::uint64_t epoch,
                                              const std::string& owner, const nexus_health_record& fallback) {
    nexus_health_record r = before ? *before : fallback;
    r.epoch = epoch;
    r.owner = owner;
    r.clean_shutdown = false;
    return r;
}

}  // namespace ioe
