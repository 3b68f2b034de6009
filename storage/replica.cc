// The replica's channels: LBA translation, cluster splitting, thin
// allocation on first write, zeros for holes, grace periods, reads through
// the parent chain per granule (per subgranule where some are partly
// present), granule copy-on-write and subgranule redirect, the pause gate
// (see replica.hh).
#include "storage/replica.hh"

#include <array>
#include <cstring>

#include "runtime/async_mutex.hh"
#include "runtime/reactor.hh"
#include "runtime/smp.hh"
#include "storage/pool.hh"

namespace ioe {
namespace {

constexpr std::size_t max_segments = 64;  // io_vecs per cluster piece

// A cursor over an io_vec array: takes the next `len` bytes as sub-vectors.
struct iov_cursor {
    io_vecs iov;
    std::size_t index = 0;
    std::size_t offset = 0;  // within iov[index]

    // Fills `out` with the next `len` bytes; returns the count, or 0 when it
    // would need more than max_segments pieces.
    std::size_t take(std::uint64_t len, std::array<io_vec, max_segments>& out) noexcept {
        std::size_t n = 0;
        while (len > 0 && index < iov.size()) {
            if (n == max_segments) return 0;
            const io_vec& v = iov[index];
            std::uint64_t avail = v.len - offset;
            std::uint64_t piece = std::min<std::uint64_t>(avail, len);
            out[n++] = io_vec{v.data + offset, static_cast<std::uint32_t>(piece), v.buf_index};
            offset += piece;
            len -= piece;
            if (offset == v.len) {
                ++index;
                offset = 0;
            }
        }
        return n;
    }
};

io_status status_of(std::error_code ec) noexcept {
    if (ec.value() == ENOSPC) return io_status::capacity_exceeded;
    return status_from_errno(ec.value(), false);
}

class replica_channel final : public device_channel {
public:
    replica_channel(replica& r, pool& p, io_channel* base)
        : _replica(r), _pool(p), _base(base), _table(r.current_table()),
          _bs(r.block_size()), _cs(p.geometry().cluster_size), _gb(_cs / pool_format::granules_per_cluster),
          _sgb(_cs / pool_format::subgranules_per_cluster),
          _data_offset(p.geometry().data_offset), _gate_closed(r.paused()) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return transfer(lba, blocks, iov, false);
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        if (_replica.read_only()) return make_ready_future<io_status>(io_status::namespace_write_protected);
        return transfer(lba, blocks, iov, true);
    }
    future<io_status> flush() override { return _base ? _base->flush() : not_ready(); }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        if (_replica.read_only()) return make_ready_future<io_status>(io_status::namespace_write_protected);
        return zero_range(lba, blocks, false);
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        if (_replica.read_only()) return make_ready_future<io_status>(io_status::namespace_write_protected);
        return zero_range(lba, blocks, _replica.thin());
    }

    void set_table(std::shared_ptr<cluster_table> t) noexcept { _table = std::move(t); }

    // The pause gate: closed, new I/O waits in front of it (not counted in
    // any epoch, so a quiesce after closing drains everything).
    void close_gate() noexcept { _gate_closed = true; }
    void open_gate() {
        _gate_closed = false;
        auto waiters = std::move(_gate_waiters);
        _gate_waiters.clear();
        for (auto& w : waiters) w.set_value();
    }

    // Grace period: waits for the I/O started before this call. One at a
    // time: the two epoch parities can only tell "before" from "after" once.
    future<> quiesce() {
        auto hold = co_await _quiesce_lock.hold();
        unsigned old = _epoch & 1;
        ++_epoch;
        if (_in_flight[old] == 0) co_return;
        _drained[old].emplace();
        co_await _drained[old]->get_future();
        _drained[old].reset();
    }

private:
    // Counts an I/O in the channel's current epoch for its lifetime.
    struct epoch_guard {
        replica_channel* ch;
        unsigned epoch;
        explicit epoch_guard(replica_channel* c) : ch(c), epoch(c->_epoch & 1) { ++ch->_in_flight[epoch]; }
        ~epoch_guard() {
            if (--ch->_in_flight[epoch] == 0 && ch->_drained[epoch]) ch->_drained[epoch]->set_value();
        }
    };

    static future<io_status> not_ready() { return make_ready_future<io_status>(io_status::namespace_not_ready); }

    future<> wait_gate() {
        _gate_waiters.emplace_back();
        return _gate_waiters.back().get_future();
    }

    std::uint64_t physical_lba(std::uint32_t physical, std::uint64_t within) const noexcept {
        return (_data_offset + std::uint64_t(physical) * _cs + within) / _bs;
    }

    // The physical cluster the volume writes [within, within+seg) of
    // `logical` into, after the pool made every touched granule present.
    future<result<std::uint32_t>> writable(const cluster_table* t, std::uint64_t logical, std::uint64_t within,
                                           std::uint64_t seg) {
        const std::uint32_t physical = t->lookup(logical);
        const std::uint64_t need = granule_mask(within, seg, _gb);
        if (physical != unallocated_cluster && (t->present(logical) & need) == need) {
            return make_ready_future<result<std::uint32_t>>(physical);
        }
        pool* p = &_pool;
        const std::uint32_t id = _replica.replica_id();
        const auto l = static_cast<std::uint32_t>(logical);
        if (t->parent) {
            return submit_to(p->owner_shard(), [p, id, l, need] { return p->ensure_granules(id, l, need); });
        }
        return submit_to(p->owner_shard(), [p, id, l] { return p->ensure_allocated(id, l); });
    }

    // Writes [within, within+seg) of `logical`: in place where the volume
    // holds every touched subgranule; else, for a volume with a parent and
    // a write that covers whole subgranules, redirected (the data written
    // into the volume's cluster, then the subgranules' bits persisted); else
    // after the pool materialized (copied) the touched granules.
    future<io_status> write_piece(const cluster_table* t, std::uint64_t logical, std::uint64_t within,
                                  std::uint64_t seg, io_vecs data) {
        const std::uint32_t physical = t->lookup(logical);
        const std::uint64_t need = granule_mask(within, seg, _gb);
        const auto first = static_cast<unsigned>(within / _sgb);
        const auto count = static_cast<unsigned>((within + seg - 1) / _sgb - first + 1);
        if (physical != unallocated_cluster &&
            ((t->present(logical) & need) == need || (t->parent && t->holds_range(logical, first, count)))) {
            co_return co_await _base->write(physical_lba(physical, within), seg / _bs, data);
        }
        if (t->parent && within % _sgb == 0 && seg % _sgb == 0) {
            pool* p = &_pool;
            const std::uint32_t id = _replica.replica_id();
            const auto l = static_cast<std::uint32_t>(logical);
            result<std::uint32_t> r = co_await submit_to(
                p->owner_shard(), [p, id, l, first, count] { return p->begin_redirect(id, l, first, count); });
            if (r) {
                io_status st = co_await _base->write(physical_lba(r.value(), within), seg / _bs, data);
                const bool written = ok(st);
                io_status done = co_await submit_to(p->owner_shard(), [p, id, l, first, count, written] {
                    return p->end_redirect(id, l, first, count, written);
                });
                co_return ok(st) ? done : st;
            }
            // EAGAIN: no room for another subgranule record; copy instead.
            if (r.error().value() != EAGAIN) co_return status_of(r.error());
        }
        result<std::uint32_t> r = co_await writable(t, logical, within, seg);
        if (!r) co_return status_of(r.error());
        co_return co_await _base->write(physical_lba(r.value(), within), seg / _bs, data);
    }

    future<io_status> transfer(std::uint64_t lba, std::uint32_t blocks, io_vecs iov, bool is_write) {
        if (!_base) co_return io_status::namespace_not_ready;
        if (_gate_closed) co_await wait_gate();
        epoch_guard guard(this);
        std::uint64_t off = lba * _bs;
        std::uint64_t len = std::uint64_t(blocks) * _bs;
        iov_cursor cursor{iov};
        std::array<io_vec, max_segments> piece;
        while (len > 0) {
            const std::uint64_t logical = off / _cs;
            const std::uint64_t within = off % _cs;
            const std::uint64_t seg = std::min<std::uint64_t>(len, _cs - within);
            const cluster_table* t = _table.get();
            if (is_write) {
                std::size_t n = cursor.take(seg, piece);
                if (n == 0) co_return io_status::invalid_field;
                io_status st = co_await write_piece(t, logical, within, seg, io_vecs(piece.data(), n));
                if (!ok(st)) co_return st;
            } else {
                // Runs of granules (subgranules when some are partly
                // present) that come from the same volume.
                const std::uint64_t unit = t->chain_has_subgranules() ? _sgb : _gb;
                auto source_at = [&](std::uint64_t byte) {
                    return t->source_sub(logical, static_cast<unsigned>(byte / unit * (unit / _sgb)));
                };
                for (std::uint64_t at = within; at < within + seg;) {
                    const std::uint32_t src = source_at(at);
                    std::uint64_t end = (at / unit + 1) * unit;
                    while (end < within + seg && source_at(end) == src) end += unit;
                    end = std::min(end, within + seg);
                    std::size_t n = cursor.take(end - at, piece);
                    if (n == 0) co_return io_status::invalid_field;
                    if (src == unallocated_cluster) {
                        for (std::size_t i = 0; i < n; ++i) std::memset(piece[i].data, 0, piece[i].len);
                    } else {
                        io_status st = co_await _base->read(physical_lba(src, at), (end - at) / _bs, io_vecs(piece.data(), n));
                        if (!ok(st)) co_return st;
                    }
                    at = end;
                }
            }
            off += seg;
            len -= seg;
        }
        co_return io_status::success;
    }

    // write_zeroes, and unmap (release == true frees whole thin clusters of
    // a volume without parent; with a parent, freeing would show the
    // parent's data, so the granules are materialized and zeroed instead).
    future<io_status> zero_range(std::uint64_t lba, std::uint64_t blocks, bool release) {
        if (!_base) co_return io_status::namespace_not_ready;
        if (_gate_closed) co_await wait_gate();
        epoch_guard guard(this);
        std::uint64_t off = lba * _bs;
        std::uint64_t len = blocks * _bs;
        while (len > 0) {
            const std::uint64_t logical = off / _cs;
            const std::uint64_t within = off % _cs;
            const std::uint64_t seg = std::min<std::uint64_t>(len, _cs - within);
            const cluster_table* t = _table.get();
            std::uint32_t physical = t->lookup(logical);
            if (t->parent) {
                if (!reads_zero(t, logical, within, seg)) {
                    result<std::uint32_t> r = co_await writable(t, logical, within, seg);
                    if (!r) co_return status_of(r.error());
                    io_status st = co_await _base->write_zeroes(physical_lba(r.value(), within), seg / _bs);
                    if (!ok(st)) co_return st;
                }
            } else if (physical != unallocated_cluster) {
                if (release && within == 0 && seg == _cs) {
                    pool* p = &_pool;
                    std::uint32_t id = _replica.replica_id();
                    io_status st = co_await submit_to(p->owner_shard(), [p, id, logical] {
                        return p->release_cluster(id, static_cast<std::uint32_t>(logical));
                    });
                    if (!ok(st)) co_return st;
                } else {
                    io_status st = co_await _base->write_zeroes(physical_lba(physical, within), seg / _bs);
                    if (!ok(st)) co_return st;
                }
            }
            off += seg;
            len -= seg;
        }
        co_return io_status::success;
    }

    // True when every granule of the range reads as zeros through the chain
    // and none is present in the volume itself (nothing to zero).
    bool reads_zero(const cluster_table* t, std::uint64_t logical, std::uint64_t within, std::uint64_t seg) const {
        for (std::uint64_t g = within / _gb; g * _gb < within + seg; ++g) {
            if (t->source(logical, static_cast<unsigned>(g)) != unallocated_cluster) return false;
        }
        return true;
    }

    replica& _replica;
    pool& _pool;
    io_channel* _base;
    std::shared_ptr<cluster_table> _table;
    const std::uint32_t _bs;
    const std::uint32_t _cs;
    const std::uint64_t _gb;  // granule bytes
    const std::uint64_t _sgb;  // subgranule bytes
    const std::uint64_t _data_offset;
    unsigned _epoch = 0;
    unsigned _in_flight[2] = {0, 0};
    std::optional<promise<>> _drained[2];
    async_mutex _quiesce_lock;
    bool _gate_closed;
    std::vector<promise<>> _gate_waiters;
};

}  // namespace

cluster_table::cluster_table(std::uint64_t n, std::shared_ptr<cluster_table> parent_table)
    : count(n),
      entries(new std::atomic<std::uint32_t>[n ? n : 1]),
      granules(new std::atomic<std::uint64_t>[n ? n : 1]),
      parent(std::move(parent_table)) {
    for (std::uint64_t i = 0; i < n; ++i) {
        entries[i].store(unallocated_cluster, std::memory_order_relaxed);
        granules[i].store(0, std::memory_order_relaxed);
    }
}

std::atomic<std::uint64_t>* cluster_table::subgranules_for_update() {
    std::atomic<std::uint64_t>* bits = subgranule_bits.load(std::memory_order_acquire);
    if (bits) return bits;
    const std::uint64_t words = (count ? count : 1) * pool_format::subgranule_words;
    subgranule_storage.reset(new std::atomic<std::uint64_t>[words]);
    for (std::uint64_t i = 0; i < words; ++i) subgranule_storage[i].store(0, std::memory_order_relaxed);
    subgranule_bits.store(subgranule_storage.get(), std::memory_order_release);
    return subgranule_storage.get();
}

replica::replica(pool& owner, const pool_format::replica_meta& meta, std::uint32_t block_size,
                 std::uint32_t cluster_size, std::shared_ptr<cluster_table> table)
    : block_device(meta.name, "replica", meta.replica_uuid, block_size, meta.size_bytes / block_size),
      _pool(owner),
      _id(meta.id),
      _thin(meta.thin),
      _read_only(meta.snapshot),
      _cluster_size(cluster_size),
      _table(std::move(table)) {
    for (std::uint64_t i = 0; i < _table->count; ++i) {
        if (_table->lookup(i) != unallocated_cluster) ++_allocated;
    }
}

replica::~replica() = default;

void replica::publish(std::uint64_t logical, std::uint32_t physical, std::uint64_t granules) noexcept {
    if (_previous && logical < _previous->count) {
        _previous->granules[logical].store(granules, std::memory_order_release);
        _previous->entries[logical].store(physical, std::memory_order_release);
    }
    _table->granules[logical].store(granules, std::memory_order_release);
    if (_table->entries[logical].exchange(physical, std::memory_order_release) == unallocated_cluster) ++_allocated;
}

void replica::publish_subgranules(std::uint64_t logical, std::uint32_t physical, std::uint64_t granules,
                                  const std::uint64_t (&bits)[pool_format::subgranule_words]) {
    for (cluster_table* t : {_previous.get(), _table.get()}) {
        if (!t || logical >= t->count) continue;
        std::atomic<std::uint64_t>* words = t->subgranules_for_update() + logical * pool_format::subgranule_words;
        for (unsigned w = 0; w < pool_format::subgranule_words; ++w) {
            if (bits[w]) words[w].fetch_or(bits[w], std::memory_order_release);
        }
        // ORed: redirects of one cluster publish in any order.
        t->granules[logical].fetch_or(granules, std::memory_order_release);
        if (t == _table.get() && t->entries[logical].exchange(physical, std::memory_order_release) == unallocated_cluster) {
            ++_allocated;
        } else if (t != _table.get()) {
            t->entries[logical].store(physical, std::memory_order_release);
        }
    }
}

void replica::unpublish(std::uint64_t logical) noexcept {
    if (_previous && logical < _previous->count) {
        _previous->entries[logical].store(unallocated_cluster, std::memory_order_release);
    }
    if (_table->entries[logical].exchange(unallocated_cluster, std::memory_order_release) != unallocated_cluster) {
        --_allocated;
    }
    _table->granules[logical].store(0, std::memory_order_release);
    // Stale subgranule bits would make a cluster published here later
    // read as holding them.
    for (cluster_table* t : {_previous.get(), _table.get()}) {
        std::atomic<std::uint64_t>* bits = t ? t->subgranule_bits.load(std::memory_order_acquire) : nullptr;
        if (!bits || logical >= t->count) continue;
        for (unsigned w = 0; w < pool_format::subgranule_words; ++w) {
            bits[logical * pool_format::subgranule_words + w].store(0, std::memory_order_release);
        }
    }
}

std::unique_ptr<device_channel> replica::open_channel() {
    return std::make_unique<replica_channel>(*this, _pool, _pool.device().channel());
}

future<> replica::grow(std::uint64_t size_bytes, std::vector<std::pair<std::uint64_t, std::uint32_t>> mapping) {
    const std::uint64_t n = (size_bytes + _cluster_size - 1) / _cluster_size;
    if (n > _table->count) {
        auto bigger = std::make_shared<cluster_table>(n, _table->parent);
        for (std::uint64_t i = 0; i < _table->count; ++i) {
            bigger->granules[i].store(_table->granules[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
            bigger->entries[i].store(_table->entries[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
        }
        if (std::atomic<std::uint64_t>* old_bits = _table->subgranule_bits.load(std::memory_order_acquire)) {
            std::atomic<std::uint64_t>* bits = bigger->subgranules_for_update();
            for (std::uint64_t i = 0; i < _table->count * pool_format::subgranule_words; ++i) {
                bits[i].store(old_bits[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
            }
        }
        _previous = std::exchange(_table, bigger);
        for (unsigned s = 0; s < shard_count(); ++s) {
            co_await submit_to(s, [this, bigger] {
                if (io_channel* ch = open_channel_here()) {
                    static_cast<replica_channel&>(ch->backend()).set_table(bigger);
                }
            });
        }
        _previous.reset();
    }
    for (const auto& [logical, physical] : mapping) publish(logical, physical);
    set_block_count(size_bytes / block_size());
}

future<> replica::quiesce() {
    for (unsigned s = 0; s < shard_count(); ++s) {
        co_await submit_to(s, [this]() -> future<> {
            if (io_channel* ch = open_channel_here()) {
                co_await static_cast<replica_channel&>(ch->backend()).quiesce();
            }
        });
    }
}

future<> replica::pause() {
    _paused.store(true, std::memory_order_release);
    for (unsigned s = 0; s < shard_count(); ++s) {
        co_await submit_to(s, [this]() -> future<> {
            if (io_channel* ch = open_channel_here()) {
                auto& rc = static_cast<replica_channel&>(ch->backend());
                rc.close_gate();
                co_await rc.quiesce();
            }
        });
    }
}

future<> replica::resume() {
    _paused.store(false, std::memory_order_release);
    for (unsigned s = 0; s < shard_count(); ++s) {
        co_await submit_to(s, [this] {
            if (io_channel* ch = open_channel_here()) static_cast<replica_channel&>(ch->backend()).open_gate();
        });
    }
}

future<> replica::replace_table(std::shared_ptr<cluster_table> table) {
    _table = table;
    _allocated = 0;
    for (std::uint64_t i = 0; i < _table->count; ++i) {
        if (_table->lookup(i) != unallocated_cluster) ++_allocated;
    }
    for (unsigned s = 0; s < shard_count(); ++s) {
        co_await submit_to(s, [this, table] {
            if (io_channel* ch = open_channel_here()) static_cast<replica_channel&>(ch->backend()).set_table(table);
        });
    }
}

std::uint64_t replica::bytes_from_ancestors() const noexcept {
    if (!_table->parent) return 0;
    // Granule by granule, or subgranule by subgranule where some are partly present.
    const bool fine = _table->chain_has_subgranules();
    const unsigned units = fine ? pool_format::subgranules_per_cluster : pool_format::granules_per_cluster;
    const unsigned step = fine ? 1 : pool_format::subgranules_per_granule;
    const std::uint64_t unit_bytes = _cluster_size / units;
    std::uint64_t n = 0;
    for (std::uint64_t l = 0; l < _table->count; ++l) {
        const bool own = _table->lookup(l) != unallocated_cluster;
        for (unsigned u = 0; u < units; ++u) {
            const unsigned sg = u * step;
            if (!(own && _table->holds(l, sg)) && _table->parent->source_sub(l, sg) != unallocated_cluster) {
                n += unit_bytes;
            }
        }
    }
    return n;
}

}  // namespace ioe
