// Pool operations: create, import, export, destroy, grow, and replica
// create/resize/list (see pool.hh; metadata I/O is in pool_metadata.cc, the
// allocator in pool_alloc.cc, snapshots and clones in pool_snapshot.cc,
// copy-on-write in pool_cow.cc, volume destroy in pool_delete.cc).
#include "storage/pool.hh"

#include <algorithm>
#include <fmt/format.h>

#include "runtime/log.hh"
#include "storage/device_registry.hh"

namespace ioe {

namespace pf = pool_format;

namespace {

void check_name(const std::string& name, std::size_t max, const char* what) {
    if (name.empty() || name.size() > max) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("{} name \"{}\" must have 1 to {} bytes", what, name, max));
    }
    if (name.find('/') != std::string::npos) {
        throw storage_error(storage_errc::invalid_argument, fmt::format("{} name \"{}\" contains '/'", what, name));
    }
}

std::uint64_t clusters_for(std::uint64_t bytes, std::uint32_t cs) noexcept { return (bytes + cs - 1) / cs; }

}  // namespace

pool::pool(block_device* dev, pf::pool_geometry geo, pf::metadata_state meta, device_registry* registry)
    : actor("pool:" + geo.name), _dev(dev), _registry(registry), _geo(std::move(geo)), _meta(std::move(meta)) {
    for (std::size_t c = _meta.clusters.size(); c-- > 0;) {
        if (_meta.clusters[c].owner == pf::no_owner) _free.push_back(static_cast<std::uint32_t>(c));
    }
    if (_meta.granules.size() != _meta.clusters.size()) {
        _meta.granules.resize(_meta.clusters.size());
        for (std::size_t c = 0; c < _meta.clusters.size(); ++c) {
            _meta.granules[c] = _meta.clusters[c].owner == pf::no_owner ? 0 : pf::all_granules;
        }
    }
}

void pool::set_cluster(std::uint32_t c, std::uint32_t owner, std::uint32_t logical, std::uint64_t granules) noexcept {
    _meta.clusters[c] = pf::alloc_entry{owner, logical};
    _meta.granules[c] = owner == pf::no_owner ? 0 : granules;
    if (owner == pf::no_owner || granules == pf::all_granules) {
        drop_subgranules(c);
    } else if (pf::subgranule_set* sg = subgranules_of(c)) {
        // Whole granules need no subgranule bits.
        for (unsigned g = 0; g < pf::granules_per_cluster; ++g) {
            if (granules >> g & 1) sg->bits[g / 4] &= ~(std::uint64_t(0xffff) << (g % 4 * 16));
        }
        if (sg->empty()) drop_subgranules(c);
    }
}

pool::~pool() = default;

// ---- create / import ----------------------------------------------------------

future<std::unique_ptr<pool>> pool::create(block_device* dev, pool_create_options opts, device_registry* registry) {
    check_name(opts.name, 63, "pool");
    if (dev->size_bytes() < 2 * pf::page_bytes) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("device \"{}\" ({} bytes) is too small for a pool", dev->name(), dev->size_bytes()));
    }
    auto pages = co_await read_bytes(dev, 0, 2 * pf::page_bytes);
    pf::pool_geometry existing;
    std::string why;
    auto found = pf::choose_superblock(std::span(pages).first(pf::page_bytes), std::span(pages).subspan(pf::page_bytes),
                                       existing, why);
    if (found != pf::decode_result::no_magic && !opts.overwrite) {
        if (found == pf::decode_result::ok) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("device \"{}\" already holds pool \"{}\" ({}); create with overwrite to "
                                            "replace it, or import it",
                                            dev->name(), existing.name, existing.pool_uuid.to_string()));
        }
        throw storage_error(storage_errc::already_exists,
                            fmt::format("device \"{}\" holds a pool superblock that cannot be used ({}); create with "
                                        "overwrite to replace it",
                                        dev->name(), why));
    }
    auto geo = pf::plan(dev->size_bytes(), dev->block_size(), opts.cluster_size, why);
    if (!geo) throw storage_error(storage_errc::invalid_argument, fmt::format("pool \"{}\": {}", opts.name, why));
    geo->name = opts.name;
    geo->pool_uuid = opts.id.is_nil() ? uuid::random() : opts.id;
    pf::metadata_state meta;
    meta.sequence = 1;
    meta.next_replica_id = 1;
    meta.clusters.assign(geo->cluster_count, pf::alloc_entry{pf::no_owner, 0});
    meta.granules.assign(geo->cluster_count, 0);

    // Metadata first (slot 0 cleared, slot 1 = sequence 1), superblocks last:
    // a crash before the superblocks leaves no pool.
    std::vector<std::byte> zero(pf::page_bytes);
    co_await write_bytes(dev, pf::metadata_offset, zero);
    co_await write_bytes(dev, pf::metadata_offset + geo->slot_bytes, pf::encode_metadata(*geo, meta));
    co_await flush(dev);
    co_await write_bytes(dev, pf::superblock_offset[1], pf::encode_superblock(*geo, 1));
    co_await write_bytes(dev, pf::superblock_offset[0], pf::encode_superblock(*geo, 2));
    co_await flush(dev);
    geo->sequence = 2;
    log::info("pool \"{}\" created on \"{}\": {} clusters of {} MiB", geo->name, dev->name(), geo->cluster_count,
              geo->cluster_size >> 20);
    co_return std::unique_ptr<pool>(new pool(dev, std::move(*geo), std::move(meta), registry));
}

future<std::unique_ptr<pool>> pool::import(block_device* dev, device_registry* registry) {
    if (dev->size_bytes() < 2 * pf::page_bytes) {
        throw storage_error(storage_errc::not_found, fmt::format("device \"{}\" holds no pool (too small)", dev->name()));
    }
    auto pages = co_await read_bytes(dev, 0, 2 * pf::page_bytes);
    pf::pool_geometry geo;
    std::string why;
    switch (pf::choose_superblock(std::span(pages).first(pf::page_bytes), std::span(pages).subspan(pf::page_bytes), geo,
                                  why)) {
        case pf::decode_result::ok: break;
        case pf::decode_result::no_magic:
            throw storage_error(storage_errc::not_found, fmt::format("device \"{}\" holds no pool", dev->name()));
        case pf::decode_result::newer_version:
            throw storage_error(storage_errc::invalid_argument, fmt::format("pool on device \"{}\": {}", dev->name(), why));
        case pf::decode_result::bad_checksum:
        case pf::decode_result::corrupt:
            throw storage_error(storage_errc::io_error,
                                fmt::format("pool on device \"{}\" is damaged: {}", dev->name(), why));
    }
    if (geo.block_size != dev->block_size()) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("pool \"{}\" was created with {}-byte blocks; device \"{}\" now has {}",
                                        geo.name, geo.block_size, dev->name(), dev->block_size()));
    }
    if (geo.data_offset > dev->size_bytes()) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("pool \"{}\": device \"{}\" is smaller than the pool's metadata", geo.name,
                                        dev->name()));
    }
    auto slots = co_await read_bytes(dev, pf::metadata_offset, 2 * geo.slot_bytes);
    pf::metadata_state meta;
    switch (pf::choose_metadata(std::span(slots).first(geo.slot_bytes), std::span(slots).subspan(geo.slot_bytes), geo,
                                meta, why)) {
        case pf::decode_result::ok: break;
        case pf::decode_result::newer_version:
            throw storage_error(storage_errc::invalid_argument, fmt::format("pool \"{}\": {}", geo.name, why));
        default:
            throw storage_error(storage_errc::io_error, fmt::format("pool \"{}\": metadata is damaged: {}", geo.name, why));
    }
    // A grow interrupted after its metadata update: the slot's count is the truth.
    const std::uint64_t needed = geo.data_offset + meta.clusters.size() * std::uint64_t(geo.cluster_size);
    if (needed > dev->size_bytes()) {
        throw storage_error(storage_errc::io_error,
                            fmt::format("pool \"{}\" needs {} bytes; device \"{}\" has {}", geo.name, needed,
                                        dev->name(), dev->size_bytes()));
    }
    geo.cluster_count = meta.clusters.size();
    geo.device_bytes = std::max(geo.device_bytes, needed);
    const bool was_exported = geo.state == pf::state_exported;
    geo.state = pf::state_imported;
    std::unique_ptr<pool> p(new pool(dev, std::move(geo), std::move(meta), registry));
    p->_was_exported = was_exported;
    co_await p->attach_replicas();
    co_await p->write_superblock();
    log::info("pool \"{}\" imported from \"{}\" ({} replicas{})", p->_geo.name, dev->name(), p->_replicas.size(),
              was_exported ? "" : ", not exported cleanly before");
    co_return p;
}

future<> pool::attach_replicas() {
    // Parents before their children (the importer refused cycles).
    std::vector<const pf::replica_meta*> left;
    for (const auto& m : _meta.replicas) left.push_back(&m);
    while (!left.empty()) {
        std::vector<const pf::replica_meta*> later;
        for (const pf::replica_meta* m : left) {
            if (m->parent_id != 0 && !replica_by_id(m->parent_id)) later.push_back(m);
            else co_await add_replica_object(*m);
        }
        if (later.size() == left.size()) {
            throw storage_error(storage_errc::internal, fmt::format("pool \"{}\": volume parents do not resolve", _geo.name));
        }
        left = std::move(later);
    }
}

future<replica*> pool::add_replica_object(const pf::replica_meta& meta) {
    std::shared_ptr<cluster_table> parent;
    if (meta.parent_id != 0) {
        replica* pr = replica_by_id(meta.parent_id);
        if (!pr) {
            throw storage_error(storage_errc::internal,
                                fmt::format("volume \"{}\": parent id {} is not attached", meta.name, meta.parent_id));
        }
        parent = pr->current_table();
    }
    auto table = std::make_shared<cluster_table>(clusters_for(meta.size_bytes, _geo.cluster_size), std::move(parent));
    auto r = std::make_unique<replica>(*this, meta, _dev->block_size(), _geo.cluster_size, std::move(table));
    for (std::size_t c = 0; c < _meta.clusters.size(); ++c) {
        const auto& e = _meta.clusters[c];
        if (e.owner != meta.id) continue;
        if (const pf::subgranule_set* sg = subgranules_of(static_cast<std::uint32_t>(c))) {
            r->publish_subgranules(e.logical, static_cast<std::uint32_t>(c), _meta.granules[c], sg->bits);
        } else {
            r->publish(e.logical, static_cast<std::uint32_t>(c), _meta.granules[c]);
        }
    }
    replica* raw = r.get();
    _replicas.push_back(std::move(r));
    if (_registry) co_await _registry->add(raw);
    co_return raw;
}

// ---- export / destroy / grow -------------------------------------------------

future<> pool::close_replicas() {
    if (_background > 0) {
        _background_done.emplace();
        co_await _background_done->get_future();
        _background_done.reset();
    }
    for (auto& r : _replicas) {
        co_await r->close();
        if (_registry) {
            try {
                co_await _registry->remove(r->name());
            } catch (const storage_error&) {
            }
        }
    }
    _replicas.clear();
    if (_committing) {
        _durable_waiters.push_back(durable_waiter{_changes, promise<>()});
        co_await _durable_waiters.back().done.get_future();
    }
}

future<> pool::export_pool() {
    auto guard = co_await _control.hold();
    co_await close_replicas();
    if (!_failed) {
        _geo.state = pf::state_exported;
        co_await write_superblock();
    }
    co_await actor::close();
    log::info("pool \"{}\" exported", _geo.name);
}

future<> pool::destroy() {
    auto guard = co_await _control.hold();
    co_await close_replicas();
    std::vector<std::byte> zero(2 * pf::page_bytes);
    co_await write_bytes(_dev, 0, zero);
    co_await write_bytes(_dev, pf::metadata_offset, std::span(zero).first(pf::page_bytes));
    co_await write_bytes(_dev, pf::metadata_offset + _geo.slot_bytes, std::span(zero).first(pf::page_bytes));
    co_await flush(_dev);
    co_await actor::close();
    log::info("pool \"{}\" destroyed", _geo.name);
}

future<> pool::grow() {
    auto guard = co_await _control.hold();
    check_usable();
    co_await _dev->rescan();
    std::uint64_t fits = pf::clusters_fitting(_geo, _dev->size_bytes());
    const std::uint64_t old = _meta.clusters.size();
    // The subgranule records (and those being reserved) keep their room.
    const std::uint64_t records = _meta.subgranules.size() + _subgranule_reserved;
    while (fits > old && pf::subgranule_capacity(_geo, fits) < records) --fits;
    if (fits <= old) co_return;  // nothing gained (or capped at max_clusters)
    _meta.clusters.resize(fits, pf::alloc_entry{pf::no_owner, 0});
    _meta.granules.resize(fits, 0);
    co_await persist();
    _geo.cluster_count = fits;
    _geo.device_bytes = _dev->size_bytes();
    co_await write_superblock();
    std::vector<std::uint32_t> added;
    for (std::uint64_t c = old; c < fits; ++c) added.push_back(static_cast<std::uint32_t>(c));
    give_back(added);
    log::info("pool \"{}\" grew from {} to {} clusters", _geo.name, old, fits);
}

pool_info pool::info() const {
    pool_info i;
    i.name = _geo.name;
    i.id = _geo.pool_uuid;
    i.device = _dev->name();
    i.cluster_size = _geo.cluster_size;
    i.capacity_bytes = _meta.clusters.size() * std::uint64_t(_geo.cluster_size);
    for (const auto& e : _meta.clusters)
        if (e.owner != pf::no_owner) i.used_bytes += _geo.cluster_size;
    for (const auto& r : _meta.replicas) i.committed_bytes += r.size_bytes;
    i.replica_count = _meta.replicas.size();
    i.was_exported = _was_exported;
    i.format_version = _meta.version;
    return i;
}

// ---- replicas -------------------------------------------------------------------

replica* pool::find_replica(const std::string& name) const noexcept {
    for (const auto& r : _replicas)
        if (r->name() == name) return r.get();
    return nullptr;
}

replica* pool::replica_by_id(std::uint32_t id) const noexcept {
    for (const auto& r : _replicas)
        if (r->replica_id() == id) return r.get();
    return nullptr;
}

pf::replica_meta* pool::meta_of(std::uint32_t id) noexcept {
    for (auto& m : _meta.replicas)
        if (m.id == id) return &m;
    return nullptr;
}

std::vector<replica_info> pool::list_replicas() const {
    std::vector<replica_info> out;
    for (const auto& m : _meta.replicas) {
        replica* r = replica_by_id(m.id);
        replica_info info;
        info.name = m.name;
        info.id = m.replica_uuid;
        info.pool = _geo.name;
        info.size_bytes = m.size_bytes;
        info.thin = m.thin;
        info.allocated_bytes = r ? r->allocated_clusters() * _geo.cluster_size : 0;
        info.referenced_bytes = r ? r->bytes_from_ancestors() : 0;
        const bool has_children = std::any_of(_meta.replicas.begin(), _meta.replicas.end(),
                                              [&m](const pf::replica_meta& x) { return x.parent_id == m.id; });
        info.freed_by_delete_bytes = has_children ? 0 : info.allocated_bytes;
        info.snapshot = m.snapshot;
        info.discarded = m.discarded;
        if (replica* p = m.parent_id ? replica_by_id(m.parent_id) : nullptr) info.parent = p->name();
        info.created_ns = m.created_ns;
        info.txid = m.txid;
        out.push_back(std::move(info));
    }
    return out;
}

future<replica*> pool::create_replica(std::string name, uuid id, std::uint64_t size_bytes, bool thin) {
    auto guard = co_await _control.hold();
    check_usable();
    check_name(name, 127, "replica");
    if (size_bytes == 0 || size_bytes % pf::page_bytes != 0) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("replica \"{}\": size {} is not a positive multiple of 4096", name, size_bytes));
    }
    if (id.is_nil()) id = uuid::random();
    if (_meta.replicas.size() >= _geo.max_replicas) {
        throw storage_error(storage_errc::no_space,
                            fmt::format("pool \"{}\" holds {} volumes, its limit (snapshots and clones count)",
                                        _geo.name, _meta.replicas.size()));
    }
    for (const auto& m : _meta.replicas) {
        if (m.name == name || m.replica_uuid == id) {
            throw storage_error(storage_errc::already_exists,
                                fmt::format("pool \"{}\" already has a replica \"{}\" ({})", _geo.name, m.name,
                                            m.replica_uuid.to_string()));
        }
    }
    bool name_taken = false;
    if (_registry) {
        try {
            co_await _registry->find(name);
            name_taken = true;
        } catch (const storage_error& e) {
            if (e.code != storage_errc::not_found) throw;
        }
    }
    if (name_taken) {
        throw storage_error(storage_errc::already_exists, fmt::format("a device named \"{}\" already exists", name));
    }
    const std::uint64_t n = clusters_for(size_bytes, _geo.cluster_size);
    std::vector<std::uint32_t> reserved;
    if (!thin) {
        reserved = take_free_clusters(n);
        if (reserved.size() < n) {
            give_back(reserved);
            throw storage_error(storage_errc::no_space,
                                fmt::format("pool \"{}\" has {} free clusters of {} MiB; thick replica \"{}\" needs {}",
                                            _geo.name, _free.size(), _geo.cluster_size >> 20, name, n));
        }
        try {
            co_await zero_clusters(reserved);
        } catch (...) {
            give_back(reserved);
            throw;
        }
    }
    pf::replica_meta meta;
    meta.id = _meta.next_replica_id++;
    meta.thin = thin;
    meta.size_bytes = size_bytes;
    meta.replica_uuid = id;
    meta.name = name;
    _meta.replicas.push_back(meta);
    for (std::uint64_t i = 0; i < reserved.size(); ++i) {
        set_cluster(reserved[i], meta.id, static_cast<std::uint32_t>(i), pf::all_granules);
    }
    co_await persist();
    replica* r = co_await add_replica_object(meta);
    log::info("pool \"{}\": replica \"{}\" created ({} bytes, {})", _geo.name, name, size_bytes, thin ? "thin" : "thick");
    co_return r;
}

future<> pool::resize_replica(std::string name, std::uint64_t size_bytes) {
    auto guard = co_await _control.hold();
    check_usable();
    replica* r = find_replica(name);
    pf::replica_meta* m = r ? meta_of(r->replica_id()) : nullptr;
    if (!r || !m) {
        throw storage_error(storage_errc::not_found, fmt::format("pool \"{}\" has no replica \"{}\"", _geo.name, name));
    }
    if (m->snapshot) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("\"{}\" is a read-only snapshot; it cannot be resized", name));
    }
    if (size_bytes < m->size_bytes) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("replica \"{}\": shrinking from {} to {} bytes is refused", name, m->size_bytes,
                                        size_bytes));
    }
    if (size_bytes % pf::page_bytes != 0) {
        throw storage_error(storage_errc::invalid_argument,
                            fmt::format("replica \"{}\": size {} is not a multiple of 4096", name, size_bytes));
    }
    if (size_bytes == m->size_bytes) co_return;
    const std::uint64_t old_n = clusters_for(m->size_bytes, _geo.cluster_size);
    const std::uint64_t new_n = clusters_for(size_bytes, _geo.cluster_size);
    std::vector<std::uint32_t> reserved;
    if (!r->thin() && new_n > old_n) {
        reserved = take_free_clusters(new_n - old_n);
        if (reserved.size() < new_n - old_n) {
            give_back(reserved);
            throw storage_error(storage_errc::no_space,
                                fmt::format("pool \"{}\" has {} free clusters; growing \"{}\" needs {}", _geo.name,
                                            _free.size(), name, new_n - old_n));
        }
        try {
            co_await zero_clusters(reserved);
        } catch (...) {
            give_back(reserved);
            throw;
        }
    }
    m->size_bytes = size_bytes;
    for (std::uint64_t i = 0; i < reserved.size(); ++i) {
        set_cluster(reserved[i], r->replica_id(), static_cast<std::uint32_t>(old_n + i), pf::all_granules);
    }
    co_await persist();
    std::vector<std::pair<std::uint64_t, std::uint32_t>> mapping;
    for (std::uint64_t i = 0; i < reserved.size(); ++i) mapping.emplace_back(old_n + i, reserved[i]);
    co_await r->grow(size_bytes, std::move(mapping));
    log::info("pool \"{}\": replica \"{}\" resized to {} bytes", _geo.name, name, size_bytes);
}

}  // namespace ioe
