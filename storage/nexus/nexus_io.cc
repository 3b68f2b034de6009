// The nexus's I/O path: its per-shard channel (see nexus.hh). Reads the
// shard's own view of the children; passes the pause gate and, for writes,
// the rebuild's range locks; fans writes out to every online and rebuilding
// child and reads from one online child; faults a child that fails (through
// the owner, which records it before the I/O completes).
#include <array>
#include <optional>

#include "runtime/smp.hh"
#include "storage/nexus/nexus.hh"

namespace ioe {

namespace {

fault_reason reason_of(io_status st) noexcept {
    switch (st) {
        case io_status::capacity_exceeded: return fault_reason::no_space;
        case io_status::aborted: return fault_reason::timeout;
        // Another incarnation took the child's reservation: nexus::fault()
        // fences the whole nexus rather than the child.
        case io_status::reservation_conflict: return fault_reason::reserved_by_other;
        default: return fault_reason::io_error;
    }
}

}  // namespace

class nexus_channel final : public device_channel {
public:
    explicit nexus_channel(nexus& n) : _n(n) {}

    // The fast path takes no coroutine frame: past an open gate, the read
    // goes to the next online child, and a child that completes in place
    // (malloc, a cache hit) completes the nexus read in place too.
    future<io_status> read(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        nexus::shard_state& st = _n.local();
        if (st.pauses || st.faulted) return read_gated(lba, blocks, iov);
        ++st.in_flight;
        return read_from(st.next_read++, 0, io_status::namespace_not_ready, lba, blocks, iov);
    }

    future<io_status> write(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) override {
        return mirrored(op::write, lba, blocks, iov);
    }
    future<io_status> write_zeroes(std::uint64_t lba, std::uint64_t blocks) override {
        return mirrored(op::zeroes, lba, blocks, {});
    }
    future<io_status> unmap(std::uint64_t lba, std::uint64_t blocks) override {
        return mirrored(op::unmap, lba, blocks, {});
    }
    future<io_status> flush() override { return mirrored(op::flush, 0, 0, {}); }

private:
    enum class op { write, zeroes, unmap, flush };

    // ---- reads ----

    future<io_status> read_gated(std::uint64_t lba, std::uint32_t blocks, io_vecs iov) {
        if (!co_await enter()) co_return refusal();
        co_return co_await read_from(_n.local().next_read++, 0, io_status::namespace_not_ready, lba, blocks, iov);
    }

    // Past the gate (in_flight counted): reads from the first online child
    // at or after position k of the round robin that starts at `start`;
    // `last` is what fails the read if no child is left.
    future<io_status> read_from(unsigned start, unsigned k, io_status last, std::uint64_t lba, std::uint32_t blocks,
                                io_vecs iov) {
        nexus::shard_state& st = _n.local();
        for (; k < nexus::max_children; ++k) {
            auto& v = st.children[(start + k) % nexus::max_children];
            if (!v.dev || v.state != child_state::online) continue;
            io_channel* ch = v.dev->channel();
            future<io_status> f =
                ch ? ch->read(lba, blocks, iov) : make_ready_future<io_status>(io_status::namespace_not_ready);
            if (f.available() && !f.failed()) {
                const io_status s = f.get();
                if (ok(s)) {
                    leave();
                    return make_ready_future<io_status>(s);
                }
                f = make_ready_future<io_status>(s);
            }
            return read_wait(std::move(f), start, k, v.generation, lba, blocks, iov);
        }
        leave();
        return make_ready_future<io_status>(last);
    }

    // The read at position k in flight (or failed): on a failure, the child
    // is faulted (recorded before the read completes) and the next one tried.
    future<io_status> read_wait(future<io_status> f, unsigned start, unsigned k, std::uint32_t generation,
                                std::uint64_t lba, std::uint32_t blocks, io_vecs iov) {
        const io_status s = co_await std::move(f);
        if (ok(s)) {
            leave();
            co_return s;
        }
        co_await _n.child_failed((start + k) % nexus::max_children, generation, reason_of(s), 0, 0);
        if (_n.local().faulted) {
            leave();
            co_return s;
        }
        co_return co_await read_from(start, k + 1, s, lba, blocks, iov);
    }

    // ---- the gate and the range locks ----

    // What an I/O the gate refused gets: a fenced nexus is a path that no
    // longer serves the volume (docs/ana.md); a faulted one has no child.
    io_status refusal() const noexcept {
        return _n.local().fenced ? io_status::ana_inaccessible : io_status::namespace_not_ready;
    }

    // The pause gate: false when the nexus refuses I/O.
    future<bool> enter() {
        nexus::shard_state& st = _n.local();
        while (st.pauses) {
            st.resume_waiters.emplace_back();
            co_await st.resume_waiters.back().get_future();
        }
        if (st.faulted) co_return false;
        ++st.in_flight;
        co_return true;
    }

    void leave() noexcept {
        nexus::shard_state& st = _n.local();
        if (--st.in_flight == 0 && !st.drain_waiters.empty()) {
            auto waiters = std::move(st.drain_waiters);
            st.drain_waiters.clear();
            for (auto& p : waiters) p.set_value();
        }
    }

    static bool overlaps(const nexus::shard_state::range& a, std::uint64_t first, std::uint64_t last) noexcept {
        return a.first <= last && first <= a.last;
    }

    // Waits until no rebuild holds a lock over [first, last] (segments),
    // then registers the write; nothing suspends between the two.
    future<> begin_range(std::uint64_t first, std::uint64_t last) {
        nexus::shard_state& st = _n.local();
        for (;;) {
            bool blocked = false;
            for (const auto& r : st.locked) blocked = blocked || overlaps(r, first, last);
            if (!blocked) break;
            st.unlock_waiters.emplace_back();
            co_await st.unlock_waiters.back().get_future();
        }
        st.writing.push_back({first, last});
    }

    void end_range(std::uint64_t first, std::uint64_t last) noexcept {
        nexus::shard_state& st = _n.local();
        for (std::size_t i = 0; i < st.writing.size(); ++i) {
            if (st.writing[i].first == first && st.writing[i].last == last) {
                st.writing[i] = st.writing.back();
                st.writing.pop_back();
                break;
            }
        }
        // A lock waits for the writes over its range to drain.
        for (std::size_t i = 0; i < st.write_drain_waiters.size();) {
            const auto& want = st.write_drain_waiters[i].first;
            bool busy = false;
            for (const auto& w : st.writing) busy = busy || overlaps(w, want.first, want.last);
            if (busy) {
                ++i;
                continue;
            }
            promise<> p = std::move(st.write_drain_waiters[i].second);
            st.write_drain_waiters.erase(st.write_drain_waiters.begin() + static_cast<std::ptrdiff_t>(i));
            p.set_value();
        }
    }

    static future<io_status> issue(io_channel* ch, op o, std::uint64_t lba, std::uint64_t blocks, io_vecs iov) {
        if (!ch) return make_ready_future<io_status>(io_status::namespace_not_ready);
        switch (o) {
            case op::write: return ch->write(lba, static_cast<std::uint32_t>(blocks), iov);
            case op::zeroes: return ch->write_zeroes(lba, blocks);
            case op::unmap: return ch->unmap(lba, blocks);
            case op::flush: return ch->flush();
        }
        return make_ready_future<io_status>(io_status::internal_error);
    }

    // Every online and rebuilding child gets the operation; faulted children
    // that keep a dirty log get the range marked.
    future<io_status> mirrored(op o, std::uint64_t lba, std::uint64_t blocks, io_vecs iov) {
        if (!co_await enter()) co_return refusal();
        nexus::shard_state& st = _n.local();
        const bool ranged = o != op::flush && blocks > 0;
        const std::uint64_t per = _n.blocks_per_segment();
        const std::uint64_t first = ranged ? lba / per : 0, last = ranged ? (lba + blocks - 1) / per : 0;
        if (ranged) co_await begin_range(first, last);
        std::array<std::optional<future<io_status>>, nexus::max_children> pending;
        std::array<std::uint32_t, nexus::max_children> generation{};
        std::array<bool, nexus::max_children> skipped_unrecorded{};
        for (unsigned slot = 0; slot < nexus::max_children; ++slot) {
            auto& v = st.children[slot];
            if (!v.dev) continue;
            if (v.state == child_state::faulted) {
                if (ranged && v.log_dirty && !v.dirty.empty()) {
                    for (std::uint64_t seg = first; seg <= last; ++seg) v.dirty[seg / 64] |= std::uint64_t{1} << (seg % 64);
                }
                // Faulted but not yet recorded so: this write misses it, so
                // it may not be acknowledged before the record says so.
                if (v.unrecorded) {
                    skipped_unrecorded[slot] = true;
                    generation[slot] = v.generation;
                }
                continue;
            }
            generation[slot] = v.generation;
            pending[slot].emplace(issue(v.dev->channel(), o, lba, blocks, iov));
        }
        bool any_ok = false;
        std::optional<io_status> first_error;  // the first failing child's status
        std::array<io_status, nexus::max_children> result{};
        for (unsigned slot = 0; slot < nexus::max_children; ++slot) {
            if (!pending[slot]) continue;
            result[slot] = co_await std::move(*pending[slot]);
            if (ok(result[slot])) {
                any_ok = true;
            } else if (!first_error) {
                first_error = result[slot];
            }
        }
        if (ranged) end_range(first, last);
        // Failed children are recorded before this I/O completes, and so
        // are children it skipped whose fault is still being recorded.
        for (unsigned slot = 0; slot < nexus::max_children; ++slot) {
            if (pending[slot] && !ok(result[slot])) {
                co_await _n.child_failed(slot, generation[slot], reason_of(result[slot]), ranged ? lba : 0,
                                         ranged ? blocks : 0);
            } else if (skipped_unrecorded[slot]) {
                co_await _n.child_failed(slot, generation[slot], fault_reason::io_error, 0, 0);
            }
        }
        const bool nexus_faulted = st.faulted;
        // Fenced meanwhile (a child refused it: another incarnation took
        // over): never acknowledged, and the host is told to use another
        // path rather than given the child's reservation conflict.
        if (st.fenced) {
            leave();
            co_return io_status::ana_inaccessible;
        }
        leave();
        if (!any_ok) co_return first_error.value_or(io_status::namespace_not_ready);  // the child's status
        // Faulted meanwhile (the record could not be written, or no child in
        // sync is left): not acknowledged.
        co_return nexus_faulted ? io_status::namespace_not_ready : io_status::success;
    }

    nexus& _n;
};

std::unique_ptr<device_channel> nexus::open_channel() { return std::make_unique<nexus_channel>(*this); }

}  // namespace ioe
