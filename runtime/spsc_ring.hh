// A bounded single-producer single-consumer ring of pointers, the building
// block of the cross-core queues. Producer and consumer indices sit on their
// own cache lines, and each side keeps a cached copy of the other's index so
// that a batch costs one shared-line read at most, plus one release store to
// publish it. Capacity is a power of two.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <stdexcept>

namespace ioe {

inline constexpr std::size_t cache_line = 64;

template <typename T>
class spsc_ring {
public:
    explicit spsc_ring(std::size_t capacity) : _mask(capacity - 1), _slots(new T*[capacity]) {
        if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
            throw std::invalid_argument("spsc_ring capacity must be a power of two >= 2");
        }
    }

    std::size_t capacity() const noexcept { return _mask + 1; }

    // Producer: pushes up to n items, publishes once, returns how many fit.
    std::size_t push(T* const* items, std::size_t n) noexcept {
        std::size_t tail = _prod.tail.load(std::memory_order_relaxed);
        std::size_t free = capacity() - (tail - _prod.head_cache);
        if (free < n) {
            _prod.head_cache = _cons.head.load(std::memory_order_acquire);
            free = capacity() - (tail - _prod.head_cache);
        }
        if (n > free) n = free;
        for (std::size_t i = 0; i < n; ++i) {
            _slots[(tail + i) & _mask] = items[i];
        }
        if (n) _prod.tail.store(tail + n, std::memory_order_release);
        return n;
    }

    // Producer: how many items fit now (refreshes the cached consumer index
    // only when the cached view says the ring is full).
    std::size_t free_space() noexcept {
        std::size_t tail = _prod.tail.load(std::memory_order_relaxed);
        if (tail - _prod.head_cache == capacity()) {
            _prod.head_cache = _cons.head.load(std::memory_order_acquire);
        }
        return capacity() - (tail - _prod.head_cache);
    }

    // Consumer: pops up to n items into out, publishes once, returns the count.
    std::size_t pop(T** out, std::size_t n) noexcept {
        std::size_t head = _cons.head.load(std::memory_order_relaxed);
        std::size_t avail = _cons.tail_cache - head;
        if (avail < n) {
            _cons.tail_cache = _prod.tail.load(std::memory_order_acquire);
            avail = _cons.tail_cache - head;
        }
        if (n > avail) n = avail;
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = _slots[(head + i) & _mask];
        }
        if (n) _cons.head.store(head + n, std::memory_order_release);
        return n;
    }

    // Consumer side: is anything there? (one acquire load)
    bool empty() const noexcept {
        return _prod.tail.load(std::memory_order_acquire) == _cons.head.load(std::memory_order_relaxed);
    }

private:
    struct alignas(cache_line) producer_side {
        std::atomic<std::size_t> tail{0};
        std::size_t head_cache = 0;
    };
    struct alignas(cache_line) consumer_side {
        std::atomic<std::size_t> head{0};
        std::size_t tail_cache = 0;
    };
    producer_side _prod;
    consumer_side _cons;
    alignas(cache_line) const std::size_t _mask;
    std::unique_ptr<T*[]> _slots;
};

}  // namespace ioe
