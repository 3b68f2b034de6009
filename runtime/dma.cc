// The DMA buffer pool (see dma.hh).
#include "runtime/dma.hh"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "runtime/reactor.hh"

namespace ioe {
namespace {

unsigned class_for(std::size_t size) noexcept {
    unsigned c = 0;
    while ((dma_pool::min_buffer << c) < size) ++c;
    return c;
}

long read_long(const char* path) {
    std::ifstream f(path);
    long v = -1;
    if (f) f >> v;
    return v;
}

std::string mib(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

// ---- dma_buffer -------------------------------------------------------------

dma_buffer& dma_buffer::operator=(dma_buffer&& o) noexcept {
    if (this != &o) {
        reset();
        _pool = std::exchange(o._pool, nullptr);
        _data = std::exchange(o._data, nullptr);
        _size = o._size;
        _region = o._region;
        _class = o._class;
    }
    return *this;
}

std::size_t dma_buffer::capacity() const noexcept { return _data ? dma_pool::class_size(_class) : 0; }

void dma_buffer::reset() noexcept {
    if (_data) {
        _pool->release(_data, _class);
        _data = nullptr;
        _pool = nullptr;
    }
}

// ---- dma_pool ---------------------------------------------------------------

dma_pool::dma_pool(const dma_config& cfg) : _caches(new shard_cache[max_shards]) {
    map_arena(cfg);
    for (std::size_t off = 0; off < _size; off += region_max) {
        iovec v{_base + off, std::min(region_max, _size - off)};
        _regions.push_back(v);
    }
}

dma_pool::~dma_pool() {
    if (_base) ::munmap(_base, _size);
}

void dma_pool::map_arena(const dma_config& cfg) {
    auto round_up = [](std::size_t mb) {
        std::size_t bytes = mb << 20;
        return (bytes + chunk_size - 1) / chunk_size * chunk_size;
    };
    std::string why_not_huge = "huge pages not requested (--huge-mb)";
    if (cfg.huge_mb > 0) {
        _size = round_up(cfg.huge_mb);
        long free_pages = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
        std::size_t need = _size / chunk_size;
        if (free_pages >= 0 && static_cast<std::size_t>(free_pages) < need) {
            why_not_huge = "--huge-mb " + std::to_string(cfg.huge_mb) + " needs " + std::to_string(need) +
                           " free 2 MiB huge pages, the machine has " + std::to_string(free_pages) +
                           " (raise /proc/sys/vm/nr_hugepages)";
        } else {
            void* p = ::mmap(nullptr, _size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE | (21 << MAP_HUGE_SHIFT), -1, 0);
            if (p != MAP_FAILED) {
                _base = static_cast<std::byte*>(p);
                _source = dma_source::huge_pages;
                _description = "DMA pool: " + mib(_size) + " from 2 MiB huge pages (pre-faulted)";
                return;
            }
            why_not_huge = "mmap of " + mib(_size) + " of huge pages failed: " + std::strerror(errno);
        }
    } else {
        _size = round_up(cfg.size_mb);
    }
    if (_size == 0) throw std::invalid_argument("DMA pool size must be at least 2 MiB");

    void* p = ::mmap(nullptr, _size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        throw std::runtime_error("DMA pool: cannot map " + mib(_size) + ": " + std::strerror(errno));
    }
    _base = static_cast<std::byte*>(p);
    if (::mlock(_base, _size) == 0) {
        _source = dma_source::locked_memory;
        _description = "DMA pool: " + mib(_size) + " from ordinary memory, mlocked (" + why_not_huge + ")";
    } else {
        int err = errno;
        _source = dma_source::unlocked_memory;
        _description = "DMA pool: " + mib(_size) + " from ordinary memory, NOT locked: mlock failed: " +
                       std::strerror(err) + " (raise RLIMIT_MEMLOCK, ulimit -l; " + why_not_huge + ")";
    }
}

std::size_t dma_pool::chunks_used() const {
    std::lock_guard<std::mutex> lk(_mutex);
    return _next_chunk;
}

std::byte* dma_pool::take_shared(unsigned cls) {
    if (!_free[cls]) {
        if (_next_chunk >= chunks_total()) return nullptr;
        std::byte* chunk = _base + _next_chunk * chunk_size;
        ++_next_chunk;
        const std::size_t sz = class_size(cls);
        for (std::size_t off = chunk_size; off >= sz; off -= sz) {
            auto* n = reinterpret_cast<free_node*>(chunk + off - sz);
            n->next = _free[cls];
            _free[cls] = n;
        }
    }
    free_node* n = _free[cls];
    _free[cls] = n->next;
    return reinterpret_cast<std::byte*>(n);
}

bool dma_pool::refill(shard_cache& c, unsigned cls) {
    std::lock_guard<std::mutex> lk(_mutex);
    while (c.count[cls] < cache_batch) {
        std::byte* p = take_shared(cls);
        if (!p) break;
        c.slots[cls][c.count[cls]++] = p;
    }
    return c.count[cls] > 0;
}

void dma_pool::spill(shard_cache& c, unsigned cls) noexcept {
    std::lock_guard<std::mutex> lk(_mutex);
    for (unsigned i = 0; i < cache_batch && c.count[cls] > 0; ++i) {
        auto* n = reinterpret_cast<free_node*>(c.slots[cls][--c.count[cls]]);
        n->next = _free[cls];
        _free[cls] = n;
    }
}

result<dma_buffer> dma_pool::allocate(std::size_t size) {
    if (size == 0 || size > max_buffer) return errno_error(EINVAL);
    const unsigned cls = class_for(size);
    std::byte* p = nullptr;
    const unsigned shard = this_shard_id();
    if (shard < max_shards) {
        shard_cache& c = _caches[shard];
        if (c.count[cls] == 0 && !refill(c, cls)) return errno_error(ENOMEM);
        p = c.slots[cls][--c.count[cls]];
    } else {
        std::lock_guard<std::mutex> lk(_mutex);
        p = take_shared(cls);
        if (!p) return errno_error(ENOMEM);
    }
    dma_buffer b;
    b._pool = this;
    b._data = p;
    b._size = static_cast<std::uint32_t>(size);
    b._class = static_cast<std::uint8_t>(cls);
    b._region = static_cast<std::uint16_t>(static_cast<std::size_t>(p - _base) / region_max);
    return b;
}

void dma_pool::release(std::byte* p, unsigned cls) noexcept {
    const unsigned shard = this_shard_id();
    if (shard < max_shards) {
        shard_cache& c = _caches[shard];
        if (c.count[cls] == cache_capacity) spill(c, cls);
        c.slots[cls][c.count[cls]++] = p;
        return;
    }
    std::lock_guard<std::mutex> lk(_mutex);
    auto* n = reinterpret_cast<free_node*>(p);
    n->next = _free[cls];
    _free[cls] = n;
}

}  // namespace ioe
