// Snapshots and clones of a pool's volumes (pool.hh; the format and the
// reasons are in docs/pool-format.md, "Version 2"), and the in-place upgrade
// of a version 1 pool on its first snapshot or clone.
//
// Each operation is one metadata update: a snapshot moves the replica's
// clusters to the new snapshot volume and makes it the replica's parent (a
// thick replica gets a fresh reserved set in the same update); a clone is a
// new thin volume whose parent is the snapshot; a restore drops the
// replica's own data (thin: frees its clusters; thick: empties their
// bitmaps) and makes an ancestor snapshot its parent. A crash finds the
// update whole or not at all.
#include <chrono>
#include <fmt/format.h>

#include "runtime/log.hh"
#include "storage/device_registry.hh"
#include "storage/pool.hh"

namespace ioe {

namespace pf = pool_format;

namespace {

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::uint64_t clusters_for(std::uint64_t bytes, std::uint32_t cs) noexcept { return (bytes + cs - 1) / cs; }

void check_volume_name(const std::string& name, const char* what) {
    if (name.empty() || name.size() > 127 || name.find('/') != std::string::npos) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("{} name \"{}\" must have 1 to 127 bytes and no '/'", what, name));
    }
}

}  // namespace

future<> pool::check_name_free(const std::string& name, const uuid& id) {
    for (const auto& m : _meta.replicas) {
        if (m.name == name || m.replica_uuid == id) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("pool \"{}\" already has a volume \"{}\" ({})", _geo.name, m.name,
                                            m.replica_uuid.to_string()));
        }
    }
    if (_meta.replicas.size() >= _geo.max_replicas) {
        throw storage_error(storage_errc::no_space,
                            fmt::format("pool \"{}\" holds {} volumes, its limit (snapshots and clones count)",
                                        _geo.name, _meta.replicas.size()));
    }
    if (!_registry) co_return;
    bool taken = false;
    try {
        co_await _registry->find(name);
        taken = true;
    } catch (const storage_error& e) {
        if (e.code != storage_errc::not_found) throw;
    }
    if (taken) throw storage_error(storage_errc::already_exists, fmt::format("a device named \"{}\" already exists", name));
}

future<> pool::upgrade_to_v2() {
    if (_meta.version >= 2) co_return;
    const std::uint64_t need = pf::metadata_bytes_v2(_geo.max_replicas, _meta.clusters.size(), pf::max_intents);
    if (_meta.clusters.size() > pf::max_clusters_v2(_geo) || need > _geo.slot_bytes) {
        throw storage_error(storage_errc::no_space,
                            fmt::format("pool \"{}\": its metadata slot ({} bytes) is too small for format version 2 "
                                        "with {} clusters (needs {}); snapshots and clones need version 2",
                                        _geo.name, _geo.slot_bytes, _meta.clusters.size(), need));
    }
    // Superblock first: from here an older engine refuses the pool instead
    // of reading the version 1 slot that a version 2 slot will supersede.
    _geo.version = 2;
    try {
        co_await write_superblock();
    } catch (...) {
        _geo.version = 1;
        throw;
    }
    _meta.version = 2;
    log::info("pool \"{}\" upgraded to format version 2", _geo.name);
}

future<replica*> pool::snapshot_replica(std::string replica_name, snapshot_options opts) {
    auto guard = co_await _control.hold();
    check_usable();
    check_volume_name(opts.name, "snapshot");
    if (opts.txid.size() > 63) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("snapshot \"{}\": transaction id has {} bytes (at most 63)", opts.name,
                                        opts.txid.size()));
    }
    replica* r = find_replica(replica_name);
    pf::replica_meta* m = r ? meta_of(r->replica_id()) : nullptr;
    if (!r || !m) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("pool \"{}\" has no replica \"{}\"", _geo.name, replica_name));
    }
    if (m->snapshot) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is a read-only snapshot; clone it and snapshot the clone", replica_name));
    }
    if (opts.id.is_nil()) opts.id = uuid::random();
    co_await check_name_free(opts.name, opts.id);
    const std::uint64_t n = clusters_for(m->size_bytes, _geo.cluster_size);
    if (!m->thin && _free.size() < n) {
        throw storage_error(storage_errc::no_space,
                            fmt::format("pool \"{}\" has {} free clusters; a snapshot of thick replica \"{}\" keeps it "
                                        "thick and needs {}",
                                        _geo.name, _free.size(), replica_name, n));
    }
    co_await upgrade_to_v2();
    // The name is held in the node's registry from here until the snapshot
    // is registered (or refused): a snapshot of the same name in another
    // pool of this node, taken at the same time, is refused here instead
    // of after both pools took one (docs/nexus.md, Snapshots).
    if (_registry) co_await _registry->reserve(opts.name);

    std::exception_ptr error;
    try {
        co_await preflush();
        // No write of the replica may land in a cluster the snapshot takes.
        co_await r->pause();
    } catch (...) {
        error = std::current_exception();
    }
    if (error) {
        if (_registry) co_await _registry->release(opts.name);
        std::rethrow_exception(error);
    }
    replica* snap = nullptr;
    try {
        // Thin allocations of other volumes may have run during the pause.
        std::vector<std::uint32_t> fresh;
        if (!m->thin) {
            fresh = take_free_clusters(n);
            if (fresh.size() < n) {
                give_back(fresh);
                throw storage_error(storage_errc::no_space,
                                    fmt::format("pool \"{}\": thin allocations took the clusters thick replica \"{}\" "
                                                "needs to stay thick",
                                                _geo.name, replica_name));
            }
        }
        const std::uint32_t rid = r->replica_id();
        pf::replica_meta s;
        s.id = _meta.next_replica_id++;
        s.thin = m->thin;
        s.size_bytes = m->size_bytes;
        s.replica_uuid = opts.id;
        s.name = opts.name;
        s.parent_id = m->parent_id;
        s.snapshot = true;
        s.created_ns = now_ns();
        s.txid = opts.txid;
        for (std::size_t c = 0; c < _meta.clusters.size(); ++c) {
            if (_meta.clusters[c].owner == rid) _meta.clusters[c].owner = s.id;
        }
        for (std::uint64_t i = 0; i < fresh.size(); ++i) set_cluster(fresh[i], rid, static_cast<std::uint32_t>(i), 0);
        m->parent_id = s.id;
        _meta.replicas.push_back(s);
        co_await persist();

        // The replica's table becomes the snapshot's as it is; the replica
        // gets an empty one (thick: the fresh set, no granule present).
        auto old_table = r->current_table();
        auto snap_obj = std::make_unique<replica>(*this, s, _dev->block_size(), _geo.cluster_size, old_table);
        snap = snap_obj.get();
        _replicas.push_back(std::move(snap_obj));
        auto table = std::make_shared<cluster_table>(old_table->count, old_table);
        for (std::uint64_t i = 0; i < fresh.size(); ++i) {
            table->granules[i].store(0, std::memory_order_relaxed);
            table->entries[i].store(fresh[i], std::memory_order_relaxed);
        }
        co_await r->replace_table(std::move(table));
    } catch (...) {
        // Refused before any change, or the metadata update failed (then
        // the pool is read-only now: fail()).
        error = std::current_exception();
    }
    co_await r->resume();
    if (error) {
        if (_registry) co_await _registry->release(opts.name);
        std::rethrow_exception(error);
    }
    if (_registry) co_await _registry->add_reserved(snap);
    log::info("pool \"{}\": snapshot \"{}\" of \"{}\" (txid \"{}\")", _geo.name, opts.name, replica_name, opts.txid);
    co_return snap;
}

future<replica*> pool::clone_snapshot(std::string snapshot_name, std::string clone_name, uuid id) {
    auto guard = co_await _control.hold();
    check_usable();
    check_volume_name(clone_name, "clone");
    replica* s = find_replica(snapshot_name);
    pf::replica_meta* sm = s ? meta_of(s->replica_id()) : nullptr;
    if (!s || !sm) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("pool \"{}\" has no snapshot \"{}\"", _geo.name, snapshot_name));
    }
    if (!sm->snapshot) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is not a snapshot; snapshot it first and clone the snapshot",
                                        snapshot_name));
    }
    if (sm->discarded) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("snapshot \"{}\" is deleted (it waits for its last clone)", snapshot_name));
    }
    if (id.is_nil()) id = uuid::random();
    co_await check_name_free(clone_name, id);
    co_await upgrade_to_v2();
    pf::replica_meta c;
    c.id = _meta.next_replica_id++;
    c.thin = true;
    c.size_bytes = sm->size_bytes;
    c.replica_uuid = id;
    c.name = clone_name;
    c.parent_id = sm->id;
    c.created_ns = now_ns();
    _meta.replicas.push_back(c);
    co_await persist();
    replica* r = co_await add_replica_object(c);
    log::info("pool \"{}\": clone \"{}\" of snapshot \"{}\"", _geo.name, clone_name, snapshot_name);
    co_return r;
}

future<> pool::restore_replica(std::string replica_name, std::string snapshot_name) {
    auto guard = co_await _control.hold();
    check_usable();
    replica* r = find_replica(replica_name);
    pf::replica_meta* m = r ? meta_of(r->replica_id()) : nullptr;
    replica* s = find_replica(snapshot_name);
    pf::replica_meta* sm = s ? meta_of(s->replica_id()) : nullptr;
    if (!r || !m) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("pool \"{}\" has no replica \"{}\"", _geo.name, replica_name));
    }
    if (!s || !sm) {
        throw storage_error(storage_errc::not_found,
                            fmt::format("pool \"{}\" has no snapshot \"{}\"", _geo.name, snapshot_name));
    }
    if (m->snapshot) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is a read-only snapshot; only replicas and clones are restored",
                                        replica_name));
    }
    bool ancestor = false;
    for (std::uint32_t at = m->parent_id; at != 0 && !ancestor;) {
        ancestor = at == sm->id;
        const pf::replica_meta* up = meta_of(at);
        at = up ? up->parent_id : 0;
    }
    if (!ancestor) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is not a snapshot of \"{}\" (not in its parent chain)", snapshot_name,
                                        replica_name));
    }

    co_await r->pause();
    std::exception_ptr error;
    std::vector<std::uint32_t> freed;
    try {
        const std::uint32_t rid = r->replica_id();
        std::vector<std::pair<std::uint32_t, std::uint32_t>> kept;  // (logical, physical) of a thick replica
        for (std::size_t c = 0; c < _meta.clusters.size(); ++c) {
            if (_meta.clusters[c].owner != rid) continue;
            const auto physical = static_cast<std::uint32_t>(c);
            if (m->thin) {
                freed.push_back(physical);
                set_cluster(physical, pf::no_owner, 0, 0);
            } else {
                kept.emplace_back(_meta.clusters[c].logical, physical);
                _meta.granules[c] = 0;
                drop_subgranules(physical);
            }
        }
        m->parent_id = sm->id;
        co_await persist();
        auto old_table = r->current_table();
        auto table = std::make_shared<cluster_table>(old_table->count, s->current_table());
        for (const auto& [logical, physical] : kept) table->entries[logical].store(physical, std::memory_order_relaxed);
        co_await r->replace_table(std::move(table));
    } catch (...) {
        error = std::current_exception();
    }
    co_await r->resume();
    if (error) std::rethrow_exception(error);
    // The replica was drained and its new table does not name them: no I/O
    // can reach the freed clusters any more.
    give_back(freed);
    log::info("pool \"{}\": replica \"{}\" restored to snapshot \"{}\" ({} clusters freed)", _geo.name,
              replica_name, snapshot_name, freed.size());
}

}  // namespace ioe
