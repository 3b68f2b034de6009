// The replica's channels: LBA translation, cluster splitting, thin
// allocation on first write, zeros for holes, grace periods (see replica.hh).
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
          _bs(r.block_size()), _cs(p.geometry().cluster_size), _data_offset(p.geometry().data_offset) {}

    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return transfer(lba, blocks, iov, false);
    }
    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return transfer(lba, blocks, iov, true);
    }
    future<io_status> flush() override { return _base ? _base->flush() : not_ready(); }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        return zero_range(lba, blocks, false);
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        return zero_range(lba, blocks, _replica.thin());
    }

    void set_table(std::shared_ptr<cluster_table> t) noexcept { _table = std::move(t); }

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

    std::uint64_t physical_lba(std::uint32_t physical, std::uint64_t within) const noexcept {
        return (_data_offset + std::uint64_t(physical) * _cs + within) / _bs;
    }

    future<io_status> transfer(std::uint64_t lba, std::uint32_t blocks, io_vecs iov, bool is_write) {
        if (!_base) co_return io_status::namespace_not_ready;
        epoch_guard guard(this);
        std::uint64_t off = lba * _bs;
        std::uint64_t len = std::uint64_t(blocks) * _bs;
        iov_cursor cursor{iov};
        std::array<io_vec, max_segments> piece;
        while (len > 0) {
            const std::uint64_t logical = off / _cs;
            const std::uint64_t within = off % _cs;
            const std::uint64_t seg = std::min<std::uint64_t>(len, _cs - within);
            std::size_t n = cursor.take(seg, piece);
            if (n == 0) co_return io_status::invalid_field;
            std::uint32_t physical = _table->lookup(logical);
            if (physical == unallocated_cluster) {
                if (!is_write) {
                    for (std::size_t i = 0; i < n; ++i) std::memset(piece[i].data, 0, piece[i].len);
                    off += seg;
                    len -= seg;
                    continue;
                }
                pool* p = &_pool;
                std::uint32_t id = _replica.replica_id();
                result<std::uint32_t> r = co_await submit_to(p->owner_shard(), [p, id, logical] {
                    return p->ensure_allocated(id, static_cast<std::uint32_t>(logical));
                });
                if (!r) co_return status_of(r.error());
                physical = r.value();
            }
            io_vecs part(piece.data(), n);
            io_status st = is_write ? co_await _base->write(physical_lba(physical, within), seg / _bs, part)
                                    : co_await _base->read(physical_lba(physical, within), seg / _bs, part);
            if (!ok(st)) co_return st;
            off += seg;
            len -= seg;
        }
        co_return io_status::success;
    }

    // write_zeroes, and unmap (release == true frees whole thin clusters).
    future<io_status> zero_range(std::uint64_t lba, std::uint64_t blocks, bool release) {
        if (!_base) co_return io_status::namespace_not_ready;
        epoch_guard guard(this);
        std::uint64_t off = lba * _bs;
        std::uint64_t len = blocks * _bs;
        while (len > 0) {
            const std::uint64_t logical = off / _cs;
            const std::uint64_t within = off % _cs;
            const std::uint64_t seg = std::min<std::uint64_t>(len, _cs - within);
            std::uint32_t physical = _table->lookup(logical);
            if (physical != unallocated_cluster) {
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

    replica& _replica;
    pool& _pool;
    io_channel* _base;
    std::shared_ptr<cluster_table> _table;
    const std::uint32_t _bs;
    const std::uint32_t _cs;
    const std::uint64_t _data_offset;
    unsigned _epoch = 0;
    unsigned _in_flight[2] = {0, 0};
    std::optional<promise<>> _drained[2];
    async_mutex _quiesce_lock;
};

}  // namespace

cluster_table::cluster_table(std::uint64_t n) : count(n), entries(new std::atomic<std::uint32_t>[n ? n : 1]) {
    for (std::uint64_t i = 0; i < n; ++i) entries[i].store(unallocated_cluster, std::memory_order_relaxed);
}

replica::replica(pool& owner, const pool_format::replica_meta& meta, std::uint32_t block_size,
                 std::uint32_t cluster_size)
    : block_device(meta.name, "replica", meta.replica_uuid, block_size, meta.size_bytes / block_size),
      _pool(owner),
      _id(meta.id),
      _thin(meta.thin),
      _cluster_size(cluster_size),
      _table(std::make_shared<cluster_table>((meta.size_bytes + cluster_size - 1) / cluster_size)) {}

replica::~replica() = default;

void replica::publish(std::uint64_t logical, std::uint32_t physical) noexcept {
    if (_previous && logical < _previous->count) _previous->entries[logical].store(physical, std::memory_order_release);
    if (_table->entries[logical].exchange(physical, std::memory_order_release) == unallocated_cluster) ++_allocated;
}

void replica::unpublish(std::uint64_t logical) noexcept {
    if (_previous && logical < _previous->count) {
        _previous->entries[logical].store(unallocated_cluster, std::memory_order_release);
    }
    if (_table->entries[logical].exchange(unallocated_cluster, std::memory_order_release) != unallocated_cluster) {
        --_allocated;
    }
}

std::unique_ptr<device_channel> replica::open_channel() {
    return std::make_unique<replica_channel>(*this, _pool, _pool.device().channel());
}

future<> replica::grow(std::uint64_t size_bytes, std::vector<std::pair<std::uint64_t, std::uint32_t>> mapping) {
    const std::uint64_t n = (size_bytes + _cluster_size - 1) / _cluster_size;
    if (n > _table->count) {
        auto bigger = std::make_shared<cluster_table>(n);
        for (std::uint64_t i = 0; i < _table->count; ++i) {
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

}  // namespace ioe
