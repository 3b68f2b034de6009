// Who may start a new incarnation of a nexus over its health record, and
// what the record says when a new incarnation took its epoch but could not
// claim any child (docs/nexus.md, Takeover).
//
// The rule, checked by nexus::create before it takes the record's next
// epoch:
//
//   takeover, no record                    -> not_found: nothing to take over
//   takeover, record                       -> allowed (the old incarnation is
//                                             fenced on every child claimed)
//   plain create, no record                -> allowed (a new nexus)
//   plain create, clean shutdown           -> allowed (a planned move or a
//                                             restart after `nexus shutdown`)
//   plain create, owner empty or ours      -> allowed (a restart on the same
//                                             node after a crash)
//   plain create, unclean, another owner   -> busy: that node may still be
//                                             serving; use takeover
//
// So an old node that restarts after another node took its nexus over does
// not take it back on its own: the record names the new owner.
#pragma once

#include <optional>
#include <string>

#include "storage/nexus/child_health.hh"

namespace ioe {

// Throws storage_error (not_found or busy, naming the key, the epoch and
// the owner) when an incarnation of nexus `name` owned by `owner` may not
// start over `record` (read from `key`).
void check_new_incarnation(const std::string& name, const std::string& key, const std::string& owner, bool takeover,
                           const std::optional<nexus_health_record>& record);

// The record to leave when incarnation `epoch` took the record but claimed
// no child in sync: its epoch (the older incarnation may be fenced on some
// children: it must not write the record again), not cleanly shut down,
// and the children exactly as `before` listed them (this incarnation wrote
// nothing to them, so whoever held every acknowledged write still does; a
// retried takeover starts from the same view). `fallback` is used when
// there was no record before.
nexus_health_record record_after_failed_claim(const std::optional<nexus_health_record>& before, std::uint64_t epoch,
                                              const std::string& owner, const nexus_health_record& fallback);

}  // namespace ioe
