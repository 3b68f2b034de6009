// The nexus's control path on its owner shard: creating it over its
// children and health record, the per-shard views, faulting children, adding,
// removing, offlining and onlining them, pause/resume and shutdown (see
// nexus.hh). The I/O path is nexus_io.cc, rebuilds nexus_rebuild.cc.
#include "storage/nexus/nexus.hh"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/log.hh"
#include "runtime/smp.hh"
#include "runtime/timer.hh"
#include "storage/backends.hh"
#include "storage/device_registry.hh"
#include "storage/errors.hh"
#include "storage/nexus/nexus_fence.hh"
#include "storage/nexus/nexus_takeover.hh"
#include "storage/reserved_device.hh"
#include "storage/uri.hh"

namespace ioe {

std::string_view to_string(nexus_state s) noexcept {
    switch (s) {
        case nexus_state::online: return "online";
        case nexus_state::degraded: return "degraded";
        case nexus_state::faulted: return "faulted";
        case nexus_state::shutting_down: return "shutting-down";
        case nexus_state::shutdown: return "shutdown";
        case nexus_state::fenced: return "fenced";
    }
    return "?";
}

std::string_view to_string(child_state s) noexcept {
    switch (s) {
        case child_state::online: return "online";
        case child_state::degraded: return "degraded";
        case child_state::faulted: return "faulted";
    }
    return "?";
}

std::string_view to_string(fault_reason r) noexcept {
    switch (r) {
        case fault_reason::none: return "none";
        case fault_reason::io_error: return "io-error";
        case fault_reason::timeout: return "timeout";
        case fault_reason::no_space: return "no-space";
        case fault_reason::out_of_sync: return "out-of-sync";
        case fault_reason::by_client: return "by-client";
        case fault_reason::cannot_open: return "cannot-open";
        case fault_reason::rebuild_failed: return "rebuild-failed";
        case fault_reason::reserved_by_other: return "reserved-by-other";
    }
    return "?";
}

std::string_view to_string(rebuild_state s) noexcept {
    switch (s) {
        case rebuild_state::none: return "none";
        case rebuild_state::running: return "running";
        case rebuild_state::paused: return "paused";
        case rebuild_state::stopped: return "stopped";
        case rebuild_state::completed: return "completed";
        case rebuild_state::failed: return "failed";
    }
    return "?";
}

namespace {

storage_error nexus_error(storage_errc c, const std::string& name, const std::string& what) {
    return storage_error(c, fmt::format("nexus '{}': {}", name, what));
}

}  // namespace

nexus::nexus(std::string name, uuid id, std::uint32_t block_size, std::uint64_t block_count, nexus_options opts)
    : block_device(std::move(name), "nexus", id, block_size, block_count), _opts(std::move(opts)), _shards(shard_count()) {
    for (auto& s : _shards) {
        s.locked.reserve(_opts.rebuild_parallel * 2);
        s.unlock_waiters.reserve(64);
        s.writing.reserve(256);
        s.write_drain_waiters.reserve(_opts.rebuild_parallel * 2);
    }
}

nexus::~nexus() = default;

nexus::shard_state& nexus::local() noexcept { return _shards[this_shard_id()]; }

std::uint64_t nexus::segments() const noexcept {
    const std::uint64_t per = blocks_per_segment();
    return (block_count() + per - 1) / per;
}

nexus::child* nexus::find_child(const std::string& uri) {
    for (unsigned i = 0; i < max_children; ++i)
        if (_used[i] && _children[i].uri == uri) return &_children[i];
    return nullptr;
}

unsigned nexus::slot_of(const child* c) const noexcept { return static_cast<unsigned>(c - _children.data()); }

unsigned nexus::online_besides(unsigned slot) const noexcept {
    unsigned n = 0;
    for (unsigned s = 0; s < max_children; ++s)
        if (_used[s] && s != slot && _children[s].state == child_state::online) ++n;
    return n;
}

// Opens c.uri on this (the owner) shard: bdev:/// through the registry (the
// device is the registry's; the nexus owns a reserved_device over it when
// the registry has a reservation authority), anything else through its
// backend (owned by the nexus).
future<> nexus::open_child(child& c, device_registry* registry, const nexus_epoch& identity) {
    std::string err;
    auto parsed = parse_device_uri(c.uri, err);
    if (!parsed) throw storage_error(storage_errc::invalid_argument, err);
    if (parsed->scheme == "nvmf") {
        // Connected as this incarnation's host: its reservations and the
        // target's view of "who is this" follow the epoch, not the node.
        if (parsed->param("hostid")) {
            throw storage_error(storage_errc::invalid_argument,
                                parsed->error("hostid is set by the nexus (from its epoch), not in the child URI"));
        }
        parsed->params.emplace_back("hostid", uuid{identity.host_id()}.to_string());
    }
    if (parsed->scheme == "bdev") {
        if (!registry) {
            throw storage_error(storage_errc::invalid_argument,
                                parsed->error("bdev:/// children need a device registry"));
        }
        block_device* dev =
            co_await registry->find(parsed->path.substr(std::min<std::size_t>(1, parsed->path.size())));
        // Where hosts can reach the device too, the nexus takes part in its
        // reservation as this incarnation's host: fenced like a remote child.
        if (reservation_authority* a = registry->reservation_authority_of_devices()) {
            c.owned = std::make_unique<reserved_device>(*dev, *a, identity.host_id());
            c.dev = c.owned.get();
        } else {
            c.dev = dev;
        }
        co_return;
    }
    c.owned = co_await open_backend(*parsed);
    c.dev = c.owned.get();
}

future<std::unique_ptr<nexus>> nexus::create(std::string name, uuid id, std::vector<std::string> child_uris,
                                             nexus_options opts) {
    if (!opts.health) throw nexus_error(storage_errc::invalid_argument, name, "no child health store");
    if (opts.health_key.empty()) throw nexus_error(storage_errc::invalid_argument, name, "no health record key");
    if (child_uris.empty() || child_uris.size() > max_children) {
        throw nexus_error(storage_errc::invalid_argument, name,
                          fmt::format("{} children given (1 to {})", child_uris.size(), max_children));
    }
    for (const auto& uri : child_uris) {
        std::string err;
        auto parsed = parse_device_uri(uri, err);
        if (parsed && parsed->param("hostid")) {
            throw nexus_error(storage_errc::invalid_argument, name,
                              fmt::format("child {}: hostid is set by the nexus (from its epoch), not in the URI", uri));
        }
    }
    for (std::size_t i = 0; i < child_uris.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (child_uris[i] == child_uris[j]) {
                throw nexus_error(storage_errc::invalid_argument, name,
                                  fmt::format("child {} given twice", child_uris[i]));
            }
    if (opts.segment_bytes == 0 || (opts.segment_bytes & (opts.segment_bytes - 1)) != 0 ||
        opts.segment_bytes < 4096) {
        throw nexus_error(storage_errc::invalid_argument, name,
                          fmt::format("segment size {} is not a power of two of at least 4096", opts.segment_bytes));
    }
    opts.rebuild_parallel = std::clamp(opts.rebuild_parallel, 1u, 256u);

    // The health record first: it decides which children are in sync, and
    // its epoch + 1 is this incarnation's, whose host identifier the remote
    // children are connected with (nexus_epoch.hh).
    std::optional<nexus_health_record> record;
    try {
        record = co_await opts.health->load(opts.health_key);
    } catch (const std::exception& e) {
        throw nexus_error(storage_errc::unavailable, name,
                          fmt::format("reading health record {}: {}", opts.health_key, e.what()));
    }
    // Whether this incarnation may start over it (nexus_takeover.hh).
    check_new_incarnation(name, opts.health_key, opts.owner, opts.takeover, record);
    const std::uint64_t previous_epoch = record ? record->epoch : 0;
    if (previous_epoch >= health_record_max_epoch) {
        throw nexus_error(storage_errc::unavailable, name,
                          fmt::format("health record {} is at the last epoch ({})", opts.health_key, previous_epoch));
    }
    const nexus_epoch identity{id, previous_epoch + 1};

    // Then every child. One that cannot be opened (its node is down)
    // joins as faulted (cannot-open) and is opened again by online_child();
    // if none opens, the creation fails (on failure, close what was opened).
    std::vector<child> kids(child_uris.size());
    std::exception_ptr error;
    std::string open_errors;
    const child* first = nullptr;
    for (std::size_t i = 0; i < kids.size(); ++i) {
        kids[i].uri = child_uris[i];
        try {
            co_await open_child(kids[i], opts.registry, identity);
            if (!first) first = &kids[i];
        } catch (const std::exception& e) {
            kids[i].dev = nullptr;
            kids[i].owned.reset();
            open_errors += fmt::format("{}child {}: {}", open_errors.empty() ? "" : "; ", child_uris[i], e.what());
        }
    }
    if (!first) {
        error = std::make_exception_ptr(nexus_error(storage_errc::unavailable, name, open_errors));
    } else if (!open_errors.empty()) {
        log::warn("nexus {}: {} (faulted cannot-open; child online opens it again)", name, open_errors);
    }
    std::uint32_t bs = 0;
    std::uint64_t blocks = ~std::uint64_t{0};
    if (!error) {
        bs = first->dev->block_size();
        for (auto& k : kids) {
            if (!k.dev) continue;
            if (k.dev->block_size() != bs) {
                error = std::make_exception_ptr(nexus_error(
                    storage_errc::invalid_argument, name,
                    fmt::format("child {} has {}-byte blocks, child {} has {}", k.uri, k.dev->block_size(),
                                first->uri, bs)));
                break;
            }
            blocks = std::min(blocks, k.dev->block_count());
            k.id = k.dev->id();
        }
        if (!error && opts.segment_bytes % bs != 0) {
            error = std::make_exception_ptr(nexus_error(storage_errc::invalid_argument, name,
                                                        "the segment size is not a multiple of the block size"));
        }
    }
    if (error) {
        for (auto& k : kids)
            if (k.owned) co_await k.owned->close();
        std::rethrow_exception(error);
    }
    std::unique_ptr<nexus> n(new nexus(name, id, bs, blocks, std::move(opts)));
    // This incarnation's epoch: the record's next. Written with the first
    // record below (a compare-and-put): of two nexuses created over one
    // record at once, one fails there.
    n->_epoch = identity.epoch;
    if (record && (n->_opts.takeover || !record->owner.empty())) {
        log::info("nexus {}: {} from epoch {} (owner '{}', {} shutdown)", name,
                  n->_opts.takeover ? "takeover" : "new incarnation", previous_epoch, record->owner,
                  record->clean_shutdown ? "clean" : "unclean");
    }
    for (std::size_t i = 0; i < kids.size(); ++i) {
        child& c = n->_children[i];
        c = std::move(kids[i]);
        n->_used[i] = true;
        c.generation = 1;
        if (!c.dev) {
            c.state = child_state::faulted;
            c.reason = fault_reason::cannot_open;
        } else if (record) {
            const std::string uid = c.id.to_string();
            auto it = std::find_if(record->children.begin(), record->children.end(),
                                   [&](const auto& e) { return e.first == uid; });
            const bool healthy = it != record->children.end() && it->second;
            if (!healthy) {
                c.state = child_state::faulted;
                c.reason = fault_reason::out_of_sync;
            }
            // The volume's snapshot history: a child the record says lacks
            // some, or one it does not list at all while there are some.
            c.snapshot_history_missing =
                std::count(record->history_missing.begin(), record->history_missing.end(), uid) > 0 ||
                (record->snapshots > 0 && it == record->children.end());
        }
    }
    if (record) n->_snapshots_taken = record->snapshots;
    if (record) {
        const auto in_sync = std::count_if(n->_children.begin(), n->_children.end(),
                                           [](const child& c) { return c.dev && c.state == child_state::online; });
        log::info("nexus {}: health record {} found ({} shutdown): {} of {} children in sync", name,
                  n->_opts.health_key, record->clean_shutdown ? "clean" : "unclean", in_sync, kids.size());
    }
    n->update_state();
    if (n->_state == nexus_state::faulted) {
        for (auto& c : n->_children)
            if (c.owned) co_await c.owned->close();
        throw nexus_error(storage_errc::unavailable, name,
                          fmt::format("no child is in sync according to health record {}", n->_opts.health_key));
    }
    co_await n->publish();
    // Not cleanly shut down from here on, until shutdown() says otherwise.
    if (!co_await n->write_health(false)) {
        for (auto& c : n->_children)
            if (c.owned) co_await c.owned->close();
        throw nexus_error(storage_errc::unavailable, name,
                          fmt::format("cannot write health record {}", n->_opts.health_key));
    }
    // The children's reservations, before any I/O is served (the epoch is
    // ours now: the record above says so). A child not claimed is faulted;
    // the record says so once it is known that this incarnation serves.
    const nexus_health_record written = n->health_record(false);
    std::string whys;
    const bool claimed = co_await n->claim_children(whys);
    if (!claimed || (n->health_record(false) != written && !co_await n->write_health(false))) {
        // The epoch is taken, so the older incarnation is fenced wherever a
        // claim preempted it, but this one cannot serve: leave the record
        // with the children as they were (this incarnation wrote nothing to
        // them), so that the caller can simply try again (the next epoch).
        if (n->_state != nexus_state::fenced) {
            try {
                co_await n->_opts.health->store(
                    n->_opts.health_key, record_after_failed_claim(record, n->_epoch, n->_opts.owner, written));
            } catch (const std::exception& e) {
                log::warn("nexus {}: restoring the children of health record {}: {}", name, n->_opts.health_key,
                          e.what());
            }
        }
        for (auto& c : n->_children)
            if (c.owned) co_await c.owned->close();
        throw nexus_error(storage_errc::unavailable, name,
                          fmt::format("epoch {} taken in health record {}, but no child in sync could be reserved for "
                                      "it ({}); it does not serve; the record keeps the children's health as it was: "
                                      "create (--takeover) again",
                                      n->_epoch, n->_opts.health_key, whys.empty() ? "the record moved on" : whys));
    }
    log::info("nexus {}: {} ({} x {} B, {} children, epoch {})", name, to_string(n->_state), blocks, bs, kids.size(),
              n->_epoch);
    // Children out of sync get rebuilt (full: their dirty logs are gone);
    // those that could not be opened wait for child online.
    for (unsigned i = 0; i < max_children; ++i) {
        if (n->_used[i] && n->_children[i].dev && n->_children[i].state == child_state::faulted &&
            n->_children[i].reason != fault_reason::reserved_by_other) {
            try {
                // Not claimed above (its claim failed for another reason
                // than a conflict): claimed now, or not rebuilt.
                if (n->_children[i].reason == fault_reason::cannot_open) co_await n->claim_child(n->_children[i]);
                co_await n->start_rebuild(i, false);
            } catch (const std::exception& e) {
                log::warn("nexus {}: child {} not rebuilt now: {}", name, n->_children[i].uri, e.what());
            }
        }
    }
    co_return n;
}

nexus_info nexus::info() const {
    nexus_info i;
    i.name = name();
    i.id = id();
    i.block_size = block_size();
    i.block_count = block_count();
    i.state = _state;
    i.epoch = _epoch;
    i.snapshots_taken = _snapshots_taken;
    for (unsigned s = 0; s < max_children; ++s) {
        if (!_used[s]) continue;
        const child& c = _children[s];
        i.children.push_back(child_info{c.uri, c.dev ? c.dev->name() : std::string(), c.id, c.state, c.reason,
                                        c.dev ? c.dev->block_count() : 0, c.snapshot_history_missing});
        if (auto p = rebuild_status(c.uri)) i.rebuilds.push_back(*p);
    }
    return i;
}

void nexus::update_state() {
    if (_state == nexus_state::shutting_down || _state == nexus_state::shutdown || _state == nexus_state::fenced) {
        return;
    }
    unsigned total = 0, online = 0;
    for (unsigned s = 0; s < max_children; ++s) {
        if (!_used[s]) continue;
        ++total;
        if (_children[s].state == child_state::online) ++online;
    }
    const nexus_state next = online == 0 ? nexus_state::faulted
                             : online == total ? nexus_state::online
                                               : nexus_state::degraded;
    if (next != _state) {
        log::info("nexus {}: {} -> {} ({} of {} children online)", name(), to_string(_state), to_string(next),
                  online, total);
        _state = next;
    }
}

future<> nexus::publish() {
    struct entry {
        block_device* dev;
        child_state state;
        std::uint32_t generation;
        bool log_dirty;
        bool unrecorded;
    };
    std::array<entry, max_children> view{};
    for (unsigned s = 0; s < max_children; ++s) {
        const child& c = _children[s];
        view[s] = _used[s] ? entry{c.dev, c.state, c.generation, c.state == child_state::faulted && c.dirty_complete,
                                   c.state == child_state::faulted && c.recording}
                           : entry{nullptr, child_state::faulted, 0, false, false};
    }
    const bool faulted =
        _state == nexus_state::faulted || _state == nexus_state::shutdown || _state == nexus_state::fenced;
    const bool fenced = _state == nexus_state::fenced;
    const std::uint64_t words = (segments() + 63) / 64;
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        co_await submit_to(shard, [this, view, faulted, fenced, words] {
            shard_state& st = local();
            st.faulted = faulted;
            st.fenced = fenced;
            for (unsigned s = 0; s < max_children; ++s) {
                auto& v = st.children[s];
                if (v.generation != view[s].generation) v.dirty.clear();  // another child now
                const bool newly_faulted = v.generation == view[s].generation && v.dev &&
                                           v.state != child_state::faulted &&
                                           view[s].state == child_state::faulted;
                v.dev = view[s].dev;
                v.state = view[s].state;
                v.generation = view[s].generation;
                v.log_dirty = view[s].log_dirty;
                v.unrecorded = view[s].unrecorded;
                if (v.log_dirty && v.dirty.size() != words) v.dirty.assign(words, 0);
                // Writes in flight at the fault may still land on the child
                // (or never): their segments are copied again by a partial
                // rebuild, however they complete (docs/nexus.md).
                if (newly_faulted && v.log_dirty) mark_in_flight(st.writing, v.dirty);
                if (v.state == child_state::online) v.dirty.clear();  // in sync: nothing to remember
            }
        });
    }
}

nexus_health_record nexus::health_record(bool clean) const {
    nexus_health_record r;
    r.epoch = _epoch;
    r.owner = _opts.owner;
    r.clean_shutdown = clean;
    for (unsigned s = 0; s < max_children; ++s) {
        if (!_used[s] || _children[s].id.is_nil()) continue;  // never opened: not known, so not healthy
        r.children.emplace_back(_children[s].id.to_string(),
                                _children[s].state == child_state::online || _children[s].last_in_sync);
        if (_children[s].snapshot_history_missing) r.history_missing.push_back(_children[s].id.to_string());
    }
    r.snapshots = _snapshots_taken;
    return r;
}

future<bool> nexus::write_health(bool clean) {
    if (_state == nexus_state::fenced) co_return false;
    for (unsigned attempt = 0;; ++attempt) {
        std::exception_ptr error;
        std::string conflict;
        try {
            co_await _opts.health->store(_opts.health_key, health_record(clean));
            co_return true;
        } catch (const health_record_conflict& e) {
            conflict = e.what();
        } catch (const std::exception& e) {
            log::warn("nexus {}: writing health record {} failed (attempt {} of {}): {}", name(), _opts.health_key,
                      attempt + 1, _opts.health_retries + 1, e.what());
        }
        if (!conflict.empty()) {
            // Retrying cannot help: the record belongs to a newer epoch.
            co_await fence(conflict);
            co_return false;
        }
        if (attempt >= _opts.health_retries) co_return false;
        co_await sleep(_opts.health_retry_delay);
    }
}

future<bool> nexus::claim_children(std::string& whys) {
    for (unsigned s = 0; s < max_children; ++s) {
        child& c = _children[s];
        if (!_used[s] || !c.dev) continue;
        std::string why;
        io_status st = io_status::success;
        for (unsigned attempt = 1;; ++attempt) {
            why.clear();
            st = co_await claim_reservation(*c.dev, identity_of(c), why);
            if (ok(st) || st == io_status::invalid_opcode || st == io_status::reservation_conflict ||
                attempt >= std::max(1u, _opts.claim_attempts)) {
                break;
            }
            log::warn("nexus {}: child {} not reserved for epoch {} (attempt {}): {}; trying again", name(), c.uri,
                      _epoch, attempt, why);
            co_await sleep(_opts.claim_retry_delay);
        }
        if (ok(st) || st == io_status::invalid_opcode) continue;  // invalid opcode: no reservations there
        log::warn("nexus {}: child {} not reserved for epoch {}: {}", name(), c.uri, _epoch, why);
        whys += fmt::format("{}child {}: {}", whys.empty() ? "" : "; ", c.uri, why);
        c.state = child_state::faulted;
        c.reason = st == io_status::reservation_conflict ? fault_reason::reserved_by_other : fault_reason::cannot_open;
    }
    update_state();
    co_await publish();
    co_return _state != nexus_state::faulted && _state != nexus_state::fenced;
}

future<> nexus::claim_child(child& c) {
    std::string why;
    const io_status st = co_await claim_reservation(*c.dev, identity_of(c), why);
    if (ok(st) || st == io_status::invalid_opcode) co_return;
    c.reason = st == io_status::reservation_conflict ? fault_reason::reserved_by_other : c.reason;
    throw nexus_error(st == io_status::reservation_conflict ? storage_errc::busy : storage_errc::unavailable, name(),
                      fmt::format("child {} not reserved for epoch {} generation {}: {}{}", c.uri, _epoch,
                                  c.connection, why,
                                  c.connection > 0 ? " (commands of its earlier connection may still run at the "
                                                     "target: try again once they have finished)"
                                                   : ""));
}

future<> nexus::fence(std::string why) {
    if (_state == nexus_state::fenced) co_return;
    log::error("nexus {}: fenced at epoch {}: another incarnation has taken over ({}); acknowledging nothing more",
               name(), _epoch, why);
    _state = nexus_state::fenced;
    _path_gone.store(true, std::memory_order_relaxed);
    co_await publish();
}

// Owner shard: retires child `slot`. The record is written before the
// waiters (the failed I/O) go on; concurrent failures of the same child wait
// for the same write.
future<> nexus::fault(unsigned slot, fault_reason reason, bool log_dirty) {
    child& c = _children[slot];
    if (c.state == child_state::faulted) {
        if (c.recording) {
            c.recorded_waiters.emplace_back();
            co_await c.recorded_waiters.back().get_future();
        }
        co_return;
    }
    if (reason == fault_reason::reserved_by_other) {
        // Refused by the child's reservation: a newer incarnation fenced us.
        co_await fence(fmt::format("child {} answered reservation conflict", c.uri));
        co_return;
    }
    log::warn("nexus {}: child {} faulted ({})", name(), c.uri, to_string(reason));
    if (c.rebuild) co_await rebuild_stop(c.uri);
    // The last child in sync stays recorded healthy: the nexus faults with
    // it and acknowledges nothing more, so it still holds every write that
    // was acknowledged, and a nexus created again over the record opens it.
    const unsigned online_others = online_besides(slot);
    c.last_in_sync = c.state == child_state::online && online_others == 0;
    c.state = child_state::faulted;
    c.reason = reason;
    c.dirty_complete = log_dirty;
    c.recording = true;
    update_state();
    // Every shard stops sending it I/O (and starts logging writes for it).
    co_await publish();
    const bool recorded = co_await write_health(false);
    if (!recorded && _state != nexus_state::fenced) {
        log::error("nexus {}: the health store cannot record child {} as faulted: faulting the nexus rather than "
                   "acknowledging writes it would not know about",
                   name(), c.uri);
        _state = nexus_state::faulted;
        co_await publish();
    }
    c.recording = false;
    for (auto& p : c.recorded_waiters) p.set_value();
    c.recorded_waiters.clear();
    // Writes that skip it no longer need to wait for the record.
    co_await publish();
}

future<> nexus::child_failed(unsigned slot, std::uint32_t generation, fault_reason reason, std::uint64_t lba,
                             std::uint64_t blocks) {
    // Mark the failed range dirty on this shard first: the write did not
    // reach the child.
    {
        auto& v = local().children[slot];
        if (v.generation == generation && blocks > 0) {
            const std::uint64_t words = (segments() + 63) / 64;
            if (v.dirty.size() != words) v.dirty.assign(words, 0);  // control path: the first failure
            for (std::uint64_t seg = lba / blocks_per_segment(); seg <= (lba + blocks - 1) / blocks_per_segment();
                 ++seg)
                v.dirty[seg / 64] |= std::uint64_t{1} << (seg % 64);
        }
    }
    co_await submit_to(owner_shard(), [this, slot, generation, reason]() -> future<> {
        if (!_used[slot] || _children[slot].generation != generation) return make_ready_future<>();
        return fault(slot, reason, true);
    });
}

future<> nexus::pause() {
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        co_await submit_to(shard, [this]() -> future<> {
            shard_state& st = local();
            ++st.pauses;
            if (st.in_flight > 0) {
                st.drain_waiters.emplace_back();
                co_await st.drain_waiters.back().get_future();
            }
        });
    }
}

future<> nexus::resume() { return resume_shards(shard_count()); }

future<> nexus::resume_shards(unsigned count) {
    for (unsigned shard = 0; shard < count; ++shard) {
        co_await submit_to(shard, [this] {
            shard_state& st = local();
            if (st.pauses == 0) {
                log::error("nexus {}: resumed on shard {} more often than paused", name(), this_shard_id());
                return;
            }
            if (--st.pauses > 0) return;  // another pause still holds I/O
            auto waiters = std::move(st.resume_waiters);
            st.resume_waiters.clear();
            for (auto& p : waiters) p.set_value();
        });
    }
}

future<> nexus::add_child(std::string uri, bool rebuild) {
    if (_state == nexus_state::shutting_down || _state == nexus_state::shutdown) {
        throw nexus_error(storage_errc::unavailable, name(), "it is shut down");
    }
    if (find_child(uri)) throw nexus_error(storage_errc::already_exists, name(), fmt::format("child {} exists", uri));
    auto free = std::find(_used.begin(), _used.end(), false);
    if (free == _used.end()) {
        throw nexus_error(storage_errc::no_space, name(), fmt::format("already {} children", max_children));
    }
    const unsigned slot = static_cast<unsigned>(free - _used.begin());
    child c;
    c.uri = uri;
    c.connection = next_connection();  // never a generation an earlier child of the slot used
    try {
        co_await open_child(c, _opts.registry, identity_of(c));
    } catch (const std::exception& e) {
        throw nexus_error(storage_errc::unavailable, name(), fmt::format("child {}: {}", uri, e.what()));
    }
    auto refuse = [&](std::string why) -> future<> {
        if (c.owned) co_await c.owned->close();
        throw nexus_error(storage_errc::invalid_argument, name(), fmt::format("child {}: {}", uri, why));
    };
    if (c.dev->block_size() != block_size()) {
        co_await refuse(fmt::format("{}-byte blocks, the nexus has {}", c.dev->block_size(), block_size()));
    }
    if (c.dev->block_count() < block_count()) {
        co_await refuse(fmt::format("{} blocks, smaller than the nexus ({})", c.dev->block_count(), block_count()));
    }
    {
        std::string why;
        const io_status st = co_await claim_reservation(*c.dev, identity_of(c), why);
        if (!ok(st) && st != io_status::invalid_opcode) co_await refuse("not reserved for this incarnation: " + why);
    }
    c.id = c.dev->id();
    c.state = rebuild ? child_state::faulted : child_state::online;
    c.reason = rebuild ? fault_reason::out_of_sync : fault_reason::none;
    c.generation = _children[slot].generation + 1;
    c.snapshot_history_missing = _snapshots_taken > 0;  // the earlier nexus snapshots are not on it
    _children[slot] = std::move(c);
    _used[slot] = true;
    update_state();
    // The record knows the child (not healthy until rebuilt) before it gets I/O.
    co_await publish();
    if (!co_await write_health(false)) {
        log::error("nexus {}: could not record new child {}", name(), uri);
    }
    log::info("nexus {}: child {} added ({})", name(), uri, rebuild ? "to be rebuilt" : "in sync, online");
    if (rebuild) co_await start_rebuild(slot, false);
}

future<> nexus::remove_child(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw nexus_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    const unsigned slot = slot_of(c);
    const unsigned online_others = online_besides(slot);
    if (c->state == child_state::online && online_others == 0 && _state != nexus_state::shutdown) {
        throw nexus_error(storage_errc::busy, name(), fmt::format("child {} is the last one in sync", uri));
    }
    if (c->rebuild) co_await rebuild_stop(uri);
    // No I/O may still use it once it is gone from the views.
    co_await pause();
    _used[slot] = false;
    std::unique_ptr<block_device> owned = std::move(c->owned);
    c->dev = nullptr;
    c->state = child_state::faulted;
    update_state();
    co_await publish();
    co_await resume();
    if (!co_await write_health(false)) log::error("nexus {}: could not record the removal of {}", name(), uri);
    if (owned) co_await owned->close();
    log::info("nexus {}: child {} removed", name(), uri);
}

future<> nexus::offline_child(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw nexus_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    if (c->state == child_state::faulted) co_return;
    const unsigned online_others = online_besides(slot_of(c));
    if (c->state == child_state::online && online_others == 0) {
        throw nexus_error(storage_errc::busy, name(), fmt::format("child {} is the last one in sync", uri));
    }
    co_await fault(slot_of(c), fault_reason::by_client, true);
}

future<> nexus::fault_child(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw nexus_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    if (c->state == child_state::faulted) {
        c->dirty_complete = false;  // a later online copies everything
        co_await publish();
        co_return;
    }
    const unsigned online_others = online_besides(slot_of(c));
    if (c->state == child_state::online && online_others == 0) {
        throw nexus_error(storage_errc::busy, name(), fmt::format("child {} is the last one in sync", uri));
    }
    co_await fault(slot_of(c), fault_reason::by_client, false);
}

future<> nexus::online_child(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw nexus_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    if (_state == nexus_state::shutting_down || _state == nexus_state::shutdown) {
        throw nexus_error(storage_errc::unavailable, name(), "it is shut down");
    }
    if (c->state != child_state::faulted) co_return;  // online or already rebuilding
    if (!c->dev) {
        // Never opened (its node was down at creation): open it now.
        child fresh;
        fresh.uri = uri;
        fresh.connection = next_connection();
        try {
            co_await open_child(fresh, _opts.registry, identity_of(fresh));
        } catch (const std::exception& e) {
            throw nexus_error(storage_errc::unavailable, name(), fmt::format("child {}: {}", uri, e.what()));
        }
        std::string why;
        if (fresh.dev->block_size() != block_size()) {
            why = fmt::format("{}-byte blocks, the nexus has {}", fresh.dev->block_size(), block_size());
        } else if (fresh.dev->block_count() < block_count()) {
            why = fmt::format("{} blocks, smaller than the nexus ({})", fresh.dev->block_count(), block_count());
        }
        if (!why.empty()) {
            if (fresh.owned) co_await fresh.owned->close();
            throw nexus_error(storage_errc::invalid_argument, name(), fmt::format("child {}: {}", uri, why));
        }
        c = find_child(uri);  // the table may have changed while it opened
        if (!c || c->dev || c->state != child_state::faulted) {
            if (fresh.owned) co_await fresh.owned->close();
            throw nexus_error(storage_errc::busy, name(), fmt::format("child {} changed meanwhile; try again", uri));
        }
        c->owned = std::move(fresh.owned);
        c->dev = fresh.dev;
        c->connection = fresh.connection;
        c->id = c->dev->id();
        c->dirty_complete = false;
        ++c->generation;
    }
    // A remote child gets a new connection, and the old one's commands are
    // preempted and aborted at the target, before anything is copied to it.
    c = co_await fence_faulted_child(uri);
    co_await start_rebuild(slot_of(c), c->dirty_complete);
}

future<> nexus::shutdown() {
    if (_state == nexus_state::shutdown) co_return;
    const bool fenced = _state == nexus_state::fenced;
    _state = nexus_state::shutting_down;
    log::info("nexus {}: shutting down", name());
    for (unsigned s = 0; s < max_children; ++s)
        if (_used[s] && _children[s].rebuild) co_await rebuild_stop(_children[s].uri);
    co_await pause();
    // Flush every online child so that the clean record tells the truth.
    for (unsigned s = 0; s < max_children; ++s) {
        if (!_used[s] || _children[s].state != child_state::online) continue;
        if (io_channel* ch = _children[s].dev->channel()) {
            io_status st = co_await ch->flush();
            if (!ok(st)) log::warn("nexus {}: flush of child {} failed: {}", name(), _children[s].uri, to_string(st));
        }
    }
    // A fenced incarnation leaves the record to the one that took over.
    const bool recorded = !fenced && co_await write_health(true);
    _state = nexus_state::shutdown;
    co_await publish();
    co_await resume();  // waiting I/O now fails (faulted view)
    log::info("nexus {}: shut down{}", name(), recorded ? " (recorded clean)" : " (the record could not be written)");
}

future<> nexus::close_backend() {
    if (_state != nexus_state::shutdown) {
        for (unsigned s = 0; s < max_children; ++s)
            if (_used[s] && _children[s].rebuild) co_await rebuild_stop(_children[s].uri);
        co_await rebuilds_idle();
    }
    for (unsigned s = 0; s < max_children; ++s) {
        if (_children[s].owned) co_await _children[s].owned->close();
        _children[s].owned.reset();
        _children[s].dev = nullptr;
    }
}

}  // namespace ioe
