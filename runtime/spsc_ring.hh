// A bounded single-producer single-consumer ring of pointers, the building
// block of the cross-core queues.
//
// FastForward style: a slot is full when it holds a non-null pointer. The
// producer fills slots in order and the consumer empties them in order, so
// neither side reads an index the other writes: each side's position is its
// own, and the only shared lines are the slots themselves (and the items
// they point to). That saves one serial cache miss per direction compared to
// a ring with shared head/tail indices.
//
// Batches: because the consumer empties slots strictly in order, if the last
// slot of a batch is empty, every slot before it is empty too; the producer
// checks just that one. Stores of items are release, loads acquire, so an
// item's contents are visible to the consumer that finds its pointer.
// Capacity is a power of two.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>

namespace ioe {

inline constexpr std::size_t cache_line = 64;

template <typename T>
class spsc_ring {
public:
    explicit spsc_ring(std::size_t capacity) : _mask(capacity - 1) {
        if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
            throw std::invalid_argument("spsc_ring capacity must be a power of two >= 2");
        }
        _slots.reset(new (std::align_val_t{cache_line}) std::atomic<T*>[capacity]);
        for (std::size_t i = 0; i < capacity; ++i) _slots[i].store(nullptr, std::memory_order_relaxed);
    }

    std::size_t capacity() const noexcept { return _mask + 1; }

    // Producer: is the next slot still taken?
    bool full() const noexcept { return slot(_prod.tail).load(std::memory_order_acquire) != nullptr; }

    // Producer: pushes up to n items (non-null), returns how many fit.
    std::size_t push(T* const* items, std::size_t n) noexcept {
        const std::size_t tail = _prod.tail;
        if (n > capacity()) n = capacity();  // never wrap onto the slots being filled now
        if (n == 0) return 0;
        std::size_t fit = n;
        if (slot(tail + n - 1).load(std::memory_order_acquire) != nullptr) {
            fit = 0;  // not all of them: count the empty slots one by one
            while (fit < n && slot(tail + fit).load(std::memory_order_acquire) == nullptr) ++fit;
        }
        for (std::size_t i = 0; i < fit; ++i) slot(tail + i).store(items[i], std::memory_order_release);
        _prod.tail = tail + fit;
        return fit;
    }

    // Consumer: pops up to n items into out, returns the count.
    std::size_t pop(T** out, std::size_t n) noexcept {
        const std::size_t head = _cons.head;
        if (n > capacity()) n = capacity();  // never wrap onto slots not yet emptied
        std::size_t k = 0;
        while (k < n) {
            T* p = slot(head + k).load(std::memory_order_acquire);
            if (!p) break;
            out[k++] = p;
        }
        // Empty them in order (the producer relies on it, see above).
        for (std::size_t i = 0; i < k; ++i) slot(head + i).store(nullptr, std::memory_order_release);
        _cons.head = head + k;
        return k;
    }

    // Consumer: is anything there?
    bool empty() const noexcept { return slot(_cons.head).load(std::memory_order_acquire) == nullptr; }

private:
    std::atomic<T*>& slot(std::size_t i) const noexcept { return _slots[i & _mask]; }

    struct alignas(cache_line) producer_side {
        std::size_t tail = 0;
    };
    struct alignas(cache_line) consumer_side {
        std::size_t head = 0;
    };
    struct aligned_delete {
        void operator()(std::atomic<T*>* p) const noexcept { ::operator delete[](p, std::align_val_t{cache_line}); }
    };
    producer_side _prod;
    consumer_side _cons;
    alignas(cache_line) const std::size_t _mask;
    std::unique_ptr<std::atomic<T*>[], aligned_delete> _slots;
};

}  // namespace ioe
