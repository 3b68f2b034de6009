// The nexus's vocabulary: its states and its children's states, the reasons
// a child is faulted, and the read-only descriptions the RPC and the CLI
// show (DESIGN.md section 4, with the states Mayastor users know).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/uuid.hh"

namespace ioe {

// online: every child online. degraded: at least one online, some not.
// faulted: no child online (I/O fails). shutting_down/shutdown: shutdown().
enum class nexus_state { online, degraded, faulted, shutting_down, shutdown, fenced };
// fenced: another incarnation of the nexus (a higher epoch in the health
// record) has taken over; this one acknowledges nothing more, for good.
// online: in sync, serves reads and writes. degraded: being rebuilt (gets
// writes, no reads). faulted: retired, with a reason.
enum class child_state { online, degraded, faulted };
enum class fault_reason {
    none,
    io_error,
    timeout,
    no_space,
    out_of_sync,
    by_client,
    cannot_open,
    rebuild_failed,
    reserved_by_other,  // its reservation is held by a host that is not an incarnation of this nexus
};

std::string_view to_string(nexus_state s) noexcept;
std::string_view to_string(child_state s) noexcept;
std::string_view to_string(fault_reason r) noexcept;

enum class rebuild_state { none, running, paused, stopped, completed, failed };
std::string_view to_string(rebuild_state s) noexcept;

struct rebuild_progress {
    std::string child;  // URI of the child being rebuilt
    std::string source;  // URI of the child copied from
    rebuild_state state = rebuild_state::none;
    bool partial = false;
    std::uint64_t blocks_total = 0;
    std::uint64_t blocks_done = 0;
    std::uint64_t blocks_remaining() const noexcept { return blocks_total - blocks_done; }
    double blocks_per_second = 0;
    std::chrono::system_clock::time_point started{};
    std::chrono::system_clock::time_point ended{};  // when it ended (history)
    std::string error;  // why it failed
};

struct child_info {
    std::string uri;
    std::string device;  // block device name
    uuid id;
    child_state state = child_state::online;
    fault_reason reason = fault_reason::none;
    std::uint64_t block_count = 0;
    // A nexus snapshot was taken that this child did not take part in (it
    // was added or rebuilt later, faulted, or its snapshot failed): it lacks
    // part of the nexus's snapshot history (docs/nexus.md, Snapshots).
    bool snapshot_history_missing = false;
};

// One child's part in a nexus snapshot (nexus_snapshot.cc).
struct nexus_snapshot_child {
    std::string uri;
    bool ok = false;
    bool existed = false;  // a retry: the child had this txid's snapshot already
    std::string error;     // why it failed (empty when ok)
    bool conflict = false; // refused by the child's reservation: another incarnation holds it
};

// complete: every online child has the snapshot. Otherwise a partial
// snapshot: the children that failed are listed with their error, and the
// nexus resumed I/O all the same.
struct nexus_snapshot_result {
    std::string name;
    std::string txid;
    bool complete = false;
    double pause_ms = 0;  // from the pause request to the resume
    std::vector<nexus_snapshot_child> children;
};

struct nexus_info {
    std::string name;
    uuid id;
    std::uint32_t block_size = 0;
    std::uint64_t block_count = 0;
    nexus_state state = nexus_state::online;
    std::uint64_t epoch = 0;  // the incarnation's (nexus_epoch.hh)
    std::vector<child_info> children;
    std::vector<rebuild_progress> rebuilds;  // running or paused
    std::uint32_t snapshots_taken = 0;       // nexus snapshots (complete or partial)
};

}  // namespace ioe
