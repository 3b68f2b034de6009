// Nexus snapshots (nexus.hh, docs/nexus.md "Snapshots"): one point in time
// across the children, under one transaction id.
//
// States: idle -> draining (every shard's gate closed, in-flight I/O
// finishing; bounded by snapshot_drain_limit) -> snapshotting (each online
// child at once) -> resumed. A drain that does not finish in time resumes
// and throws busy; nothing was snapshotted. Once drained, the outcome is per
// child: ok (taken, or already there under this txid: a retry) or failed
// with its error (also when it does not answer within
// snapshot_child_limit); the nexus resumes I/O either way. Children not online
// (faulted, or being rebuilt: not in sync) are not snapshotted. If at least
// one child took it, the snapshot counts (snapshots_taken) and every child
// without it is marked snapshot_history_missing; one no child took is a
// failed attempt that changes nothing.
#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "runtime/log.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/errors.hh"
#include "storage/nexus/nexus.hh"
#include "storage/replica.hh"
#include "storage/replica_snapshot.hh"
#include "storage/reserved_device.hh"
#include "storage/uuid.hh"

namespace ioe {

namespace {

using clk = std::chrono::steady_clock;
constexpr auto drain_poll = std::chrono::microseconds(200);

storage_error nexus_error(storage_errc c, const std::string& name, const std::string& what) {
    return storage_error(c, fmt::format("nexus '{}': {}", name, what));
}

// One child's snapshot, on the nexus's owner shard; never throws.
future<nexus_snapshot_child> snapshot_child(std::string uri, block_device* dev, device_snapshot_request req) {
    nexus_snapshot_child out;
    out.uri = uri;
    try {
        device_snapshot_reply reply;
        // A local child under a reservation port: the replica behind it,
        // if the reservation lets this incarnation write (as the target
        // asks of a remote child's Snapshot Namespace).
        if (auto* w = dynamic_cast<reserved_device*>(dev)) {
            if (!w->port().admits(true)) {
                out.conflict = true;
                out.error = fmt::format("device {}: reservation conflict", dev->name());
                co_return out;
            }
            dev = &w->inner();
        }
        if (auto* r = dynamic_cast<replica*>(dev)) {
            reply = co_await snapshot_replica_once(r, req);
        } else {
            io_channel* ch = dev->channel();
            const io_status st = ch ? co_await ch->snapshot(req, reply) : io_status::namespace_not_ready;
            if (!ok(st)) {
                out.conflict = st == io_status::reservation_conflict;
                out.error = st == io_status::invalid_opcode
                                ? fmt::format("device {} cannot take snapshots (invalid opcode)", dev->name())
                                : fmt::format("device {}: {}", dev->name(), to_string(st));
                co_return out;
            }
        }
        out.ok = true;
        out.existed = reply.existed;
    } catch (const std::exception& e) {
        out.error = e.what();
    }
    co_return out;
}

// `f`, or a failed result if it does not finish within `limit` (the
// snapshot goes on without us; a retry with the same txid finds it).
future<nexus_snapshot_child> bounded(future<nexus_snapshot_child> f, std::string uri,
                                     std::chrono::milliseconds limit) {
    try {
        co_return co_await with_timeout(limit, std::move(f));
    } catch (const timed_out_error&) {
        nexus_snapshot_child out;
        out.uri = std::move(uri);
        out.error = fmt::format("no answer within {} ms (it may still be taken: retry with the same txid)",
                                limit.count());
        co_return out;
    }
}

}  // namespace

// Each child's snapshot flushes its device before it writes its metadata,
// with the nexus's I/O paused; a flush costs what was written since the
// last one (47 ms after a second of 4K writes on this machine's virtio
// disk, 0.3 ms right after another). Flushing every online child first,
// while I/O still runs, leaves the flushes inside the pause little to do;
// a second round when the first was slow. Bounded by the drain limit; a
// failure is left to the snapshot itself.
future<> nexus::preflush_children() {
    constexpr auto fast = std::chrono::milliseconds(2);
    for (unsigned round = 0; round < 3; ++round) {
        const clk::time_point t0 = clk::now();
        std::array<std::optional<future<io_status>>, max_children> flushing;
        for (unsigned s = 0; s < max_children; ++s) {
            if (!_used[s] || !_children[s].dev || _children[s].state != child_state::online) continue;
            if (io_channel* ch = _children[s].dev->channel()) {
                flushing[s].emplace(with_timeout(_opts.snapshot_drain_limit, ch->flush()));
            }
        }
        bool failed = false;
        for (auto& f : flushing) {
            if (!f) continue;
            try {
                failed |= !ok(co_await std::move(*f));
            } catch (...) {  // timed out (the flush goes on without us)
                failed = true;
            }
        }
        if (failed || clk::now() - t0 < fast) co_return;
    }
}

future<bool> nexus::drain_local(clk::time_point deadline) {
    shard_state& st = local();
    ++st.pauses;  // lifted by the snapshot's resume, drained or not
    while (st.in_flight > 0) {
        if (clk::now() >= deadline) co_return false;
        co_await sleep(drain_poll);
    }
    co_return true;
}

future<nexus_snapshot_result> nexus::snapshot(std::string snapshot_name, std::string txid) {
    if (_state == nexus_state::shutting_down || _state == nexus_state::shutdown || _state == nexus_state::fenced) {
        throw nexus_error(storage_errc::unavailable, name(), fmt::format("it is {}", to_string(_state)));
    }
    if (_snapshotting) throw nexus_error(storage_errc::busy, name(), "a snapshot is already being taken");
    if (snapshot_name.empty() || snapshot_name.size() > device_snapshot_request::max_name_bytes ||
        txid.size() > device_snapshot_request::max_txid_bytes) {
        throw nexus_error(storage_errc::invalid_argument, name(),
                          fmt::format("snapshot name must have 1 to {} bytes and txid at most {}",
                                      device_snapshot_request::max_name_bytes,
                                      device_snapshot_request::max_txid_bytes));
    }
    if (txid.empty()) txid = uuid::random().to_string();
    _snapshotting = true;
    nexus_snapshot_result result;
    result.name = snapshot_name;
    result.txid = txid;
    co_await preflush_children();
    const clk::time_point t0 = clk::now();
    const clk::time_point deadline = t0 + _opts.snapshot_drain_limit;
    bool drained = true;
    unsigned held = 0;  // shards this snapshot paused
    for (unsigned shard = 0; shard < shard_count() && drained; ++shard, ++held) {
        drained = co_await submit_to(shard, [this, deadline] { return drain_local(deadline); });
    }
    if (!drained) {
        co_await resume_shards(held);
        _snapshotting = false;
        log::warn("nexus {}: snapshot \"{}\" (txid {}): I/O did not drain within {} ms; resumed, nothing taken", name(),
                  snapshot_name, txid, _opts.snapshot_drain_limit.count());
        throw nexus_error(storage_errc::busy, name(),
                          fmt::format("I/O did not drain within {} ms; no snapshot taken, I/O resumed",
                                      _opts.snapshot_drain_limit.count()));
    }

    // Every online child at once; the others are left out and lose history.
    const device_snapshot_request req{snapshot_name, txid};
    std::array<std::optional<future<nexus_snapshot_child>>, max_children> running;
    std::array<bool, max_children> has{};
    for (unsigned s = 0; s < max_children; ++s) {
        if (_used[s] && _children[s].dev && _children[s].state == child_state::online) {
            running[s].emplace(bounded(snapshot_child(_children[s].uri, _children[s].dev, req), _children[s].uri,
                                       _opts.snapshot_child_limit));
        }
    }
    for (unsigned s = 0; s < max_children; ++s) {
        if (!running[s]) continue;
        nexus_snapshot_child c = co_await std::move(*running[s]);
        has[s] = c.ok;
        result.children.push_back(std::move(c));
    }
    // A child's reservation refused us: a newer incarnation took the
    // volume over and writes it now, so what the other children took is no
    // point in time of the volume. The nexus turns fenced before I/O
    // resumes (what waited fails with the path status), and the snapshot
    // is not counted or reported taken.
    std::string refused_by, taken_by;
    for (const auto& c : result.children) {
        if (c.conflict) refused_by += (refused_by.empty() ? "" : ", ") + c.uri;
        if (c.ok) taken_by += (taken_by.empty() ? "" : ", ") + c.uri;
    }
    if (!refused_by.empty()) co_await fence(fmt::format("child {} refused snapshot \"{}\" with reservation conflict",
                                                        refused_by, snapshot_name));
    co_await resume();
    result.pause_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
    _snapshotting = false;
    if (!refused_by.empty()) {
        throw nexus_error(storage_errc::unavailable, name(),
                          fmt::format("fenced: child {} refused snapshot \"{}\" (txid {}) with reservation conflict; "
                                      "another incarnation holds the volume. Taken by: {}",
                                      refused_by, snapshot_name, txid, taken_by.empty() ? "none" : taken_by));
    }
    // A snapshot that some child has: every child without it (not online,
    // or failed) now lacks part of the history. One that no child took
    // does not count.
    if (std::find(has.begin(), has.end(), true) != has.end()) {
        ++_snapshots_taken;
        for (unsigned s = 0; s < max_children; ++s)
            if (_used[s] && !has[s]) _children[s].snapshot_history_missing = true;
        // Kept in the health record, so that the next incarnation (a
        // restart, a takeover) knows the history too. A failed write only
        // costs that: the snapshots are in the pools either way.
        if (!co_await write_health(false)) {
            log::warn("nexus {}: snapshot \"{}\": the health record does not count it yet", name(), snapshot_name);
        }
    }
    result.complete = !result.children.empty();
    for (const auto& c : result.children) {
        result.complete = result.complete && c.ok;
        if (!c.ok) log::warn("nexus {}: snapshot \"{}\" (txid {}) of child {} failed: {}", name(), snapshot_name, txid,
                             c.uri, c.error);
    }
    log::info("nexus {}: snapshot \"{}\" (txid {}) {}; I/O paused {:.1f} ms", name(), snapshot_name, txid,
              result.complete ? "complete" : "partial", result.pause_ms);
    co_return result;
}

}  // namespace ioe
