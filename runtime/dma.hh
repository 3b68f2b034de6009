// DMA memory: one arena allocated at start-up, from 2 MiB huge pages when
// asked for (--huge-mb) and available (pre-faulted), otherwise from ordinary
// anonymous memory, pre-faulted and mlocked. The engine runs either way;
// huge pages only make it faster (fewer TLB misses, contiguous for VFIO).
//
// The arena is cut into 2 MiB chunks; a chunk is split into buffers of one
// size class (4 KiB .. 1 MiB, powers of two) on first need. Each shard keeps
// a small cache per class and goes to the shared free lists (under a mutex,
// in batches) only to refill or spill, so the per-I/O path takes no lock.
// A `dma_buffer` is an RAII handle that returns to the cache of the shard
// that frees it. Exhaustion is a clean ENOMEM result, never a crash.
// Chunks do not move between classes once split (documented in docs/runtime.md).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/result.hh"

namespace ioe {

struct dma_config {
    std::size_t size_mb = 64;   // arena size when huge pages are not requested
    std::size_t huge_mb = 0;    // >0: arena of this size from 2 MiB huge pages
};

enum class dma_source { huge_pages, locked_memory, unlocked_memory };

class dma_pool;

class dma_buffer {
public:
    dma_buffer() = default;
    dma_buffer(dma_buffer&& o) noexcept { *this = std::move(o); }
    dma_buffer& operator=(dma_buffer&& o) noexcept;
    dma_buffer(const dma_buffer&) = delete;
    dma_buffer& operator=(const dma_buffer&) = delete;
    ~dma_buffer() { reset(); }

    std::byte* data() const noexcept { return _data; }
    std::size_t size() const noexcept { return _size; }          // bytes asked for
    std::size_t capacity() const noexcept;                        // bytes of its class
    // The io_uring registered-buffer index covering this buffer.
    int buf_index() const noexcept { return _region; }
    explicit operator bool() const noexcept { return _data != nullptr; }
    void reset() noexcept;

private:
    friend class dma_pool;
    dma_pool* _pool = nullptr;
    std::byte* _data = nullptr;
    std::uint32_t _size = 0;
    std::uint16_t _region = 0;
    std::uint8_t _class = 0;
};

class dma_pool {
public:
    static constexpr std::size_t min_buffer = 4096;
    static constexpr std::size_t max_buffer = 1 << 20;
    static constexpr unsigned class_count = 9;  // 4K .. 1M
    static constexpr std::size_t chunk_size = 2 << 20;
    static constexpr std::size_t region_max = std::size_t(1) << 30;  // io_uring limit per iovec
    static constexpr unsigned max_shards = 256;
    static constexpr unsigned cache_capacity = 64;
    static constexpr unsigned cache_batch = 16;

    // Allocates and pre-faults the arena; throws with a clear message when
    // even ordinary memory cannot be had.
    explicit dma_pool(const dma_config& cfg);
    ~dma_pool();
    dma_pool(const dma_pool&) = delete;
    dma_pool& operator=(const dma_pool&) = delete;

    // A buffer of at least `size` bytes (<= max_buffer), or EINVAL / ENOMEM.
    result<dma_buffer> allocate(std::size_t size);

    dma_source source() const noexcept { return _source; }
    std::size_t size_bytes() const noexcept { return _size; }
    std::size_t chunks_used() const;
    std::size_t chunks_total() const noexcept { return _size / chunk_size; }
    // One line for the start-up log: how much, from where, and why.
    const std::string& description() const noexcept { return _description; }
    // The arena as io_uring fixed-buffer regions.
    const std::vector<iovec>& regions() const noexcept { return _regions; }

    static constexpr std::size_t class_size(unsigned c) noexcept { return min_buffer << c; }

private:
    friend class dma_buffer;
    struct free_node {
        free_node* next;
    };
    struct alignas(64) shard_cache {
        std::byte* slots[class_count][cache_capacity];
        unsigned count[class_count] = {};
    };

    void release(std::byte* p, unsigned cls) noexcept;
    std::byte* take_shared(unsigned cls);           // under _mutex
    bool refill(shard_cache& c, unsigned cls);
    void spill(shard_cache& c, unsigned cls) noexcept;
    void map_arena(const dma_config& cfg);

    std::byte* _base = nullptr;
    std::size_t _size = 0;
    dma_source _source = dma_source::unlocked_memory;
    std::string _description;
    std::vector<iovec> _regions;

    mutable std::mutex _mutex;
    free_node* _free[class_count] = {};
    std::size_t _next_chunk = 0;
    std::unique_ptr<shard_cache[]> _caches;
};

}  // namespace ioe
