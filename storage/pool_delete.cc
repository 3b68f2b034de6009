// Destroying volumes (pool.hh): a volume nobody descends from is freed; a
// snapshot with a single child is merged into it; a snapshot with several
// children is marked discarded and goes once at most one is left. Nothing
// is left undeletable (docs/pool-format.md, "Operations and their crash
// windows").
//
// Merge of snapshot S into its child C, with C paused and S closed: where C
// has no cluster of its own, S's cluster changes owner (no copy); where both
// have one, the granules only S holds are copied into clear granules of C's
// cluster (unreachable until the update); if S had no parent, C's clusters
// are completed with zeros (a parentless volume's clusters are whole). Then
// one metadata update: C owns and sees all of it, C's parent is S's, S is
// gone. A crash before it finds S and C as they were.
#include <fmt/format.h>

#include "runtime/log.hh"
#include "storage/device_registry.hh"
#include "storage/pool.hh"

namespace ioe {

namespace pf = pool_format;

std::vector<std::uint32_t> pool::children_of(std::uint32_t id) const {
    std::vector<std::uint32_t> out;
    for (const auto& m : _meta.replicas) {
        if (m.parent_id == id) out.push_back(m.id);
    }
    return out;
}

future<> pool::destroy_replica(std::string name) {
    auto guard = co_await _control.hold();
    replica* r = find_replica(name);
    if (!r) {
        throw storage_error(storage_errc::not_found, fmt::format("pool \"{}\" has no replica \"{}\"", _geo.name, name));
    }
    co_await remove_volume(r->replica_id());
}

future<> pool::remove_volume(std::uint32_t id) {
    for (;;) {
        pf::replica_meta* m = meta_of(id);
        if (!m) co_return;
        const std::uint32_t parent = m->parent_id;
        const auto kids = children_of(id);
        if (kids.empty()) {
            co_await free_volume(id);
        } else if (kids.size() == 1) {
            check_usable();
            co_await merge_into_child(id, kids[0]);
        } else {
            check_usable();
            if (!m->discarded) {
                m->discarded = true;
                co_await persist();
                log::info("pool \"{}\": snapshot \"{}\" discarded; it goes when at most one of its {} children is left",
                          _geo.name, m->name, kids.size());
            }
            co_return;
        }
        // A discarded parent may now go too.
        pf::replica_meta* pm = parent ? meta_of(parent) : nullptr;
        if (!pm || !pm->discarded || children_of(parent).size() > 1) co_return;
        id = parent;
    }
}

future<> pool::free_volume(std::uint32_t id) {
    replica* r = replica_by_id(id);
    if (!r) co_return;
    const std::string name = r->name();
    co_await r->close();  // waits for I/O on every shard
    if (_registry) {
        try {
            co_await _registry->remove(name);
        } catch (const storage_error&) {
        }
    }
    if (_background > 0) {
        _background_done.emplace();
        co_await _background_done->get_future();
        _background_done.reset();
    }
    std::vector<std::uint32_t> freed;
    for (std::size_t c = 0; c < _meta.clusters.size(); ++c) {
        if (_meta.clusters[c].owner == id) {
            set_cluster(static_cast<std::uint32_t>(c), pf::no_owner, 0, 0);
            freed.push_back(static_cast<std::uint32_t>(c));
        }
    }
    std::erase_if(_meta.replicas, [id](const pf::replica_meta& m) { return m.id == id; });
    std::erase_if(_replicas, [id](const std::unique_ptr<replica>& x) { return x->replica_id() == id; });
    co_await persist();
    give_back(freed);
    log::info("pool \"{}\": replica \"{}\" destroyed ({} clusters freed)", _geo.name, name, freed.size());
}

future<> pool::merge_into_child(std::uint32_t snapshot_id, std::uint32_t child_id) {
    replica* s = replica_by_id(snapshot_id);
    replica* c = replica_by_id(child_id);
    pf::replica_meta* sm = meta_of(snapshot_id);
    pf::replica_meta* cm = meta_of(child_id);
    if (!s || !c || !sm || !cm) throw storage_error(storage_errc::internal, "merge: volumes not found");
    const std::string sname = sm->name, cname = cm->name;
    const std::uint32_t new_parent = sm->parent_id;
    co_await c->pause();
    std::exception_ptr error;
    std::vector<std::uint32_t> freed;
    std::size_t moved = 0;
    try {
        // Merging works on whole granules: partly present ones of either
        // volume are completed first (recorded by the update below).
        co_await complete_subgranules(child_id);
        co_await complete_subgranules(snapshot_id);
        // The snapshot's readers are done before its clusters change hands.
        co_await s->close();
        if (_registry) {
            try {
                co_await _registry->remove(sname);
            } catch (const storage_error&) {
            }
        }
        auto ctable = c->current_table();
        std::vector<std::uint32_t> cphys(ctable->count, unallocated_cluster);
        for (std::size_t p = 0; p < _meta.clusters.size(); ++p) {
            if (_meta.clusters[p].owner == child_id) cphys[_meta.clusters[p].logical] = static_cast<std::uint32_t>(p);
        }
        // Data first, into granules the child does not read from its own clusters.
        std::vector<std::pair<std::uint32_t, std::uint64_t>> bits;  // (cluster, new bitmap)
        std::vector<std::pair<std::uint32_t, std::uint32_t>> moves;  // (cluster, logical) to the child
        for (std::size_t p = 0; p < _meta.clusters.size(); ++p) {
            if (_meta.clusters[p].owner != snapshot_id) continue;
            const std::uint32_t logical = _meta.clusters[p].logical;
            const auto phys = static_cast<std::uint32_t>(p);
            if (logical >= cphys.size()) {
                freed.push_back(phys);
            } else if (cphys[logical] == unallocated_cluster) {
                moves.emplace_back(phys, logical);
                cphys[logical] = phys;
            } else {
                const std::uint32_t pc = cphys[logical];
                const std::uint64_t need = _meta.granules[p] & ~_meta.granules[pc];
                if (need) co_await copy_granules(ctable, logical, pc, need);
                bits.emplace_back(pc, _meta.granules[pc] | _meta.granules[p]);
                freed.push_back(phys);
            }
        }
        std::vector<std::uint64_t> next_bits(_meta.clusters.size());
        for (std::size_t p = 0; p < _meta.clusters.size(); ++p) next_bits[p] = _meta.granules[p];
        for (auto [p, b] : bits) next_bits[p] = b;
        if (new_parent == 0) {
            // A parentless volume's clusters are whole: zeros where nothing was.
            auto none = std::make_shared<cluster_table>(0);
            for (std::uint32_t p : cphys) {
                if (p == unallocated_cluster || next_bits[p] == pf::all_granules) continue;
                co_await copy_granules(none, 0, p, ~next_bits[p]);
                next_bits[p] = pf::all_granules;
            }
        }
        // The one metadata update.
        for (auto [p, logical] : moves) _meta.clusters[p] = pf::alloc_entry{child_id, logical};
        for (std::uint32_t p : cphys) {
            if (p != unallocated_cluster) _meta.granules[p] = next_bits[p];
        }
        for (std::uint32_t p : freed) set_cluster(p, pf::no_owner, 0, 0);
        moved = moves.size();
        cm->parent_id = new_parent;
        std::erase_if(_meta.replicas, [snapshot_id](const pf::replica_meta& m) { return m.id == snapshot_id; });
        _data_before_commit = true;  // the copies above: flushed before the update
        co_await persist();
        std::shared_ptr<cluster_table> up;
        if (replica* pr = new_parent ? replica_by_id(new_parent) : nullptr) up = pr->current_table();
        auto table = std::make_shared<cluster_table>(ctable->count, std::move(up));
        for (std::size_t l = 0; l < cphys.size(); ++l) {
            if (cphys[l] == unallocated_cluster) continue;
            table->granules[l].store(_meta.granules[cphys[l]], std::memory_order_relaxed);
            table->entries[l].store(cphys[l], std::memory_order_relaxed);
        }
        co_await c->replace_table(std::move(table));
    } catch (const std::exception& e) {
        // Memory and disk may differ now (the snapshot is closed, copies
        // half done): refuse further changes; an import reads the truth.
        fail(fmt::format("merging snapshot \"{}\" into \"{}\" failed: {}", sname, cname, e.what()));
        error = std::current_exception();
    }
    co_await c->resume();
    if (error) std::rethrow_exception(error);
    std::erase_if(_replicas, [snapshot_id](const std::unique_ptr<replica>& x) { return x->replica_id() == snapshot_id; });
    give_back(freed);
    log::info("pool \"{}\": snapshot \"{}\" merged into \"{}\" ({} clusters moved, {} freed)", _geo.name, sname, cname,
              moved, freed.size());
}

}  // namespace ioe
