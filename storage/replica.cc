// The replica's channels: LBA translation, cluster splitting, thin
// allocation on first write, zeros for holes, grace periods, reads through
// the parent chain per granule, granule copy-on-write, the pause gate (see
// replica.hh).
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
                result<std::uint32_t> r = co_await writable(t, logical, within, seg);
                if (!r) co_return status_of(r.error());
                std::size_t n = cursor.take(seg, piece);
                if (n == 0) co_return io_status::invalid_field;
                io_status st = co_await _base->write(physical_lba(r.value(), within), seg / _bs, io_vecs(piece.data(), n));
                if (!ok(st)) co_return st;
            } else {
                // Runs of granules that come from the same volume.
                for (std::uint64_t at = within; at < within + seg;) {
                    const std::uint32_t src = t->source(logical, static_cast<unsigned>(at / _gb));
                    std::uint64_t end = (at / _gb + 1) * _gb;
                    while (end < within + seg && t->source(logical, static_cast<unsigned>(end / _gb)) == src) end += _gb;
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

void replica::unpublish(std::uint64_t logical) noexcept {
    if (_previous && logical < _previous->count) {
        _previous->entries[logical].store(unallocated_cluster, std::memory_order_release);
    }
    if (_table->entries[logical].exchange(unallocated_cluster, std::memory_order_release) != unallocated_cluster) {
        --_allocated;
    }
    _table->granules[logical].store(0, std::memory_order_release);
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
    const std::uint64_t gb = _cluster_size / pool_format::granules_per_cluster;
    std::uint64_t n = 0;
    for (std::uint64_t l = 0; l < _table->count; ++l) {
        const bool own = _table->lookup(l) != unallocated_cluster;
        const std::uint64_t mine = own ? _table->present(l) : 0;
        for (unsigned g = 0; g < pool_format::granules_per_cluster; ++g) {
            if (!(mine >> g & 1) && _table->parent->source(l, g) != unallocated_cluster) n += gb;
        }
    }
    return n;
}

}  // namespace ioe
