// Thread-local caches of the small-object slab (see slab.hh).
#include "runtime/slab.hh"

namespace ioe::slab {

thread_cache::~thread_cache() {
    for (unsigned c = 0; c < class_count; ++c) {
        while (free_block* b = head[c]) {
            head[c] = b->next;
            ::operator delete(b, block_align);
        }
    }
}

thread_cache& local_cache() noexcept {
    static thread_local thread_cache cache;
    return cache;
}

}  // namespace ioe::slab
