// Per-thread small-object allocator for the steady-state path: future states,
// coroutine frames, cross-core messages and io_uring operations. Blocks come
// in power-of-two size classes from 64 B to 4 KiB and are kept on per-thread
// free lists, so once a shard has warmed up it allocates from a list head and
// never calls malloc. Larger requests go to the global heap.
//
// Blocks are cache-line aligned, so two messages in flight between shards
// never share a line.
//
// A block freed on another thread than the one that allocated it joins that
// thread's list: the memory is ordinary heap memory, so this is only a
// migration, never a corruption. Each list is capped; past the cap blocks go
// back to the heap, so a burst does not pin memory forever.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace ioe::slab {

inline constexpr std::size_t min_block = 64;
inline constexpr std::size_t max_block = 4096;
inline constexpr unsigned class_count = 7;          // 64,128,...,4096
inline constexpr unsigned max_cached_per_class = 16384;

struct free_block {
    free_block* next;
};

struct thread_cache {
    free_block* head[class_count] = {};
    unsigned count[class_count] = {};
    ~thread_cache();
};

thread_cache& local_cache() noexcept;

constexpr unsigned size_class(std::size_t size) noexcept {
    unsigned c = 0;
    std::size_t b = min_block;
    while (b < size) {
        b <<= 1;
        ++c;
    }
    return c;
}

inline constexpr std::align_val_t block_align{64};

inline void* allocate(std::size_t size) {
    if (size > max_block) {
        return ::operator new(size, block_align);
    }
    unsigned c = size_class(size);
    thread_cache& tc = local_cache();
    if (free_block* b = tc.head[c]) {
        tc.head[c] = b->next;
        --tc.count[c];
        return b;
    }
    return ::operator new(min_block << c, block_align);
}

inline void deallocate(void* p, std::size_t size) noexcept {
    if (size > max_block) {
        ::operator delete(p, block_align);
        return;
    }
    unsigned c = size_class(size);
    thread_cache& tc = local_cache();
    if (tc.count[c] >= max_cached_per_class) {
        ::operator delete(p, block_align);
        return;
    }
    auto* b = static_cast<free_block*>(p);
    b->next = tc.head[c];
    tc.head[c] = b;
    ++tc.count[c];
}

// Base for objects that should live in the slab: sized operator new/delete.
struct slab_allocated {
    static void* operator new(std::size_t size) { return allocate(size); }
    static void operator delete(void* p, std::size_t size) noexcept { deallocate(p, size); }
};

}  // namespace ioe::slab
