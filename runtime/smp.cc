// Cross-core lanes (see smp.hh).
#include "runtime/smp.hh"

#include <atomic>

#include "runtime/reactor.hh"

namespace ioe {
namespace {
smp* g_smp = nullptr;
}

smp* local_smp() noexcept { return g_smp; }
unsigned shard_count() noexcept { return g_smp ? g_smp->count() : 0; }

namespace internal {
void set_local_smp(smp* s) noexcept { g_smp = s; }
}  // namespace internal

smp::smp(unsigned shards, std::size_t ring_capacity)
    : _count(shards), _reactors(shards, nullptr), _out(new shard_out[shards]) {
    _lanes.reserve(std::size_t(shards) * shards);
    for (unsigned a = 0; a < shards; ++a) {
        for (unsigned b = 0; b < shards; ++b) {
            _lanes.push_back(a == b ? nullptr : std::make_unique<lane>(ring_capacity));
        }
    }
}

smp::~smp() = default;

void smp::send(work_item* item) noexcept {
    lane_of(item->_from, item->_to).out_requests.push(item);
    ++_out[item->_from].pending;
    ++_out[item->_from].stats.sent;
}

void smp::respond(work_item* item) noexcept {
    lane_of(item->_from, item->_to).out_responses.push(item);
    ++_out[item->_to].pending;
}

std::size_t smp::publish(fifo& q, spsc_ring<work_item>& ring) noexcept {
    std::size_t total = 0;
    work_item* batch[max_batch];
    while (q.head && !ring.full()) {
        // Collect and note what follows *before* publishing: once an item
        // is in the ring the target owns it and may relink it.
        std::size_t n = 0;
        work_item* rest = q.head;
        while (rest && n < max_batch) {
            batch[n++] = rest;
            rest = rest->_next_item;
        }
        std::size_t pushed = ring.push(batch, n);
        total += pushed;
        if (pushed < n) {
            q.head = batch[pushed];  // not published: still ours; the ring is full
            break;
        }
        q.head = rest;
    }
    if (!q.head) q.tail = nullptr;
    return total;
}

bool smp::flush(unsigned shard) noexcept {
    shard_out& out = _out[shard];
    if (out.pending == 0) return false;
    for (unsigned other = 0; other < _count; ++other) {
        if (other == shard) continue;
        std::size_t sent = 0;
        lane& req = lane_of(shard, other);  // our requests to `other`
        if (req.out_requests.head) {
            std::size_t n = publish(req.out_requests, req.requests);
            if (req.out_requests.head) ++out.stats.overflowed;
            sent += n;
        }
        lane& resp = lane_of(other, shard);  // our responses to `other`
        if (resp.out_responses.head) {
            std::size_t n = publish(resp.out_responses, resp.responses);
            if (resp.out_responses.head) ++out.stats.overflowed;
            sent += n;
        }
        if (sent) {
            out.pending -= sent;
            // Publish-then-check half of the sleep handshake (see reactor.hh).
            std::atomic_thread_fence(std::memory_order_seq_cst);
            _reactors[other]->wake();
        }
    }
    return out.pending != 0;
}

bool smp::poll(unsigned shard) noexcept {
    // At most max_poll_batches batches per ring and poll, so that a busy peer
    // cannot keep this reactor from its tasks, timers and I/O.
    constexpr unsigned max_poll_batches = 4;
    bool any = false;
    work_item* batch[max_batch];
    for (unsigned other = 0; other < _count; ++other) {
        if (other == shard) continue;
        // Responses to what we sent to `other`.
        lane& mine = lane_of(shard, other);
        for (unsigned round = 0; round < max_poll_batches; ++round) {
            std::size_t n = mine.responses.pop(batch, max_batch);
            for (std::size_t i = 0; i < n; ++i) __builtin_prefetch(batch[i]);
            for (std::size_t i = 0; i < n; ++i) batch[i]->complete();
            any |= n != 0;
            if (n < max_batch) break;
        }
        // Requests from `other`.
        lane& theirs = lane_of(other, shard);
        for (unsigned round = 0; round < max_poll_batches; ++round) {
            std::size_t n = theirs.requests.pop(batch, max_batch);
            _out[shard].stats.received += n;
            for (std::size_t i = 0; i < n; ++i) __builtin_prefetch(batch[i]);
            for (std::size_t i = 0; i < n; ++i) batch[i]->process();
            any |= n != 0;
            if (n < max_batch) break;
        }
    }
    return any;
}

bool smp::has_input(unsigned shard) const noexcept {
    for (unsigned other = 0; other < _count; ++other) {
        if (other == shard) continue;
        if (!lane_of(shard, other).responses.empty()) return true;
        if (!lane_of(other, shard).requests.empty()) return true;
    }
    return false;
}

}  // namespace ioe
