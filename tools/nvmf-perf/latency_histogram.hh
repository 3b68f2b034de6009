// latency_histogram: I/O latencies in fixed log-linear buckets, so that
// recording a sample touches one counter and never allocates (nvmf-perf
// keeps one per shard and merges them at the end).
//
// Bucketing: values below 2^(sub_bits-1) ns have a bucket each; above, every
// power of two is cut into 2^(sub_bits-1) equal buckets, so a bucket is at
// most 1/64 (1.6 %) of its value wide. Values from 2^max_bits ns (~18 min) up
// land in the last bucket. Percentiles are nearest-rank over the counts and
// report the middle of the bucket; min, max and mean are exact.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace ioe::perf {

class latency_histogram {
public:
    static constexpr unsigned sub_bits = 7;
    static constexpr std::uint64_t half = std::uint64_t{1} << (sub_bits - 1);  // buckets per power of two
    static constexpr unsigned max_bits = 40;
    static constexpr std::size_t bucket_count = (max_bits - sub_bits + 2) * half;

    static constexpr std::size_t bucket_of(std::uint64_t ns) noexcept {
        if (ns >= (std::uint64_t{1} << max_bits)) ns = (std::uint64_t{1} << max_bits) - 1;
        const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(ns | 1));
        const unsigned shift = msb >= sub_bits - 1 ? msb - (sub_bits - 1) : 0;
        return shift * half + (ns >> shift);
    }
    // The smallest value of bucket `i` and its width.
    static constexpr std::uint64_t bucket_low(std::size_t i) noexcept {
        const std::uint64_t shift = i < 2 * half ? 0 : i / half - 1;
        return (i - shift * half) << shift;
    }
    static constexpr std::uint64_t bucket_width(std::size_t i) noexcept {
        return std::uint64_t{1} << (i < 2 * half ? 0 : i / half - 1);
    }

    void add(std::uint64_t ns) noexcept {
        ++_counts[bucket_of(ns)];
        ++_n;
        _sum += ns;
        _min = std::min(_min, ns);
        _max = std::max(_max, ns);
    }
    void merge(const latency_histogram& o) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i) _counts[i] += o._counts[i];
        _n += o._n;
        _sum += o._sum;
        _min = std::min(_min, o._min);
        _max = std::max(_max, o._max);
    }

    std::uint64_t count() const noexcept { return _n; }
    double mean_ns() const noexcept { return _n ? double(_sum) / double(_n) : 0.0; }
    std::uint64_t min_ns() const noexcept { return _n ? _min : 0; }
    std::uint64_t max_ns() const noexcept { return _max; }

    // Nearest-rank percentile `q` (0 < q <= 100), the middle of its bucket
    // clamped to [min, max]; 0 when empty.
    double percentile_ns(double q) const noexcept {
        if (_n == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q / 100.0 * double(_n) + 0.999999);
        rank = std::clamp<std::uint64_t>(rank, 1, _n);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += _counts[i];
            if (seen >= rank) {
                const double mid = double(bucket_low(i)) + double(bucket_width(i) - 1) / 2.0;
                return std::clamp(mid, double(_min), double(_max));
            }
        }
        return double(_max);
    }

private:
    std::array<std::uint64_t, bucket_count> _counts{};
    std::uint64_t _n = 0;
    std::uint64_t _sum = 0;
    std::uint64_t _min = ~std::uint64_t{0};
    std::uint64_t _max = 0;
};

// The bucket mapping is monotone and contiguous (checked at compile time on
// the edges of the first octaves).
static_assert(latency_histogram::bucket_of(0) == 0);
static_assert(latency_histogram::bucket_of(63) == 63);
static_assert(latency_histogram::bucket_of(64) == 64 && latency_histogram::bucket_of(127) == 127);
static_assert(latency_histogram::bucket_of(128) == 128 && latency_histogram::bucket_of(129) == 128);
static_assert(latency_histogram::bucket_of(130) == 129);
static_assert(latency_histogram::bucket_low(128) == 128 && latency_histogram::bucket_width(128) == 2);
static_assert(latency_histogram::bucket_low(latency_histogram::bucket_of(1000003)) <= 1000003);
static_assert(latency_histogram::bucket_of(~std::uint64_t{0}) == latency_histogram::bucket_count - 1);

}  // namespace ioe::perf
