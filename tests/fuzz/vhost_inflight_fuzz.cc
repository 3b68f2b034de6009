// Fuzz target: the INFLIGHT_SHMFD area a front-end hands back after a
// back-end restart (vhost/inflight_area.cc). The area is shared memory the
// front-end could have written anything into; recovery must stay inside
// the queue's region and give back each head at most once, oldest first.
// Input: byte 0 picks the queue size (2^(b % 9): 1..256), bytes 1-2 the
// ring's used index, the rest is the queue region (zero-padded).
// Oracle: every head returned is below the size, marked in flight and
// returned once; counters ascend; the region's used index equals the
// ring's afterwards; completing the heads as one batch clears them all.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <vector>

#include "vhost/inflight_area.hh"

using namespace ioe::vhost;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const std::uint32_t qs = 1u << (data[0] % 9);
    std::uint16_t ring_used = 0;
    std::memcpy(&ring_used, data + 1, 2);
    // The region on its own heap block (ASan catches any step outside).
    const std::size_t bytes = sizeof(ioe::vhost::user::inflight_queue_split) + 16 * qs;
    std::vector<std::byte> region(bytes);
    std::memcpy(region.data(), data + 3, std::min(bytes, size - 3));
    auto* q = reinterpret_cast<ioe::vhost::user::inflight_queue_split*>(region.data());
    auto* d = reinterpret_cast<ioe::vhost::user::inflight_desc_split*>(region.data() + sizeof *q);
    inflight_log log;
    log.attach(q, qs);
    std::vector<std::uint16_t> heads;
    log.recover(ring_used, heads);
    if (q->used_idx != ring_used) std::abort();
    std::vector<bool> seen(qs);
    for (std::size_t i = 0; i < heads.size(); ++i) {
        const std::uint16_t h = heads[i];
        if (h >= qs || seen[h] || !d[h].inflight) std::abort();
        seen[h] = true;
        if (i > 0 && d[heads[i - 1]].counter > d[h].counter) std::abort();
    }
    // Serve them again as the queue would: one batch, then published.
    for (std::uint16_t h : heads) log.begin(h);
    for (std::uint16_t h : heads) log.batch_add(h);
    log.batch_published(static_cast<std::uint16_t>(ring_used + heads.size()));
    for (std::uint16_t h : heads)
        if (d[h].inflight) std::abort();
    return 0;
}
