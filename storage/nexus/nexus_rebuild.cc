// Rebuilding a nexus child (see nexus.hh): segment copies from an online
// source under a range lock held on every shard, several at once, full or
// partial (the segments every shard logged while the child was faulted);
// start, stop, pause, resume, progress and history.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "runtime/engine.hh"
#include "runtime/log.hh"
#include "runtime/smp.hh"
#include "storage/errors.hh"
#include "storage/nexus/nexus.hh"

namespace ioe {

struct nexus::rebuild_job {
    unsigned slot = 0;
    unsigned source = 0;
    std::vector<std::uint64_t> todo;  // segments to copy
    std::size_t cursor = 0;
    rebuild_progress progress;
    bool stop = false;
    bool paused = false;
    std::vector<promise<>> resume_waiters;
    std::vector<promise<>> finished_waiters;
    bool finished = false;
    std::string error;
};

namespace {

constexpr std::size_t history_kept = 16;
constexpr std::uint64_t segments_per_lock = 4;

storage_error rebuild_error(storage_errc c, const std::string& nexus_name, const std::string& what) {
    return storage_error(c, fmt::format("nexus '{}': {}", nexus_name, what));
}

}  // namespace

std::optional<rebuild_progress> nexus::rebuild_status(const std::string& uri) const {
    for (unsigned s = 0; s < max_children; ++s) {
        if (!_used[s] || _children[s].uri != uri) continue;
        const auto& ptr = _children[s].rebuild ? _children[s].rebuild : _children[s].finishing;
        if (!ptr) continue;
        const auto& job = *ptr;
        rebuild_progress p = job.progress;
        const double secs =
            std::chrono::duration<double>(std::chrono::system_clock::now() - p.started).count();
        p.blocks_per_second = secs > 0 ? static_cast<double>(p.blocks_done) / secs : 0;
        return p;
    }
    return std::nullopt;
}

future<> nexus::start_rebuild(unsigned slot, bool partial) {
    child& c = _children[slot];
    if (c.rebuild) co_return;
    if (_state == nexus_state::shutting_down || _state == nexus_state::shutdown) {
        throw rebuild_error(storage_errc::unavailable, name(), "it is shut down");
    }
    if (_state == nexus_state::fenced) {
        throw rebuild_error(storage_errc::unavailable, name(), "it is fenced (another incarnation took over)");
    }
    // The source: an online child, a local one (not over the network) first.
    int source = -1;
    for (unsigned s = 0; s < max_children; ++s) {
        if (!_used[s] || s == slot || _children[s].state != child_state::online) continue;
        if (source < 0 || (_children[source].dev->product() == "nvmf" && _children[s].dev->product() != "nvmf")) {
            source = static_cast<int>(s);
        }
    }
    if (source < 0) {
        throw rebuild_error(storage_errc::unavailable, name(),
                            fmt::format("no child in sync to rebuild {} from", c.uri));
    }
    // A remote child may not be connected again yet (its node just came
    // back), and a write its device gave up on (timed out) may still be
    // executing at the far end: copying a segment before it lands would let
    // it overwrite the copy with older data. Wait until neither is so.
    const std::uint32_t generation = c.generation;
    co_await c.dev->settle(_opts.settle_limit);
    if (c.rebuild || c.generation != generation || c.state != child_state::faulted) co_return;  // changed meanwhile
    auto job = std::make_shared<rebuild_job>();
    job->slot = slot;
    job->source = static_cast<unsigned>(source);
    job->progress.child = c.uri;
    job->progress.source = _children[source].uri;
    job->progress.state = rebuild_state::running;
    job->progress.partial = partial;
    job->progress.started = std::chrono::system_clock::now();
    c.rebuild = job;
    ++_rebuilds_running;
    // From here the child gets every write (degraded); what it missed while
    // it was faulted is in the shards' dirty logs, collected after that.
    c.state = child_state::degraded;
    c.reason = fault_reason::none;
    c.last_in_sync = false;  // another child is the source: this one is behind
    update_state();
    co_await publish();
    const std::uint64_t segs = segments();
    if (partial) {
        std::vector<std::uint64_t> dirty = co_await collect_dirty(slot);
        for (std::uint64_t seg = 0; seg < segs; ++seg)
            if (seg / 64 < dirty.size() && (dirty[seg / 64] >> (seg % 64) & 1)) job->todo.push_back(seg);
    } else {
        job->todo.resize(segs);
        for (std::uint64_t seg = 0; seg < segs; ++seg) job->todo[seg] = seg;
    }
    c.dirty_complete = false;
    const std::uint64_t per = blocks_per_segment();
    for (std::uint64_t seg : job->todo)
        job->progress.blocks_total += std::min(per, block_count() - seg * per);
    log::info("nexus {}: {} rebuild of {} from {} started ({} segments, {} blocks)", name(),
              partial ? "partial" : "full", c.uri, job->progress.source, job->todo.size(),
              job->progress.blocks_total);
    run_rebuild(job).ignore();
}

future<std::vector<std::uint64_t>> nexus::collect_dirty(unsigned slot) {
    std::vector<std::uint64_t> merged((segments() + 63) / 64, 0);
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        std::vector<std::uint64_t> part = co_await submit_to(shard, [this, slot] {
            auto& v = local().children[slot];
            std::vector<std::uint64_t> bits = std::move(v.dirty);
            v.dirty.clear();
            return bits;
        });
        for (std::size_t i = 0; i < part.size() && i < merged.size(); ++i) merged[i] |= part[i];
    }
    co_return merged;
}

future<> nexus::lock_segments(std::uint64_t first, std::uint64_t last) {
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        co_await submit_to(shard, [this, first, last]() -> future<> {
            shard_state& st = local();
            st.locked.push_back({first, last});
            for (;;) {
                bool busy = false;
                for (const auto& w : st.writing) busy = busy || (w.first <= last && first <= w.last);
                if (!busy) break;
                st.write_drain_waiters.emplace_back(shard_state::range{first, last}, promise<>());
                co_await st.write_drain_waiters.back().second.get_future();
            }
        });
    }
}

future<> nexus::unlock_segments(std::uint64_t first) {
    for (unsigned shard = 0; shard < shard_count(); ++shard) {
        co_await submit_to(shard, [this, first] {
            shard_state& st = local();
            for (std::size_t i = 0; i < st.locked.size(); ++i) {
                if (st.locked[i].first == first) {
                    st.locked[i] = st.locked.back();
                    st.locked.pop_back();
                    break;
                }
            }
            auto waiters = std::move(st.unlock_waiters);
            st.unlock_waiters.clear();
            for (auto& p : waiters) p.set_value();  // they check again
        });
    }
}

future<> nexus::run_rebuild(std::shared_ptr<rebuild_job> job) {
    const std::uint64_t per = blocks_per_segment();
    const std::uint32_t bs = block_size();
    block_device* src = _children[job->source].dev;
    block_device* dst = _children[job->slot].dev;
    // One worker per segment in flight, each with its own buffers.
    auto worker = [](nexus* self, rebuild_job* j, block_device* from, block_device* to, std::uint64_t per_seg,
                     std::uint32_t block) -> future<> {
        auto buf = engine::current()->dma().allocate(self->_opts.segment_bytes);
        std::optional<dma_buffer> check;
        if (self->_opts.rebuild_verify) {
            auto b = engine::current()->dma().allocate(self->_opts.segment_bytes);
            if (b) check = std::move(*b);
        }
        if (!buf || (self->_opts.rebuild_verify && !check)) {
            if (j->error.empty()) j->error = "no DMA memory for the copy buffers";
            co_return;
        }
        // Runs of up to segments_per_lock consecutive segments, each under one
        // range lock: one round trip to every shard per run, not per segment.
        // The next run's lock is asked for before the current run is copied,
        // and a run's unlock is not waited for before the next lock, so the
        // round trips to the other shards overlap the copying.
        auto take = [j](std::uint64_t& first, std::uint64_t& last) {
            if (!j->error.empty() || j->stop || j->paused || j->cursor >= j->todo.size()) return false;
            first = last = j->todo[j->cursor++];
            while (last - first + 1 < segments_per_lock && j->cursor < j->todo.size() && j->todo[j->cursor] == last + 1) {
                ++last;
                ++j->cursor;
            }
            return true;
        };
        std::optional<future<>> locking;    // the lock of [first, last], asked for ahead
        std::optional<future<>> unlocking;  // the previous run's unlock
        std::uint64_t first = 0, last = 0;
        bool have = false;  // [first, last] is taken and its lock asked for
        for (;;) {
            if (!have) {
                while (j->paused && !j->stop) {
                    j->resume_waiters.emplace_back();
                    co_await j->resume_waiters.back().get_future();
                }
                if (!take(first, last)) break;
                locking.emplace(self->lock_segments(first, last));
                have = true;
            }
            co_await std::move(*locking);
            locking.reset();
            std::uint64_t next_first = 0, next_last = 0;
            const bool next = take(next_first, next_last);
            if (next) locking.emplace(self->lock_segments(next_first, next_last));
            for (std::uint64_t seg = first; seg <= last && j->error.empty(); ++seg) {
                const std::uint64_t lba = seg * per_seg;
                const auto blocks = static_cast<std::uint32_t>(std::min(per_seg, self->block_count() - lba));
                io_vec v = to_io_vec(*buf, 0, std::size_t{blocks} * block);
                io_status st = io_status::namespace_not_ready;
                io_channel* in = from->channel();
                io_channel* out = to->channel();
                if (in && out) {
                    st = co_await in->read(lba, blocks, io_vecs(&v, 1));
                    if (!ok(st)) {
                        j->error = fmt::format("reading segment {} from {}: {}", seg, j->progress.source, to_string(st));
                    } else {
                        st = co_await out->write(lba, blocks, io_vecs(&v, 1));
                        if (!ok(st)) {
                            j->error = fmt::format("writing segment {}: {}", seg, to_string(st));
                        } else if (check) {
                            io_vec c = to_io_vec(*check, 0, std::size_t{blocks} * block);
                            st = co_await out->read(lba, blocks, io_vecs(&c, 1));
                            if (!ok(st) || std::memcmp(buf->data(), check->data(), std::size_t{blocks} * block) != 0) {
                                j->error = fmt::format("segment {} differs after the copy", seg);
                            }
                        }
                    }
                } else {
                    j->error = "a child has no channel (closing)";
                }
                if (j->error.empty()) j->progress.blocks_done += blocks;
            }
            if (unlocking) co_await std::move(*unlocking);
            unlocking.emplace(self->unlock_segments(first));
            have = next;
            first = next_first;
            last = next_last;
            if (!j->error.empty() || j->stop) break;
        }
        // A run locked ahead but not copied (stopped, failed) is released.
        if (have) {
            co_await std::move(*locking);
            if (unlocking) co_await std::move(*unlocking);
            unlocking.emplace(self->unlock_segments(first));
        }
        if (unlocking) co_await std::move(*unlocking);
    };
    std::vector<future<>> workers;
    const std::size_t n = std::min<std::size_t>(_opts.rebuild_parallel, std::max<std::size_t>(job->todo.size(), 1));
    workers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) workers.push_back(worker(this, job.get(), src, dst, per, bs));
    for (auto& w : workers) co_await std::move(w);

    child& c = _children[job->slot];
    job->progress.ended = std::chrono::system_clock::now();
    const double secs = std::chrono::duration<double>(job->progress.ended - job->progress.started).count();
    job->progress.blocks_per_second = secs > 0 ? static_cast<double>(job->progress.blocks_done) / secs : 0;
    c.finishing = std::move(c.rebuild);
    if (!job->error.empty()) {
        job->progress.state = rebuild_state::failed;
        job->progress.error = job->error;
        log::error("nexus {}: rebuild of {} failed: {}", name(), c.uri, job->error);
        if (c.state != child_state::faulted) co_await fault(job->slot, fault_reason::rebuild_failed, false);
    } else if (job->stop) {
        job->progress.state = rebuild_state::stopped;
        log::info("nexus {}: rebuild of {} stopped at {} of {} blocks", name(), c.uri, job->progress.blocks_done,
                  job->progress.blocks_total);
        if (c.state == child_state::degraded) {
            // Not in sync: faulted again, and its dirty log is no longer
            // complete (a restart needs a full rebuild).
            c.state = child_state::faulted;
            c.reason = fault_reason::out_of_sync;
            c.dirty_complete = false;
            update_state();
            co_await publish();
        }
    } else {
        // In sync: recorded healthy before it serves reads.
        c.state = child_state::online;
        c.reason = fault_reason::none;
        update_state();
        if (!co_await write_health(false)) {
            log::error("nexus {}: rebuild of {} finished but the health record could not be written; it stays "
                       "out of sync",
                       name(), c.uri);
            c.state = child_state::faulted;
            c.reason = fault_reason::out_of_sync;
            update_state();
        } else {
            job->progress.state = rebuild_state::completed;
            log::info("nexus {}: rebuild of {} completed: {} blocks in {:.2f} s", name(), c.uri,
                      job->progress.blocks_done, secs);
        }
        co_await publish();
    }
    _history.push_back(job->progress);
    while (_history.size() > history_kept) _history.pop_front();
    if (_children[job->slot].finishing == job) _children[job->slot].finishing.reset();
    job->finished = true;
    for (auto& p : job->finished_waiters) p.set_value();
    job->finished_waiters.clear();
    if (--_rebuilds_running == 0) {
        auto waiters = std::move(_idle_waiters);
        _idle_waiters.clear();
        for (auto& p : waiters) p.set_value();
    }
}

future<> nexus::rebuild_start(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw rebuild_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    if (c->rebuild) throw rebuild_error(storage_errc::busy, name(), fmt::format("{} is already being rebuilt", uri));
    if (c->state == child_state::online) {
        throw rebuild_error(storage_errc::invalid_argument, name(), fmt::format("{} is in sync", uri));
    }
    if (!c->dev || c->state == child_state::faulted) {
        // Never opened (opened first), or faulted: fenced first (a remote
        // child gets a new connection, its old one preempted and aborted).
        co_await online_child(uri);
        co_return;
    }
    co_await start_rebuild(slot_of(c), c->dirty_complete);
}

future<> nexus::rebuild_stop(std::string uri) {
    child* c = find_child(uri);
    if (!c) throw rebuild_error(storage_errc::not_found, name(), fmt::format("no child {}", uri));
    auto job = c->rebuild;
    if (!job) co_return;
    job->stop = true;
    auto waiters = std::move(job->resume_waiters);
    job->resume_waiters.clear();
    for (auto& p : waiters) p.set_value();
    if (!job->finished) {
        job->finished_waiters.emplace_back();
        co_await job->finished_waiters.back().get_future();
    }
}

future<> nexus::rebuild_pause(std::string uri) {
    child* c = find_child(uri);
    if (!c || !c->rebuild) throw rebuild_error(storage_errc::not_found, name(), fmt::format("no rebuild of {}", uri));
    c->rebuild->paused = true;
    c->rebuild->progress.state = rebuild_state::paused;
    co_return;
}

future<> nexus::rebuild_resume(std::string uri) {
    child* c = find_child(uri);
    if (!c || !c->rebuild) throw rebuild_error(storage_errc::not_found, name(), fmt::format("no rebuild of {}", uri));
    auto& job = *c->rebuild;
    job.paused = false;
    job.progress.state = rebuild_state::running;
    auto waiters = std::move(job.resume_waiters);
    job.resume_waiters.clear();
    for (auto& p : waiters) p.set_value();
    co_return;
}

future<> nexus::rebuilds_idle() {
    if (_rebuilds_running == 0) co_return;
    _idle_waiters.emplace_back();
    co_await _idle_waiters.back().get_future();
}

}  // namespace ioe
